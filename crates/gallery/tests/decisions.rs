//! The gallery's decisions on images through its analysis seam, with a fake [`Analyser`] (no models):
//! what a door, an enrolment, a recognition and a verification decide from the faces an analyser
//! reports, on a real embedded store. The pipeline itself is tested against the real models elsewhere;
//! here each "image" is a word naming the faces it holds.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use facegate_core::{
    BoundingBox, Calibration, CalibrationPoint, DetectedFace, Embedding, Extras, FaceAnalysis, ImageAnalysis,
    ImageError, KeptFace, LivenessScore, PipelineError, Point,
};
use facegate_gallery::{
    Access, Actor, Analyser, AnalysisError, BestShotLink, DoorProblem, DoorReason, EnrollOptions, FaceChoice, Gallery,
    GalleryError, LocalKeyProvider, MAX_READERS, MatchResult, PANEL_KEY_ID, PanelVerdict, Probe, ProbeOptions,
    ReaderProblem, ReaderSpec, RejectReason,
};
use facegate_store::{DoorPolicy, FaceStore, NewCollection, NewDoor, NewSubject, RequestId, SubjectId};
use facegate_store_sqlite::SqliteStore;

/// Template length of the fake pack.
const DIM: usize = 8;
/// The fake pack's threshold at every rate.
const THRESHOLD: f32 = 0.6;

/// Faces by word: `alice`, `bob`, `stranger` (each a direction of its own), `photo-alice` (alice, not
/// live), `blurry-alice` (alice, blurred), `tiny-alice` (alice, far away); `+` puts several side by side;
/// `garbage` is not an image. The `plain` pack has no liveness models.
struct Fake {
    calibration: Calibration,
}

impl Fake {
    fn new() -> Self {
        let points = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
            .into_iter()
            .map(|fmr| CalibrationPoint { fmr, threshold: THRESHOLD, tar: None })
            .collect();
        Self { calibration: Calibration::new(points) }
    }

    fn known(&self, pack: &str) -> Result<(), AnalysisError> {
        match pack {
            "fake" | "plain" => Ok(()),
            other => {
                Err(AnalysisError::UnknownPack { pack: other.into(), loaded: vec!["fake".into(), "plain".into()] })
            }
        }
    }
}

fn direction(index: usize) -> Embedding {
    let mut values = vec![0.0; DIM];
    values[index] = 1.0;
    Embedding::from_raw(values).expect("unit vector")
}

fn face(word: &str, slot: usize, extras: Extras) -> Option<FaceAnalysis> {
    let (person, live, sharpness, side) = match word {
        "alice" => (0, true, 200.0, 120.0),
        "bob" => (1, true, 200.0, 120.0),
        "stranger" => (2, true, 200.0, 120.0),
        "photo-alice" => (0, false, 200.0, 120.0),
        "blurry-alice" => (0, true, 2.0, 120.0),
        "tiny-alice" => (0, true, 200.0, 20.0),
        _ => return None,
    };
    let x = 10.0 + 300.0 * slot as f32;
    let bbox = BoundingBox { x, y: 10.0, width: side, height: side };
    let point = |dx: f32, dy: f32| Point { x: x + dx * side, y: 10.0 + dy * side };
    let landmarks = [point(0.3, 0.4), point(0.7, 0.4), point(0.5, 0.6), point(0.35, 0.8), point(0.65, 0.8)];
    let score = if live { 0.9 } else { 0.1 };
    Some(FaceAnalysis {
        face: DetectedFace { bbox, bbox_normalized: bbox, landmarks, score: 0.95 },
        embedding: direction(person),
        sharpness: extras.sharpness.then_some(sharpness),
        liveness: extras.liveness.then_some(LivenessScore { score, threshold: 0.5, live }),
        kept: None,
        crop: None,
    })
}

#[async_trait]
impl Analyser for Fake {
    fn calibration(&self, pack: &str) -> Result<&Calibration, AnalysisError> {
        self.known(pack)?;
        Ok(&self.calibration)
    }

    fn template_version(&self, pack: &str) -> Option<String> {
        self.known(pack).ok().map(|()| format!("{pack}-1"))
    }

    fn embedding_size(&self, pack: &str) -> Result<u32, AnalysisError> {
        self.known(pack)?;
        Ok(DIM as u32)
    }

    fn has_liveness(&self, pack: &str) -> Result<bool, AnalysisError> {
        self.known(pack)?;
        Ok(pack == "fake")
    }

    async fn analyse(&self, pack: &str, image: Bytes, extras: Extras) -> Result<ImageAnalysis, AnalysisError> {
        if extras.liveness && !self.has_liveness(pack)? {
            return Err(AnalysisError::NoLiveness);
        }
        let text = String::from_utf8_lossy(&image).into_owned();
        if text == "garbage" {
            return Err(PipelineError::Image(ImageError::Unsupported).into());
        }
        let faces = text.split('+').enumerate().filter_map(|(slot, word)| face(word, slot, extras)).collect();
        Ok(ImageAnalysis {
            width: 1000,
            height: 400,
            faces,
            faces_truncated: false,
            timings: Default::default(),
            decode: Default::default(),
        })
    }

    async fn embed_kept(&self, _pack: &str, _faces: Vec<KeptFace>) -> Result<Vec<Embedding>, AnalysisError> {
        Err(AnalysisError::Failed("the fake keeps no frames".into()))
    }
}

struct World {
    gallery: Gallery,
    actor: Actor,
    collection: facegate_store::CollectionId,
    alice: SubjectId,
    bob: SubjectId,
    _dir: tempfile::TempDir,
}

fn images(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|w| Bytes::from(w.to_string())).collect()
}

async fn world() -> World {
    world_with(|gallery| gallery).await
}

/// A world whose gallery `extend` sets up further (panels, a clock, serial ports).
async fn world_with(extend: impl FnOnce(Gallery) -> Gallery) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn FaceStore> = Arc::new(SqliteStore::open(&dir.path().join("gallery.db")).expect("store"));
    let keys = Arc::new(LocalKeyProvider::from_hex(&"cd".repeat(32)).expect("master key"));
    let gallery = extend(Gallery::new(store, keys).with_analyser(Arc::new(Fake::new())));
    let tenant = gallery.keys().tenant("acme", 0).await.expect("tenant");
    let actor = Actor::new(tenant.id, "test".into(), RequestId::random());
    let new = NewCollection {
        name: "staff".into(),
        pack: "fake".into(),
        embedding_size: DIM as u32,
        target_fmr: 1e-3,
        keep_crops: false,
        created_at_ms: 0,
    };
    let collection = gallery.create_collection(&actor, &new).await.expect("collection").id;
    let mut people = Vec::new();
    for name in ["alice", "bob"] {
        let new = NewSubject {
            name: name.into(),
            metadata: serde_json::json!({}),
            groups: None,
            consent: None,
            created_at_ms: 0,
        };
        let subject = gallery.create_subject(&actor, &collection, &new).await.expect("subject").id;
        let enrolment = gallery
            .enroll(&actor, &collection, &subject, images(&[name]), EnrollOptions::default())
            .await
            .expect("enrolment");
        assert_eq!(enrolment.accepted.len(), 1, "{name} enrolled");
        people.push(subject);
    }
    let bob = people.pop().expect("bob");
    let alice = people.pop().expect("alice");
    World { gallery, actor, collection, alice, bob, _dir: dir }
}

fn policy(allowed: &[&SubjectId], liveness_required: bool) -> DoorPolicy {
    DoorPolicy {
        allow_everyone: false,
        allowed_subjects: allowed.iter().map(|s| (*s).clone()).collect(),
        allowed_groups: Vec::new(),
        timezone: "UTC".into(),
        schedule: Vec::new(),
        liveness_required,
        anti_passback: None,
        target_fmr: None,
    }
}

#[tokio::test]
async fn a_door_decides_on_the_faces_its_frames_hold() {
    let w = world().await;
    let new = NewDoor {
        collection_id: w.collection.clone(),
        name: "front".into(),
        policy: policy(&[&w.alice], true),
        created_at_ms: 0,
    };
    let door = w.gallery.create_door(&w.actor, &new).await.expect("door").id;
    let attempt = |words: &'static [&'static str]| {
        let (gallery, actor, door) = (&w.gallery, &w.actor, &door);
        async move { gallery.door_attempt(actor, door, images(words)).await.expect("decision") }
    };

    let granted = attempt(&["alice", "alice"]).await;
    assert_eq!((granted.access, granted.reason), (Access::Granted, None));
    assert_eq!(granted.subject.map(|s| s.id), Some(w.alice.clone()));
    assert_eq!((granted.frames, granted.frames_used, granted.threshold), (2, 2, THRESHOLD));
    assert!((granted.target_fmr - 1e-3).abs() < 1e-12, "the collection's rate");

    let cases: [(&[&str], DoorReason); 7] = [
        (&["bob"], DoorReason::NotAllowed),
        (&["stranger"], DoorReason::UnknownPerson),
        (&["photo-alice"], DoorReason::NotLive),
        (&["alice", "bob"], DoorReason::UnknownPerson),
        (&["alice+bob"], DoorReason::MultipleFaces),
        (&["blurry-alice", "tiny-alice"], DoorReason::LowQuality),
        (&["nobody"], DoorReason::NoFace),
    ];
    for (frames, reason) in cases {
        let denied = attempt(frames).await;
        assert_eq!((denied.access, denied.reason), (Access::Denied, Some(reason)), "{frames:?}");
        let named = denied.subject.map(|s| s.id);
        if reason == DoorReason::NotAllowed {
            assert_eq!(named, Some(w.bob.clone()), "the policy said no: the person may be told");
        } else {
            assert_eq!((named, denied.score), (None, None), "{frames:?}: a denial before the policy names nobody");
        }
    }
    // A blurred frame is set aside when a sharp one agrees.
    let one_sharp = attempt(&["blurry-alice", "alice"]).await;
    assert_eq!((one_sharp.access, one_sharp.frames_used), (Access::Granted, 1));

    let bad = w.gallery.door_attempt(&w.actor, &door, images(&["garbage"])).await;
    assert!(matches!(bad, Err(GalleryError::Analysis(ref e)) if e.is_bad_image()), "{bad:?}");
    let none = w.gallery.door_attempt(&w.actor, &door, Vec::new()).await;
    assert!(matches!(none, Err(GalleryError::Door(DoorProblem::Frames(0)))), "{none:?}");

    let events = w.gallery.events(&w.actor, &w.collection, None, None, 1000).await.expect("trail");
    let doors = events.iter().filter(|e| e.event.door_id.as_ref() == Some(&door)).count();
    assert_eq!(doors, 9, "every decision is in the trail, refused requests are not");
}

#[tokio::test]
async fn a_door_the_pack_cannot_serve_is_refused_when_stored() {
    let w = world().await;
    let plain = NewCollection {
        name: "plain".into(),
        pack: "plain".into(),
        embedding_size: DIM as u32,
        target_fmr: 1e-3,
        keep_crops: false,
        created_at_ms: 0,
    };
    let plain = w.gallery.create_collection(&w.actor, &plain).await.expect("collection").id;
    let door = |collection: &facegate_store::CollectionId, liveness: bool, fmr: Option<f64>| NewDoor {
        collection_id: collection.clone(),
        name: "side".into(),
        policy: DoorPolicy { allow_everyone: true, target_fmr: fmr, ..policy(&[], liveness) },
        created_at_ms: 0,
    };
    let refused = w.gallery.create_door(&w.actor, &door(&plain, true, None)).await;
    assert!(matches!(refused, Err(GalleryError::Door(DoorProblem::NoLiveness(ref p))) if p == "plain"), "{refused:?}");
    let refused = w.gallery.create_door(&w.actor, &door(&w.collection, false, Some(0.5))).await;
    assert!(matches!(refused, Err(GalleryError::Calibration(_))), "outside the calibrated range: {refused:?}");
    w.gallery.create_door(&w.actor, &door(&plain, false, None)).await.expect("no liveness asked");
}

#[tokio::test]
async fn enrolment_recognition_search_and_verification_go_through_the_seam() {
    let w = world().await;
    let options = EnrollOptions { face: FaceChoice::Only, reject_duplicates: true, crops: false };
    let words = ["garbage", "alice+bob", "nobody", "tiny-alice", "bob", "alice"];
    let enrolment = w.gallery.enroll(&w.actor, &w.collection, &w.alice, images(&words), options).await.expect("enrol");
    assert_eq!(enrolment.unreadable.iter().map(|u| u.image_index).collect::<Vec<_>>(), [0]);
    assert!(enrolment.unreadable[0].error.is_bad_image());
    let reasons: Vec<(usize, RejectReason)> = enrolment.rejected.iter().map(|r| (r.image_index, r.reason)).collect();
    assert_eq!(
        reasons,
        [
            (1, RejectReason::MultipleFaces),
            (2, RejectReason::NoFace),
            (3, RejectReason::LowQuality),
            (4, RejectReason::Duplicate)
        ]
    );
    assert_eq!(enrolment.accepted.iter().map(|a| a.image_index).collect::<Vec<_>>(), [5]);

    let probe = ProbeOptions { top_k: 2, fmr: None, liveness: false };
    let recognition = w
        .gallery
        .recognize(&w.actor, &w.collection, Bytes::from("alice+stranger+bob"), probe)
        .await
        .expect("recognition");
    let answers: Vec<(MatchResult, Option<SubjectId>)> = recognition
        .faces
        .iter()
        .map(|f| (f.identification.result, f.identification.subject.as_ref().map(|s| s.id.clone())))
        .collect();
    assert_eq!(
        answers,
        [
            (MatchResult::Match, Some(w.alice.clone())),
            (MatchResult::Unknown, None),
            (MatchResult::Match, Some(w.bob.clone()))
        ]
    );
    assert_eq!((recognition.width, recognition.operating.threshold), (1000, THRESHOLD));
    let live = ProbeOptions { liveness: true, ..probe };
    let scored = w.gallery.recognize(&w.actor, &w.collection, Bytes::from("photo-alice"), live).await.expect("live");
    assert_eq!(scored.faces[0].face.liveness.map(|l| l.live), Some(false), "liveness scored when asked");

    let by_image = w.gallery.search_one(&w.actor, &w.collection, Probe::Image(Bytes::from("bob")), 2, None).await;
    let by_image = by_image.expect("search");
    assert_eq!((by_image.result, by_image.candidates[0].subject_id.clone()), (MatchResult::Match, w.bob.clone()));
    let by_template = Probe::Template(direction(2));
    let answer = w.gallery.search_one(&w.actor, &w.collection, by_template, 2, None).await.expect("search");
    assert_eq!(answer.result, MatchResult::Unknown);
    let no_face = w.gallery.search_one(&w.actor, &w.collection, Probe::Image(Bytes::from("nobody")), 2, None).await;
    assert!(matches!(no_face, Err(GalleryError::NoFace)), "{no_face:?}");

    let same = w.gallery.verify(&w.actor, &w.collection, &w.alice, Bytes::from("alice"), probe).await.expect("verify");
    let other = w.gallery.verify(&w.actor, &w.collection, &w.alice, Bytes::from("bob"), probe).await.expect("verify");
    assert!(same.same_person && !other.same_person, "{same:?} {other:?}");
    let strict = ProbeOptions { fmr: Some(0.5), ..probe };
    let outside = w.gallery.verify(&w.actor, &w.collection, &w.alice, Bytes::from("alice"), strict).await;
    assert!(matches!(outside, Err(GalleryError::Calibration(_))), "{outside:?}");

    // "Not this person": bob's face as a negative of alice overrules a match of alice by bob's face.
    w.gallery.add_negative(&w.actor, &w.collection, &w.alice, Bytes::from("bob")).await.expect("negative");
    let missing = w.gallery.add_negative(&w.actor, &w.collection, &w.alice, Bytes::from("nobody")).await;
    assert!(matches!(missing, Err(GalleryError::NoFace)), "{missing:?}");
}

/// Groups of unknown faces when two processes share one store (two servers on one database): a new
/// group's id comes from the store, so the two never give one id to two people, and each process reads
/// the other's sightings at its next decision, so one stranger seen by both is one group.
#[tokio::test]
async fn two_processes_sharing_a_store_keep_one_set_of_unknown_groups() {
    let w = world().await;
    let path = w._dir.path().join("gallery.db");
    let store: Arc<dyn FaceStore> = Arc::new(SqliteStore::open(&path).expect("the same store, opened again"));
    let keys = Arc::new(LocalKeyProvider::from_hex(&"cd".repeat(32)).expect("master key"));
    let other = Gallery::new(store, keys).with_analyser(Arc::new(Fake::new()));
    let collection = w.gallery.collection(&w.actor, &w.collection).await.expect("collection");
    let (carol, dave, erin) = (direction(5), direction(6), direction(7));
    let (actor, gallery) = (&w.actor, &w.gallery);
    // Both processes have read the (empty) groups before either records anything.
    let carols = group(gallery, actor, &collection, &carol).await;
    let daves = group(&other, actor, &collection, &dave).await;
    assert_ne!(carols, daves, "two strangers, two processes: two ids");
    record(gallery, actor, &carol, carols, 1).await;
    record(&other, actor, &dave, daves, 2).await;
    // Each sees the other's stranger again as the same group.
    assert_eq!(group(&other, actor, &collection, &carol).await, carols, "the other process's group");
    assert_eq!(group(gallery, actor, &collection, &dave).await, daves);
    let erins = group(&other, actor, &collection, &erin).await;
    assert!(erins != carols && erins != daves, "a third stranger, a third id");
}

async fn group(gallery: &Gallery, actor: &Actor, collection: &facegate_store::Collection, template: &Embedding) -> u64 {
    gallery.unknown_cluster(actor, collection, template.as_slice(), THRESHOLD).await.expect("a group")
}

/// A stranger's sighting of the `staff` collection, in `cluster_id`.
async fn record(gallery: &Gallery, actor: &Actor, template: &Embedding, cluster_id: u64, track_id: u64) {
    use facegate_store::{NewSighting, SightingDecision};
    let collections = gallery.collections(actor).await.expect("collections");
    let staff = collections.iter().find(|c| c.name == "staff").expect("the world's collection");
    let sighting = NewSighting {
        collection_id: staff.id.clone(),
        camera: "lobby".into(),
        track_id,
        decision: SightingDecision::Unknown,
        subject_id: None,
        cluster_id: Some(cluster_id),
        score: None,
        first_seen_ms: 1_000,
        last_seen_ms: 2_000,
        stream_first_s: 1.0,
        stream_last_s: 2.0,
    };
    let evidence = facegate_gallery::TrackEvidence { template: template.as_slice().to_vec(), best_shot: None };
    gallery.record_sighting(actor, &sighting, Some(&evidence)).await.expect("recorded");
}

/// A panel that grants the cards it lists (with a text), counting what it was shown.
struct FakePanel {
    allowed: Vec<u64>,
    shown: std::sync::Mutex<Vec<u64>>,
}

#[async_trait]
impl facegate_gallery::Panels for FakePanel {
    async fn present(
        &self,
        _door_id: &facegate_store::DoorId,
        card: &facegate_store::CardCredential,
        _timeout: std::time::Duration,
    ) -> facegate_gallery::PanelReply {
        self.shown.lock().expect("lock").push(card.card_number);
        let granted = self.allowed.contains(&card.card_number);
        facegate_gallery::PanelReply {
            verdict: if granted { PanelVerdict::Granted } else { PanelVerdict::Denied },
            text: Some(if granted { "Welcome" } else { "See reception" }.into()),
        }
    }
}

fn card(card_number: u64) -> facegate_store::CardCredential {
    facegate_store::CardCredential {
        system: "default".into(),
        format: facegate_store::CardFormat::Wiegand26,
        facility_code: 12,
        card_number,
    }
}

fn reader_on(port: &str, install_mode: bool) -> ReaderSpec {
    let settings = facegate_store::ReaderSettings {
        transport: facegate_store::ReaderTransport::Serial,
        target: port.into(),
        address: 1,
        baud_rate: 115_200,
        install_mode,
        credential_system: "default".into(),
        verdict_timeout_ms: 2000,
    };
    ReaderSpec { settings, key: Some("00112233445566778899aabbccddeeff".into()) }
}

#[tokio::test]
async fn a_door_with_a_reader_asks_its_panel_but_never_presents_someone_anti_passback_keeps_out() {
    let panel = Arc::new(FakePanel { allowed: vec![3456], shown: std::sync::Mutex::default() });
    let ports: Vec<String> = (0..=MAX_READERS).map(|i| format!("/dev/ttyFG{i}")).collect();
    let w = world_with(|g| g.with_panels(panel.clone()).with_serial_ports(ports.clone())).await;
    let new = |name: &str, anti_passback: Option<facegate_store::AntiPassback>| NewDoor {
        collection_id: w.collection.clone(),
        name: name.into(),
        policy: DoorPolicy { anti_passback, ..policy(&[&w.alice, &w.bob], false) },
        created_at_ms: 0,
    };
    let entry = w.gallery.create_door(&w.actor, &new("entry", None)).await.expect("door").id;
    let paired =
        facegate_store::AntiPassback { direction: facegate_store::Direction::Exit, paired_door: entry.clone() };
    let exit = w.gallery.create_door(&w.actor, &new("exit", Some(paired))).await.expect("door").id;
    w.gallery.set_reader(&w.actor, &exit, reader_on(&ports[0], false)).await.expect("reader");
    for (subject, number) in [(&w.alice, 3456), (&w.bob, 999)] {
        w.gallery.set_credentials(&w.actor, &w.collection, subject, vec![card(number)]).await.expect("cards");
    }
    let attempt = |words: &'static [&'static str]| {
        let (gallery, actor, exit) = (&w.gallery, &w.actor, &exit);
        async move { gallery.door_attempt(actor, exit, images(words)).await.expect("decision") }
    };

    let granted = attempt(&["alice"]).await;
    assert_eq!((granted.access, granted.panel), (Access::Granted, Some(PanelVerdict::Granted)));
    assert_eq!(granted.panel_text.as_deref(), Some("Welcome"));
    let denied = attempt(&["bob"]).await;
    assert_eq!((denied.reason, denied.panel_text.as_deref()), (Some(DoorReason::PanelDenied), Some("See reception")));
    // Alice is inside: anti-passback denies her before her card reaches the panel (it would open the door).
    let again = attempt(&["alice"]).await;
    assert_eq!((again.access, again.reason, again.panel), (Access::Denied, Some(DoorReason::AntiPassback), None));
    assert_eq!(*panel.shown.lock().expect("lock"), vec![3456, 999], "presented once each");

    // The panel sets the reader's key in install mode: kept sealed, install mode off, in the trail.
    w.gallery.set_reader(&w.actor, &exit, reader_on(&ports[0], true)).await.expect("install mode");
    let new_key = [7u8; 16];
    w.gallery.keep_panel_key(&w.actor.tenant_id, &exit, &new_key).await.expect("kept");
    let run = w.gallery.reader_to_run(&w.actor, &exit).await.expect("reader").expect("set");
    assert_eq!((run.key, run.settings.install_mode), (new_key, false));
    let changes = w.gallery.changes(&w.actor, None, 1000).await.expect("changes");
    let by_panel = changes.iter().filter(|c| c.change.key_id.as_str() == PANEL_KEY_ID).count();
    assert_eq!(by_panel, 1, "{changes:?}");
    assert!(
        matches!(w.gallery.keep_panel_key(&w.actor.tenant_id, &entry, &new_key).await, Err(GalleryError::NotFound(_))),
        "a door without a reader keeps no key"
    );

    // At most MAX_READERS readers per tenant (each is a connection and a thread on the server).
    for (i, port) in ports.iter().enumerate().skip(1).take(MAX_READERS - 1) {
        let door = w.gallery.create_door(&w.actor, &new(&format!("door {i}"), None)).await.expect("door").id;
        w.gallery.set_reader(&w.actor, &door, reader_on(port, false)).await.expect("reader");
    }
    let one_more = w.gallery.create_door(&w.actor, &new("one more", None)).await.expect("door").id;
    let refused = w.gallery.set_reader(&w.actor, &one_more, reader_on(&ports[MAX_READERS], false)).await;
    assert!(matches!(refused, Err(GalleryError::Reader(ReaderProblem::TooMany))), "{refused:?}");
    w.gallery.set_reader(&w.actor, &exit, reader_on(&ports[0], false)).await.expect("replacing one still works");
}

#[tokio::test]
async fn a_signed_link_opens_one_best_shot_until_it_expires_and_not_after_an_erasure() {
    let now = Arc::new(std::sync::atomic::AtomicI64::new(1_800_000_000_000));
    let clock = now.clone();
    let w = world_with(|g| g.with_clock(Arc::new(move || clock.load(std::sync::atomic::Ordering::Relaxed)))).await;
    let sighting = facegate_store::NewSighting {
        collection_id: w.collection.clone(),
        camera: "lobby".into(),
        track_id: 1,
        decision: facegate_store::SightingDecision::Named,
        subject_id: Some(w.alice.clone()),
        cluster_id: None,
        score: Some(0.9),
        first_seen_ms: 1_000,
        last_seen_ms: 2_000,
        stream_first_s: 1.0,
        stream_last_s: 2.0,
    };
    let shot = b"\xff\xd8 a JPEG".to_vec();
    let evidence =
        facegate_gallery::TrackEvidence { template: direction(0).as_slice().to_vec(), best_shot: Some(shot.clone()) };
    let seq = w.gallery.record_sighting(&w.actor, &sighting, Some(&evidence)).await.expect("recorded");
    let path = w.gallery.best_shot_link(&w.actor.tenant_id, &w.collection, seq, 3600).await.expect("link");
    let link = parse_link(&path);
    assert_eq!(link.expires, 1_800_000_000 + 3600);
    assert_eq!(w.gallery.best_shot_by_link(&link).await.expect("opens"), shot);

    let refused = |link: BestShotLink| {
        let gallery = &w.gallery;
        async move { matches!(gallery.best_shot_by_link(&link).await, Err(GalleryError::Link(_))) }
    };
    assert!(refused(BestShotLink { seq: seq + 1, ..link.clone() }).await, "another sighting");
    assert!(refused(BestShotLink { expires: link.expires + 60, ..link.clone() }).await, "a longer life");
    assert!(refused(BestShotLink { signature: "00".repeat(32), ..link.clone() }).await, "a forged signature");
    assert!(refused(BestShotLink { signature: "not hex".into(), ..link.clone() }).await, "not hex");
    assert!(refused(BestShotLink { tenant_id: "nobody".into(), ..link.clone() }).await, "a tenant that is not");
    let other = w.gallery.keys().tenant("other", 0).await.expect("tenant");
    assert!(refused(BestShotLink { tenant_id: other.id, ..link.clone() }).await, "another tenant's key");
    now.store(1_800_000_000_000 + 3_601_000, std::sync::atomic::Ordering::Relaxed);
    assert!(refused(link.clone()).await, "expired");

    // Erasing the person erases the sighting's shot: a fresh link finds nothing.
    let path = w.gallery.best_shot_link(&w.actor.tenant_id, &w.collection, seq, 60).await.expect("link");
    assert_eq!(w.gallery.best_shot_by_link(&parse_link(&path)).await.expect("opens"), shot);
    w.gallery.delete_subject(&w.actor, &w.collection, &w.alice).await.expect("erased");
    let gone = w.gallery.best_shot_by_link(&parse_link(&path)).await;
    assert!(matches!(gone, Err(GalleryError::NotFound(_))), "{gone:?}");
}

/// A link's parts, from the path and query the gallery made.
fn parse_link(path: &str) -> BestShotLink {
    let url = url::Url::parse(&format!("http://facegate.invalid{path}")).expect("url");
    let parts: Vec<&str> = url.path_segments().expect("path").collect();
    assert_eq!(&parts[..2], ["v1", "best-shots"], "{path}");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    BestShotLink {
        tenant_id: parts[2].into(),
        collection_id: parts[3].into(),
        seq: parts[4].parse().expect("seq"),
        expires: query["expires"].parse().expect("expires"),
        signature: query["signature"].clone(),
    }
}
