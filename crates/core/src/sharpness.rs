//! Image sharpness, for the enrolment quality gate.

use image::RgbImage;

use crate::align::Alignment;
use crate::detect::DetectedFace;

/// Sharpness of a face as the enrolment gate measures it: [`sharpness`] of the face aligned onto the
/// ArcFace 112×112 template, whatever crop the pack's embedder takes, so the gate's threshold means the
/// same with every pack.
pub fn face_sharpness(image: &RgbImage, face: &DetectedFace) -> f32 {
    let frame = Alignment::ARCFACE;
    let aligned = frame.align(image, &face.landmarks).unwrap_or_else(|| frame.crop_box(image, &face.bbox));
    sharpness(&aligned.image)
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
    }
}
