//! Stage 2: alignment. A least-squares similarity transform (rotation, uniform scale, translation;
//! Umeyama's estimate without reflection) maps the 5 detected landmarks onto the ArcFace template, and
//! the face is resampled bilinearly into a 112×112 crop. Pixels mapped from outside the image are black,
//! so faces touching the border align like any other.

use image::{Rgb, RgbImage};

use crate::geometry::{BoundingBox, Point};

/// Side of the aligned crop, pixels.
pub const ALIGNED_SIZE: u32 = 112;

/// Landmark positions of the standard 112×112 ArcFace template: right eye, left eye, nose tip, right
/// mouth corner, left mouth corner (the subject's sides).
pub const ARCFACE_TEMPLATE: [Point; 5] = [
    Point::new(38.2946, 51.6963),
    Point::new(73.5318, 51.5014),
    Point::new(56.0252, 71.7366),
    Point::new(41.5493, 92.3655),
    Point::new(70.7299, 92.2041),
];

/// Where an embedder wants the 5 landmarks, and the side of its square input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    /// Side of the aligned crop, pixels.
    pub size: u32,
    /// The landmarks' places in the crop, in the detector's order.
    pub template: [Point; 5],
}

impl Alignment {
    /// The ArcFace template at 112×112 (most embedders).
    pub const ARCFACE: Alignment = Alignment { size: ALIGNED_SIZE, template: ARCFACE_TEMPLATE };

    /// Aligns a face by its 5 landmarks. `None` for degenerate landmarks (all in one point).
    pub fn align(&self, image: &RgbImage, landmarks: &[Point; 5]) -> Option<AlignedFace> {
        let transform = estimate_similarity(landmarks, &self.template)?;
        let image = warp_similarity(image, &transform, self.size, self.size)?;
        Some(AlignedFace { image, transform })
    }

    /// The face box cropped and stretched to the crop size without landmarks: the "no alignment"
    /// baseline, and the fallback for degenerate landmarks.
    pub fn crop_box(&self, image: &RgbImage, bbox: &BoundingBox) -> AlignedFace {
        let b = bbox.clipped(image.width() as f32, image.height() as f32);
        let (x, y) = (b.x as u32, b.y as u32);
        let w = (b.width as u32).clamp(1, image.width() - x.min(image.width() - 1));
        let h = (b.height as u32).clamp(1, image.height() - y.min(image.height() - 1));
        let scale_x = self.size as f32 / w as f32;
        AlignedFace {
            image: crate::resample::resize(image, Some([x, y, w, h]), self.size, self.size),
            transform: SimilarityTransform { a: scale_x, b: 0.0, tx: -(x as f32) * scale_x, ty: -(y as f32) * scale_x },
        }
    }
}

/// `dst = [a -b; b a] · src + [tx ty]`: rotation by atan2(b, a), scale hypot(a, b), then translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimilarityTransform {
    /// scale · cos(angle)
    pub a: f32,
    /// scale · sin(angle)
    pub b: f32,
    /// Horizontal translation, pixels.
    pub tx: f32,
    /// Vertical translation, pixels.
    pub ty: f32,
}

impl SimilarityTransform {
    /// Maps a point.
    pub fn apply(&self, p: Point) -> Point {
        Point::new(self.a * p.x - self.b * p.y + self.tx, self.b * p.x + self.a * p.y + self.ty)
    }

    /// The inverse transform (`None` for a degenerate, zero-scale transform).
    pub fn inverse(&self) -> Option<SimilarityTransform> {
        let det = self.a * self.a + self.b * self.b;
        if det <= f32::EPSILON {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(SimilarityTransform { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) })
    }
}

/// Least-squares similarity transform taking `src[i]` to `dst[i]` (closed form of Umeyama's method
/// restricted to proper rotations). Returns `None` when all source points coincide.
pub fn estimate_similarity(src: &[Point], dst: &[Point]) -> Option<SimilarityTransform> {
    let n = src.len().min(dst.len());
    if n < 2 {
        return None;
    }
    let mean = |pts: &[Point]| {
        let (sx, sy) = pts[..n].iter().fold((0.0f64, 0.0f64), |(x, y), p| (x + f64::from(p.x), y + f64::from(p.y)));
        (sx / n as f64, sy / n as f64)
    };
    let (msx, msy) = mean(src);
    let (mdx, mdy) = mean(dst);
    let (mut dot, mut cross, mut var) = (0.0f64, 0.0f64, 0.0f64);
    for (s, d) in src[..n].iter().zip(&dst[..n]) {
        let (sx, sy) = (f64::from(s.x) - msx, f64::from(s.y) - msy);
        let (dx, dy) = (f64::from(d.x) - mdx, f64::from(d.y) - mdy);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        var += sx * sx + sy * sy;
    }
    if var <= f64::EPSILON {
        return None;
    }
    let (a, b) = (dot / var, cross / var);
    Some(SimilarityTransform {
        a: a as f32,
        b: b as f32,
        tx: (mdx - (a * msx - b * msy)) as f32,
        ty: (mdy - (b * msx + a * msy)) as f32,
    })
}

/// A face resampled onto the 112×112 template.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    /// The 112×112 RGB crop.
    pub image: RgbImage,
    /// Image-to-crop transform used (identity-like for box crops).
    pub transform: SimilarityTransform,
}

/// Aligns a face by its 5 landmarks onto the ArcFace template ([`Alignment::align`]). Returns `None`
/// for degenerate landmarks (all in one point).
pub fn align_face(image: &RgbImage, landmarks: &[Point; 5]) -> Option<AlignedFace> {
    Alignment::ARCFACE.align(image, landmarks)
}

/// Resamples `image` through `transform` (image → output coordinates) into a `width` × `height` image,
/// bilinearly, black outside the source. `None` for a degenerate transform.
pub fn warp_similarity(image: &RgbImage, transform: &SimilarityTransform, width: u32, height: u32) -> Option<RgbImage> {
    let inverse = transform.inverse()?;
    let mut out = RgbImage::new(width, height);
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        let source = inverse.apply(Point::new(x as f32, y as f32));
        *pixel = sample_bilinear(image, source.x, source.y);
    }
    Some(out)
}

/// The face box cropped and stretched to 112×112 without landmarks ([`Alignment::crop_box`]).
pub fn crop_box_face(image: &RgbImage, bbox: &BoundingBox) -> AlignedFace {
    Alignment::ARCFACE.crop_box(image, bbox)
}

/// Bilinear sample at a sub-pixel position; neighbours outside the image count as black.
pub(crate) fn sample_bilinear(image: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    let mut acc = [0.0f32; 3];
    for (dx, dy, weight) in
        [(0, 0, (1.0 - fx) * (1.0 - fy)), (1, 0, fx * (1.0 - fy)), (0, 1, (1.0 - fx) * fy), (1, 1, fx * fy)]
    {
        let (sx, sy) = (x0 + dx, y0 + dy);
        if weight == 0.0 || sx < 0 || sy < 0 || sx >= w || sy >= h {
            continue;
        }
        let p = image.get_pixel(sx as u32, sy as u32);
        for c in 0..3 {
            acc[c] += weight * f32::from(p[c]);
        }
    }
    Rgb(acc.map(|v| v.round().clamp(0.0, 255.0) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_similarity() {
        let truth = SimilarityTransform { a: 0.8 * 0.3f32.cos(), b: 0.8 * 0.3f32.sin(), tx: 12.0, ty: -7.0 };
        let src: Vec<Point> = ARCFACE_TEMPLATE.iter().map(|p| Point::new(p.x * 3.0 + 40.0, p.y * 2.5 + 10.0)).collect();
        let dst: Vec<Point> = src.iter().map(|p| truth.apply(*p)).collect();
        let found = estimate_similarity(&src, &dst).expect("non-degenerate");
        for (s, d) in src.iter().zip(&dst) {
            let m = found.apply(*s);
            assert!((m.x - d.x).abs() < 1e-3 && (m.y - d.y).abs() < 1e-3);
        }
        let back = found.inverse().expect("invertible").apply(found.apply(src[0]));
        assert!((back.x - src[0].x).abs() < 1e-3 && (back.y - src[0].y).abs() < 1e-3);
    }

    #[test]
    fn degenerate_landmarks_are_rejected() {
        let same = [Point::new(5.0, 5.0); 5];
        assert!(estimate_similarity(&same, &ARCFACE_TEMPLATE).is_none());
        assert!(align_face(&RgbImage::new(10, 10), &same).is_none());
    }

    #[test]
    fn face_at_the_border_is_padded_black() {
        let image = RgbImage::from_pixel(50, 50, Rgb([200, 200, 200]));
        let landmarks = ARCFACE_TEMPLATE.map(|p| Point::new(p.x - 40.0, p.y - 40.0));
        let aligned = align_face(&image, &landmarks).expect("aligned");
        assert_eq!(aligned.image.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(aligned.image.get_pixel(60, 60).0, [200, 200, 200]);
        assert_eq!(aligned.image.get_pixel(100, 100).0, [0, 0, 0]);
    }
}
