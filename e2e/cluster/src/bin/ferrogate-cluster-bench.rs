//! `make bench-cluster`: route convergence in controller mode, with the controller talking to
//! the API server directly and then through a proxy that delays each of its requests
//! (`ferrogate_cluster::convergence_bench`). Prints both runs and their ratio; merges the
//! records into `--out-json`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ferrogate_cluster::convergence_bench::{self, BenchOptions, records};
use ferrogate_cluster::tools;

/// Route convergence with and without a slow API server (issue 15).
#[derive(Parser, Debug)]
struct Args {
    /// The `ferrogate` binary (default: the workspace's release build).
    #[arg(long)]
    ferrogate: Option<PathBuf>,
    /// Standing HTTPRoutes on the Gateway.
    #[arg(long, default_value_t = 100)]
    routes: usize,
    /// Timed route additions (each followed by its removal) per run.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// How long the proxy holds each of the controller's requests in the delayed run.
    #[arg(long, default_value_t = 500)]
    delay_ms: u64,
    /// How often the controller hands watched changes to the translator (its default: 10).
    #[arg(long, default_value_t = 10)]
    debounce_ms: u64,
    /// How long one addition or removal may take before the bench fails.
    #[arg(long, default_value_t = 60)]
    probe_budget_s: u64,
    /// Merge the records into this file (records of the same scenarios are replaced).
    #[arg(long)]
    out_json: Option<PathBuf>,
    /// Run id put on every record.
    #[arg(long)]
    run: Option<String>,
    /// Keep the control plane's folder (logs, kubeconfigs).
    #[arg(long)]
    keep: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = BenchOptions {
        ferrogate: args
            .ferrogate
            .unwrap_or_else(|| tools::repo_root().join("target/release/ferrogate")),
        routes: args.routes,
        samples: args.samples,
        delay: Duration::from_millis(args.delay_ms),
        debounce_ms: args.debounce_ms,
        probe_budget: Duration::from_secs(args.probe_budget_s),
        run: args.run,
        keep: args.keep,
    };
    let outcome = convergence_bench::run(&options).await?;
    println!(
        "route convergence, controller mode, {} routes, {} samples per run, --debounce-ms={}",
        options.routes, options.samples, options.debounce_ms
    );
    println!(
        "| run | add p50 ms | add p99 ms | removal p50 ms | removal p99 ms | Accepted after ms | CPU ms/edit |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in [&outcome.direct, &outcome.delayed] {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.2} |",
            s.scenario,
            s.add_p(50.0),
            s.add_p(99.0),
            s.remove_p(50.0),
            s.remove_p(99.0),
            s.status_accepted_ms,
            s.cpu_per_edit_ms
        );
    }
    println!(
        "delayed / undelayed: add p50 x{:.2}, add p99 x{:.2}, removal p99 x{:.2}",
        outcome.delayed.add_p(50.0) / outcome.direct.add_p(50.0),
        outcome.delayed.add_p(99.0) / outcome.direct.add_p(99.0),
        outcome.delayed.remove_p(99.0) / outcome.direct.remove_p(99.0),
    );
    if let Some(c) = outcome.delayed.delayed {
        println!(
            "requests the proxy delayed by {} ms: {} ({} writes, {} watches)",
            args.delay_ms, c.requests, c.writes, c.watches
        );
    }
    if options.keep {
        println!("control plane folder: {}", outcome.dir.display());
    }
    if let Some(path) = args.out_json {
        records::merge_into(&path, &outcome.records)?;
        println!(
            "{} records merged into {}",
            outcome.records.len(),
            path.display()
        );
    }
    Ok(())
}
