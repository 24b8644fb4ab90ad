//! The Apache-2.0 pack `omz-0095` (YuNet → OMZ landmarks-regression-retail-0009 → OMZ
//! face-reidentification-retail-0095 on its own 128×128 template) on a fixed LFW subset, through the
//! evaluation crate's protocol: its accuracy and TAR, and that the calibration table in the manifest
//! agrees with what the subset shows. The full 6000-pair run is a benchmark (README, Figures).

use facegate_core::PipelineConfig;
use facegate_eval::lfw::Lfw;
use facegate_eval::metrics::{tar_at_far, ten_fold_accuracy};
use facegate_eval::subject::subject_template;
use facegate_testing::{lfw_dir, lfw_image, load_image, pipeline_with};

/// Pairs per fold half: 20 genuine and 20 impostor pairs in each of the 10 folds.
const PAIRS_PER_HALF: usize = 20;

#[test]
fn the_omz_pack_verifies_a_fixed_lfw_subset_as_its_calibration_says() {
    let pipeline = pipeline_with("omz-0095", PipelineConfig::default());
    assert_eq!(pipeline.embedding_size(), 256);
    assert_eq!(pipeline.alignment().size, 128);
    assert!(pipeline.landmark_spec().is_some(), "the pack's landmark model places the landmarks");
    let pairs = Lfw::open(&lfw_dir()).expect("LFW").pairs(Some(PAIRS_PER_HALF)).expect("pairs");
    assert_eq!(pairs.len(), 400);
    let embed = |path| subject_template(&pipeline, &load_image(path)).expect("embedded").0;
    let scored: Vec<(usize, f32, bool)> =
        pairs.iter().map(|p| (p.fold, embed(&p.a).cosine(&embed(&p.b)), p.same)).collect();

    let folds = ten_fold_accuracy(&scored);
    let accuracy = folds.iter().map(|f| f.0).sum::<f64>() / folds.len() as f64;
    let genuine: Vec<f32> = scored.iter().filter(|s| s.2).map(|s| s.1).collect();
    let impostor: Vec<f32> = scored.iter().filter(|s| !s.2).map(|s| s.1).collect();
    let tar = tar_at_far(&genuine, &impostor, 1e-3);
    eprintln!("omz-0095 on {} LFW pairs: accuracy {accuracy:.4}, TAR at the largest impostor {tar:.4}", pairs.len());
    assert!(accuracy >= 0.99, "10-fold accuracy {accuracy}");
    assert!(tar >= 0.98, "TAR at FAR 1e-3 {tar}");

    // The manifest's threshold at FMR 1e-3 accepts at most one of these 200 impostor pairs (expected:
    // 0.2) and at least the calibrated TAR less 3 points of the genuine ones.
    let calibration = pipeline.calibration();
    let threshold = calibration.threshold_for(1e-3).expect("calibrated at 1e-3");
    let calibrated_tar =
        calibration.points().iter().find(|p| p.fmr == 1e-3).and_then(|p| p.tar).expect("a 1e-3 row with its TAR");
    let false_matches = impostor.iter().filter(|&&s| s >= threshold).count();
    let accepted = genuine.iter().filter(|&&s| s >= threshold).count() as f64 / genuine.len() as f64;
    assert!(false_matches <= 1, "{false_matches} impostor pairs at or above {threshold}");
    assert!(
        accepted >= calibrated_tar - 0.03,
        "TAR {accepted} at the calibrated threshold, table says {calibrated_tar}"
    );
}

/// Rotates an image about its centre by `degrees` (bilinear), on a canvas large enough to keep it whole.
fn rotate(image: &image::RgbImage, degrees: f32) -> image::RgbImage {
    let side = ((image.width().pow(2) + image.height().pow(2)) as f32).sqrt().ceil() as u32;
    let mut canvas = image::RgbImage::new(side, side);
    image::imageops::overlay(
        &mut canvas,
        image,
        i64::from((side - image.width()) / 2),
        i64::from((side - image.height()) / 2),
    );
    imageproc::geometric_transformations::rotate_about_center(
        &canvas,
        degrees.to_radians(),
        imageproc::geometric_transformations::Interpolation::Bilinear,
        image::Rgb([0, 0, 0]),
    )
}

/// Cosine of each rotated copy (±10°, ±20°, ±30°) of four LFW faces to its upright original.
fn rotated_copy_scores(pipeline: &facegate_core::Pipeline) -> Vec<f32> {
    let mut scores = Vec::new();
    for (person, n) in [("Tony_Blair", 1), ("Serena_Williams", 1), ("Colin_Powell", 1), ("Hugo_Chavez", 1)] {
        let image = load_image(&lfw_image(person, n));
        let original = pipeline.analyze(&image).expect("analyze").remove(0).embedding;
        for degrees in [-30.0, -20.0, -10.0, 10.0, 20.0, 30.0] {
            let rotated = pipeline.analyze(&rotate(&image, degrees)).expect("analyze rotated");
            scores.push(rotated.iter().map(|f| f.embedding.cosine(&original)).fold(-1.0f32, f32::max));
        }
    }
    scores
}

#[test]
fn the_landmark_model_keeps_tilted_faces_aligned() {
    let with_model = pipeline_with("omz-0095", PipelineConfig::default());
    let without = pipeline_with("omz-0095", PipelineConfig { landmark_model: false, ..PipelineConfig::default() });
    let (placed, detected) = (rotated_copy_scores(&with_model), rotated_copy_scores(&without));
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    eprintln!(
        "rotated copies: mean cosine {:.4} with the landmark model, {:.4} without",
        mean(&placed),
        mean(&detected)
    );
    let strictest = with_model.calibration().threshold_for(1e-6).expect("calibrated at 1e-6");
    for score in &placed {
        assert!(*score >= 0.97 && *score >= strictest, "a rotated copy scored {score}");
    }
    assert!(mean(&placed) > mean(&detected), "the landmark model aligns tilted faces at least as well");
}

/// The default pack embeds a probe once and an enrolled template with its mirror image (measured: LFW
/// 99.52 % against a mirrored gallery, false matches at the calibrated thresholds no higher): the policy
/// is the pack's, a kept template is exactly the always-mirrored one, a probe exactly the unmirrored one,
/// and the two stay close.
#[test]
fn the_default_pack_mirrors_enrolled_templates_and_not_probes() {
    use facegate_core::{EmbedderConfig, Extras, Mirror};
    let with = |mirror: Option<Mirror>| {
        let embedder = EmbedderConfig { mirror, ..EmbedderConfig::default() };
        pipeline_with("omz-0095", PipelineConfig { embedder, ..PipelineConfig::default() })
    };
    let (default, always, never) = (with(None), with(Some(Mirror::Always)), with(Some(Mirror::Never)));
    assert_eq!(default.config().embedder.mirror_policy(), Mirror::Kept, "the pack's choice");
    assert_eq!(default.pack().mirror, Mirror::Kept);
    let only = |pipeline: &facegate_core::Pipeline, image: &image::RgbImage, best_template: bool| {
        let extras = Extras { best_template, ..Extras::default() };
        let mut faces = pipeline.analyze_image(image, 1, extras).expect("analysed").faces;
        assert_eq!(faces.len(), 1);
        faces.remove(0).embedding
    };
    for (person, number) in [("Aaron_Peirsol", 1), ("Colin_Powell", 3), ("Serena_Williams", 2), ("Tony_Blair", 5)] {
        let image = load_image(&lfw_image(person, number));
        let (kept, probe) = (only(&default, &image, true), only(&default, &image, false));
        assert!(kept.cosine(&only(&always, &image, false)) > 0.99999, "{person}: kept = mirrored");
        assert!(probe.cosine(&only(&never, &image, false)) > 0.99999, "{person}: probe = unmirrored");
        let close = kept.cosine(&probe);
        assert!((0.9..0.99999).contains(&close), "{person}: probe and template close, not the same: {close}");
    }
}
