//! The [`Gallery`]: a store and a key provider, with the caches that are only caches (unwrapped data
//! keys, search rotations, search indexes), and what every area of the gallery shares: sealing faces
//! under their subject's key, opening them, and searching a collection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::analysis::{Analyser, Pipelines};
use crate::collections::Actor;
use crate::crypto::{KeyProvider, SearchRotation, TemplateCipher};
use crate::{Candidate, FoldState, GalleryError, Keys, QualityGate, TemplateIndex, crypto, egress, sealing};
use facegate_store::{
    AuditAction, AuditResult, ChangeAction, Collection, CollectionId, FaceId, FaceRecord, FaceStore, Migration,
    MigrationState, NewChange, NewEvent, NewFace, NewTemplate, PackVersion, SubjectId, TenantId,
};

/// A face ready to enrol: its template and the quality figures recorded with it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaceToEnroll {
    /// Unit-length template of the collection's pack.
    pub template: Vec<f32>,
    /// Its template of a running migration's target pack.
    pub target_template: Option<Vec<f32>>,
    /// The kept face (serialised), stored sealed where the collection keeps them.
    pub kept: Option<Vec<u8>>,
    /// Detector score.
    pub detection_score: f32,
    /// Sharpness of the aligned crop.
    pub sharpness: f32,
    /// Face box side, pixels.
    pub face_size: f32,
}

/// The packs an enrolment's templates are made by.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplatePacks {
    /// The collection's pack.
    pub current: PackVersion,
    /// A running migration's target pack and its template length: faces carry a template of it too.
    pub target: Option<(PackVersion, u32)>,
}

impl TemplatePacks {
    /// The packs of an enrolment into a collection on `current` while `migration` may run: the faces get
    /// a template of its target only where that pack is loaded at the migration's version
    /// (`target_version`); otherwise the migration makes it later from the kept frame.
    pub fn new(current: PackVersion, migration: Option<&Migration>, target_version: Option<&str>) -> Self {
        let target = migration
            .filter(|m| m.state == MigrationState::Running && target_version == Some(m.target.version.as_str()))
            .map(|m| (m.target.clone(), m.target_dim));
        Self { current, target }
    }
}

/// Galleries over a store and a key provider; caches are only caches (safe to drop at any time).
pub struct Gallery {
    pub(crate) store: Arc<dyn FaceStore>,
    pub(crate) keys: Arc<dyn KeyProvider>,
    pub(crate) secrets: Mutex<HashMap<TenantId, Arc<TenantSecrets>>>,
    pub(crate) rotations: Mutex<HashMap<(TenantId, usize), Arc<SearchRotation>>>,
    /// Search indexes by collection id, with the tenant that owns each (shared with the folds running
    /// beside the requests).
    pub(crate) indexes: Arc<Mutex<Indexes>>,
    /// The collections whose index is being folded in the background (one fold at a time each).
    pub(crate) folding: Arc<Mutex<HashSet<CollectionId>>>,
    /// One gate per collection that a rebuild of its index holds: searches that find the index stale
    /// while another rebuilds it wait for that one instead of each reading and holding every template
    /// (at 1M templates, seconds and 1.3 GB each).
    pub(crate) rebuilds: Mutex<HashMap<CollectionId, Arc<tokio::sync::Mutex<()>>>>,
    /// The enrolment quality gate.
    pub(crate) gate: QualityGate,
    /// Where webhooks may be delivered.
    pub(crate) egress: egress::EgressPolicy,
    /// Where cameras may be dialled.
    pub(crate) camera_egress: egress::EgressPolicy,
    /// The time of every record and decision.
    pub(crate) clock: Clock,
    /// What analyses the images of enrolments, identifications and door attempts.
    pub(crate) analyser: Arc<dyn Analyser>,
    /// The groups of unknown faces by tenant and collection (a cache of the stored sightings').
    pub(crate) groups: Mutex<HashMap<(TenantId, CollectionId), crate::unknowns::Groups>>,
    /// The access panels of doors with a reader (none: such doors deny as `panel_offline`).
    pub(crate) panels: Option<Arc<dyn crate::Panels>>,
    /// The serial ports the operator lets door readers use.
    pub(crate) serial_ports: Vec<String>,
}

/// The cached search indexes by collection, with the tenant that owns each.
pub(crate) type Indexes = HashMap<CollectionId, (TenantId, Arc<TemplateIndex>)>;

/// A collection's index being folded in the background: taken from [`Gallery::folding`] when the fold
/// starts, given back when it ends, however it ends.
struct FoldInFlight {
    folding: Arc<Mutex<HashSet<CollectionId>>>,
    collection_id: CollectionId,
}

impl FoldInFlight {
    /// The collection's fold, unless one is running already.
    fn start(folding: &Arc<Mutex<HashSet<CollectionId>>>, collection_id: &CollectionId) -> Option<Self> {
        lock(folding)
            .insert(collection_id.clone())
            .then(|| FoldInFlight { folding: folding.clone(), collection_id: collection_id.clone() })
    }
}

impl Drop for FoldInFlight {
    fn drop(&mut self) {
        lock(&self.folding).remove(&self.collection_id);
    }
}

/// Caches `folded` in place of the index it was folded from: the same templates at the same revision, so
/// only while that revision is the one cached (a change followed meanwhile is newer, and the fold is
/// dropped; the change's own fold follows).
fn keep_folded(indexes: &Mutex<Indexes>, collection_id: &CollectionId, folded: TemplateIndex) {
    if let Some((_, cached)) = lock(indexes).get_mut(collection_id)
        && cached.revision() == folded.revision()
    {
        *cached = Arc::new(folded);
    }
}

/// Where the gallery's time comes from, ms since the epoch: the system clock unless a host sets another (a
/// fixed clock in tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What a change this gallery made did to a collection's templates, for its cached index to follow.
pub(crate) enum TemplateChange<'a> {
    /// These faces of this subject were added, with their templates.
    Added(&'a SubjectId, Vec<(FaceId, Vec<f32>)>),
    /// This face was erased.
    FaceRemoved(&'a FaceId),
    /// This subject was erased with every face of theirs.
    SubjectRemoved(&'a SubjectId),
}

/// Templates held in memory for one collection (for metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedSize {
    /// The tenant owning the collection.
    pub tenant_id: TenantId,
    /// The collection.
    pub collection_id: CollectionId,
    /// Templates in its in-memory index.
    pub templates: usize,
    /// Heap memory of that index, in bytes (templates, their 8-bit copy, ids).
    pub bytes: usize,
}

/// A tenant's unwrapped data key and the template cipher over it.
pub(crate) struct TenantSecrets {
    pub(crate) key: crypto::DataKey,
    pub(crate) cipher: TemplateCipher,
}

/// How many faces a store-side search fetches per subject asked for: enough that the best face of each
/// of the top subjects is among them when subjects have several faces.
const FACES_PER_SUBJECT_FETCHED: usize = 8;

impl Gallery {
    /// A gallery over `store`, wrapping data keys with `keys`.
    pub fn new(store: Arc<dyn FaceStore>, keys: Arc<dyn KeyProvider>) -> Self {
        Self {
            store,
            keys,
            secrets: Mutex::default(),
            rotations: Mutex::default(),
            indexes: Arc::default(),
            folding: Arc::default(),
            rebuilds: Mutex::default(),
            gate: QualityGate::default(),
            egress: egress::EgressPolicy::default(),
            camera_egress: egress::EgressPolicy::default().with_camera_networks(),
            clock: Arc::new(facegate_store::now_ms),
            analyser: Arc::new(Pipelines::default()),
            groups: Mutex::default(),
            panels: None,
            serial_ports: Vec::new(),
        }
    }

    /// The same gallery asking `panels` about doors with a reader.
    pub fn with_panels(mut self, panels: Arc<dyn crate::Panels>) -> Self {
        self.panels = Some(panels);
        self
    }

    /// The same gallery letting door readers use these serial ports (device paths).
    pub fn with_serial_ports(mut self, ports: Vec<String>) -> Self {
        self.serial_ports = ports;
        self
    }

    /// The same gallery analysing images with `analyser` (by default none: no pack is loaded).
    pub fn with_analyser(mut self, analyser: Arc<dyn Analyser>) -> Self {
        self.analyser = analyser;
        self
    }

    /// What analyses the gallery's images.
    pub fn analyser(&self) -> &dyn Analyser {
        self.analyser.as_ref()
    }

    /// The same gallery timing records and decisions by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by the gallery's clock: the one time every record, decision and sweep is made at.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// An audit event of `actor`, timed now.
    pub(crate) fn event(
        &self,
        actor: &Actor,
        collection_id: &CollectionId,
        action: AuditAction,
        result: AuditResult,
        subject_id: Option<&SubjectId>,
    ) -> NewEvent {
        actor.event(self.now(), collection_id, action, result, subject_id)
    }

    /// A configuration change of `actor`, timed now.
    pub(crate) fn change(
        &self,
        actor: &Actor,
        action: ChangeAction,
        object_id: &str,
        details: serde_json::Value,
    ) -> NewChange {
        actor.change(self.now(), action, object_id, details)
    }

    /// The same gallery with another egress policy for webhook receivers (default: public addresses only).
    pub fn with_egress(mut self, policy: egress::EgressPolicy) -> Self {
        self.egress = policy;
        self
    }

    /// Where webhooks may be delivered: the sender applies it to every address it connects to.
    pub fn egress(&self) -> &egress::EgressPolicy {
        &self.egress
    }

    /// The same gallery with another egress policy for cameras (default: public addresses and the
    /// private networks of [`egress::CAMERA_NETWORKS`]).
    pub fn with_camera_egress(mut self, policy: egress::EgressPolicy) -> Self {
        self.camera_egress = policy;
        self
    }

    /// Where cameras may be dialled: applied to a camera's URL when it is stored and to every address
    /// its name resolves to when it is dialled.
    pub fn camera_egress(&self) -> &egress::EgressPolicy {
        &self.camera_egress
    }

    /// The enrolment quality gate.
    pub fn quality_gate(&self) -> &QualityGate {
        &self.gate
    }

    /// The same gallery with another enrolment quality gate.
    pub fn with_quality_gate(mut self, gate: QualityGate) -> Self {
        self.gate = gate;
        self
    }

    /// The API keys of the gallery's store.
    pub fn keys(&self) -> Keys<'_> {
        Keys::new(self.store.as_ref())
    }

    /// The key provider's name (`local`, `kms`).
    pub fn key_provider(&self) -> &'static str {
        self.keys.name()
    }

    /// The tenant's unwrapped data key and cipher, creating and storing the key on first use.
    pub(crate) async fn secrets(&self, tenant_id: &TenantId) -> Result<Arc<TenantSecrets>, GalleryError> {
        if let Some(secrets) = lock(&self.secrets).get(tenant_id) {
            return Ok(secrets.clone());
        }
        let wrapped = match self.store.data_key(tenant_id).await? {
            Some(wrapped) => wrapped,
            None => {
                let fresh = self.keys.generate_data_key().await?;
                self.store.insert_data_key_if_absent(tenant_id, &fresh).await?
            }
        };
        let key = self.keys.unwrap_data_key(&wrapped).await?;
        let secrets = Arc::new(TenantSecrets { cipher: TemplateCipher::new(&key), key });
        lock(&self.secrets).insert(tenant_id.clone(), secrets.clone());
        Ok(secrets)
    }

    pub(crate) async fn rotation(&self, tenant_id: &TenantId, dim: usize) -> Result<Arc<SearchRotation>, GalleryError> {
        let slot = (tenant_id.clone(), dim);
        if let Some(rotation) = lock(&self.rotations).get(&slot) {
            return Ok(rotation.clone());
        }
        let rotation = Arc::new(SearchRotation::derive(&self.secrets(tenant_id).await?.key, dim));
        lock(&self.rotations).insert(slot, rotation.clone());
        Ok(rotation)
    }

    /// Encrypts and stores faces for a subject in one transaction with its audit event (no gate, no
    /// duplicate check: [`Gallery::enroll`] applies the rules first): each face's template of the
    /// collection's pack, its template of a running migration's target, and its kept face where the
    /// collection keeps them.
    ///
    /// # Errors
    /// [`GalleryError::Dimension`] for a template of the wrong size; store and crypto failures.
    pub async fn store_faces(
        &self,
        tenant_id: &TenantId,
        collection: &Collection,
        subject_id: &SubjectId,
        faces: &[FaceToEnroll],
        audit: &NewEvent,
        packs: &TemplatePacks,
    ) -> Result<Vec<FaceRecord>, GalleryError> {
        let cipher = self.subject_cipher(tenant_id, &collection.id, subject_id, true).await?;
        let mut sealed = Vec::with_capacity(faces.len());
        let mut added = Vec::with_capacity(faces.len());
        for face in faces {
            let id = FaceId::random();
            added.push((id.clone(), face.template.clone()));
            let (size, current) = (collection.embedding_size, &packs.current);
            let template = self.seal_template(collection, &cipher, &id, current, size, &face.template).await?;
            let mut other_templates = Vec::new();
            if let (Some((target, dim)), Some(values)) = (&packs.target, &face.target_template) {
                other_templates.push(self.seal_template(collection, &cipher, &id, target, *dim, values).await?);
            }
            let crop = match (&face.kept, collection.keep_crops) {
                (Some(kept), true) => Some(cipher.seal_data(kept, &crop_binding(&collection.id, &id))?),
                _ => None,
            };
            sealed.push(NewFace {
                template,
                other_templates,
                crop,
                id,
                detection_score: face.detection_score,
                sharpness: face.sharpness,
                face_size: face.face_size,
                created_at_ms: audit.at_ms,
            });
        }
        let before = self.revision_before(tenant_id, &collection.id).await;
        let records = self.store.add_faces(tenant_id, &collection.id, subject_id, &sealed, audit).await?;
        self.follow_change(tenant_id, &collection.id, before, TemplateChange::Added(subject_id, added)).await;
        Ok(records)
    }

    /// A template sealed for one face under its subject's key, with its search vector, tagged with its pack.
    pub(crate) async fn seal_template(
        &self,
        collection: &Collection,
        cipher: &sealing::SubjectCipher,
        face_id: &FaceId,
        pack: &PackVersion,
        dim: u32,
        values: &[f32],
    ) -> Result<NewTemplate, GalleryError> {
        let expected = dim as usize;
        if values.len() != expected {
            return Err(GalleryError::Dimension { expected, got: values.len() });
        }
        let rotation = self.rotation(&collection.tenant_id, expected).await?;
        Ok(NewTemplate {
            pack: pack.clone(),
            template: cipher.seal(values, &binding(&collection.id, face_id))?,
            search_vector: rotation.apply(values)?,
        })
    }

    /// The decrypted templates of one subject.
    ///
    /// # Errors
    /// Store and crypto failures.
    pub async fn subject_templates(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        subject_id: &SubjectId,
    ) -> Result<Vec<Vec<f32>>, GalleryError> {
        // Templates first, then the key, which was made before the subject's first template was stored.
        let stored = self.store.subject_templates(tenant_id, collection_id, subject_id).await?;
        let cipher = self.subject_cipher(tenant_id, collection_id, subject_id, false).await?;
        stored.iter().map(|s| cipher.open(&s.template, &binding(collection_id, &s.face_id))).collect()
    }

    /// The search index of a collection, rebuilt from the store if its revision moved.
    ///
    /// # Errors
    /// Store and crypto failures.
    pub(crate) async fn index(
        &self,
        tenant_id: &TenantId,
        collection: &Collection,
    ) -> Result<Arc<TemplateIndex>, GalleryError> {
        let revision = self.store.collection_revision(tenant_id, &collection.id).await?;
        let cached = |at_least: i64| {
            lock(&self.indexes).get(&collection.id).filter(|(_, i)| i.revision() >= at_least).map(|(_, i)| i.clone())
        };
        if let Some(index) = cached(revision) {
            return Ok(index);
        }
        let gate = lock(&self.rebuilds).entry(collection.id.clone()).or_default().clone();
        let _rebuilding = gate.lock().await;
        // A rebuild that finished while this search waited read the store after its revision was read.
        if let Some(index) = cached(revision) {
            return Ok(index);
        }
        // Templates first, then keys: a subject's key is made before its first face is stored, so every
        // template read has its key, unless its subject was erased in between (then it is left out, and
        // the revision that moved rebuilds the index at the next search).
        let (revision, stored) = self.store.collection_templates(tenant_id, &collection.id).await?;
        let ciphers = self.collection_ciphers(tenant_id, &collection.id).await?;
        let mut entries = Vec::with_capacity(stored.len());
        for s in stored {
            let opened = ciphers.of(&s.subject_id).open(&s.template, &binding(&collection.id, &s.face_id))?;
            let Some(template) = opened else { continue };
            entries.push((s.face_id, s.subject_id, template));
        }
        let index = Arc::new(TemplateIndex::build(revision, collection.embedding_size as usize, entries)?);
        self.keep_index(&collection.id, tenant_id.clone(), index.clone());
        Ok(index)
    }

    /// The revision of a collection before this gallery changes its templates, when it holds an index
    /// of it that the change could be applied to (not where the store searches itself).
    pub(crate) async fn revision_before(&self, tenant_id: &TenantId, collection_id: &CollectionId) -> Option<i64> {
        if self.store.searches_in_store() || !lock(&self.indexes).contains_key(collection_id) {
            return None;
        }
        self.store.collection_revision(tenant_id, collection_id).await.ok()
    }

    /// Applies a change this gallery just made to the collection's cached index, so that the next
    /// search need not rebuild it from the store (at 1M templates: seconds of reading and unsealing
    /// against a change kept beside the cached base, see [`TemplateIndex`]). Only when the store's
    /// revision moved by exactly one since `before` (read before the change, which moves it by one: no
    /// other change came between) and the index reflects `before`; otherwise the next search rebuilds
    /// it, as after any change made elsewhere.
    pub(crate) async fn follow_change(
        &self,
        tenant_id: &TenantId,
        collection_id: &CollectionId,
        before: Option<i64>,
        change: TemplateChange<'_>,
    ) {
        let Some(before) = before else { return };
        let Ok(after) = self.store.collection_revision(tenant_id, collection_id).await else { return };
        let cached = lock(&self.indexes).get(collection_id).filter(|(_, i)| i.revision() == before).cloned();
        let Some((owner, index)) = cached.filter(|_| after == before + 1) else { return };
        let next = match change {
            TemplateChange::Added(subject_id, faces) => index.with_faces(after, subject_id, faces),
            TemplateChange::FaceRemoved(face_id) => Ok(index.without_faces(after, |face, _| face == face_id)),
            TemplateChange::SubjectRemoved(subject_id) => {
                Ok(index.without_faces(after, |_, subject| subject == subject_id))
            }
        };
        if let Ok(next) = next {
            let next = Arc::new(next);
            self.keep_index(collection_id, owner, next.clone());
            self.fold_if_due(collection_id, next).await;
        }
    }

    /// Folds a followed index's changes into a new base when they are due ([`FoldState`]): a copy of
    /// every template (at 1M, seconds), so on a blocking thread, beside the requests: the change's own
    /// request answers at once and searches use the changed index until the fold lands. Only when the
    /// changes came faster than folds could land (overdue) does the change wait for one, so the segment
    /// scanned exactly stays bounded.
    async fn fold_if_due(&self, collection_id: &CollectionId, index: Arc<TemplateIndex>) {
        let state = index.fold_state();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            if state != FoldState::Kept {
                keep_folded(&self.indexes, collection_id, index.folded());
            }
            return;
        };
        let indexes = self.indexes.clone();
        let id = collection_id.clone();
        match state {
            FoldState::Kept => {}
            FoldState::Due => {
                if let Some(in_flight) = FoldInFlight::start(&self.folding, collection_id) {
                    drop(runtime.spawn_blocking(move || {
                        keep_folded(&indexes, &id, index.folded());
                        drop(in_flight);
                    }));
                }
            }
            FoldState::Overdue => {
                // Landed by the blocking task itself, even if this request is dropped meanwhile.
                let fold = runtime.spawn_blocking(move || keep_folded(&indexes, &id, index.folded()));
                // (A fold that failed leaves the changed index cached, which answers the same.)
                let _landed = fold.await;
            }
        }
    }

    /// Caches `index` unless a newer one is cached already (a rebuild and a followed change may finish
    /// in either order).
    fn keep_index(&self, collection_id: &CollectionId, tenant_id: TenantId, index: Arc<TemplateIndex>) {
        let mut indexes = lock(&self.indexes);
        if indexes.get(collection_id).is_none_or(|(_, cached)| cached.revision() < index.revision()) {
            indexes.insert(collection_id.clone(), (tenant_id, index));
        }
    }

    /// The `top_k` subjects whose best face is most similar to `query`, best first: in the store when it
    /// searches (PostgreSQL), else by an exact scan of the in-memory index.
    ///
    /// # Errors
    /// Store and crypto failures; [`GalleryError::Dimension`] for a query of the wrong length.
    pub(crate) async fn search(
        &self,
        tenant_id: &TenantId,
        collection: &Collection,
        query: &[f32],
        top_k: usize,
    ) -> Result<Vec<Candidate>, GalleryError> {
        Ok(self.search_all(tenant_id, collection, &[query], top_k).await?.pop().unwrap_or_default())
    }

    /// [`Gallery::search`] for several queries (the faces of one image): the index is checked against
    /// the store's revision once for all of them.
    ///
    /// # Errors
    /// As [`Gallery::search`].
    pub(crate) async fn search_all(
        &self,
        tenant_id: &TenantId,
        collection: &Collection,
        queries: &[&[f32]],
        top_k: usize,
    ) -> Result<Vec<Vec<Candidate>>, GalleryError> {
        if !self.store.searches_in_store() {
            let index = self.index(tenant_id, collection).await?;
            return queries.iter().map(|query| index.search(query, top_k)).collect();
        }
        let rotation = self.rotation(tenant_id, collection.embedding_size as usize).await?;
        let limit = top_k.saturating_mul(FACES_PER_SUBJECT_FETCHED).max(top_k);
        let mut found = Vec::with_capacity(queries.len());
        for query in queries {
            let hits = self.store.search_faces(tenant_id, &collection.id, &rotation.apply(query)?, limit).await?;
            let mut best: Vec<Candidate> = Vec::new();
            for hit in hits {
                if best.len() == top_k {
                    break;
                }
                if !best.iter().any(|c| c.subject_id == hit.subject_id) {
                    best.push(Candidate { subject_id: hit.subject_id, face_id: hit.face_id, score: hit.score });
                }
            }
            found.push(best);
        }
        Ok(found)
    }

    /// Forgets the cached index of a collection (after it was deleted).
    pub(crate) fn forget(&self, collection_id: &CollectionId) {
        lock(&self.indexes).remove(collection_id);
        lock(&self.rebuilds).remove(collection_id);
        lock(&self.groups).retain(|(_, collection), _| collection != collection_id);
    }

    /// Templates and bytes held in memory per collection, for metrics.
    pub fn indexed_sizes(&self) -> Vec<IndexedSize> {
        lock(&self.indexes)
            .iter()
            .map(|(id, (tenant, index))| IndexedSize {
                tenant_id: tenant.clone(),
                collection_id: id.clone(),
                templates: index.len(),
                bytes: index.memory_bytes(),
            })
            .collect()
    }
}

/// Associated data that ties a sealed template to its place: moving ciphertext between faces or
/// collections makes it fail to open. (A face's templates of several packs share it: they move between
/// the searched slot and the others when a migration switches, without being opened.)
fn binding(collection_id: &CollectionId, face_id: &FaceId) -> String {
    format!("facegate/template/v1/{collection_id}/{face_id}")
}

/// Associated data of a face's kept frame.
pub(crate) fn crop_binding(collection_id: &CollectionId, face_id: &FaceId) -> String {
    format!("facegate/crop/v1/{collection_id}/{face_id}")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalKeyProvider;
    use facegate_store::{KeyId, PackVersion, RequestId};
    use facegate_store_conformance::{audit, create_collection, subject};
    use facegate_store_sqlite::SqliteStore;

    fn direction(index: usize) -> Vec<f32> {
        let mut values = vec![0.0; 4];
        values[index] = 1.0;
        values
    }

    fn cached(gallery: &Gallery, collection: &Collection) -> Arc<TemplateIndex> {
        lock(&gallery.indexes).get(&collection.id).map(|(_, index)| index.clone()).expect("a cached index")
    }

    fn top(index: &TemplateIndex, query: &[f32]) -> Option<SubjectId> {
        index.search(query, 1).expect("search").first().map(|c| c.subject_id.clone())
    }

    /// The cached index follows the gallery's own enrolments and erasures without a rebuild, and is
    /// rebuilt after a change made elsewhere (another process on the same store file).
    #[tokio::test]
    async fn the_index_follows_its_own_changes_and_is_rebuilt_after_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gallery.db");
        let store: Arc<dyn FaceStore> = Arc::new(SqliteStore::open(&path).expect("store"));
        let keys = || Arc::new(LocalKeyProvider::from_hex(&"cd".repeat(32)).expect("master key"));
        let gallery = Gallery::new(store.clone(), keys());
        let tenant = store.create_tenant("follow", 0).await.expect("tenant").id;
        let collection = create_collection(store.as_ref(), &tenant, "staff", 4).await;
        let mut people = Vec::new();
        for name in ["ann", "bob", "cy"] {
            people.push(store.create_subject(&tenant, &collection.id, &subject(name)).await.expect("subject").id);
        }
        let packs = TemplatePacks::new(PackVersion { pack: collection.pack.clone(), version: "1".into() }, None, None);
        let face = |index| FaceToEnroll { template: direction(index), ..Default::default() };
        let enrol = async |gallery: &Gallery, person: usize, faces: Vec<FaceToEnroll>| {
            let audit = audit(&collection.id, 0);
            gallery.store_faces(&tenant, &collection, &people[person], &faces, &audit, &packs).await
        };
        let actor = Actor {
            tenant_id: tenant.clone(),
            key_id: KeyId::from("test"),
            request_id: RequestId::from("r"),
            correlation_id: None,
        };

        let ann_faces = enrol(&gallery, 0, vec![face(0), face(1)]).await.expect("ann");
        let built = gallery.index(&tenant, &collection).await.expect("index");
        assert_eq!(built.len(), 2);

        // An enrolment: the index moves to the new revision with bob's face, and a search uses it as is.
        enrol(&gallery, 1, vec![face(2)]).await.expect("bob");
        let followed = cached(&gallery, &collection);
        assert_eq!((followed.revision(), followed.len()), (built.revision() + 1, 3));
        assert!(Arc::ptr_eq(&gallery.index(&tenant, &collection).await.expect("index"), &followed), "no rebuild");
        assert_eq!(top(&followed, &direction(2)), Some(people[1].clone()));

        // Erasures: one face of ann's, then bob; each leaves the index at the store's revision.
        gallery.delete_face(&actor, &collection.id, &people[0], &ann_faces[0].id).await.expect("face erased");
        gallery.delete_subject(&actor, &collection.id, &people[1]).await.expect("bob erased");
        let followed = cached(&gallery, &collection);
        assert_eq!((followed.revision(), followed.len()), (built.revision() + 3, 1));
        assert!(Arc::ptr_eq(&gallery.index(&tenant, &collection).await.expect("index"), &followed), "no rebuild");
        assert_eq!(top(&followed, &direction(1)), Some(people[0].clone()));
        assert_ne!(top(&followed, &direction(2)), Some(people[1].clone()), "bob is gone");
        assert_eq!(followed.search(&direction(0), 5).expect("search").len(), 1, "ann's erased face is gone");

        // Another gallery over the same file enrols cy: this one cannot follow that, and rebuilds.
        let elsewhere = Gallery::new(Arc::new(SqliteStore::open(&path).expect("store")), keys());
        enrol(&elsewhere, 2, vec![face(3)]).await.expect("cy");
        enrol(&gallery, 0, vec![face(0)]).await.expect("ann again");
        let stale = cached(&gallery, &collection);
        assert_eq!(stale.revision(), followed.revision(), "two changes since: not followed");
        let rebuilt = gallery.index(&tenant, &collection).await.expect("index");
        assert_eq!((rebuilt.revision(), rebuilt.len()), (followed.revision() + 2, 3));
        assert_eq!(top(&rebuilt, &direction(3)), Some(people[2].clone()));
        assert_eq!(top(&rebuilt, &direction(0)), Some(people[0].clone()));
    }

    /// A followed index's changes, once due, are folded into a new base beside the requests (the
    /// change's request does not wait for it), one fold at a time; when they come faster than folds land
    /// (here: a fold held in flight), the change that makes them overdue folds them itself.
    #[tokio::test]
    async fn due_folds_land_beside_the_requests_and_overdue_ones_in_the_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn FaceStore> = Arc::new(SqliteStore::open(&dir.path().join("g.db")).expect("store"));
        let gallery = Gallery::new(store.clone(), Arc::new(LocalKeyProvider::from_hex(&"ce".repeat(32)).expect("key")));
        let tenant = store.create_tenant("fold", 0).await.expect("tenant").id;
        let collection = create_collection(store.as_ref(), &tenant, "staff", 4).await;
        let mut people = Vec::new();
        for name in ["ann", "bob", "cy", "di"] {
            people.push(store.create_subject(&tenant, &collection.id, &subject(name)).await.expect("subject").id);
        }
        let packs = TemplatePacks::new(PackVersion { pack: collection.pack.clone(), version: "1".into() }, None, None);
        let enrol = async |person: usize| {
            let face = FaceToEnroll { template: direction(person), ..Default::default() };
            let audit = audit(&collection.id, 0);
            gallery
                .store_faces(&tenant, &collection, &people[person], &[face], &audit, &packs)
                .await
                .expect("enrolled");
        };
        for person in 0..4 {
            enrol(person).await;
        }
        let built = gallery.index(&tenant, &collection).await.expect("index");
        assert_eq!((built.len(), built.fold_state()), (4, FoldState::Kept));

        // FOLD_AT_LEAST changes stay beside the base; the next makes a fold due, which lands on its own.
        for change in 0..crate::FOLD_AT_LEAST {
            enrol(change % 4).await;
        }
        assert_eq!(cached(&gallery, &collection).fold_state(), FoldState::Kept);
        enrol(0).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let folded = loop {
            let index = cached(&gallery, &collection);
            if index.fold_state() == FoldState::Kept {
                break index;
            }
            assert!(std::time::Instant::now() < deadline, "the due fold landed");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        let revision = built.revision() + crate::FOLD_AT_LEAST as i64 + 1;
        assert_eq!((folded.revision(), folded.len()), (revision, 4 + crate::FOLD_AT_LEAST + 1));
        assert!(lock(&gallery.folding).is_empty(), "the fold gave its place back");

        // A fold held in flight: due changes pile up beside the base until the one that makes them
        // overdue, which folds them before its request answers.
        let held = FoldInFlight::start(&gallery.folding, &collection.id).expect("no fold running");
        let due = (folded.len() / crate::FOLD_AFTER).max(crate::FOLD_AT_LEAST);
        for change in 0..due * crate::FOLD_OVERDUE {
            enrol(change % 4).await;
        }
        let piled = cached(&gallery, &collection);
        assert_eq!((piled.fold_state(), piled.len()), (FoldState::Due, folded.len() + due * crate::FOLD_OVERDUE));
        enrol(1).await;
        let landed = cached(&gallery, &collection);
        assert_eq!(
            (landed.fold_state(), landed.len(), landed.revision()),
            (FoldState::Kept, piled.len() + 1, piled.revision() + 1)
        );
        for (person, id) in people.iter().enumerate() {
            assert_eq!(top(&landed, &direction(person)).as_ref(), Some(id));
        }
        drop(held);
        assert!(Arc::ptr_eq(&gallery.index(&tenant, &collection).await.expect("index"), &landed), "no rebuild");
    }
}
