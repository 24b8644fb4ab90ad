//! Turning image bytes into RGB pixels, safely: format sniffing, a pixel budget and a memory budget
//! checked against the header before any pixel is decoded, EXIF orientation, greyscale and alpha
//! flattened to RGB.
//!
//! The memory budget counts bytes, not pixels: a 16-bit RGBA image needs 8 bytes a pixel in the
//! decoder's native format before it is flattened to 3. PNG (the format where deep and alpha images
//! are common) is therefore streamed row by row straight into 8-bit RGB, so only the RGB output counts;
//! other formats count their native buffer plus the conversion to RGB.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::error::ImageError;

/// Limits applied while decoding untrusted images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width × height, checked from the header before decoding.
    pub max_pixels: u64,
    /// Largest accepted width or height on its own.
    pub max_side: u32,
    /// Most bytes the decoded pixels may take at once while decoding (the decoder's native buffer plus
    /// the conversion to 8-bit RGB), checked from the header before decoding.
    pub max_decoded_bytes: u64,
}

/// 8-bit RGB: bytes per pixel of the decoded output.
const RGB_BYTES: u64 = 3;

impl Default for DecodeLimits {
    /// 40 megapixels and 16384 px on a side: a 7000×5000 camera photo passes, a bomb does not. 128 MiB
    /// of pixels: any 40 MP 8-bit RGB image (120 MB), or a PNG of any depth streamed to RGB.
    fn default() -> Self {
        Self { max_pixels: 40_000_000, max_side: 16_384, max_decoded_bytes: 128 * 1024 * 1024 }
    }
}

impl DecodeLimits {
    fn check_dimensions(&self, width: u32, height: u32) -> Result<(), ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::BadDimensions { width, height });
        }
        if u64::from(width) * u64::from(height) > self.max_pixels || width > self.max_side || height > self.max_side {
            return Err(ImageError::TooLarge { width, height, max_pixels: self.max_pixels });
        }
        Ok(())
    }

    fn check_bytes(&self, width: u32, height: u32, bytes: u64) -> Result<(), ImageError> {
        if bytes > self.max_decoded_bytes {
            return Err(ImageError::TooManyBytes { width, height, bytes, max_bytes: self.max_decoded_bytes });
        }
        Ok(())
    }
}

/// The width and height a BMP header claims (BITMAPCOREHEADER or any later info header), if it is long
/// enough to say.
fn bmp_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let i32_at = |at: usize| Some(i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let header_size = i32_at(14)?;
    if header_size == 12 {
        return Some((u32::from(u16_at(18)?), u32::from(u16_at(20)?)));
    }
    // Negative heights are top-down images; the size is the magnitude.
    Some((i32_at(18)?.unsigned_abs(), i32_at(22)?.unsigned_abs()))
}

/// Decodes JPEG, PNG, WebP or BMP bytes into an 8-bit RGB image (HWC, row-major), upright according
/// to the EXIF orientation tag. Alpha is composited onto white; greyscale is expanded to RGB.
///
/// # Errors
/// [`ImageError`] for empty, unsupported, oversized, zero-sized, truncated or corrupt input.
pub fn decode_image(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, ImageError> {
    let reader = open(bytes, limits)?;
    if reader.format() == Some(ImageFormat::Png)
        && let Some(image) = decode_png_streaming(bytes, limits)?
    {
        return Ok(image);
    }
    let mut decoder = reader.into_decoder().map_err(map_decode_error)?;
    let (width, height) = decoder.dimensions();
    limits.check_dimensions(width, height)?;
    limits.check_bytes(width, height, generic_cost(width, height, decoder.total_bytes(), decoder.color_type()))?;
    let mut budget = image::Limits::no_limits();
    budget.max_alloc = Some(limits.max_decoded_bytes);
    decoder.set_limits(budget).map_err(map_decode_error)?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(map_decode_error)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(flatten_to_rgb(image))
}

/// What decoding an image will hold in memory, from its header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeCost {
    /// Width claimed by the header.
    pub width: u32,
    /// Height claimed by the header.
    pub height: u32,
    /// Bytes [`decode_image`] holds at once for it (the same count its byte limit checks).
    pub bytes: u64,
}

/// Reads an image's header and says what decoding it will cost, applying the same limits as
/// [`decode_image`], so a caller can reserve memory (or refuse) before decoding.
///
/// # Errors
/// The [`ImageError`]s of [`decode_image`] that the header alone reveals.
pub fn decode_cost(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodeCost, ImageError> {
    let reader = open(bytes, limits)?;
    let (width, height, bytes) = if reader.format() == Some(ImageFormat::Png) {
        let mut decoder = png::Decoder::new(Cursor::new(bytes));
        let header = decoder.read_header_info().map_err(map_png_error)?;
        let (width, height) = (header.width, header.height);
        limits.check_dimensions(width, height)?;
        let pixels = u64::from(width) * u64::from(height);
        // Streamed: the RGB output. Interlaced: decoded whole, at most 16-bit RGBA plus the conversion.
        let per_pixel = if header.interlaced { 8 + 4 + RGB_BYTES } else { RGB_BYTES };
        (width, height, pixels * per_pixel)
    } else {
        let decoder = reader.into_decoder().map_err(map_decode_error)?;
        let (width, height) = decoder.dimensions();
        limits.check_dimensions(width, height)?;
        (width, height, generic_cost(width, height, decoder.total_bytes(), decoder.color_type()))
    };
    limits.check_bytes(width, height, bytes)?;
    Ok(DecodeCost { width, height, bytes })
}

/// A reader over `bytes` with its format recognised, refusing empty, unknown and truncated input, and a
/// BMP whose header claims more pixels than the limits (the BMP decoder refuses those itself with a
/// generic error before we could see its size).
fn open<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Result<ImageReader<Cursor<&'a [u8]>>, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let mut reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| ImageError::Corrupt(e.to_string()))?;
    // Our own limits are checked from the header; the decoder's defaults would turn a giant header
    // into a generic error first.
    reader.no_limits();
    match reader.format() {
        None => Err(ImageError::Unsupported),
        Some(ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            Err(ImageError::Corrupt("JPEG data is truncated (no end-of-image marker)".into()))
        }
        Some(ImageFormat::Bmp) => {
            if let Some((width, height)) = bmp_dimensions(bytes) {
                limits.check_dimensions(width, height)?;
            }
            Ok(reader)
        }
        Some(_) => Ok(reader),
    }
}

/// Bytes held while decoding through `image`: the native buffer, plus the RGB output beside it (and an
/// RGBA one first for alpha) when the native format is not 8-bit RGB.
fn generic_cost(width: u32, height: u32, native: u64, color: image::ColorType) -> u64 {
    let pixels = u64::from(width) * u64::from(height);
    let conversion = match color {
        image::ColorType::Rgb8 => 0,
        c if c.has_alpha() => pixels * (4 + RGB_BYTES),
        _ => pixels * RGB_BYTES,
    };
    native.saturating_add(conversion)
}

/// Streams a non-interlaced PNG row by row into 8-bit RGB (16-bit samples stripped to 8, palettes and
/// low bit depths expanded, alpha composited onto white), so memory is the RGB output plus one row.
/// `Ok(None)` for interlaced PNGs, which the generic path decodes (within the same byte budget).
fn decode_png_streaming(bytes: &[u8], limits: &DecodeLimits) -> Result<Option<RgbImage>, ImageError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let header = decoder.read_header_info().map_err(map_png_error)?;
    limits.check_dimensions(header.width, header.height)?;
    if header.interlaced {
        return Ok(None);
    }
    let mut reader = decoder.read_info().map_err(map_png_error)?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    let orientation = info.exif_metadata.as_deref().and_then(Orientation::from_exif_chunk);
    limits.check_bytes(width, height, u64::from(width) * u64::from(height) * RGB_BYTES)?;
    let (color, _) = reader.output_color_type();
    let channels = color.samples();
    let mut rgb = RgbImage::new(width, height);
    let row_bytes = width as usize * RGB_BYTES as usize;
    for out in rgb.chunks_exact_mut(row_bytes) {
        let row = reader
            .next_row()
            .map_err(map_png_error)?
            .ok_or_else(|| ImageError::Corrupt("PNG data ends before the last row".into()))?;
        for (pixel, sample) in out.chunks_exact_mut(3).zip(row.data().chunks_exact(channels)) {
            let (value, alpha) = match channels {
                1 => ([sample[0]; 3], 255),
                2 => ([sample[0]; 3], sample[1]),
                3 => ([sample[0], sample[1], sample[2]], 255),
                _ => ([sample[0], sample[1], sample[2]], sample[3]),
            };
            for c in 0..3 {
                pixel[c] = over_white(value[c], alpha);
            }
        }
    }
    let mut image = DynamicImage::ImageRgb8(rgb);
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(Some(image.into_rgb8()))
}

fn map_png_error(error: png::DecodingError) -> ImageError {
    match error {
        png::DecodingError::LimitsExceeded => ImageError::DecodeBudget,
        other => ImageError::Corrupt(other.to_string()),
    }
}

/// A sample composited onto white by its alpha.
fn over_white(value: u8, alpha: u8) -> u8 {
    let alpha = u16::from(alpha);
    ((u16::from(value) * alpha + 255 * (255 - alpha) + 127) / 255) as u8
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
        image::ImageError::Limits(_) => ImageError::DecodeBudget,
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
        for c in 0..3 {
            out[c] = over_white(pixel[c], pixel[3]);
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
        let limits = DecodeLimits { max_pixels: 50_000, ..DecodeLimits::default() };
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

    #[test]
    fn deep_alpha_png_streams_to_the_same_rgb_as_the_generic_decoder() {
        let deep = image::ImageBuffer::<Rgba<u16>, Vec<u16>>::from_fn(37, 23, |x, y| {
            Rgba([(x * 1700) as u16, (y * 2800) as u16, 40_000, ((x + y) * 1100) as u16])
        });
        let png = encode(&DynamicImage::ImageRgba16(deep.clone()), ImageFormat::Png);
        let streamed = decode_image(&png, &DecodeLimits::default()).expect("16-bit RGBA PNG");
        let generic = flatten_to_rgb(DynamicImage::ImageRgba8(DynamicImage::ImageRgba16(deep).into_rgba8()));
        assert_eq!(streamed.dimensions(), (37, 23));
        let worst = streamed.as_raw().iter().zip(generic.as_raw()).map(|(a, b)| a.abs_diff(*b)).max();
        assert!(worst <= Some(1), "streamed and generic decodes differ by {worst:?}");
    }

    #[test]
    fn the_cost_from_the_header_is_what_decoding_checks() {
        let deep = DynamicImage::ImageRgba16(image::ImageBuffer::new(30, 20));
        let cost = decode_cost(&encode(&deep, ImageFormat::Png), &DecodeLimits::default()).expect("png cost");
        assert_eq!(cost, DecodeCost { width: 30, height: 20, bytes: 30 * 20 * 3 });
        let grey = encode(&DynamicImage::new_luma8(100, 100), ImageFormat::Jpeg);
        let cost = decode_cost(&grey, &DecodeLimits::default()).expect("jpeg cost");
        assert_eq!(cost.bytes, 100 * 100 * (1 + 3));
        let limits = DecodeLimits { max_decoded_bytes: 30_000, ..DecodeLimits::default() };
        assert!(matches!(decode_cost(&grey, &limits), Err(ImageError::TooManyBytes { .. })));
        assert!(matches!(decode_cost(&[], &limits), Err(ImageError::Empty)));
    }

    #[test]
    fn the_byte_budget_counts_the_conversion_to_rgb() {
        let grey = encode(&DynamicImage::new_luma8(100, 100), ImageFormat::Jpeg);
        let limits = DecodeLimits { max_decoded_bytes: 30_000, ..DecodeLimits::default() };
        let err = decode_image(&grey, &limits).map(|image| image.dimensions());
        assert!(matches!(err, Err(ImageError::TooManyBytes { width: 100, height: 100, .. })), "{err:?}");
        let png = encode(&DynamicImage::new_rgb8(100, 100), ImageFormat::Png);
        assert!(decode_image(&png, &DecodeLimits { max_decoded_bytes: 30_000, ..DecodeLimits::default() }).is_ok());
    }

    /// A PNG that is only a header claiming `width`×`height` pixels.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        let writer = png::Encoder::new(&mut bytes, width, height).write_header().expect("PNG header");
        drop(writer);
        bytes
    }

    #[test]
    fn giant_headers_are_too_large_not_corrupt() {
        for (width, height) in [(100_000, 100_000), (16_000, 16_000), (1_000_000, 10)] {
            let err = decode_image(&png_header(width, height), &DecodeLimits::default()).map(|i| i.dimensions());
            assert!(matches!(err, Err(ImageError::TooLarge { .. })), "{width}x{height}: {err:?}");
        }
        let mut bmp = encode(&DynamicImage::new_rgb8(4, 4), ImageFormat::Bmp);
        bmp[18..22].copy_from_slice(&60_000i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&60_000i32.to_le_bytes());
        let err = decode_image(&bmp, &DecodeLimits::default()).map(|i| i.dimensions());
        assert!(matches!(err, Err(ImageError::TooLarge { .. })), "bmp: {err:?}");
        // Past the BMP decoder's own limit (65535 a side), which it reports as a generic error.
        for side in [100_000i32, -100_000] {
            bmp[18..22].copy_from_slice(&100_000i32.to_le_bytes());
            bmp[22..26].copy_from_slice(&side.to_le_bytes());
            let cost = decode_cost(&bmp, &DecodeLimits::default()).map(|c| c.bytes);
            assert!(matches!(cost, Err(ImageError::TooLarge { width: 100_000, height: 100_000, .. })), "{cost:?}");
            let err = decode_image(&bmp, &DecodeLimits::default()).map(|i| i.dimensions());
            assert!(matches!(err, Err(ImageError::TooLarge { .. })), "bmp {side}: {err:?}");
        }
    }
}
