//! Kept faces: what a collection may keep of an enrolled face so it can be re-embedded by another pack
//! later without the photo. The face is resampled upright onto a fixed 256×256 frame (the ArcFace
//! template scaled by 1.5 and centred, so the detector's box and some context fit), and the box,
//! landmarks and score are mapped into that frame. Any pack's alignment (its own template and crop
//! size, its landmark model) can then be applied to the frame as it would be to the photo.

use std::io::Cursor;

use image::RgbImage;

use crate::align::{ARCFACE_TEMPLATE, Alignment};
use crate::detect::DetectedFace;
use crate::error::PipelineError;
use crate::geometry::{BoundingBox, Point};

/// Side of a kept face's frame, pixels.
pub const KEPT_SIZE: u32 = 256;
/// Scale of the ArcFace template in the frame.
const KEPT_SCALE: f32 = 1.5;
/// First bytes of a serialised kept face (format version 1).
const MAGIC: &[u8; 4] = b"FGK1";
/// Values after the magic: box (4), landmarks (10), score (1), as little-endian `f32`.
const HEADER_VALUES: usize = 15;

/// Where the 5 landmarks are placed in a kept face's frame.
pub const KEPT_FRAME: Alignment = Alignment { size: KEPT_SIZE, template: kept_template() };

const fn kept_template() -> [Point; 5] {
    let offset = (KEPT_SIZE as f32 - 112.0 * KEPT_SCALE) / 2.0;
    let mut points = ARCFACE_TEMPLATE;
    let mut i = 0;
    while i < 5 {
        points[i] = Point::new(points[i].x * KEPT_SCALE + offset, points[i].y * KEPT_SCALE + offset);
        i += 1;
    }
    points
}

/// A face resampled onto the kept frame, with where the detector found it in that frame.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptFace {
    /// The 256×256 RGB frame.
    pub image: RgbImage,
    /// Box, landmarks and score in frame coordinates.
    pub face: DetectedFace,
}

impl KeptFace {
    /// Cuts `face` out of `image` onto the kept frame. `None` for degenerate landmarks.
    pub fn cut(image: &RgbImage, face: &DetectedFace) -> Option<Self> {
        let aligned = KEPT_FRAME.align(image, &face.landmarks)?;
        let t = aligned.transform;
        let scale = t.a.hypot(t.b);
        let centre = t.apply(Point::new(face.bbox.x + face.bbox.width / 2.0, face.bbox.y + face.bbox.height / 2.0));
        let (width, height) = (face.bbox.width * scale, face.bbox.height * scale);
        let bbox = BoundingBox { x: centre.x - width / 2.0, y: centre.y - height / 2.0, width, height };
        let side = KEPT_SIZE as f32;
        let bbox_normalized =
            BoundingBox { x: bbox.x / side, y: bbox.y / side, width: bbox.width / side, height: bbox.height / side };
        let face =
            DetectedFace { bbox, bbox_normalized, landmarks: face.landmarks.map(|p| t.apply(p)), score: face.score };
        Some(Self { image: aligned.image, face })
    }

    /// The kept face as bytes: a small header and the frame as a PNG (lossless).
    ///
    /// # Errors
    /// [`PipelineError::Config`] if the PNG encoder fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PipelineError> {
        let f = &self.face;
        let b = &f.bbox;
        let mut values = vec![b.x, b.y, b.width, b.height];
        values.extend(f.landmarks.iter().flat_map(|p| [p.x, p.y]));
        values.push(f.score);
        let mut bytes = MAGIC.to_vec();
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let mut png = Cursor::new(Vec::new());
        self.image
            .write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| PipelineError::Config(format!("kept face: {e}")))?;
        bytes.extend(png.into_inner());
        Ok(bytes)
    }

    /// Reads bytes written by [`KeptFace::to_bytes`].
    ///
    /// # Errors
    /// [`PipelineError::Config`] for bytes of another format or a frame of the wrong size.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PipelineError> {
        let bad = |what: &str| PipelineError::Config(format!("not a kept face: {what}"));
        let header = MAGIC.len() + HEADER_VALUES * 4;
        if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad("unknown header"));
        }
        let values: Vec<f32> =
            bytes[MAGIC.len()..header].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let image = image::load_from_memory_with_format(&bytes[header..], image::ImageFormat::Png)
            .map_err(|e| bad(&e.to_string()))?
            .to_rgb8();
        if image.dimensions() != (KEPT_SIZE, KEPT_SIZE) {
            return Err(bad("frame size"));
        }
        let side = KEPT_SIZE as f32;
        let bbox = BoundingBox { x: values[0], y: values[1], width: values[2], height: values[3] };
        let bbox_normalized =
            BoundingBox { x: bbox.x / side, y: bbox.y / side, width: bbox.width / side, height: bbox.height / side };
        let landmarks = std::array::from_fn(|i| Point::new(values[4 + 2 * i], values[5 + 2 * i]));
        Ok(Self { image, face: DetectedFace { bbox, bbox_normalized, landmarks, score: values[14] } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_face_round_trips_and_its_landmarks_land_on_the_frame_template() {
        let mut image = RgbImage::new(300, 200);
        for (x, y, p) in image.enumerate_pixels_mut() {
            *p = image::Rgb([(x % 251) as u8, (y % 199) as u8, ((x + y) % 7) as u8]);
        }
        // A face twice the template's size, shifted: landmarks map exactly onto the frame's template.
        let landmarks = ARCFACE_TEMPLATE.map(|p| Point::new(p.x * 2.0 + 20.0, p.y * 2.0 - 30.0));
        let bbox = BoundingBox { x: 40.0, y: 30.0, width: 180.0, height: 200.0 };
        let face = DetectedFace { bbox, bbox_normalized: bbox, landmarks, score: 0.9 };
        let kept = KeptFace::cut(&image, &face).expect("cut");
        for (got, want) in kept.face.landmarks.iter().zip(KEPT_FRAME.template) {
            assert!((got.x - want.x).abs() < 1e-3 && (got.y - want.y).abs() < 1e-3, "{got:?} vs {want:?}");
        }
        assert!((kept.face.bbox.width - 135.0).abs() < 1e-3, "box scaled by 0.75: {:?}", kept.face.bbox);
        let back = KeptFace::from_bytes(&kept.to_bytes().expect("bytes")).expect("read");
        assert_eq!(back, kept);
        assert!(KeptFace::from_bytes(b"FGK1 too short").is_err());
        assert!(KeptFace::from_bytes(&[0; 200]).is_err());
    }
}
