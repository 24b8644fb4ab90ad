//! Command-line flags, parsed by clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

/// Face recognition: detect, align, embed and compare faces with pinned pretrained models.
#[derive(Debug, Parser)]
#[command(name = "facegate", version, about)]
pub struct Cli {
    /// Model and pipeline settings shared by every command.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings that choose and tune the pipeline.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// Model pack: a built-in name (see `facegate models list`) or the folder of a trained pack.
    #[arg(long, global = true, env = "FACEGATE_PACK", default_value = facegate_core::DEFAULT_PACK)]
    pub pack: String,
    /// ONNX Runtime threads per model run (default: the `threads` setting, 1).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// A TOML settings file (keys as in `facegate_host::Settings`); environment and flags override it.
    #[arg(long, global = true, env = "FACEGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Minimum detector score for a face.
    #[arg(long, global = true, default_value_t = facegate_core::DetectorConfig::default().score_threshold)]
    pub score_threshold: f32,
    /// Images with a longer side are downscaled to this before detection.
    #[arg(long, global = true, default_value_t = facegate_core::DetectorConfig::default().max_side)]
    pub max_side: u32,
    /// Largest number of faces reported per image (default: 100; `serve`: 20 analysed per request).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=i64::from(facegate_host::MAX_FACES_LIMIT)))]
    pub max_faces: Option<u16>,
    /// Which faces are embedded with their mirror image too (the template the mean of both): `always`;
    /// `kept` (enrolled templates only: a probe is embedded once); `hard` (enrolled templates, and faces
    /// the detector is unsure of or turned away); `never` (an ablation).
    /// Default: the pack's choice (`facegate models list`).
    #[arg(long, global = true, value_enum)]
    pub mirror: Option<MirrorArg>,
    /// Which runtime the embedder runs on: `auto` (OpenVINO bf16 where the CPU has bf16 and it measures
    /// faster at load, else ONNX Runtime), `onnxruntime`, `openvino-f32`, `openvino-bf16`. Default: the
    /// `embedder_runtime` setting (`auto`).
    #[arg(long, global = true, value_enum)]
    pub embedder_runtime: Option<EmbedderRuntimeArg>,
    /// No mirror image at all (`--mirror never`).
    #[arg(long, global = true)]
    pub no_flip: bool,
    /// Use landmarks as detected, without re-detecting tilted faces upright.
    #[arg(long, global = true)]
    pub no_refine_roll: bool,
    /// Use the detector's landmarks even where the pack has a landmark model (an ablation).
    #[arg(long, global = true)]
    pub no_landmark_model: bool,
    /// Alignment method (`box` is the no-alignment baseline for ablations).
    #[arg(long, global = true, value_enum, default_value_t = AlignArg::Similarity)]
    pub align: AlignArg,
    /// Embedder input normalisation (`half` = (x-127.5)/128, an ablation; default: the manifest's).
    #[arg(long, global = true, value_enum, default_value_t = NormArg::Manifest)]
    pub norm: NormArg,
}

/// Alignment choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlignArg {
    /// 5-point similarity transform onto the ArcFace template.
    Similarity,
    /// Detector box stretched to 112×112.
    Box,
}

/// Mirror policies (see `facegate_core::Mirror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MirrorArg {
    /// Every face.
    Always,
    /// Kept templates and hard faces.
    Hard,
    /// Kept templates only.
    Kept,
    /// None.
    Never,
}

/// Embedder runtimes (see `facegate_core::EmbedderRuntime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmbedderRuntimeArg {
    /// Measured at load.
    Auto,
    /// ONNX Runtime.
    Onnxruntime,
    /// OpenVINO, fp32.
    OpenvinoF32,
    /// OpenVINO, bf16 precision hint.
    OpenvinoBf16,
}

impl From<EmbedderRuntimeArg> for facegate_core::EmbedderRuntime {
    fn from(arg: EmbedderRuntimeArg) -> Self {
        match arg {
            EmbedderRuntimeArg::Auto => Self::Auto,
            EmbedderRuntimeArg::Onnxruntime => Self::Onnxruntime,
            EmbedderRuntimeArg::OpenvinoF32 => Self::OpenvinoF32,
            EmbedderRuntimeArg::OpenvinoBf16 => Self::OpenvinoBf16,
        }
    }
}

/// Normalisation choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NormArg {
    /// As the manifest says (ImageNet mean/std for MobileFaceNet).
    Manifest,
    /// (x - 127.5) / 128.
    Half,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the pinned model files.
    Models {
        /// list, fetch or verify.
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Find faces: boxes, 5 landmarks and scores.
    Detect {
        /// Images to read.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Write an annotated copy (a file for one image, a folder for several).
        #[arg(long)]
        draw: Option<PathBuf>,
    },
    /// Print the embedding of every face in an image as JSON.
    Embed {
        /// The image.
        image: PathBuf,
    },
    /// Compare the most prominent face of two images.
    Compare {
        /// First image.
        a: PathBuf,
        /// Second image.
        b: PathBuf,
        /// Target false-match rate for the decision.
        #[arg(long, default_value_t = facegate_core::DEFAULT_TARGET_FMR)]
        fmr: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate on a benchmark.
    Eval {
        /// Which benchmark.
        #[command(subcommand)]
        benchmark: EvalBenchmark,
    },
    /// Measure per-stage latency and cold start.
    Bench(BenchArgs),
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Train a model on a folder with one subfolder of photos per person.
    Train(TrainArgs),
    /// Name the person in photos with a classifier from `facegate train --mode classifier`.
    Classify {
        /// Photos to classify (the most prominent face of each).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// The trained model: a run folder or its `model/` folder.
        #[arg(long)]
        model: PathBuf,
        /// Answer "unknown" below this probability (default: the threshold saved with the model).
        #[arg(long)]
        min_confidence: Option<f32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage API keys (works on the store directly; the server may be running).
    Keys {
        /// Where the gallery store lives.
        #[command(flatten)]
        store: StoreArgs,
        /// create, list or revoke.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Enrol people from a folder with one subfolder of photos per person (the subfolder's name is the
    /// person's) into a collection of the local gallery, creating what is missing.
    Enroll(EnrollArgs),
    /// Name every face in images (files or folders): the enrolled person it matches, or `unknown`.
    Identify(IdentifyArgs),
    /// Watch videos (MP4/MOV/MKV files, H.264 or MJPEG) and cameras (RTSP): every face tracked, each track named
    /// once at the collection's false-match rate or told unknown (grouped), as events, and kept as
    /// sightings; a file runs as fast as the CPU allows, with stream times from the video.
    Watch(WatchArgs),
    /// Who was seen where and when: the sightings `watch` recorded in a collection (one per decided
    /// track), oldest first (what `GET /v1/collections/{c}/sightings` answers).
    Sightings(SightingsArgs),
    /// Print the HTTP API's OpenAPI 3.1 document (what `GET /v1/openapi.json` serves), for client
    /// generators.
    Openapi,
    /// The attendance sheet of a collection from its door decisions: per person and day, first and last
    /// seen, the doors, the count (what `GET /v1/collections/{c}/attendance` answers).
    Attendance(AttendanceArgs),
    /// A person's access cards, which a door with a reader presents to its access panel: shown, or
    /// replaced with `--card` (what `/v1/collections/{c}/subjects/{s}/credentials` does).
    Cards(CardsArgs),
    /// Collections of the local gallery.
    Collections {
        /// migrate.
        #[command(subcommand)]
        action: CollectionsAction,
    },
}

/// `facegate collections` actions.
#[derive(Debug, Subcommand)]
pub enum CollectionsAction {
    /// Move a collection to another pack by re-embedding its kept faces (no one enrols again), or
    /// resume its interrupted migration; the collection switches when every kept face is done.
    Migrate(MigrateArgs),
}

/// `facegate collections migrate` arguments.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The pack to move to (ignored when resuming a running migration).
    #[arg(long = "to")]
    pub to: String,
    /// Which collection.
    #[command(flatten)]
    pub gallery: LocalGalleryArgs,
}

/// `facegate sightings` arguments.
#[derive(Debug, Args)]
pub struct SightingsArgs {
    /// Only this person's (their name or id).
    #[arg(long)]
    pub subject: Option<String>,
    /// Only this camera's (its name in `watch`'s events: a file's name, a camera's URL).
    #[arg(long)]
    pub camera: Option<String>,
    /// Only faces still seen at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Only faces first seen before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    /// Print JSON (one object per line) instead of lines for people.
    #[arg(long)]
    pub json: bool,
    /// Which collection.
    #[command(flatten)]
    pub gallery: LocalGalleryArgs,
}

/// `facegate attendance` arguments.
#[derive(Debug, Args)]
pub struct AttendanceArgs {
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// Last day, included (default: `from`).
    #[arg(long)]
    pub to: Option<String>,
    /// IANA time zone days are counted in.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Print JSON instead of CSV.
    #[arg(long)]
    pub json: bool,
    /// Which collection.
    #[command(flatten)]
    pub gallery: LocalGalleryArgs,
}

/// `facegate cards` arguments.
#[derive(Debug, Args)]
pub struct CardsArgs {
    /// The person, by name (as enrolled) or subject id.
    #[arg(long)]
    pub person: String,
    /// A card to give them, replacing the cards they had: `FORMAT:FACILITY:NUMBER[@SYSTEM]`, e.g.
    /// `wiegand26:12:3456` (formats `wiegand26`, `wiegand34`, `raw`; system `default` unless given).
    /// Repeat for cards of several door systems.
    #[arg(long = "card")]
    pub cards: Vec<String>,
    /// Take every card away.
    #[arg(long, conflicts_with = "cards")]
    pub clear: bool,
    /// Which collection.
    #[command(flatten)]
    pub gallery: LocalGalleryArgs,
}

/// `facegate enroll` arguments.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Folder with one subfolder of photos per person.
    pub known_dir: PathBuf,
    /// Which people's gallery.
    #[command(flatten)]
    pub gallery: LocalGalleryArgs,
    /// When the collection is created: keep each face's aligned frame sealed beside its template, so
    /// it can later move to another pack with `facegate collections migrate`.
    #[arg(long)]
    pub keep_crops: bool,
}

/// `facegate identify` arguments.
#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// Images, or folders of images (searched recursively).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Which people's gallery.
    #[command(flatten)]
    pub gallery: LocalGalleryArgs,
    /// Target false-match rate of the decisions (default: the collection's).
    #[arg(long)]
    pub fmr: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
    pub format: OutputFormat,
}

/// `facegate watch` arguments.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Video files (MP4/MOV with H.264, MKV/WebM with H.264 or MJPEG), or cameras
    /// (`rtsp://[user:password@]host[:port]/path`).
    #[arg(required = true)]
    pub sources: Vec<String>,
    /// Which people's gallery.
    #[command(flatten)]
    pub gallery: LocalGalleryArgs,
    /// Target false-match rate of the decisions (default: the collection's).
    #[arg(long)]
    pub fmr: Option<f64>,
    /// Faces smaller than this (the shorter side of the box, pixels) are never named (`too_small`).
    #[arg(long, default_value_t = 32.0)]
    pub min_face: f32,
    /// Frames analysed per second of video (every frame is decoded; faces are looked for in these).
    #[arg(long, default_value_t = 10.0)]
    pub fps: f64,
    /// Most pixels the detector looks at per frame (default 1920×1080): frames within it are searched
    /// at native resolution, so small faces are found; larger ones are scaled down to it. `--max-side`
    /// does not apply to video.
    #[arg(long, default_value_t = facegate_video::DEFAULT_DETECT_PIXELS)]
    pub detect_pixels: u64,
    /// Report and keep enrolled people only: unknown faces give no `identity.unknown` event, join no
    /// group and leave no sighting.
    #[arg(long)]
    pub known_only: bool,
    /// Seconds (stream time) during which a person named again on the same camera is not announced
    /// again (their track is still named and kept as a sighting).
    #[arg(long, default_value_t = 0.0)]
    pub cooldown: f64,
    /// Write the events as JSON, one object per line (NDJSON), instead of lines for people.
    #[arg(long)]
    pub json: bool,
    /// Cameras: RTP over UDP instead of interleaved in the RTSP connection.
    #[arg(long)]
    pub udp: bool,
    /// Cameras: stop after this many seconds (default: run until stopped).
    #[arg(long)]
    pub duration: Option<f64>,
}

/// A collection of the local gallery store, as `enroll` and `identify` name it.
#[derive(Debug, Clone, Args)]
pub struct LocalGalleryArgs {
    /// Collection name (created by `enroll` with `--pack`'s models when missing).
    #[arg(long, default_value = "known")]
    pub collection: String,
    /// Tenant that owns the collection (created when missing); a server's tenant shares it with the API.
    #[arg(long, default_value = "local")]
    pub tenant: String,
    /// Where the gallery store lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// How `identify` prints its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One row per face: image, face, name, subject, score, box.
    Csv,
    /// The same rows as a JSON array.
    Json,
}

/// Where the gallery store and the local master key live.
#[derive(Debug, Clone, Args, Serialize)]
pub struct StoreArgs {
    /// Folder of the embedded store (`gallery.db`) and the default master key file.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Gallery store: `postgres://user@host:port/db` for PostgreSQL + pgvector; default: the embedded
    /// SQLite file in the data folder.
    #[arg(long, global = true)]
    pub store: Option<String>,
    /// PostgreSQL connections per process (default 5).
    #[arg(long, global = true)]
    pub pg_pool_size: Option<u32>,
}

/// `facegate serve` flags. Each is also a setting (file key, or `FACEGATE_<NAME>` in the environment;
/// see `facegate_host::Settings` for the defaults); a flag given here wins.
#[derive(Debug, Args, Serialize)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long)]
    pub addr: Option<String>,
    /// Where the store lives.
    #[command(flatten)]
    #[serde(flatten)]
    pub store: StoreArgs,
    /// Master key file (64 hex digits). Default: the `master_key` setting, else <data-dir>/master.key,
    /// created with mode 0600 on first start.
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Images analysed at once (each worker holds its own model sessions).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Packs to load, comma-separated: built-in names or trained pack folders (the first is the default).
    #[arg(long, value_delimiter = ',')]
    pub packs: Option<Vec<String>>,
    /// Largest request body, bytes.
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Requests per second per API key.
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Failed key checks (unknown or revoked keys) allowed per client address per 10 s; past that, 429.
    #[arg(long)]
    pub max_auth_failures: Option<u32>,
    /// Whole-request time limit, seconds.
    #[arg(long)]
    pub request_timeout: Option<u64>,
    /// Image requests holding a body at once (analysed or waiting); past that, 503 with Retry-After.
    #[arg(long)]
    pub max_pending_images: Option<usize>,
    /// Bytes of decoded pixels held at once by all images being analysed; larger images wait their turn.
    #[arg(long)]
    pub max_decoding_bytes: Option<u64>,
    /// Bytes of request bodies held at once by image requests; past that, 503 with Retry-After.
    #[arg(long)]
    pub max_pending_bytes: Option<usize>,
    /// Door attempts holding a body at once (a pool of their own); past that, 503 with Retry-After.
    #[arg(long)]
    pub max_pending_doors: Option<usize>,
    /// Seconds an admitted request's body may take to arrive; past that, 408.
    #[arg(long)]
    pub body_timeout: Option<u64>,
    /// Seconds a client may take to send a request's head, and an idle connection stays open.
    #[arg(long)]
    pub header_timeout: Option<u64>,
    /// Connections held at once; past that, new ones are closed at once.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Where webhooks may go besides public addresses, comma-separated: networks (10.1.2.0/24),
    /// addresses (127.0.0.1) or host names.
    #[arg(long, value_delimiter = ',')]
    pub egress_allow: Option<Vec<String>>,
}

/// What `facegate train` trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrainMode {
    /// A CNN classifier of the dataset's people, from scratch.
    Classifier,
    /// A projection head on the frozen embedder (ArcFace/CosFace), exported as a model pack.
    Embedding,
}

/// Optimizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// SGD with momentum.
    Sgd,
    /// Adam.
    Adam,
}

/// Margin losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    /// Additive angular margin.
    Arcface,
    /// Additive cosine margin.
    Cosface,
}

/// `facegate train` flags.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset folder: DATASET/<person>/<photo>.jpg.
    pub dataset: PathBuf,
    /// Run folder: checkpoint, model or pack, report.json, curves.svg.
    #[arg(long, default_value = "out/train")]
    pub out: PathBuf,
    /// classifier or embedding.
    #[arg(long, value_enum, default_value_t = TrainMode::Classifier)]
    pub mode: TrainMode,
    /// Epochs (default: 15 classifier, 20 embedding).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size (default: 32 classifier, 128 embedding).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate (default: classifier 1e-3 with Adam, 0.01 with SGD; embedding head 1e-4).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Optimizer of the classifier (the embedding head always uses Adam).
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub optimizer: OptimizerArg,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Classifier input side, pixels (aligned crops are resized to it).
    #[arg(long, default_value_t = 64)]
    pub input_size: usize,
    /// No random flips, shifts or brightness on training images.
    #[arg(long)]
    pub no_augment: bool,
    /// Seed of initialisation, split, batch order and augmentation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share held out for validation (of each person's images; of the people in embedding mode).
    #[arg(long, default_value_t = 0.15)]
    pub val_fraction: f64,
    /// Share held out for the final test.
    #[arg(long, default_value_t = 0.15)]
    pub test_fraction: f64,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Leave out people with fewer than this many photos (listed in the report) instead of failing.
    #[arg(long)]
    pub min_images: Option<usize>,
    /// Leave out photos where no face is found (listed in the report) instead of failing.
    #[arg(long)]
    pub skip_faceless: bool,
    /// Cache of aligned crops and embeddings (default: $FACEGATE_HOME/train-cache).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Parallel detection workers (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Train on the GPU (builds with the `cuda` feature).
    #[arg(long)]
    pub gpu: bool,
    /// Embedding mode: the margin loss.
    #[arg(long, value_enum, default_value_t = LossArg::Arcface)]
    pub loss: LossArg,
    /// Embedding mode: margin m.
    #[arg(long, default_value_t = 0.3)]
    pub margin: f32,
    /// Embedding mode: logit scale s.
    #[arg(long, default_value_t = 32.0)]
    pub scale: f32,
    /// Embedding mode: name of the exported pack (default: the dataset folder's name + "-adapted").
    #[arg(long)]
    pub pack_name: Option<String>,
}

/// `facegate keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key (and its tenant if new); the secret is printed once.
    Create {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Comma-separated scopes: detect, enroll, search, admin.
        #[arg(long, value_delimiter = ',', default_value = "admin")]
        scopes: Vec<String>,
        /// Label for the key.
        #[arg(long, default_value = "")]
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// Key id.
        id: facegate_store::KeyId,
    },
}

/// `facegate models ...`
#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Show every model, its licence and whether it is cached.
    List,
    /// Fetch the models of a pack (or all) into the cache, verifying checksums.
    Fetch {
        /// Fetch every model in the manifest, not only the pack's.
        #[arg(long)]
        all: bool,
    },
    /// Verify cached models and the ONNX Runtime library against their pinned checksums.
    Verify {
        /// Verify every model, not only the pack's.
        #[arg(long)]
        all: bool,
    },
}

/// `facegate eval ...`
#[derive(Debug, Subcommand)]
pub enum EvalBenchmark {
    /// Labeled Faces in the Wild, standard 10-fold protocol on pairs.txt.
    Lfw(LfwArgs),
    /// Liveness error rates (APCER per attack type, BPCER) on labelled real / spoof frames.
    Liveness(LivenessArgs),
}

/// `facegate eval liveness` flags.
#[derive(Debug, Args)]
pub struct LivenessArgs {
    /// Folder with `labels.csv` (`path,label,attack_type,source`) and the frames it names.
    #[arg(long, env = "FACEGATE_LIVENESS_DIR")]
    pub dir: PathBuf,
    /// Folder for report.json.
    #[arg(long, default_value = "out/eval-liveness")]
    pub out: PathBuf,
    /// Threshold to report at (default: the liveness pack's).
    #[arg(long)]
    pub threshold: Option<f32>,
}

/// `facegate eval lfw` flags.
#[derive(Debug, Args)]
pub struct LfwArgs {
    /// LFW folder: holds pairs.txt and one folder per person (lfw-deepfunneled/ inside is found too).
    #[arg(long, env = "FACEGATE_LFW_DIR")]
    pub dir: PathBuf,
    /// Folder for report.json and roc.svg.
    #[arg(long, default_value = "out/eval-lfw")]
    pub out: PathBuf,
    /// Parallel workers, each with its own sessions (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Use only the first N pairs of each fold half (quick checks).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Also embed every LFW image and write the pack's calibration table (threshold against FMR over
    /// all different-person pairs).
    #[arg(long)]
    pub calibrate: bool,
}

/// `facegate bench` flags.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A photo with several faces.
    #[arg(long, default_value = "../shared/data/photos/group_t1.jpg")]
    pub group: PathBuf,
    /// A one-face photo; default: a 640×480 crop around the largest face of the group photo.
    #[arg(long)]
    pub photo: Option<PathBuf>,
    /// Timed iterations per configuration.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Cold-start runs (fresh processes).
    #[arg(long, default_value_t = 10)]
    pub cold_runs: usize,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Instead of the stage figures: the throughput over the images listed in this file (one path per
    /// line), one thread, each image read → decoded → detected → its largest face aligned and embedded
    /// (flip included); what `scripts/bench-vs-python.sh` compares with the Python reference.
    #[arg(long)]
    pub images: Option<PathBuf>,
}
