//! Annotated copies of images: face boxes, landmarks and detector scores.

use facegate_core::DetectedFace;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_filled_rect_mut, draw_hollow_rect_mut};
use imageproc::rect::Rect;

const BOX_COLOUR: Rgb<u8> = Rgb([0, 255, 0]);
const LANDMARK_COLOURS: [Rgb<u8>; 5] =
    [Rgb([255, 0, 0]), Rgb([0, 0, 255]), Rgb([255, 255, 0]), Rgb([255, 0, 255]), Rgb([0, 255, 255])];
const TEXT_BACKGROUND: Rgb<u8> = Rgb([0, 0, 0]);
const TEXT_COLOUR: Rgb<u8> = Rgb([255, 255, 255]);

/// 3×5 bitmaps of the digits and the decimal point, one row per `u8`, bit 2 leftmost.
const GLYPHS: [(char, [u8; 5]); 11] = [
    ('0', [7, 5, 5, 5, 7]),
    ('1', [2, 6, 2, 2, 7]),
    ('2', [7, 1, 7, 4, 7]),
    ('3', [7, 1, 7, 1, 7]),
    ('4', [5, 5, 7, 1, 1]),
    ('5', [7, 4, 7, 1, 7]),
    ('6', [7, 4, 7, 5, 7]),
    ('7', [7, 1, 1, 1, 1]),
    ('8', [7, 5, 7, 5, 7]),
    ('9', [7, 5, 7, 1, 7]),
    ('.', [0, 0, 0, 0, 2]),
];

/// Draws every face's box, its 5 landmarks and its score (two decimals) above the box.
pub fn annotate(image: &RgbImage, faces: &[DetectedFace]) -> RgbImage {
    let mut out = image.clone();
    let thickness = (image.width().max(image.height()) / 400).max(1) as i32;
    let dot = thickness + 1;
    let pixel = thickness.max(2);
    for face in faces {
        let b = face.bbox;
        for t in 0..thickness {
            let w = (b.width as i32 - 2 * t).max(1) as u32;
            let h = (b.height as i32 - 2 * t).max(1) as u32;
            draw_hollow_rect_mut(&mut out, Rect::at(b.x as i32 + t, b.y as i32 + t).of_size(w, h), BOX_COLOUR);
        }
        for (point, colour) in face.landmarks.iter().zip(LANDMARK_COLOURS) {
            draw_filled_circle_mut(&mut out, (point.x as i32, point.y as i32), dot, colour);
        }
        let label = format!("{:.2}", face.score);
        let text_height = 7 * pixel;
        let top = (b.y as i32 - text_height).max(0);
        draw_text(&mut out, &label, b.x as i32, top, pixel);
    }
    out
}

fn draw_text(image: &mut RgbImage, text: &str, x: i32, y: i32, pixel: i32) {
    let width = (text.chars().count() as i32 * 4 + 1) * pixel;
    draw_filled_rect_mut(image, Rect::at(x, y).of_size(width as u32, (7 * pixel) as u32), TEXT_BACKGROUND);
    for (i, ch) in text.chars().enumerate() {
        let Some((_, rows)) = GLYPHS.iter().find(|(c, _)| *c == ch) else {
            continue;
        };
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    let px = x + (i as i32 * 4 + 1 + col) * pixel;
                    let py = y + (row as i32 + 1) * pixel;
                    draw_filled_rect_mut(image, Rect::at(px, py).of_size(pixel as u32, pixel as u32), TEXT_COLOUR);
                }
            }
        }
    }
}
