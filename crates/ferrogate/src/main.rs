//! The `ferrogate` binary: parses the command line, sets up logging, and hands over to
//! `ferrogate-runtime`. Nothing else lives here.
//!
//! `unsafe` is denied everywhere but in [`allocator`] (glibc malloc tuning, FFI).
#![deny(unsafe_code)]

mod allocator;
mod cli;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    allocator::configure();
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.log_format, &cli.log_level);
    allocator::spawn_trimmer(allocator::TRIM_EVERY);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(cli.run())
}
