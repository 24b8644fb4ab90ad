//! Training on real LFW faces through the real pipeline: the classifier learns, a stopped run resumed
//! from its checkpoint equals an uninterrupted one, bad datasets are refused, and a trained embedding
//! pack loads and embeds through the normal pipeline.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use facegate_core::PipelineConfig;
use facegate_models::{builtin_manifest, register_pack};
use facegate_testing::{LFW_TEN_PEOPLE, default_pipeline, lfw_image, lfw_ten_people_dataset, load_image, model_cache};
use facegate_train::{
    Classifier, ClassifierOptions, ClassifierRun, DatasetListing, Device, EmbeddingOptions, EmbeddingRun, EpochMetrics,
    FaceDataset, PrepCache, Quiet, RunContext, TrainError, TrainObserver, prepare_faces, pretrained_embeddings,
    train_classifier, train_embedding_head, training_device,
};

fn prepared(dir: &Path) -> (PathBuf, FaceDataset, PrepCache) {
    let root = lfw_ten_people_dataset(dir);
    let listing = DatasetListing::read(&root, 2, false).expect("listing");
    assert_eq!(listing.people.len(), 10);
    let pipelines = std::slice::from_ref(default_pipeline());
    let cache = PrepCache::new(&dir.join("cache"), default_pipeline()).expect("cache");
    let dataset = prepare_faces(&listing, pipelines, &cache, true, &|| {}).expect("faces");
    assert!(dataset.samples.len() >= 200, "{} faces", dataset.samples.len());
    (root, dataset, cache)
}

fn run<'a>(dir: &'a Path, device: &'a Device, observer: &'a dyn TrainObserver, stop: &'a AtomicBool) -> RunContext<'a> {
    RunContext { dir, device, observer, stop }
}

fn quick_options(epochs: usize) -> ClassifierOptions {
    ClassifierOptions { input_size: 48, epochs, batch_size: 16, ..ClassifierOptions::default() }
}

fn finished(run: ClassifierRun) -> facegate_train::ClassifierReport {
    match run {
        ClassifierRun::Finished { report } => *report,
        ClassifierRun::Interrupted { completed } => panic!("interrupted after {completed}"),
    }
}

#[test]
fn classifier_learns_ten_lfw_people_and_beats_chance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, dataset, _) = prepared(dir.path());
    let run_dir = dir.path().join("run");
    let device = training_device(false).expect("cpu");
    let stop = AtomicBool::new(false);
    let report = finished(
        train_classifier(&dataset, &root, "mobilefacenet", &quick_options(6), run(&run_dir, &device, &Quiet, &stop))
            .expect("training"),
    );
    let (first, last) = (&report.history[0], &report.history[report.history.len() - 1]);
    assert!(last.train_loss < first.train_loss * 0.85, "training loss {} -> {}", first.train_loss, last.train_loss);
    // Chance is 10 %.
    assert!(last.validation_accuracy >= 0.3, "validation accuracy {}", last.validation_accuracy);
    assert!(report.test.accuracy >= 0.3, "test accuracy {}", report.test.accuracy);
    for file in ["report.json", "curves.svg", "model/classifier.json", "model/weights.bpk", "checkpoint/state.json"] {
        assert!(run_dir.join(file).is_file(), "{file} written");
    }
    let svg = std::fs::read_to_string(run_dir.join("curves.svg")).expect("plot");
    assert!(svg.contains("<svg") && svg.contains("polyline"), "a plot with curves");

    let classifier = Classifier::load(&run_dir).expect("load model");
    let test_crops: Vec<_> = dataset.samples.iter().step_by(7).map(|s| s.crop.clone()).collect();
    let answers = classifier.classify(&test_crops, Some(0.0));
    assert_eq!(answers.len(), test_crops.len());
    assert!(answers.iter().all(|a| LFW_TEN_PEOPLE.contains(&a.best_guess.as_str()) && a.person.is_some()));
    let rejected = classifier.classify(&test_crops, Some(1.01));
    assert!(rejected.iter().all(|a| a.person.is_none()), "everything is unknown above probability 1");
}

/// Raises the stop flag when an epoch ends, as Ctrl-C would.
struct StopAfter<'a> {
    epoch: usize,
    stop: &'a AtomicBool,
}

impl TrainObserver for StopAfter<'_> {
    fn epoch_started(&self, _: usize, _: usize, _: usize) {}
    fn batch_done(&self, _: f64, _: f64) {}
    fn epoch_done(&self, metrics: &EpochMetrics) {
        if metrics.epoch == self.epoch {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn stopped_then_resumed_run_equals_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, dataset, _) = prepared(dir.path());
    let device = training_device(false).expect("cpu");
    let options = quick_options(2);

    let straight_dir = dir.path().join("straight");
    let straight = finished(
        train_classifier(
            &dataset,
            &root,
            "mobilefacenet",
            &options,
            run(&straight_dir, &device, &Quiet, &AtomicBool::new(false)),
        )
        .expect("uninterrupted"),
    );

    let resumed_dir = dir.path().join("resumed");
    let stop = AtomicBool::new(false);
    let stopper = StopAfter { epoch: 1, stop: &stop };
    let first =
        train_classifier(&dataset, &root, "mobilefacenet", &options, run(&resumed_dir, &device, &stopper, &stop))
            .expect("first part");
    assert!(matches!(first, ClassifierRun::Interrupted { completed: 1 }), "stopped after epoch 1");
    assert!(resumed_dir.join("checkpoint/state.json").is_file(), "the last checkpoint is kept");
    let resume = ClassifierOptions { resume: true, ..options.clone() };
    let resumed = finished(
        train_classifier(
            &dataset,
            &root,
            "mobilefacenet",
            &resume,
            run(&resumed_dir, &device, &Quiet, &AtomicBool::new(false)),
        )
        .expect("resumed"),
    );

    let losses = |r: &facegate_train::ClassifierReport| r.history.iter().map(|m| m.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&straight), losses(&resumed), "same training losses epoch by epoch");
    assert_eq!(straight.test.loss, resumed.test.loss);
    let crops: Vec<_> = dataset.samples.iter().step_by(5).map(|s| s.crop.clone()).collect();
    let a = Classifier::load(&straight_dir).expect("a").classify(&crops, None);
    let b = Classifier::load(&resumed_dir).expect("b").classify(&crops, None);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.top, y.top, "identical probabilities");
    }

    // A checkpoint of other settings is refused rather than silently mixed in.
    let other = ClassifierOptions { resume: true, learning_rate: 0.5, ..options };
    let refused = train_classifier(&dataset, &root, "mobilefacenet", &other, run(&resumed_dir, &device, &Quiet, &stop));
    assert!(matches!(refused, Err(TrainError::Record(_))));
}

#[test]
fn bad_datasets_are_refused_with_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("nobody")).expect("dirs");
    assert!(matches!(DatasetListing::read(&empty, 2, false), Err(TrainError::EmptyDataset(_))));
    assert!(matches!(DatasetListing::read(&dir.path().join("missing"), 2, false), Err(TrainError::NotADirectory(_))));

    let root = dir.path().join("people");
    for (person, count) in [("Angelina_Jolie", 3), ("Jiang_Zemin", 1)] {
        std::fs::create_dir_all(root.join(person)).expect("person dir");
        for n in 1..=count {
            std::fs::copy(lfw_image(person, n), root.join(person).join(format!("{n}.jpg"))).expect("copy");
        }
    }
    let error = DatasetListing::read(&root, 2, false).expect_err("one photo is too few");
    assert!(error.to_string().contains("Jiang_Zemin (1)"), "{error}");
    let listing = DatasetListing::read(&root, 2, true).expect("left out when asked");
    assert_eq!(listing.excluded, vec![("Jiang_Zemin".to_string(), 1)]);

    // A photo without a face: refused unless explicitly skipped, then listed.
    let blank = image::RgbImage::from_pixel(160, 160, image::Rgb([128, 128, 128]));
    blank.save(root.join("Angelina_Jolie").join("blank.png")).expect("blank");
    let listing = DatasetListing::read(&root, 2, true).expect("listing");
    let cache = PrepCache::new(&dir.path().join("cache"), default_pipeline()).expect("cache");
    let pipelines = std::slice::from_ref(default_pipeline());
    match prepare_faces(&listing, pipelines, &cache, false, &|| {}) {
        Err(TrainError::NoFace { paths }) => assert!(paths[0].ends_with("blank.png"), "{paths:?}"),
        other => panic!("expected NoFace, got {:?}", other.map(|d| d.samples.len())),
    }
    let dataset = prepare_faces(&listing, pipelines, &cache, true, &|| {}).expect("skipping");
    assert_eq!(dataset.samples.len(), 3);
    assert_eq!(dataset.skipped_faceless.len(), 1);
    // One person is not a classification problem.
    let stop = AtomicBool::new(false);
    let device = training_device(false).expect("cpu");
    let run_dir = dir.path().join("run");
    let refused =
        train_classifier(&dataset, &root, "mobilefacenet", &quick_options(1), run(&run_dir, &device, &Quiet, &stop));
    assert!(matches!(refused, Err(TrainError::TooFewPeople { found: 1, .. })));
}

#[test]
fn trained_embedding_pack_loads_and_embeds_through_the_pipeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, dataset, cache) = prepared(dir.path());
    let pipelines = std::slice::from_ref(default_pipeline());
    let embeddings = pretrained_embeddings(&dataset, pipelines, &cache, &|_| {}).expect("embeddings");
    assert_eq!(embeddings.len(), dataset.samples.len());
    let manifest = builtin_manifest().expect("manifest");
    let base = manifest.pack("mobilefacenet").expect("mobilefacenet pack").clone();
    let options = EmbeddingOptions {
        epochs: 3,
        batch_size: 32,
        learning_rate: 1e-3,
        pack_name: "lfw10-test".into(),
        ..Default::default()
    };
    let run_dir = dir.path().join("run");
    let device = training_device(false).expect("cpu");
    let stop = AtomicBool::new(false);
    let report = match train_embedding_head(
        &dataset,
        &embeddings,
        &root,
        &base,
        &options,
        run(&run_dir, &device, &Quiet, &stop),
    )
    .expect("training")
    {
        EmbeddingRun::Finished { report } => report,
        EmbeddingRun::Interrupted { .. } => panic!("interrupted"),
    };
    assert_eq!(report.people_per_split, [6, 2, 2]);
    assert!(report.history[2].train_loss < report.history[0].train_loss, "ArcFace loss goes down");
    assert!(report.test.without_head.tar_at_far_1e3 > 0.5 && report.test.with_head.tar_at_far_1e3 > 0.5);

    // The pack folder goes through the same registration as `--pack DIR`.
    let mut manifest = manifest;
    let name = register_pack(&mut manifest, &run_dir.join("pack").display().to_string()).expect("register");
    assert_eq!(name, "lfw10-test");
    let cache = model_cache();
    let environment = cache.onnxruntime(&manifest.runtime).expect("ort");
    let adapted = cache.load_pipeline(environment, &manifest, &name, PipelineConfig::default()).expect("pack loads");
    assert_eq!(adapted.embedding_size(), 128);
    assert!(!adapted.calibration().points().is_empty(), "the pack carries its own calibration");
    let image = load_image(&lfw_image("Angelina_Jolie", 1));
    let plain = default_pipeline().analyze(&image).expect("plain");
    let projected = adapted.analyze(&image).expect("adapted");
    assert_eq!(projected.len(), plain.len());
    let (a, b) = (&plain[0].embedding, &projected[0].embedding);
    assert_eq!(b.len(), 128);
    assert!((b.as_slice().iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-4, "unit length");
    // The exported head is the best epoch on the validation people; epoch 0 is the identity.
    if report.selected_epoch == 0 {
        assert!(a.cosine(b) > 0.99999, "identity head: the pretrained template");
    } else {
        assert!(a.cosine(b) < 0.99999, "the head changes the template");
        assert!(a.cosine(b) > 0.5, "a light adaptation of the pretrained template, not noise");
        let chosen = &report.history[report.selected_epoch - 1];
        assert!(report.history.iter().all(|m| m.validation_tar_at_far_1e3 <= chosen.validation_tar_at_far_1e3));
    }
    // Same person, other photo: still a match in the adapted space.
    let other = adapted.analyze(&load_image(&lfw_image("Angelina_Jolie", 2))).expect("other");
    assert!(b.cosine(&other[0].embedding) > 0.3);
}
