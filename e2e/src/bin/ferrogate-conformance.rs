//! `ferrogate-conformance`: replays the shared Gateway API conformance scenarios against
//! `ferrogate standalone`, real Envoys and local echo backends.
//!
//! ```text
//! ferrogate-conformance <DATA_DIR> [--ferrogate PATH] [--echo PATH] [--envoy PATH]
//!     [--jobs N] [--filter REGEX] [--report FILE]
//! ```
//!
//! Prints `PASS name (Xs)`, `FAIL name: why` or `SKIP name: why` per scenario and a final
//! `N passed, M failed, K skipped` line; exits 1 when any scenario failed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use ferrogate_e2e::conformance::{RunnerConfig, run_all, summary, write_report};

#[derive(Parser, Debug)]
#[command(
    name = "ferrogate-conformance",
    about = "Replay the Gateway API conformance scenarios against ferrogate standalone"
)]
struct Args {
    /// Conformance data folder (SCHEMA.md, scenarios/, manifests/).
    data_dir: PathBuf,
    /// ferrogate binary.
    #[arg(long, default_value = "target/debug/ferrogate")]
    ferrogate: PathBuf,
    /// ferrogate-echo binary.
    #[arg(long, default_value = "target/debug/ferrogate-echo")]
    echo: PathBuf,
    /// Envoy binary.
    #[arg(long, env = "FERROGATE_ENVOY", default_value = ".tools/bin/envoy")]
    envoy: PathBuf,
    /// Scenarios run in parallel.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Only scenarios whose name matches this regular expression.
    #[arg(long)]
    filter: Option<String>,
    /// Write a ConformanceReport YAML here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Cap every status wait at this many seconds (the schema's budgets are 60-300 s).
    #[arg(long)]
    status_timeout_cap: Option<u64>,
    /// Upper bound for one scenario, in seconds.
    #[arg(long, default_value_t = 420)]
    scenario_timeout: u64,
    /// Features not claimed (comma-separated): scenarios needing one are skipped.
    #[arg(long, value_delimiter = ',')]
    unsupported_features: Vec<String>,
    /// First port of the range used for ferrogate's own listeners (200 per job).
    #[arg(long, default_value_t = 21000)]
    port_base: u16,
    /// Keep each scenario's temporary directory.
    #[arg(long)]
    keep_temp: bool,
    /// Print step progress.
    #[arg(long, short)]
    verbose: bool,
    /// Succeed when at least this many scenarios pass (a ratchet while the suite is not yet
    /// all green); without it, any failure fails the run.
    #[arg(long)]
    min_passed: Option<usize>,
}

fn absolute(p: PathBuf) -> PathBuf {
    std::fs::canonicalize(&p).unwrap_or(p)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = RunnerConfig::new(
        absolute(args.data_dir),
        absolute(args.ferrogate),
        absolute(args.echo),
        absolute(args.envoy),
    );
    config.jobs = args.jobs.max(1);
    config.filter = args.filter.as_deref().map(regex::Regex::new).transpose()?;
    config.status_timeout_cap = args.status_timeout_cap.map(Duration::from_secs);
    config.scenario_timeout = Duration::from_secs(args.scenario_timeout);
    config.unsupported_features = args.unsupported_features.clone();
    config.port_base = args.port_base;
    config.keep_temp = args.keep_temp;
    config.verbose = args.verbose;
    for (what, path) in [
        ("ferrogate", &config.ferrogate),
        ("ferrogate-echo", &config.echo),
        ("envoy", &config.envoy),
    ] {
        if !path.exists() {
            anyhow::bail!("{what} binary not found at {}", path.display());
        }
    }
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(run_all(&config, |r| println!("{}", r.line())))?;
    println!("{}", summary(&results));
    eprintln!("total time {:.0}s", started.elapsed().as_secs_f64());
    if let Some(path) = &args.report {
        write_report(
            path,
            &results,
            &config.unsupported_features,
            "v1.4.0-dev (4564255ac2c35d582249b3cdf261bdf51c8bca32)",
        )?;
    }
    let passed = results
        .iter()
        .filter(|r| matches!(r.outcome, ferrogate_e2e::conformance::Outcome::Pass))
        .count();
    let any_failed = results
        .iter()
        .any(|r| matches!(r.outcome, ferrogate_e2e::conformance::Outcome::Fail(_)));
    match args.min_passed {
        Some(min) if passed < min => {
            eprintln!("{passed} scenarios passed, fewer than the minimum {min}");
            std::process::exit(1);
        }
        None if any_failed => std::process::exit(1),
        _ => {}
    }
    Ok(())
}
