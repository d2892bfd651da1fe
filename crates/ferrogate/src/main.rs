//! The `ferrogate` binary: parses the command line, sets up logging, and hands over to
//! `ferrogate-runtime`. Nothing else lives here.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.log_format, &cli.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(cli.run())
}
