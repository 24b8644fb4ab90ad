//! Exact cosine search over one collection's templates, held in a contiguous row-major `f32` matrix.

use facegate_store::{FaceId, SubjectId};

use crate::GalleryError;

/// Lanes of the dot-product accumulator: eight independent sums let the compiler use full SIMD
/// registers without reassociating floating point on its own.
const LANES: usize = 8;

/// A best match: the subject and the face of theirs that scored highest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Candidate {
    /// Subject identifier.
    pub subject_id: SubjectId,
    /// Best-scoring face of that subject.
    pub face_id: FaceId,
    /// Cosine score of that face.
    pub score: f32,
}

/// The templates of one collection at one revision.
#[derive(Debug, Default)]
pub struct TemplateIndex {
    revision: i64,
    dim: usize,
    data: Vec<f32>,
    face_ids: Vec<FaceId>,
    subject_of_face: Vec<u32>,
    subject_ids: Vec<SubjectId>,
}

impl TemplateIndex {
    /// Builds the index from `(face id, subject id, template)` rows.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] if a template is not `dim` long.
    pub fn build(revision: i64, dim: usize, entries: Vec<(FaceId, SubjectId, Vec<f32>)>) -> Result<Self, GalleryError> {
        let mut index = TemplateIndex { revision, dim, ..Default::default() };
        let mut subject_numbers = std::collections::HashMap::new();
        index.data.reserve(entries.len() * dim);
        for (face_id, subject_id, template) in entries {
            if template.len() != dim {
                return Err(GalleryError::Dimension { expected: dim, got: template.len() });
            }
            let next = index.subject_ids.len() as u32;
            let number = *subject_numbers.entry(subject_id.clone()).or_insert_with(|| {
                index.subject_ids.push(subject_id);
                next
            });
            index.data.extend_from_slice(&template);
            index.face_ids.push(face_id);
            index.subject_of_face.push(number);
        }
        Ok(index)
    }

    /// The store revision this index reflects.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.face_ids.len()
    }

    /// True when the collection has no templates.
    pub fn is_empty(&self) -> bool {
        self.face_ids.is_empty()
    }

    /// Number of distinct subjects.
    pub fn subjects(&self) -> usize {
        self.subject_ids.len()
    }

    /// The `top_k` subjects by their best face's cosine score, best first.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] for a query of the wrong length.
    pub fn search(&self, query: &[f32], top_k: usize) -> Result<Vec<Candidate>, GalleryError> {
        if query.len() != self.dim {
            return Err(GalleryError::Dimension { expected: self.dim, got: query.len() });
        }
        let mut best: Vec<(f32, u32)> = vec![(f32::NEG_INFINITY, u32::MAX); self.subject_ids.len()];
        if self.dim > 0 {
            for (face, row) in self.data.chunks_exact(self.dim).enumerate() {
                let score = dot(query, row);
                let slot = &mut best[self.subject_of_face[face] as usize];
                if score > slot.0 {
                    *slot = (score, face as u32);
                }
            }
        }
        let mut ranked: Vec<(usize, (f32, u32))> =
            best.into_iter().enumerate().filter(|(_, (_, face))| *face != u32::MAX).collect();
        let k = top_k.min(ranked.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        ranked.select_nth_unstable_by(k - 1, |a, b| b.1.0.total_cmp(&a.1.0));
        ranked.truncate(k);
        ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
        Ok(ranked
            .into_iter()
            .map(|(subject, (score, face))| Candidate {
                subject_id: self.subject_ids[subject].clone(),
                face_id: self.face_ids[face as usize].clone(),
                score,
            })
            .collect())
    }
}

/// Dot product with `LANES` independent accumulators.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            lanes[i] += ca[i] * cb[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(values: &[f32]) -> Vec<f32> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        values.iter().map(|v| v / norm).collect()
    }

    #[test]
    fn best_face_per_subject_ranked() {
        let rows = vec![
            ("f1".into(), "ann".into(), unit(&[1.0, 0.0, 0.0])),
            ("f2".into(), "ann".into(), unit(&[0.9, 0.1, 0.0])),
            ("f3".into(), "bob".into(), unit(&[0.0, 1.0, 0.0])),
            ("f4".into(), "cy".into(), unit(&[0.7, 0.7, 0.0])),
        ];
        let index = TemplateIndex::build(3, 3, rows).expect("index");
        assert_eq!((index.len(), index.subjects(), index.revision()), (4, 3, 3));
        let hits = index.search(&unit(&[1.0, 0.05, 0.0]), 2).expect("search");
        assert_eq!(hits.iter().map(|c| &c.subject_id).collect::<Vec<_>>(), vec!["ann", "cy"]);
        assert_eq!(hits[0].face_id, "f1");
        assert!(index.search(&[1.0, 0.0], 2).is_err());
        assert!(TemplateIndex::build(0, 3, vec![]).expect("empty").search(&[1.0, 0.0, 0.0], 5).expect("ok").is_empty());
    }

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        let a: Vec<f32> = (0..131).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..131).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }
}
