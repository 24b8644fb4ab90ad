//! Cosine search over one collection's templates, held in a contiguous row-major `f32` matrix.
//!
//! Small collections are scanned exactly. A larger one (from [`QUANTISED_FROM`] template values, 4096
//! templates of 256 values) also keeps each template as 8-bit integers with its own scale: the
//! scan reads those (a quarter of the memory traffic, which is what bounds a scan this size), keeps the
//! [`RERANK`] best faces, and scores them again exactly. At 1M 256-d templates that took the scan from
//! 66 ms to 16.5 ms p50 on one thread (100k: 6.7 to 1.5 ms) with recall@1 against exact search of 1.000,
//! for a quarter more memory (figures in the README, `cargo bench -p facegate-gallery --bench search`).
//! The choice is made when the index is built from the store; an index changed in place keeps it.

use std::sync::Arc;

use facegate_store::{FaceId, SubjectId};

use crate::GalleryError;

/// Lanes of the dot-product accumulator: eight independent sums let the compiler use full SIMD
/// registers without reassociating floating point on its own.
const LANES: usize = 8;

/// Template values (templates × length) from which a collection is scanned through its 8-bit copy.
/// From 10k templates on the 8-bit scan measured faster than the exact one (0.14 against 0.44 ms).
pub const QUANTISED_FROM: usize = 1 << 20;

/// Faces the 8-bit scan keeps to be scored again exactly, at least (more for a larger `top_k`).
pub const RERANK: usize = 64;

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

/// The templates of one collection at one revision. The templates are shared: an index moved to the
/// next revision by a change that touched no template costs nothing, one that added or removed faces
/// copies them once (no store read, no unsealing).
#[derive(Debug, Default, Clone)]
pub struct TemplateIndex {
    revision: i64,
    rows: Arc<Rows>,
}

/// The templates themselves.
#[derive(Debug, Default, Clone)]
struct Rows {
    dim: usize,
    data: Vec<f32>,
    face_ids: Vec<FaceId>,
    subject_of_face: Vec<u32>,
    subject_ids: Vec<SubjectId>,
    /// The 8-bit copy of `data`, when the collection is scanned through it.
    codes: Option<Codes>,
}

/// Templates as 8-bit integers: each row scaled so its largest value is ±127 and padded with zeros to
/// a multiple of [`CODE_LANES`] values, with its scale back to the unit template.
#[derive(Debug, Default, Clone)]
struct Codes {
    stride: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
}

/// Values of one step of the 8-bit dot product (one 256-bit register of 16-bit products).
const CODE_LANES: usize = 16;

impl Rows {
    /// A copy with room for `more` faces, allocated once (a growing vector of a gigabyte would be
    /// copied again as it doubles).
    fn with_room(&self, more: usize) -> Self {
        fn grown<T: Clone>(values: &[T], more: usize) -> Vec<T> {
            let mut copy = Vec::with_capacity(values.len() + more);
            copy.extend_from_slice(values);
            copy
        }
        Rows {
            dim: self.dim,
            data: grown(&self.data, more * self.dim),
            face_ids: grown(&self.face_ids, more),
            subject_of_face: grown(&self.subject_of_face, more),
            subject_ids: grown(&self.subject_ids, more),
            codes: self.codes.as_ref().map(|c| Codes {
                stride: c.stride,
                values: grown(&c.values, more * c.stride),
                scales: grown(&c.scales, more),
            }),
        }
    }
}

impl Codes {
    fn build(data: &[f32], dim: usize) -> Self {
        let stride = dim.next_multiple_of(CODE_LANES);
        let rows = data.len() / dim;
        let mut codes = Codes { stride, values: Vec::with_capacity(rows * stride), scales: Vec::with_capacity(rows) };
        for row in data.chunks_exact(dim) {
            codes.push(row);
        }
        codes
    }

    fn push(&mut self, row: &[f32]) {
        let scale = quantise_into(row, &mut self.values);
        self.values.extend(std::iter::repeat_n(0, self.stride - row.len()));
        self.scales.push(scale);
    }

    /// Calls `each(face, estimate)` for every row, `estimate` ordering the rows like their cosine with
    /// `query` (to within the rounding to 8 bits).
    fn scan(&self, query: &[f32], mut each: impl FnMut(u32, f32)) {
        let mut code = Vec::with_capacity(self.stride);
        quantise_into(query, &mut code);
        code.resize(self.stride, 0);
        let wide: Vec<[i16; CODE_LANES]> =
            code.as_chunks::<CODE_LANES>().0.iter().map(|chunk| chunk.map(i16::from)).collect();
        let rows = self.values.chunks_exact(self.stride).zip(&self.scales).enumerate();
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(|| {
                for (face, (row, scale)) in rows {
                    each(face as u32, dot_codes_avx2(simd, &wide, row) as f32 * scale);
                }
            });
        }
        for (face, (row, scale)) in rows {
            each(face as u32, dot_codes(&wide, row) as f32 * scale);
        }
    }
}

/// A face kept by the 8-bit scan, ordered by its estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate(f32, u32);

impl Eq for Estimate {}

impl PartialOrd for Estimate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Estimate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl TemplateIndex {
    /// Builds the index from `(face id, subject id, template)` rows.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] if a template is not `dim` long.
    pub fn build(revision: i64, dim: usize, entries: Vec<(FaceId, SubjectId, Vec<f32>)>) -> Result<Self, GalleryError> {
        let quantised = entries.len().saturating_mul(dim) >= QUANTISED_FROM;
        Self::build_with(revision, dim, entries, quantised)
    }

    /// [`TemplateIndex::build`] with the scan chosen by the caller: `quantised` keeps the 8-bit copy
    /// whatever the collection's size (benches and tests compare both on the same templates).
    ///
    /// # Errors
    /// As [`TemplateIndex::build`].
    pub fn build_with(
        revision: i64,
        dim: usize,
        entries: Vec<(FaceId, SubjectId, Vec<f32>)>,
        quantised: bool,
    ) -> Result<Self, GalleryError> {
        let mut rows = Rows { dim, ..Default::default() };
        rows.data.reserve(entries.len() * dim);
        let mut subject_numbers = std::collections::HashMap::new();
        for (face_id, subject_id, template) in entries {
            if template.len() != dim {
                return Err(GalleryError::Dimension { expected: dim, got: template.len() });
            }
            let next = rows.subject_ids.len() as u32;
            let number = *subject_numbers.entry(subject_id.clone()).or_insert_with(|| {
                rows.subject_ids.push(subject_id);
                next
            });
            rows.data.extend_from_slice(&template);
            rows.face_ids.push(face_id);
            rows.subject_of_face.push(number);
        }
        if quantised && dim > 0 {
            rows.codes = Some(Codes::build(&rows.data, dim));
        }
        Ok(TemplateIndex { revision, rows: Arc::new(rows) })
    }

    /// This index at `revision`, its templates shared: after a change that touched none of them.
    pub fn at_revision(&self, revision: i64) -> Self {
        TemplateIndex { revision, rows: self.rows.clone() }
    }

    /// This index at `revision` with `faces` of `subject_id` added (a copy of the templates).
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] if a template is not the index's length.
    pub fn with_faces(
        &self,
        revision: i64,
        subject_id: &SubjectId,
        faces: Vec<(FaceId, Vec<f32>)>,
    ) -> Result<Self, GalleryError> {
        let mut rows = self.rows.with_room(faces.len());
        let number = match rows.subject_ids.iter().position(|s| s == subject_id) {
            Some(number) => number as u32,
            None => {
                rows.subject_ids.push(subject_id.clone());
                (rows.subject_ids.len() - 1) as u32
            }
        };
        for (face_id, template) in faces {
            if template.len() != rows.dim {
                return Err(GalleryError::Dimension { expected: rows.dim, got: template.len() });
            }
            if let Some(codes) = &mut rows.codes {
                codes.push(&template);
            }
            rows.data.extend_from_slice(&template);
            rows.face_ids.push(face_id);
            rows.subject_of_face.push(number);
        }
        Ok(TemplateIndex { revision, rows: Arc::new(rows) })
    }

    /// This index at `revision` without the faces for which `removed(face, subject)` holds (a copy of
    /// the others). A subject left without faces stays listed and is never found.
    pub fn without_faces(&self, revision: i64, removed: impl Fn(&FaceId, &SubjectId) -> bool) -> Self {
        let old = &self.rows;
        let mut rows = Rows {
            dim: old.dim,
            data: Vec::with_capacity(old.data.len()),
            face_ids: Vec::with_capacity(old.face_ids.len()),
            subject_of_face: Vec::with_capacity(old.subject_of_face.len()),
            subject_ids: old.subject_ids.clone(),
            codes: old.codes.as_ref().map(|c| Codes {
                stride: c.stride,
                values: Vec::with_capacity(c.values.len()),
                scales: Vec::with_capacity(c.scales.len()),
            }),
        };
        // The kept faces as runs between the removed ones, each copied in one piece.
        let removed: Vec<usize> = (0..old.face_ids.len())
            .filter(|&face| removed(&old.face_ids[face], &old.subject_ids[old.subject_of_face[face] as usize]))
            .collect();
        let ends = removed.iter().copied().chain([old.face_ids.len()]);
        let starts = [0].into_iter().chain(removed.iter().map(|face| face + 1));
        for (start, end) in starts.zip(ends).filter(|(start, end)| start < end) {
            rows.data.extend_from_slice(&old.data[start * old.dim..end * old.dim]);
            if let (Some(codes), Some(old_codes)) = (&mut rows.codes, &old.codes) {
                codes.values.extend_from_slice(&old_codes.values[start * old_codes.stride..end * old_codes.stride]);
                codes.scales.extend_from_slice(&old_codes.scales[start..end]);
            }
            rows.face_ids.extend_from_slice(&old.face_ids[start..end]);
            rows.subject_of_face.extend_from_slice(&old.subject_of_face[start..end]);
        }
        TemplateIndex { revision, rows: Arc::new(rows) }
    }

    /// True when searches scan the 8-bit copy and re-rank exactly.
    pub fn is_quantised(&self) -> bool {
        self.rows.codes.is_some()
    }

    /// The store revision this index reflects.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.rows.face_ids.len()
    }

    /// True when the collection has no templates.
    pub fn is_empty(&self) -> bool {
        self.rows.face_ids.is_empty()
    }

    /// Number of distinct subjects.
    pub fn subjects(&self) -> usize {
        self.rows.subject_ids.len()
    }

    /// The heap memory the index holds, in bytes (templates, their 8-bit copy, ids).
    pub fn memory_bytes(&self) -> usize {
        fn ids<T: std::ops::Deref<Target = str>>(ids: &[T]) -> usize {
            ids.iter().map(|id| id.len() + std::mem::size_of::<T>()).sum()
        }
        self.rows.data.capacity() * 4
            + self.rows.subject_of_face.capacity() * 4
            + self.rows.codes.as_ref().map_or(0, |c| c.values.capacity() + c.scales.capacity() * 4)
            + ids(&self.rows.face_ids)
            + ids(&self.rows.subject_ids)
    }

    /// The `top_k` subjects by their best face's cosine score, best first: through the 8-bit copy and
    /// an exact re-rank for a large collection, else exactly.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] for a query of the wrong length.
    pub fn search(&self, query: &[f32], top_k: usize) -> Result<Vec<Candidate>, GalleryError> {
        let Some(codes) = &self.rows.codes else { return self.search_exact(query, top_k) };
        self.check(query)?;
        // The best `keep` faces by their 8-bit estimate, the least of them on top of the heap.
        let keep = top_k.saturating_mul(8).max(RERANK).min(self.len());
        let mut kept = std::collections::BinaryHeap::with_capacity(keep + 1);
        codes.scan(query, |face, estimate| {
            if kept.len() < keep {
                kept.push(std::cmp::Reverse(Estimate(estimate, face)));
            } else if kept.peek().is_some_and(|least| estimate > least.0.0) {
                kept.pop();
                kept.push(std::cmp::Reverse(Estimate(estimate, face)));
            }
        });
        let mut best: std::collections::HashMap<u32, (f32, u32)> = std::collections::HashMap::with_capacity(keep);
        for std::cmp::Reverse(Estimate(_, face)) in kept {
            let row = &self.rows.data[face as usize * self.rows.dim..(face as usize + 1) * self.rows.dim];
            let score = dot(query, row);
            let slot = best.entry(self.rows.subject_of_face[face as usize]).or_insert((f32::NEG_INFINITY, u32::MAX));
            if score > slot.0 {
                *slot = (score, face);
            }
        }
        Ok(self.ranked(best.into_iter().map(|(subject, best)| (subject as usize, best)).collect(), top_k))
    }

    /// The `top_k` subjects by their best face's cosine score, best first, by an exact scan of every
    /// template.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] for a query of the wrong length.
    pub fn search_exact(&self, query: &[f32], top_k: usize) -> Result<Vec<Candidate>, GalleryError> {
        self.check(query)?;
        let mut best: Vec<(f32, u32)> = vec![(f32::NEG_INFINITY, u32::MAX); self.rows.subject_ids.len()];
        if self.rows.dim > 0 {
            for (face, row) in self.rows.data.chunks_exact(self.rows.dim).enumerate() {
                let score = dot(query, row);
                let slot = &mut best[self.rows.subject_of_face[face] as usize];
                if score > slot.0 {
                    *slot = (score, face as u32);
                }
            }
        }
        Ok(self.ranked(best.into_iter().enumerate().filter(|(_, (_, face))| *face != u32::MAX).collect(), top_k))
    }

    fn check(&self, query: &[f32]) -> Result<(), GalleryError> {
        if query.len() == self.rows.dim {
            Ok(())
        } else {
            Err(GalleryError::Dimension { expected: self.rows.dim, got: query.len() })
        }
    }

    /// The `top_k` best of (subject number, (score, face number)), best first.
    fn ranked(&self, mut ranked: Vec<(usize, (f32, u32))>, top_k: usize) -> Vec<Candidate> {
        let k = top_k.min(ranked.len());
        if k == 0 {
            return Vec::new();
        }
        ranked.select_nth_unstable_by(k - 1, |a, b| b.1.0.total_cmp(&a.1.0));
        ranked.truncate(k);
        ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
        ranked
            .into_iter()
            .map(|(subject, (score, face))| Candidate {
                subject_id: self.rows.subject_ids[subject].clone(),
                face_id: self.rows.face_ids[face as usize].clone(),
                score,
            })
            .collect()
    }
}

/// Appends `values` as 8-bit integers scaled so the largest magnitude is 127; returns the scale back
/// (value ≈ code × scale). An all-zero row gets scale 0.
fn quantise_into(values: &[f32], codes: &mut Vec<i8>) -> f32 {
    let largest = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if largest == 0.0 || !largest.is_finite() {
        codes.extend(std::iter::repeat_n(0, values.len()));
        return 0.0;
    }
    let to_code = 127.0 / largest;
    codes.extend(values.iter().map(|v| (v * to_code).round().clamp(-127.0, 127.0) as i8));
    largest / 127.0
}

/// Integer dot product of a query widened to 16 bits and an 8-bit row of the same padded length, with
/// [`CODE_LANES`] independent sums.
#[inline(always)]
fn dot_codes(query: &[[i16; CODE_LANES]], row: &[i8]) -> i32 {
    let mut lanes = [0i32; CODE_LANES];
    for (q, r) in query.iter().zip(row.as_chunks::<CODE_LANES>().0) {
        for i in 0..CODE_LANES {
            lanes[i] += i32::from(q[i]) * i32::from(r[i]);
        }
    }
    lanes.iter().sum()
}

/// [`dot_codes`] with AVX2: the row's 16 values widened to 16 bits and multiplied-and-added in pairs
/// into 8 sums of 32 bits. The scan is then bound by reading the rows from memory (it took a 1M-row
/// scan from 27 ms with the compiler's baseline SSE2 code to 17 ms).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot_codes_avx2(simd: pulp::x86::V3, query: &[[i16; CODE_LANES]], row: &[i8]) -> i32 {
    let mut sums: std::arch::x86_64::__m256i = pulp::cast([0i32; 8]);
    for (q, r) in query.iter().zip(row.as_chunks::<CODE_LANES>().0) {
        let wide = simd.avx2._mm256_cvtepi8_epi16(pulp::cast(*r));
        sums = simd.avx2._mm256_add_epi32(sums, simd.avx2._mm256_madd_epi16(wide, pulp::cast(*q)));
    }
    pulp::cast::<_, [i32; 8]>(sums).iter().sum()
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

    type Rows = Vec<(FaceId, SubjectId, Vec<f32>)>;

    /// Clustered unit templates (`per` faces around each subject's direction) and probes near some of
    /// the subjects, seeded.
    fn clustered(subjects: usize, per: usize, dim: usize) -> (Rows, Vec<Vec<f32>>) {
        use facegate_store_conformance::synthetic::{around, random};
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let centres: Vec<Vec<f32>> = (0..subjects).map(|_| random(dim, &mut rng)).collect();
        let rows = (0..subjects * per)
            .map(|i| (format!("f{i}").into(), format!("s{}", i / per).into(), around(&centres[i / per], 0.2, &mut rng)))
            .collect();
        let probes = (0..100).map(|i| around(&centres[(i * 37) % subjects], 0.2, &mut rng)).collect();
        (rows, probes)
    }

    #[test]
    fn the_8_bit_scan_finds_what_the_exact_scan_finds() {
        // 131 values per template: rows padded to a multiple of 16; 2000 faces, top 3 kept of 64.
        let (rows, probes) = clustered(400, 5, 131);
        let exact = TemplateIndex::build_with(1, 131, rows.clone(), false).expect("exact");
        let quantised = TemplateIndex::build_with(1, 131, rows, true).expect("quantised");
        assert!(quantised.is_quantised() && !exact.is_quantised());
        for probe in &probes {
            let (a, b) = (exact.search(probe, 3).expect("exact"), quantised.search(probe, 3).expect("quantised"));
            // The same subjects and faces, and the re-ranked scores are the exact ones.
            assert_eq!(a, b);
        }
        assert!(quantised.search(&[1.0; 3], 3).is_err());
        // Fewer faces than the re-rank keeps: all of them are scored exactly.
        let (few, probes) = clustered(4, 2, 16);
        let small = TemplateIndex::build_with(1, 16, few.clone(), true).expect("small");
        let all = TemplateIndex::build_with(1, 16, few, false).expect("all");
        assert_eq!(small.search(&probes[0], 10).expect("small"), all.search(&probes[0], 10).expect("all"));
        assert_eq!(small.search(&probes[0], 10).expect("small").len(), 4);
    }

    #[test]
    fn an_index_changed_in_place_answers_like_one_built_from_its_rows() {
        let (rows, probes) = clustered(300, 3, 40);
        for quantised in [false, true] {
            let (kept, added) = rows.split_at(600);
            let base = TemplateIndex::build_with(1, 40, kept.to_vec(), quantised).expect("base");
            // Faces of an existing subject and of a new one added.
            let mut index = base.at_revision(2);
            assert_eq!((index.revision(), index.len(), base.revision()), (2, 600, 1));
            for (face, subject, template) in added {
                index = index.with_faces(3, subject, vec![(face.clone(), template.clone())]).expect("added");
            }
            assert!(index.with_faces(3, &"x".into(), vec![("y".into(), vec![0.0; 3])]).is_err(), "wrong length");
            // One face removed, and every face of one subject.
            let index =
                index.without_faces(4, |face, _| face.as_str() == "f7").without_faces(5, |_, s| s.as_str() == "s9");
            let left: Vec<_> =
                rows.iter().filter(|(f, s, _)| f.as_str() != "f7" && s.as_str() != "s9").cloned().collect();
            let fresh = TemplateIndex::build_with(5, 40, left, quantised).expect("fresh");
            assert_eq!((index.len(), index.is_quantised()), (fresh.len(), quantised));
            for probe in &probes {
                assert_eq!(index.search(probe, 3).expect("changed"), fresh.search(probe, 3).expect("fresh"));
            }
        }
    }

    #[test]
    fn the_8_bit_dot_product_is_the_same_with_and_without_simd() {
        let query: Vec<[i16; CODE_LANES]> =
            (0..9).map(|c| std::array::from_fn(|i| ((c * 16 + i) as i16 * 37 % 255) - 127)).collect();
        let row: Vec<i8> = (0..9 * CODE_LANES).map(|i| ((i * 91 % 255) as i16 - 127) as i8).collect();
        let naive: i32 = query.as_flattened().iter().zip(&row).map(|(&q, &r)| i32::from(q) * i32::from(r)).sum();
        assert_eq!(dot_codes(&query, &row), naive);
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            assert_eq!(simd.vectorize(|| dot_codes_avx2(simd, &query, &row)), naive);
        }
    }

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        let a: Vec<f32> = (0..131).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..131).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }
}
