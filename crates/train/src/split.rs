//! Deterministic train / validation / test splits from a seed: by image (every person in every
//! split, for the classifier) or by identity (held-out people, for the embedding head).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Indices into a dataset's samples, per split.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Split {
    /// Learned from.
    pub train: Vec<usize>,
    /// Watched each epoch.
    pub validation: Vec<usize>,
    /// Touched once, at the end.
    pub test: Vec<usize>,
}

/// Fractions of each person's images (or of the people) held out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitFractions {
    /// Share for validation.
    pub validation: f64,
    /// Share for test.
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        Self { validation: 0.15, test: 0.15 }
    }
}

/// Splits each person's images: at least one in train, and one each in validation and test when the
/// person has 3 or more. `persons[i]` is sample `i`'s person.
pub fn split_by_image(persons: &[usize], fractions: SplitFractions, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let count = persons.iter().max().map_or(0, |m| m + 1);
    let mut split = Split::default();
    for person in 0..count {
        let mut mine: Vec<usize> = (0..persons.len()).filter(|&i| persons[i] == person).collect();
        mine.shuffle(&mut rng);
        let n = mine.len();
        let share = |fraction: f64| if n >= 3 { ((n as f64 * fraction).round() as usize).max(1) } else { 0 };
        let test = share(fractions.test).min(n.saturating_sub(1));
        let validation = share(fractions.validation).min(n.saturating_sub(1 + test));
        split.test.extend(&mine[..test]);
        split.validation.extend(&mine[test..test + validation]);
        split.train.extend(&mine[test + validation..]);
    }
    for part in [&mut split.train, &mut split.validation, &mut split.test] {
        part.sort_unstable();
    }
    split
}

/// Splits the people (not their images): every image of a person lands in the same split.
pub fn split_by_identity(persons: &[usize], fractions: SplitFractions, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let count = persons.iter().max().map_or(0, |m| m + 1);
    let mut people: Vec<usize> = (0..count).collect();
    people.shuffle(&mut rng);
    let test = ((count as f64 * fractions.test).round() as usize).min(count);
    let validation = ((count as f64 * fractions.validation).round() as usize).min(count - test);
    let side = |person: usize| {
        let rank = people.iter().position(|&p| p == person).unwrap_or(0);
        if rank < test {
            2
        } else if rank < test + validation {
            1
        } else {
            0
        }
    };
    let mut split = Split::default();
    for (i, &person) in persons.iter().enumerate() {
        match side(person) {
            2 => split.test.push(i),
            1 => split.validation.push(i),
            _ => split.train.push(i),
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_split_is_stratified_deterministic_and_disjoint() {
        let persons: Vec<usize> = (0..60).map(|i| i % 3).chain([3, 3]).collect();
        let a = split_by_image(&persons, SplitFractions::default(), 7);
        assert_eq!(a, split_by_image(&persons, SplitFractions::default(), 7));
        assert_ne!(a, split_by_image(&persons, SplitFractions::default(), 8));
        let mut all: Vec<usize> = a.train.iter().chain(&a.validation).chain(&a.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..persons.len()).collect::<Vec<_>>());
        for person in 0..3 {
            assert_eq!(a.test.iter().filter(|&&i| persons[i] == person).count(), 3);
            assert_eq!(a.validation.iter().filter(|&&i| persons[i] == person).count(), 3);
        }
        // Two images: one to learn from, none held out.
        assert_eq!(a.train.iter().filter(|&&i| persons[i] == 3).count(), 2);
    }

    #[test]
    fn identity_split_keeps_people_whole() {
        let persons: Vec<usize> = (0..200).map(|i| i % 20).collect();
        let split = split_by_identity(&persons, SplitFractions::default(), 1);
        let people = |part: &[usize]| part.iter().map(|&i| persons[i]).collect::<std::collections::BTreeSet<_>>();
        let (train, val, test) = (people(&split.train), people(&split.validation), people(&split.test));
        assert_eq!((train.len(), val.len(), test.len()), (14, 3, 3));
        assert!(train.is_disjoint(&test) && train.is_disjoint(&val) && val.is_disjoint(&test));
    }
}
