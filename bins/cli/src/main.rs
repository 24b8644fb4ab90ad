//! `facegate`: the command-line face recognition tool.

mod args;
mod commands;
mod context;
mod draw;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than glibc's malloc: glibc raises its mmap threshold after large frees, so the
/// multi-megabyte image buffers of concurrent requests end up in per-thread arenas that keep their
/// pages; under 64 concurrent 6 MB uploads that held 403 MB at peak against 236 MB with jemalloc
/// returning freed pages at once (`.cargo/config.toml`; README, figures). An AWS Lambda instance
/// serves one request at a time, so `bootstrap` keeps the system allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = args::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FACEGATE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match commands::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("facegate: {error:#}");
            ExitCode::from(2)
        }
    }
}
