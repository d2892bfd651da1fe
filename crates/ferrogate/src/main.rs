//! The `ferrogate` binary: parses the command line, sets up logging, and hands over to
//! `ferrogate-runtime`. Nothing else lives here.
//!
//! `unsafe` is denied everywhere but in [`allocator`] (mimalloc's options, FFI).
#![deny(unsafe_code)]

mod allocator;
mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.log_format, &cli.log_level);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(cli.run()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error chain on one line, as a user reads it. Returning the error from
            // `main` would print its Debug form, which carries a backtrace whenever
            // RUST_BACKTRACE is set: thirty frames of our internals for a missing file.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
