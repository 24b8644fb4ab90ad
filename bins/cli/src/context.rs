//! Turning flags into a loaded pipeline, and files into decoded images.

use std::path::Path;

use anyhow::{Context as _, Result};
use facegate_core::{
    AlignMode, DecodeLimits, DetectorConfig, EmbedderConfig, EmbedderRuntime, Manifest, Mirror, Pipeline,
    PipelineConfig, RuntimeConfig, decode_image,
};
use facegate_host::Settings;
use facegate_models::{ModelCache, PACK_MANIFEST, builtin_manifest, register_pack};
use image::RgbImage;

use crate::args::{AlignArg, MirrorArg, NormArg, PipelineArgs};

/// `(x - 127.5) / 128` expressed as mean and std on 0..255 values.
const HALF_RANGE_NORMALIZATION: ([f32; 3], [f32; 3]) = ([127.5; 3], [128.0; 3]);

/// The manifest, the cache and the pipeline settings chosen on the command line.
pub struct Context {
    pub manifest: Manifest,
    pub cache: ModelCache,
    /// ONNX Runtime threads per model run.
    pub threads: usize,
    /// Which runtime the embedder runs on (the setting, `--embedder-runtime` included).
    pub embedder_runtime: EmbedderRuntime,
    pub args: PipelineArgs,
}

impl Context {
    /// The built-in manifest, plus the `--pack` folder when it names one (a trained pack); the model
    /// cache and thread count of the settings.
    pub fn new(mut args: PipelineArgs, settings: &Settings) -> Result<Self> {
        let mut manifest = builtin_manifest()?;
        if Path::new(&args.pack).join(PACK_MANIFEST).is_file() {
            args.pack = register_pack(&mut manifest, &args.pack)?;
        }
        let threads = args.threads.unwrap_or(settings.threads);
        Ok(Self { manifest, cache: settings.model_cache(), threads, embedder_runtime: settings.embedder_runtime, args })
    }

    /// The pipeline settings for `threads` ONNX Runtime threads.
    pub fn pipeline_config(&self, threads: usize) -> PipelineConfig {
        PipelineConfig {
            runtime: RuntimeConfig { intra_threads: threads, embedder: self.embedder_runtime },
            detector: DetectorConfig {
                score_threshold: self.args.score_threshold,
                max_side: self.args.max_side,
                max_faces: self.args.max_faces.map_or(DetectorConfig::default().max_faces, usize::from),
                ..DetectorConfig::default()
            },
            embedder: EmbedderConfig {
                mirror: match (self.args.no_flip, self.args.mirror) {
                    (true, _) | (false, Some(MirrorArg::Never)) => Some(Mirror::Never),
                    (false, Some(MirrorArg::Hard)) => Some(Mirror::Hard),
                    (false, Some(MirrorArg::Kept)) => Some(Mirror::Kept),
                    (false, Some(MirrorArg::Always)) => Some(Mirror::Always),
                    (false, None) => None,
                },
                normalization: match self.args.norm {
                    NormArg::Manifest => None,
                    NormArg::Half => Some(HALF_RANGE_NORMALIZATION),
                },
            },
            align: match self.args.align {
                AlignArg::Similarity => AlignMode::Similarity,
                AlignArg::Box => AlignMode::BoxCrop,
            },
            refine_roll: !self.args.no_refine_roll,
            landmark_model: !self.args.no_landmark_model,
        }
    }

    /// Loads ONNX Runtime (once) and a pack's models with the given thread count.
    pub fn load(&self, pack: &str, threads: usize) -> Result<Pipeline> {
        self.load_with(pack, self.pipeline_config(threads))
    }

    /// Loads ONNX Runtime (once) and a pack's models with `config`.
    pub fn load_with(&self, pack: &str, config: PipelineConfig) -> Result<Pipeline> {
        if let Some(spec) = self.manifest.pack(pack) {
            facegate_host::warn_research_only(&self.manifest, spec);
        }
        let environment = self.cache.onnxruntime(&self.manifest.runtime)?;
        let pipeline = self
            .cache
            .load_pipeline(environment, &self.manifest, pack, config)
            .with_context(|| format!("loading pack `{pack}`"))?;
        Ok(pipeline)
    }

    /// The flags' pack with the given thread count.
    pub fn pipeline_with_threads(&self, threads: usize) -> Result<Pipeline> {
        self.load(&self.args.pack, threads)
    }

    /// The pipeline with the thread count from the flags.
    pub fn pipeline(&self) -> Result<Pipeline> {
        self.pipeline_with_threads(self.threads)
    }
}

/// Reads and decodes an image file with the default limits.
pub fn read_image(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    decode_image(&bytes, &DecodeLimits::default()).with_context(|| format!("decoding {}", path.display()))
}
