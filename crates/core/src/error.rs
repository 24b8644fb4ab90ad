//! Error types of the pipeline.

/// Why an image could not be turned into pixels. Every variant is the caller's fault (a 4xx at the API).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The input had no bytes at all.
    #[error("the image is empty")]
    Empty,
    /// The bytes are not in a format facegate reads (JPEG, PNG, WebP, BMP).
    #[error("not a supported image format (JPEG, PNG, WebP or BMP)")]
    Unsupported,
    /// The header claims more pixels than allowed: refused before decoding (decompression bombs).
    #[error("image of {width}x{height} exceeds the limit of {max_pixels} pixels")]
    TooLarge {
        /// Width claimed by the header.
        width: u32,
        /// Height claimed by the header.
        height: u32,
        /// The configured limit.
        max_pixels: u64,
    },
    /// Decoding would need more memory than allowed (deep samples and alpha channels count).
    #[error("image of {width}x{height} needs {bytes} bytes to decode, over the limit of {max_bytes}")]
    TooManyBytes {
        /// Width claimed by the header.
        width: u32,
        /// Height claimed by the header.
        height: u32,
        /// Bytes its decoding would hold at once.
        bytes: u64,
        /// The configured limit.
        max_bytes: u64,
    },
    /// The decoder itself reached the memory budget (an allocation the header did not announce).
    #[error("decoding the image needs more memory than allowed")]
    DecodeBudget,
    /// A zero-sized or otherwise impossible dimension.
    #[error("image dimensions {width}x{height} are not usable")]
    BadDimensions {
        /// Width claimed by the header.
        width: u32,
        /// Height claimed by the header.
        height: u32,
    },
    /// The format was recognised but the data is truncated or corrupt.
    #[error("the image data is corrupt or truncated: {0}")]
    Corrupt(String),
}

/// Everything that can go wrong in the pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The input image was bad.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// ONNX Runtime failed (loading a model or running it).
    #[error("inference failed: {0}")]
    Inference(#[from] ort::Error),
    /// OpenVINO failed (compiling the embedder or running it).
    #[error("OpenVINO failed: {0}")]
    OpenVino(String),
    /// A model's outputs did not have the shape its family implies: the wrong file for the manifest entry.
    #[error("model output not as expected: {0}")]
    ModelOutput(String),
    /// The manifest or configuration is inconsistent.
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// A requested false-match rate lies outside the calibrated range.
    #[error("target false-match rate {requested:e} is outside the calibrated range {min:e}..={max:e}")]
    FmrOutOfRange {
        /// The rate asked for.
        requested: f64,
        /// Smallest calibrated rate.
        min: f64,
        /// Largest calibrated rate.
        max: f64,
    },
    /// The embedder has no calibration table, so no decision can be made.
    #[error("the embedder has no calibration table")]
    Uncalibrated,
}
