//! The liveness stage on the labelled real / spoof frames of `shared/data/liveness`: the error rates
//! the README reports, and the original repository's own samples decided as it decides them.

use facegate_core::{DEFAULT_PACK, DecodeLimits, PipelineConfig, decode_image, largest_face};
use facegate_eval::liveness::{LivenessRates, read_labels};
use facegate_testing::{pipeline_with, shared_dir};

#[test]
fn the_labelled_frames_give_the_reported_error_rates() {
    let pipeline = pipeline_with(DEFAULT_PACK, PipelineConfig::default());
    let threshold = pipeline.liveness_spec().expect("the default pack scores liveness").threshold;
    let samples = read_labels(&shared_dir().join("data/liveness")).expect("labels.csv");
    assert_eq!(samples.len(), 828);
    let scored: Vec<_> = samples
        .iter()
        .map(|sample| {
            let bytes = std::fs::read(&sample.path).expect("frame");
            let image = decode_image(&bytes, &DecodeLimits::default()).expect("decodes");
            let face = largest_face(pipeline.detect(&image).expect("detect"));
            (sample, face.map(|f| pipeline.liveness(&image, &f).expect("liveness").score))
        })
        .collect();
    let without: Vec<_> = scored.iter().filter(|(_, score)| score.is_none()).map(|(s, _)| &s.path).collect();
    assert!(without.is_empty(), "a face in every frame: {without:?}");
    let rates = LivenessRates::at(&scored, threshold);
    // README: APCER 0 % for every attack type, BPCER 5.4 % (20 of 373 real frames, all NUAA).
    for (attack, (apcer, n)) in &rates.apcer {
        assert_eq!(*apcer, 0.0, "{attack}: {n} frames");
    }
    let refused = (rates.bpcer * rates.bona_fide as f64).round() as usize;
    assert_eq!(rates.bona_fide, 373);
    assert!((18..=22).contains(&refused), "BPCER {:.2} % ({refused} of 373)", rates.bpcer * 100.0);

    // Minivision's own samples: image_T1 is real, image_F1 (poster) and image_F2 (tablet) are not.
    let score = |name: &str| {
        let sample = scored.iter().find(|(s, _)| s.path.ends_with(name)).expect("sample");
        sample.1.expect("face")
    };
    assert!(score("image_T1.jpg") >= threshold, "real: {}", score("image_T1.jpg"));
    assert!(score("image_F1.jpg") < threshold, "poster: {}", score("image_F1.jpg"));
    assert!(score("image_F2.jpg") < threshold, "tablet: {}", score("image_F2.jpg"));
}
