//! Points and boxes in image pixel coordinates (x to the right, y down, origin at the top-left corner).

use serde::{Deserialize, Serialize};

/// A point in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Point {
    /// Horizontal coordinate, pixels.
    pub x: f32,
    /// Vertical coordinate, pixels.
    pub y: f32,
}

impl Point {
    /// A point at `(x, y)`.
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }
}

/// An axis-aligned box: top-left corner and size, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct BoundingBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

impl BoundingBox {
    /// Area in square pixels (0 for degenerate boxes).
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    /// Intersection over union with another box, in 0..=1.
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let x1 = self.x.max(other.x);
        let y1 = self.y.max(other.y);
        let x2 = (self.x + self.width).min(other.x + other.width);
        let y2 = (self.y + self.height).min(other.y + other.height);
        let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The box scaled by `sx`, `sy` (e.g. to normalised 0..1 coordinates).
    pub fn scaled(&self, sx: f32, sy: f32) -> BoundingBox {
        BoundingBox { x: self.x * sx, y: self.y * sy, width: self.width * sx, height: self.height * sy }
    }

    /// The box clipped to an image of `width` × `height` pixels.
    pub fn clipped(&self, width: f32, height: f32) -> BoundingBox {
        let x1 = self.x.clamp(0.0, width);
        let y1 = self.y.clamp(0.0, height);
        let x2 = (self.x + self.width).clamp(0.0, width);
        let y2 = (self.y + self.height).clamp(0.0, height);
        BoundingBox { x: x1, y: y1, width: x2 - x1, height: y2 - y1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_and_disjoint_boxes() {
        let a = BoundingBox { x: 0.0, y: 0.0, width: 10.0, height: 10.0 };
        let b = BoundingBox { x: 20.0, y: 20.0, width: 5.0, height: 5.0 };
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&b), 0.0);
        let half = BoundingBox { x: 5.0, y: 0.0, width: 10.0, height: 10.0 };
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-6);
    }
}
