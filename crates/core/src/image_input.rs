//! Turning image bytes into RGB pixels, safely: format sniffing, a pixel budget checked against the
//! header before any pixel is decoded, EXIF orientation, greyscale and alpha flattened to RGB.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::error::ImageError;

/// Limits applied while decoding untrusted images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width × height, checked from the header before decoding.
    pub max_pixels: u64,
    /// Largest accepted width or height on its own.
    pub max_side: u32,
}

impl Default for DecodeLimits {
    /// 40 megapixels and 16384 px on a side: a 7000×5000 camera photo passes, a bomb does not.
    fn default() -> Self {
        Self { max_pixels: 40_000_000, max_side: 16_384 }
    }
}

/// Decodes JPEG, PNG, WebP or BMP bytes into an 8-bit RGB image (HWC, row-major), upright according
/// to the EXIF orientation tag. Alpha is composited onto white; greyscale is expanded to RGB.
///
/// # Errors
/// [`ImageError`] for empty, unsupported, oversized, zero-sized, truncated or corrupt input.
pub fn decode_image(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| ImageError::Corrupt(e.to_string()))?;
    match reader.format() {
        None => return Err(ImageError::Unsupported),
        Some(ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            return Err(ImageError::Corrupt("JPEG data is truncated (no end-of-image marker)".into()));
        }
        Some(_) => {}
    }
    let mut decoder = reader.into_decoder().map_err(map_decode_error)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ImageError::BadDimensions { width, height });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels || width > limits.max_side || height > limits.max_side {
        return Err(ImageError::TooLarge { width, height, max_pixels: limits.max_pixels });
    }
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(map_decode_error)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(flatten_to_rgb(image))
}

/// The JPEG decoder pads a truncated scan with grey instead of failing, so truncation is caught here: an
/// end-of-image marker must follow the last start-of-scan marker. Entropy-coded data never contains
/// either marker (0xFF is byte-stuffed there), and an embedded EXIF thumbnail's markers come earlier.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const START_OF_SCAN: [u8; 2] = [0xFF, 0xDA];
    const END_OF_IMAGE: [u8; 2] = [0xFF, 0xD9];
    let last_scan = bytes.windows(2).rposition(|w| w == START_OF_SCAN);
    match last_scan {
        Some(at) => bytes[at..].windows(2).any(|w| w == END_OF_IMAGE),
        None => false,
    }
}

fn map_decode_error(error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::Unsupported(_) => ImageError::Unsupported,
        image::ImageError::Limits(_) => ImageError::Corrupt("decoder memory limit exceeded".into()),
        other => ImageError::Corrupt(other.to_string()),
    }
}

fn flatten_to_rgb(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (width, height) = rgba.dimensions();
    let mut rgb = RgbImage::new(width, height);
    for (out, pixel) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u16::from(pixel[3]);
        for c in 0..3 {
            let blended = (u16::from(pixel[c]) * alpha + 255 * (255 - alpha) + 127) / 255;
            out[c] = blended as u8;
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgba, RgbaImage};

    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        image.write_to(&mut Cursor::new(&mut bytes), format).expect("encoding a small test image");
        bytes
    }

    #[test]
    fn empty_input_is_typed() {
        assert!(matches!(decode_image(&[], &DecodeLimits::default()), Err(ImageError::Empty)));
    }

    #[test]
    fn text_is_unsupported() {
        let err = decode_image(b"hello, this is not an image", &DecodeLimits::default());
        assert!(matches!(err, Err(ImageError::Unsupported)), "{err:?}");
    }

    #[test]
    fn truncated_png_is_corrupt() {
        let png = encode(&DynamicImage::new_rgb8(64, 64), ImageFormat::Png);
        let err = decode_image(&png[..png.len() / 2], &DecodeLimits::default());
        assert!(matches!(err, Err(ImageError::Corrupt(_))), "{err:?}");
    }

    #[test]
    fn pixel_budget_is_checked_before_decoding() {
        let png = encode(&DynamicImage::new_rgb8(300, 200), ImageFormat::Png);
        let limits = DecodeLimits { max_pixels: 50_000, max_side: 16_384 };
        let err = decode_image(&png, &limits);
        assert!(matches!(err, Err(ImageError::TooLarge { width: 300, height: 200, .. })), "{err:?}");
    }

    #[test]
    fn grey_and_alpha_become_rgb() {
        let grey = encode(&DynamicImage::new_luma8(8, 4), ImageFormat::Png);
        assert_eq!(decode_image(&grey, &DecodeLimits::default()).expect("grey").dimensions(), (8, 4));
        let transparent = RgbaImage::from_pixel(2, 2, Rgba([0, 0, 0, 0]));
        let png = encode(&DynamicImage::ImageRgba8(transparent), ImageFormat::Png);
        let rgb = decode_image(&png, &DecodeLimits::default()).expect("rgba");
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    }
}
