//! One module per subcommand; `run` dispatches.

mod bench;
mod eval;
mod faces;
mod keys;
mod models;
mod people;
mod serve;
mod train;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use facegate_host::{HostKind, Settings};

use crate::args::{Cli, CollectionsAction, Command, EvalBenchmark};
use crate::context::Context;

/// The settings of this run: the serve defaults with the user's folders, then `--config`, then the
/// environment, then the flags given (the pipeline's thread and face counts and embedder runtime, the
/// store, `serve`'s).
fn settings(cli: &Cli) -> Result<Settings> {
    let mut base = Settings::defaults(HostKind::Serve);
    base.home = dirs::cache_dir().map_or_else(|| PathBuf::from(".facegate"), |d| d.join("facegate"));
    base.data_dir = dirs::data_dir().map_or_else(|| PathBuf::from(".facegate-data"), |d| d.join("facegate"));
    let mut flags = match &cli.command {
        Command::Serve(args) => toml::Table::try_from(args)?,
        Command::Keys { store, .. } => toml::Table::try_from(store)?,
        Command::Enroll(args) => toml::Table::try_from(&args.gallery.store)?,
        Command::Identify(args) => toml::Table::try_from(&args.gallery.store)?,
        Command::Watch(args) => toml::Table::try_from(&args.gallery.store)?,
        Command::Attendance(args) => toml::Table::try_from(&args.gallery.store)?,
        Command::Cards(args) => toml::Table::try_from(&args.gallery.store)?,
        Command::Sightings(args) => toml::Table::try_from(&args.gallery.store)?,
        Command::Collections { action: CollectionsAction::Migrate(args) } => {
            toml::Table::try_from(&args.gallery.store)?
        }
        _ => toml::Table::new(),
    };
    if let Some(threads) = cli.pipeline.threads {
        flags.insert("threads".into(), toml::Value::Integer(i64::try_from(threads)?));
    }
    if let Some(runtime) = cli.pipeline.embedder_runtime {
        let runtime = facegate_core::EmbedderRuntime::from(runtime);
        flags.insert("embedder_runtime".into(), toml::Value::String(runtime.as_str().into()));
    }
    if let Some(faces) = cli.pipeline.max_faces {
        flags.insert("max_faces".into(), toml::Value::Integer(i64::from(faces)));
    }
    Ok(Settings::load(HostKind::Serve, base, cli.pipeline.config.as_deref(), std::env::vars(), flags)?)
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let settings = settings(&cli)?;
    let context = Context::new(cli.pipeline, &settings)?;
    match cli.command {
        Command::Models { action } => models::run(&context, action),
        Command::Detect { images, json, draw } => faces::detect(&context, &images, json, draw.as_deref()),
        Command::Embed { image } => faces::embed(&context, &image),
        Command::Compare { a, b, fmr, json } => faces::compare(&context, &a, &b, fmr, json),
        Command::Eval { benchmark: EvalBenchmark::Lfw(args) } => eval::lfw(&context, &args),
        Command::Eval { benchmark: EvalBenchmark::Liveness(args) } => eval::liveness(&context, &args),
        Command::Bench(args) => bench::run(&context, &args),
        Command::Serve(_) => serve::run(&context, &settings),
        Command::Train(args) => train::train(&context, &args),
        Command::Classify { images, model, min_confidence, json } => {
            train::classify(&context, &images, &model, min_confidence, json)
        }
        Command::Keys { action, .. } => keys::run(&settings, action),
        Command::Enroll(args) => people::enroll(&context, &settings, &args),
        Command::Identify(args) => people::identify(&context, &settings, &args),
        Command::Watch(args) => watch::run(&context, &settings, &args),
        Command::Attendance(args) => people::attendance(&settings, &args),
        Command::Cards(args) => people::cards(&settings, &args),
        Command::Sightings(args) => watch::sightings(&settings, &args),
        Command::Collections { action: CollectionsAction::Migrate(args) } => {
            people::migrate(&context, &settings, &args)
        }
        Command::Openapi => {
            println!("{}", facegate_api::openapi_document());
            Ok(ExitCode::SUCCESS)
        }
    }
}
