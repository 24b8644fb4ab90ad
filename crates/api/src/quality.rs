//! The enrolment quality gate: a face must be big enough, confidently detected and sharp.

use image::RgbImage;
use serde::Serialize;

/// Thresholds of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QualityGate {
    /// Smallest accepted face box side, pixels.
    pub min_face_size: f32,
    /// Smallest accepted detector score.
    pub min_detection_score: f32,
    /// Smallest accepted sharpness (variance of the Laplacian of the aligned grey crop).
    pub min_sharpness: f32,
}

impl Default for QualityGate {
    fn default() -> Self {
        Self { min_face_size: 48.0, min_detection_score: 0.75, min_sharpness: 40.0 }
    }
}

impl QualityGate {
    /// Why a face fails the gate, or `None` if it passes.
    pub fn reject_reason(&self, face_size: f32, detection_score: f32, sharpness: f32) -> Option<String> {
        if face_size < self.min_face_size {
            Some(format!("face is {face_size:.0} px, at least {:.0} px needed", self.min_face_size))
        } else if detection_score < self.min_detection_score {
            Some(format!("detection score {detection_score:.2} is below {:.2}", self.min_detection_score))
        } else if sharpness < self.min_sharpness {
            Some(format!("face is blurred (sharpness {sharpness:.0}, at least {:.0} needed)", self.min_sharpness))
        } else {
            None
        }
    }
}

/// Variance of the 4-neighbour Laplacian of the grey image: low for blurred faces.
pub fn sharpness(image: &RgbImage) -> f32 {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let grey: Vec<f32> =
        image.pixels().map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])).collect();
    let (mut sum, mut sum_sq, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let at = y * w + x;
            let laplacian = grey[at - 1] + grey[at + 1] + grey[at - w] + grey[at + w] - 4.0 * grey[at];
            sum += f64::from(laplacian);
            sum_sq += f64::from(laplacian) * f64::from(laplacian);
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sum_sq / n - mean * mean) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_is_not_sharp_and_edges_are() {
        assert_eq!(sharpness(&RgbImage::from_pixel(20, 20, image::Rgb([90, 90, 90]))), 0.0);
        let stripes =
            RgbImage::from_fn(20, 20, |x, _| if x % 2 == 0 { image::Rgb([0, 0, 0]) } else { image::Rgb([255; 3]) });
        assert!(sharpness(&stripes) > 1000.0);
        let gate = QualityGate::default();
        assert!(gate.reject_reason(30.0, 0.9, 100.0).is_some());
        assert!(gate.reject_reason(100.0, 0.5, 100.0).is_some());
        assert!(gate.reject_reason(100.0, 0.9, 1.0).is_some());
        assert!(gate.reject_reason(100.0, 0.9, 100.0).is_none());
    }
}
