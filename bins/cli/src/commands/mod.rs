//! One module per subcommand; `run` dispatches.

mod bench;
mod eval;
mod faces;
mod keys;
mod models;
mod serve;
mod train;

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Cli, Command, EvalBenchmark};
use crate::context::Context;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let context = Context::new(cli.pipeline)?;
    match cli.command {
        Command::Models { action } => models::run(&context, action),
        Command::Detect { images, json, draw } => faces::detect(&context, &images, json, draw.as_deref()),
        Command::Embed { image } => faces::embed(&context, &image),
        Command::Compare { a, b, fmr, json } => faces::compare(&context, &a, &b, fmr, json),
        Command::Eval { benchmark: EvalBenchmark::Lfw(args) } => eval::lfw(&context, &args),
        Command::Bench(args) => bench::run(&context, &args),
        Command::Serve(args) => serve::run(&context, &args),
        Command::Train(args) => train::train(&context, &args),
        Command::Classify { images, model, min_confidence, json } => {
            train::classify(&context, &images, &model, min_confidence, json)
        }
        Command::Keys { store, action } => keys::run(&store, action),
    }
}
