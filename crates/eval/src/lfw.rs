//! The LFW verification protocol: `pairs.txt` (a header `folds pairs-per-half`, then per fold the
//! matched pairs `name a b` and the mismatched pairs `name1 a name2 b`) over `lfw-deepfunneled/` or
//! `lfw/`.

use std::path::{Path, PathBuf};

use crate::{EvalError, io};

/// One pair of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// First image.
    pub a: PathBuf,
    /// Second image.
    pub b: PathBuf,
    /// The same person.
    pub same: bool,
    /// The fold it belongs to.
    pub fold: usize,
}

/// An LFW folder: its pairs file and its images.
#[derive(Debug, Clone)]
pub struct Lfw {
    /// `pairs.txt`.
    pub pairs_file: PathBuf,
    /// The folder of per-person folders.
    pub images_dir: PathBuf,
}

impl Lfw {
    /// The protocol files under `dir`.
    ///
    /// # Errors
    /// [`EvalError::Protocol`] when `dir` has no `pairs.txt`.
    pub fn open(dir: &Path) -> Result<Self, EvalError> {
        let pairs_file = dir.join("pairs.txt");
        if !pairs_file.is_file() {
            return Err(EvalError::Protocol(format!("{} has no pairs.txt", dir.display())));
        }
        let images_dir = ["lfw-deepfunneled", "lfw"]
            .iter()
            .map(|name| dir.join(name))
            .find(|d| d.is_dir())
            .unwrap_or_else(|| dir.to_path_buf());
        Ok(Self { pairs_file, images_dir })
    }

    /// The pairs, at most `limit` per half-fold when given.
    ///
    /// # Errors
    /// An unreadable or malformed `pairs.txt`.
    pub fn pairs(&self, limit: Option<usize>) -> Result<Vec<Pair>, EvalError> {
        let text = std::fs::read_to_string(&self.pairs_file).map_err(io(&self.pairs_file))?;
        let bad = |what: String| EvalError::Protocol(format!("{}: {what}", self.pairs_file.display()));
        let mut lines = text.lines();
        let header: Vec<usize> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("header: {e}")))?;
        let [folds, per_half] = header[..] else { return Err(bad("the header must be `folds pairs`".into())) };
        let mut pairs = Vec::new();
        for fold in 0..folds {
            for index in 0..2 * per_half {
                let line = lines.next().ok_or_else(|| bad(format!("ends in fold {fold}")))?;
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (a, b, same) = match fields[..] {
                    [name, a, b] => (self.image(name, a)?, self.image(name, b)?, true),
                    [n1, a, n2, b] => (self.image(n1, a)?, self.image(n2, b)?, false),
                    _ => return Err(bad(format!("bad line `{line}`"))),
                };
                if limit.is_none_or(|l| index % per_half < l) {
                    pairs.push(Pair { a, b, same, fold });
                }
            }
        }
        Ok(pairs)
    }

    fn image(&self, name: &str, number: &str) -> Result<PathBuf, EvalError> {
        let n: u32 = number.parse().map_err(|_| EvalError::Protocol(format!("bad image number `{number}`")))?;
        Ok(self.images_dir.join(name).join(format!("{name}_{n:04}.jpg")))
    }

    /// Every image of the set (for calibration over all pairs), with the index of its person.
    ///
    /// # Errors
    /// An unreadable folder.
    pub fn all_images(&self) -> Result<Vec<(PathBuf, usize)>, EvalError> {
        let mut people: Vec<PathBuf> = std::fs::read_dir(&self.images_dir)
            .map_err(io(&self.images_dir))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_dir())
            .collect();
        people.sort();
        let mut images = Vec::new();
        for (person, folder) in people.iter().enumerate() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
                .map_err(io(folder))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_some_and(|e| e == "jpg"))
                .collect();
            files.sort();
            images.extend(files.into_iter().map(|file| (file, person)));
        }
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_lfw_has_ten_folds_of_600_pairs() {
        let lfw = Lfw::open(&facegate_testing::lfw_dir()).expect("LFW");
        let pairs = lfw.pairs(None).expect("pairs");
        assert_eq!(pairs.len(), 6000);
        assert_eq!(pairs.iter().filter(|p| p.same).count(), 3000);
        assert!(pairs.iter().all(|p| p.fold < 10 && p.a.is_file() && p.b.is_file()));
        assert_eq!(lfw.pairs(Some(5)).expect("limited").len(), 100);
    }
}
