//! Cosine search over one collection's templates, held in a contiguous row-major `f32` matrix.
//!
//! Small collections are scanned exactly. A larger one (from [`QUANTISED_FROM`] template values, 4096
//! templates of 256 values) also keeps each template as 8-bit integers with its own scale: the
//! scan reads those (a quarter of the memory traffic, which is what bounds a scan this size), keeps the
//! [`RERANK`] best faces, and scores them again exactly. At 1M 256-d templates that took the scan from
//! 66 ms to 16.5 ms p50 on one thread (100k: 6.7 to 1.5 ms) with recall@1 against exact search of 1.000,
//! for a quarter more memory (figures in the README, `cargo bench -p facegate-gallery --bench search`).
//! The choice is made when the index is built from the store and again when its changes are folded in.

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

/// The templates of one collection at one revision, in segments: a base as last built whole (from the
/// store, or when the changes since grew to [`FOLD_AFTER`] of it), the base's faces removed since (a
/// bit each) and the faces added since (a small exact segment). A change copies the added faces and the
/// bits, not the base: at 1M templates following one enrolment took a copy of ~1 s before, and now
/// takes a few milliseconds; past every [`FOLD_AFTER`]th of the base's size in changes
/// ([`TemplateIndex::fold_state`]), one copy folds them in ([`TemplateIndex::folded`], which chooses
/// the scan again for the new size). The segments are shared between revisions.
#[derive(Debug, Default, Clone)]
pub struct TemplateIndex {
    revision: i64,
    base: Arc<Rows>,
    removed: Arc<Removed>,
    added: Arc<Rows>,
}

/// Changes (faces added, base faces removed) past which they are folded into a new base: this fraction
/// of the base's size, and at least [`FOLD_AT_LEAST`]. The added segment is scanned exactly (at 1M, up
/// to 15,625 faces: about a millisecond more a search).
pub const FOLD_AFTER: usize = 64;

/// Changes always kept apart from the base before folding, however small it is.
pub const FOLD_AT_LEAST: usize = 256;

/// Past this many times the changes that make a fold due, it is overdue: the changes came faster than
/// folds could finish beside the searches, and the next change waits for one (the exactly scanned
/// segment stays bounded: at 1M, 62,500 faces).
pub const FOLD_OVERDUE: usize = 4;

/// Whether a [`TemplateIndex`]'s changes should be folded into a new base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldState {
    /// Few enough changes to keep beside the base.
    Kept,
    /// More than [`FOLD_AFTER`] allows: fold them in when there is time.
    Due,
    /// More than [`FOLD_OVERDUE`] times that: fold them in before the next change.
    Overdue,
}

/// Which faces of the base are removed, a bit each.
#[derive(Debug, Default, Clone)]
struct Removed {
    bits: Vec<u64>,
    count: usize,
}

impl Removed {
    fn contains(&self, face: usize) -> bool {
        self.bits.get(face / 64).is_some_and(|word| word & (1 << (face % 64)) != 0)
    }

    fn insert(&mut self, face: usize) {
        if self.bits.len() <= face / 64 {
            self.bits.resize(face / 64 + 1, 0);
        }
        let word = &mut self.bits[face / 64];
        if *word & (1 << (face % 64)) == 0 {
            *word |= 1 << (face % 64);
            self.count += 1;
        }
    }
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
    fn build(dim: usize, entries: Vec<(FaceId, SubjectId, Vec<f32>)>, quantised: bool) -> Result<Self, GalleryError> {
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
        Ok(rows)
    }

    fn len(&self) -> usize {
        self.face_ids.len()
    }

    fn row(&self, face: usize) -> &[f32] {
        &self.data[face * self.dim..(face + 1) * self.dim]
    }

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

    /// Appends one face of `subject_id`, numbering a new subject.
    fn push(&mut self, face_id: FaceId, subject_id: &SubjectId, template: &[f32]) -> Result<(), GalleryError> {
        if template.len() != self.dim {
            return Err(GalleryError::Dimension { expected: self.dim, got: template.len() });
        }
        let number = match self.subject_ids.iter().position(|s| s == subject_id) {
            Some(number) => number as u32,
            None => {
                self.subject_ids.push(subject_id.clone());
                (self.subject_ids.len() - 1) as u32
            }
        };
        self.append(face_id, number, template);
        Ok(())
    }

    /// Appends one face of a template of this length, of the subject numbered `number`.
    fn append(&mut self, face_id: FaceId, number: u32, template: &[f32]) {
        if let Some(codes) = &mut self.codes {
            codes.push(template);
        }
        self.data.extend_from_slice(template);
        self.face_ids.push(face_id);
        self.subject_of_face.push(number);
    }

    /// A copy without the faces numbered in `removed` (ascending), the others copied in runs. Subjects
    /// left without faces stay listed and are never found.
    fn without(&self, removed: &[usize], more: usize) -> Self {
        let kept = self.len() - removed.len() + more;
        let mut rows = Rows {
            dim: self.dim,
            data: Vec::with_capacity(kept * self.dim),
            face_ids: Vec::with_capacity(kept),
            subject_of_face: Vec::with_capacity(kept),
            subject_ids: self.subject_ids.clone(),
            codes: self.codes.as_ref().map(|c| Codes {
                stride: c.stride,
                values: Vec::with_capacity(kept * c.stride),
                scales: Vec::with_capacity(kept),
            }),
        };
        let ends = removed.iter().copied().chain([self.len()]);
        let starts = [0].into_iter().chain(removed.iter().map(|face| face + 1));
        for (start, end) in starts.zip(ends).filter(|(start, end)| start < end) {
            rows.data.extend_from_slice(&self.data[start * self.dim..end * self.dim]);
            if let (Some(codes), Some(old)) = (&mut rows.codes, &self.codes) {
                codes.values.extend_from_slice(&old.values[start * old.stride..end * old.stride]);
                codes.scales.extend_from_slice(&old.scales[start..end]);
            }
            rows.face_ids.extend_from_slice(&self.face_ids[start..end]);
            rows.subject_of_face.extend_from_slice(&self.subject_of_face[start..end]);
        }
        rows
    }

    /// The faces (numbers, ascending) for which `removed(face, subject)` holds.
    fn matching(&self, removed: &impl Fn(&FaceId, &SubjectId) -> bool) -> Vec<usize> {
        (0..self.len())
            .filter(|&face| removed(&self.face_ids[face], &self.subject_ids[self.subject_of_face[face] as usize]))
            .collect()
    }

    /// The `top_k` subjects by their best face's cosine score, best first, skipping `removed` faces:
    /// through the 8-bit copy and an exact re-rank when there is one, else exactly.
    fn best(&self, query: &[f32], top_k: usize, removed: &Removed) -> Vec<Candidate> {
        let Some(codes) = &self.codes else { return self.best_exact(query, top_k, removed) };
        // The best `keep` faces by their 8-bit estimate, the least of them on top of the heap.
        let keep = top_k.saturating_mul(8).max(RERANK).min(self.len() - removed.count);
        let mut kept = std::collections::BinaryHeap::with_capacity(keep + 1);
        codes.scan(query, |face, estimate| {
            if kept.len() < keep {
                if !removed.contains(face as usize) {
                    kept.push(std::cmp::Reverse(Estimate(estimate, face)));
                }
            } else if kept.peek().is_some_and(|least| estimate > least.0.0) && !removed.contains(face as usize) {
                kept.pop();
                kept.push(std::cmp::Reverse(Estimate(estimate, face)));
            }
        });
        let mut best: std::collections::HashMap<u32, (f32, u32)> = std::collections::HashMap::with_capacity(keep);
        for std::cmp::Reverse(Estimate(_, face)) in kept {
            let score = dot(query, self.row(face as usize));
            let slot = best.entry(self.subject_of_face[face as usize]).or_insert((f32::NEG_INFINITY, u32::MAX));
            if score > slot.0 {
                *slot = (score, face);
            }
        }
        self.ranked(best.into_iter().map(|(subject, best)| (subject as usize, best)).collect(), top_k)
    }

    /// [`Rows::best`] by an exact scan of every template.
    fn best_exact(&self, query: &[f32], top_k: usize, removed: &Removed) -> Vec<Candidate> {
        let mut best: Vec<(f32, u32)> = vec![(f32::NEG_INFINITY, u32::MAX); self.subject_ids.len()];
        if self.dim > 0 {
            for (face, row) in self.data.chunks_exact(self.dim).enumerate() {
                if removed.count > 0 && removed.contains(face) {
                    continue;
                }
                let score = dot(query, row);
                let slot = &mut best[self.subject_of_face[face] as usize];
                if score > slot.0 {
                    *slot = (score, face as u32);
                }
            }
        }
        self.ranked(best.into_iter().enumerate().filter(|(_, (_, face))| *face != u32::MAX).collect(), top_k)
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
                subject_id: self.subject_ids[subject].clone(),
                face_id: self.face_ids[face as usize].clone(),
                score,
            })
            .collect()
    }

    /// The heap memory held, in bytes.
    fn memory_bytes(&self) -> usize {
        fn ids<T: std::ops::Deref<Target = str>>(ids: &[T]) -> usize {
            ids.iter().map(|id| id.len() + std::mem::size_of::<T>()).sum()
        }
        self.data.capacity() * 4
            + self.subject_of_face.capacity() * 4
            + self.codes.as_ref().map_or(0, |c| c.values.capacity() + c.scales.capacity() * 4)
            + ids(&self.face_ids)
            + ids(&self.subject_ids)
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

/// Whether a collection of `templates` templates of `dim` values is scanned through its 8-bit copy.
fn scans_quantised(templates: usize, dim: usize) -> bool {
    templates.saturating_mul(dim) >= QUANTISED_FROM
}

impl TemplateIndex {
    /// Builds the index from `(face id, subject id, template)` rows.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] if a template is not `dim` long.
    pub fn build(revision: i64, dim: usize, entries: Vec<(FaceId, SubjectId, Vec<f32>)>) -> Result<Self, GalleryError> {
        let quantised = scans_quantised(entries.len(), dim);
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
        let base = Rows::build(dim, entries, quantised)?;
        let added = Rows { dim, ..Default::default() };
        Ok(TemplateIndex { revision, base: Arc::new(base), removed: Arc::default(), added: Arc::new(added) })
    }

    /// This index at `revision`, its templates shared: after a change that touched none of them.
    pub fn at_revision(&self, revision: i64) -> Self {
        TemplateIndex { revision, ..self.clone() }
    }

    /// This index at `revision` with `faces` of `subject_id` added (a copy of the faces added since the
    /// base).
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] if a template is not the index's length.
    pub fn with_faces(
        &self,
        revision: i64,
        subject_id: &SubjectId,
        faces: Vec<(FaceId, Vec<f32>)>,
    ) -> Result<Self, GalleryError> {
        let mut added = self.added.with_room(faces.len());
        for (face_id, template) in faces {
            added.push(face_id, subject_id, &template)?;
        }
        Ok(TemplateIndex { revision, base: self.base.clone(), removed: self.removed.clone(), added: Arc::new(added) })
    }

    /// This index at `revision` without the faces for which `removed(face, subject)` holds (a copy of
    /// the bits of the base's removed faces and of the faces added since). A subject left
    /// without faces stays listed and is never found.
    pub fn without_faces(&self, revision: i64, removed: impl Fn(&FaceId, &SubjectId) -> bool) -> Self {
        let mut bits = Removed::clone(&self.removed);
        for face in self.base.matching(&removed) {
            bits.insert(face);
        }
        let gone = self.added.matching(&removed);
        let added = if gone.is_empty() { self.added.clone() } else { Arc::new(self.added.without(&gone, 0)) };
        TemplateIndex { revision, base: self.base.clone(), removed: Arc::new(bits), added }
    }

    /// Whether the changes kept beside the base (faces added, base faces removed) are due to be folded
    /// in: past [`FOLD_AFTER`] of the base's size (at least [`FOLD_AT_LEAST`]), and overdue past
    /// [`FOLD_OVERDUE`] times that.
    pub fn fold_state(&self) -> FoldState {
        let changes = self.removed.count + self.added.len();
        let due = (self.base.len() / FOLD_AFTER).max(FOLD_AT_LEAST);
        if changes > due.saturating_mul(FOLD_OVERDUE) {
            FoldState::Overdue
        } else if changes > due {
            FoldState::Due
        } else {
            FoldState::Kept
        }
    }

    /// The same templates at the same revision with every change folded into a new base (a copy of the
    /// rows: at 1M templates, seconds), the scan chosen again for the new size.
    pub fn folded(&self) -> Self {
        let removed: Vec<usize> = (0..self.base.len()).filter(|&face| self.removed.contains(face)).collect();
        let mut base = self.base.without(&removed, self.added.len());
        let mut numbers: std::collections::HashMap<SubjectId, u32> =
            base.subject_ids.iter().enumerate().map(|(number, s)| (s.clone(), number as u32)).collect();
        for face in 0..self.added.len() {
            let subject = &self.added.subject_ids[self.added.subject_of_face[face] as usize];
            let number = *numbers.entry(subject.clone()).or_insert_with(|| {
                base.subject_ids.push(subject.clone());
                (base.subject_ids.len() - 1) as u32
            });
            base.append(self.added.face_ids[face].clone(), number, self.added.row(face));
        }
        let quantised = scans_quantised(base.len(), base.dim);
        if !quantised {
            base.codes = None;
        } else if base.codes.is_none() && base.dim > 0 {
            base.codes = Some(Codes::build(&base.data, base.dim));
        }
        let added = Rows { dim: base.dim, ..Default::default() };
        TemplateIndex { revision: self.revision, base: Arc::new(base), removed: Arc::default(), added: Arc::new(added) }
    }

    /// True when searches scan the 8-bit copy of the base and re-rank exactly.
    pub fn is_quantised(&self) -> bool {
        self.base.codes.is_some()
    }

    /// The store revision this index reflects.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.base.len() - self.removed.count + self.added.len()
    }

    /// True when the collection has no templates.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct subjects listed (a subject whose faces were all removed stays listed until the
    /// index is built again).
    pub fn subjects(&self) -> usize {
        let base: std::collections::HashSet<&SubjectId> = self.base.subject_ids.iter().collect();
        self.base.subject_ids.len() + self.added.subject_ids.iter().filter(|s| !base.contains(s)).count()
    }

    /// The heap memory the index holds, in bytes (templates, their 8-bit copy, ids, removed bits).
    pub fn memory_bytes(&self) -> usize {
        self.base.memory_bytes() + self.added.memory_bytes() + self.removed.bits.capacity() * 8
    }

    /// The `top_k` subjects by their best face's cosine score, best first: through the 8-bit copy and
    /// an exact re-rank for a large collection, else exactly.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] for a query of the wrong length.
    pub fn search(&self, query: &[f32], top_k: usize) -> Result<Vec<Candidate>, GalleryError> {
        self.check(query)?;
        Ok(self.merged(self.base.best(query, top_k, &self.removed), query, top_k))
    }

    /// The `top_k` subjects by their best face's cosine score, best first, by an exact scan of every
    /// template.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] for a query of the wrong length.
    pub fn search_exact(&self, query: &[f32], top_k: usize) -> Result<Vec<Candidate>, GalleryError> {
        self.check(query)?;
        Ok(self.merged(self.base.best_exact(query, top_k, &self.removed), query, top_k))
    }

    /// The base's best subjects merged with the added faces' (exact): each subject by the better of
    /// its two best faces. Exact: a subject missing from one side's `top_k` scores there below `top_k`
    /// others, which the merged list holds with scores at least as high.
    fn merged(&self, mut found: Vec<Candidate>, query: &[f32], top_k: usize) -> Vec<Candidate> {
        if self.added.len() == 0 {
            return found;
        }
        for candidate in self.added.best_exact(query, top_k, &Removed::default()) {
            match found.iter_mut().find(|c| c.subject_id == candidate.subject_id) {
                Some(known) if known.score >= candidate.score => {}
                Some(known) => *known = candidate,
                None => found.push(candidate),
            }
        }
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        found.truncate(top_k);
        found
    }

    fn check(&self, query: &[f32]) -> Result<(), GalleryError> {
        if query.len() == self.base.dim {
            Ok(())
        } else {
            Err(GalleryError::Dimension { expected: self.base.dim, got: query.len() })
        }
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
            assert_eq!(
                (index.len(), index.is_quantised(), index.fold_state()),
                (fresh.len(), quantised, FoldState::Due)
            );
            // Folded, the scan is chosen for the size again: these 896 faces are scanned exactly.
            let folded = index.folded();
            assert_eq!((folded.revision(), folded.len(), folded.is_quantised()), (5, fresh.len(), false));
            assert_eq!(folded.fold_state(), FoldState::Kept);
            for probe in &probes {
                let expected = fresh.search(probe, 3).expect("fresh");
                assert_eq!(index.search(probe, 3).expect("changed"), expected);
                assert_eq!(folded.search(probe, 3).expect("folded"), expected);
            }
        }
    }

    #[test]
    fn changes_stay_beside_the_base_until_folded_in() {
        let (rows, probes) = clustered(300, 3, 40);
        let fresh = |left: &dyn Fn(&str, &str) -> bool| {
            let kept = rows.iter().filter(|(f, s, _)| left(f.as_str(), s.as_str())).cloned().collect();
            TemplateIndex::build_with(9, 40, kept, false).expect("fresh")
        };
        let expected = fresh(&|f, s| {
            let n: usize = f[1..].parse().expect("number");
            n < 610 && f != "f605" && f != "f3" && s != "s7"
        });
        let mut index = TemplateIndex::default();
        let mut built = index.clone();
        for quantised in [true, false] {
            built = TemplateIndex::build_with(1, 40, rows[..600].to_vec(), quantised).expect("base");
            // Ten faces added (a new subject among them), then one of them, one of the base's and a
            // subject's removed: the base is shared, not copied.
            index = built.clone();
            for (face, subject, template) in &rows[600..610] {
                index = index.with_faces(2, subject, vec![(face.clone(), template.clone())]).expect("added");
            }
            index = index
                .without_faces(3, |face, _| face.as_str() == "f605" || face.as_str() == "f3")
                .without_faces(4, |_, subject| subject.as_str() == "s7");
            assert!(Arc::ptr_eq(&index.base, &built.base));
            assert_eq!((index.len(), index.removed.count, index.added.len()), (605, 4, 9));
            assert_eq!((index.subjects(), index.is_quantised()), (expected.subjects() + 1, quantised));
            for probe in &probes {
                let found = expected.search(probe, 3).expect("fresh");
                assert_eq!(index.search(probe, 3).expect("segments"), found);
                assert_eq!(index.search_exact(probe, 3).expect("segments"), found);
            }
        }
        // Past the fold's size the changes are due to become a new base, still beside the base until
        // folded; folded, the scan is chosen for its size.
        for (face, subject, template) in &rows[610..] {
            let changes = index.removed.count + index.added.len();
            assert_eq!(index.fold_state() == FoldState::Kept, changes <= FOLD_AT_LEAST);
            index = index.with_faces(4, subject, vec![(face.clone(), template.clone())]).expect("added");
        }
        assert_eq!(index.fold_state(), FoldState::Due);
        assert!(Arc::ptr_eq(&index.base, &built.base));
        index = index.folded();
        assert!(!Arc::ptr_eq(&index.base, &built.base));
        assert!(index.added.len() < FOLD_AT_LEAST && index.removed.count == 0);
        let expected = fresh(&|f, s| f != "f605" && f != "f3" && s != "s7");
        assert_eq!(index.len(), expected.len());
        for probe in &probes {
            assert_eq!(index.search(probe, 3).expect("folded"), expected.search(probe, 3).expect("fresh"));
        }
        let (rows, _) = clustered(1100, 4, 256);
        let small = TemplateIndex::build(1, 256, rows[..4000].to_vec()).expect("exact");
        let grown =
            small.with_faces(2, &"s0".into(), rows[4000..].iter().map(|(f, _, t)| (f.clone(), t.clone())).collect());
        let grown = grown.expect("grown");
        assert_eq!((grown.fold_state(), grown.is_quantised()), (FoldState::Due, false));
        assert!(!small.is_quantised() && grown.folded().is_quantised());
        // More than FOLD_OVERDUE times the due changes: overdue.
        let tiny = TemplateIndex::build(1, 256, rows[..10].to_vec()).expect("tiny");
        let added = |n: usize| rows[10..10 + n].iter().map(|(f, _, t)| (f.clone(), t.clone())).collect();
        let limit = FOLD_AT_LEAST * FOLD_OVERDUE;
        assert_eq!(tiny.with_faces(2, &"s0".into(), added(limit)).expect("at").fold_state(), FoldState::Due);
        assert_eq!(tiny.with_faces(2, &"s0".into(), added(limit + 1)).expect("past").fold_state(), FoldState::Overdue);
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
