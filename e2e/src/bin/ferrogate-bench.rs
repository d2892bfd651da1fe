//! `ferrogate-bench`: the issue-7 benchmark harness. Runs `ferrogate standalone` with a real
//! Envoy and echo backends, writes `docs/benchmarks.json` and the tables of
//! `docs/benchmarks.md`. `make bench` builds everything in release mode and runs it.
//! `--peers` runs Ferrogate and Envoy Gateway side by side instead (`make bench-peers`).

use std::path::PathBuf;

use clap::Parser;

/// The control plane's allocator: the in-process translation pass allocates as `ferrogate`
/// does (glibc malloc made that pass several times slower).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ferrogate_e2e::bench::{BenchConfig, Record, report, run, side_by_side};

#[derive(Parser, Debug)]
#[command(about = "Scale, propagation, xDS and data-plane benchmarks of ferrogate standalone")]
struct Args {
    /// Tiny run (10 routes, 5 samples, no wrk/sotw/faults), writes nothing unless --out-json is given.
    #[arg(long)]
    smoke: bool,
    #[arg(long, default_value = "target/release/ferrogate")]
    ferrogate: PathBuf,
    #[arg(long, default_value = "target/release/ferrogate-echo")]
    echo: PathBuf,
    #[arg(long, env = "FERROGATE_ENVOY", default_value = ".tools/bin/envoy")]
    envoy: PathBuf,
    /// Also scale to these route counts (e.g. 5000,10000) before coming back down.
    #[arg(long, value_delimiter = ',')]
    extra_steps: Vec<usize>,
    /// Exact route counts to step through (replaces the default 10..1000..10 list).
    #[arg(long, value_delimiter = ',')]
    steps: Vec<usize>,
    /// Route count for the endpoint, data-plane and sotw measurements (default 1000).
    #[arg(long)]
    at: Option<usize>,
    /// Convergence samples per step.
    #[arg(long)]
    samples: Option<usize>,
    /// Samples per step at 2000 routes and more.
    #[arg(long)]
    big_samples: Option<usize>,
    /// Seconds one convergence probe or endpoint change may take before the step fails
    /// (default 60, with --peers 400: the peer needs minutes per edit from 1000 routes on).
    #[arg(long)]
    probe_budget: Option<u64>,
    #[arg(long)]
    no_wrk: bool,
    #[arg(long)]
    no_sotw: bool,
    #[arg(long)]
    no_faults: bool,
    /// World sizes (GATEWAYSxROUTES, comma-separated) of the in-process translation pass, or
    /// `none` (default 1x10000,100x1000; 3x10 with --smoke; none with --peers)
    #[arg(long, value_delimiter = ',')]
    in_process: Vec<String>,
    /// The fleet pass: `GATEWAYSxROUTES` in one real control plane, each Gateway with its
    /// own Envoy and simulated xDS proxies (default 100x1000; 2x10 with --smoke; `none` skips).
    #[arg(long)]
    fleet: Option<String>,
    /// xDS streams per Gateway in the fleet pass: its Envoy plus simulated proxies (default 10).
    #[arg(long)]
    fleet_streams: Option<usize>,
    /// Keep the scratch directory (its path is printed).
    #[arg(long)]
    keep: bool,
    #[arg(long)]
    port_base: Option<u16>,
    #[arg(long)]
    out_json: Option<PathBuf>,
    #[arg(long)]
    out_md: Option<PathBuf>,
    /// Merge into the existing JSON: records of this run replace those with the same
    /// name, routes and scenario; others are kept.
    #[arg(long)]
    merge: bool,
    /// With --merge, take only records of these scenarios from this run.
    #[arg(long, value_delimiter = ',')]
    merge_scenarios: Vec<String>,
    /// Only re-render the Markdown from the JSON.
    #[arg(long)]
    render_only: bool,
    /// Free text put above the tables (how the run was made, machine load).
    #[arg(long, default_value = "")]
    note: String,
    /// Side by side with the peer, Envoy Gateway (issue 16): both implementations through
    /// the same steps (default 10,100,1000) in one run; the records replace the previous
    /// side-by-side ones (with --merge they are kept, and the new run gets a table of its
    /// own), everything else in the JSON is kept.
    #[arg(long)]
    peers: bool,
    /// The peer's binary (built by scripts/peers/build-envoy-gateway.sh).
    #[arg(
        long,
        env = "ENVOY_GATEWAY",
        default_value = ".tools/peers/envoy-gateway/v1.9.1/envoy-gateway"
    )]
    envoy_gateway: PathBuf,
}

/// A run id: the UTC start time, `20261202T214500Z`, and a suffix.
fn run_id(suffix: &str) -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z{suffix}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Text of the side-by-side run's `Run:` line: it names the run id, so the table finds it.
const SIDE_BY_SIDE_MARK: &str = "side-by-side run";

/// This run's arguments, with the working directory cut from paths (the docs name no
/// machine's folders).
fn command_line() -> String {
    let cwd = std::env::current_dir()
        .map(|d| format!("{}/", d.display()))
        .unwrap_or_default();
    std::env::args()
        .skip(1)
        .map(|a| {
            if cwd.len() > 1 {
                a.replace(&cwd, "")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_side_by_side(r: &Record) -> bool {
    r.scenario
        .as_deref()
        .is_some_and(|s| s.starts_with(side_by_side::PREFIX))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The `Run: ...` lines of the generated part of an existing Markdown file.
fn previous_runs(md: &std::path::Path) -> String {
    let Ok(text) = std::fs::read_to_string(md) else {
        return String::new();
    };
    let Some((_, tail)) = text.split_once(report::BEGIN) else {
        return String::new();
    };
    let inner = tail.split_once(report::END).map(|(i, _)| i).unwrap_or("");
    // The runs are listed above the first table; a side-by-side table repeats its own line.
    let listed = inner.split_once("\n### ").map_or(inner, |(head, _)| head);
    listed
        .lines()
        .filter(|l| l.starts_with("Run: "))
        .map(|l| format!("{l}\n\n"))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let default_json = PathBuf::from("docs/benchmarks.json");
    let default_md = PathBuf::from("docs/benchmarks.md");
    let (json, md) = if args.smoke {
        (args.out_json.clone(), args.out_md.clone())
    } else {
        (
            Some(args.out_json.clone().unwrap_or(default_json)),
            Some(args.out_md.clone().unwrap_or(default_md)),
        )
    };
    let preamble = "# Benchmarks\n\nSee the notes below the tables.\n";
    if args.render_only {
        let json = json.unwrap_or_else(|| "docs/benchmarks.json".into());
        let records = report::read_json(&json)?;
        let md = md.unwrap_or_else(|| "docs/benchmarks.md".into());
        let context = if args.note.is_empty() {
            previous_runs(&md)
        } else {
            args.note.clone()
        };
        report::write_markdown(&md, &records, &context, preamble)?;
        return Ok(());
    }
    let peers = args.peers && !args.smoke;
    let mut cfg = if args.smoke {
        BenchConfig::smoke(
            args.ferrogate.clone(),
            args.echo.clone(),
            args.envoy.clone(),
        )
    } else {
        BenchConfig::full(
            args.ferrogate.clone(),
            args.echo.clone(),
            args.envoy.clone(),
        )
    };
    if !args.extra_steps.is_empty() {
        let mut up: Vec<usize> = cfg
            .steps
            .iter()
            .copied()
            .take_while(|n| *n <= cfg.at)
            .collect();
        up.extend(&args.extra_steps);
        let down: Vec<usize> = up.iter().rev().skip(1).copied().collect();
        up.extend(down);
        cfg.steps = up;
    }
    if peers {
        // No data plane, sotw or fault passes: the side-by-side figures only.
        cfg.steps = vec![10, 100, 1000];
        // The peer needs seconds per edit at 100 routes and over a minute at 1000 (its file
        // provider re-reads and re-validates every file on each file event): 10 samples
        // below 1000 routes, 3 from 1000 on, and 3 endpoint changes keep a run under an hour.
        cfg.samples = 10;
        cfg.big_from = 1000;
        cfg.big_samples = 3;
        cfg.endpoint_samples = 3;
        cfg.probe_budget = std::time::Duration::from_secs(400);
        cfg.wrk = false;
        cfg.sotw = false;
        cfg.faults = false;
        cfg.in_process.clear();
        cfg.fleet = None;
        cfg.envoy_gateway = Some(args.envoy_gateway.clone());
    }
    if !args.steps.is_empty() {
        cfg.steps = args.steps.clone();
    }
    if peers && args.at.is_none() {
        // The endpoint and under-load measurements at the largest step up to 1000.
        cfg.at = cfg
            .steps
            .iter()
            .copied()
            .filter(|n| *n <= 1000)
            .max()
            .unwrap_or(10);
    }
    let id = run_id(if peers { "-peers" } else { "" });
    cfg.run = Some(id.clone());
    if let Some(at) = args.at {
        cfg.at = at;
    }
    if let Some(s) = args.samples {
        cfg.samples = s;
    }
    if let Some(s) = args.big_samples {
        cfg.big_samples = s;
    }
    if let Some(s) = args.probe_budget {
        cfg.probe_budget = std::time::Duration::from_secs(s);
    }
    cfg.wrk &= !args.no_wrk;
    cfg.sotw &= !args.no_sotw;
    cfg.faults &= !args.no_faults;
    if !args.in_process.is_empty() {
        cfg.in_process = args
            .in_process
            .iter()
            .filter(|s| s.as_str() != "none")
            .map(|s| ferrogate_e2e::bench::in_process::Size::parse(s))
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(fleet) = &args.fleet {
        let streams = args
            .fleet_streams
            .or(cfg.fleet.map(|f| f.streams_per_gateway))
            .unwrap_or(10);
        cfg.fleet = match fleet.as_str() {
            "none" => None,
            size => Some(ferrogate_e2e::bench::fleet::FleetSize::parse(
                size, streams,
            )?),
        };
    } else if let (Some(streams), Some(f)) = (args.fleet_streams, cfg.fleet.as_mut()) {
        f.streams_per_gateway = streams;
    }
    cfg.keep = args.keep;
    if let Some(p) = args.port_base {
        cfg.port_base = p;
    }
    let load_before = loadavg();
    let started = std::time::Instant::now();
    let mut records: Vec<Record> = Vec::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut failures = String::new();
    let result = if peers {
        rt.block_on(side_by_side::run(&cfg, &mut records))
            .map(|fails| {
                for f in fails {
                    failures.push_str(&format!(
                        " {} FAILED at {} routes: {}.",
                        f.implementation.title(),
                        f.routes,
                        f.error.replace('\n', " ")
                    ));
                }
            })
    } else {
        rt.block_on(run(&cfg, &mut records))
    };
    let context = format!(
        "Run: `ferrogate-bench {}`{} took {:.0} s on {} CPUs; load average {} at start, {} at end{}.{}{}",
        command_line(),
        if peers {
            format!(" ({SIDE_BY_SIDE_MARK} `{id}`)")
        } else {
            format!(" (run `{id}`)")
        },
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_before,
        loadavg(),
        if result.is_err() {
            "; the run FAILED part-way, tables hold what was measured before"
        } else {
            ""
        },
        failures,
        if args.note.is_empty() {
            String::new()
        } else {
            format!(" {}", args.note)
        }
    );
    eprintln!("{context}");
    if !args.merge_scenarios.is_empty() {
        records.retain(|r| {
            r.scenario
                .as_ref()
                .is_some_and(|s| args.merge_scenarios.contains(s))
        });
    }
    let mut all = records.clone();
    let mut context = context;
    if args.merge || peers {
        if let Some(old) = json.as_ref().and_then(|j| report::read_json(j).ok()) {
            let key = |r: &Record| {
                (
                    r.name.clone(),
                    r.routes,
                    r.scenario.clone(),
                    r.implementation.clone(),
                )
            };
            let new: std::collections::BTreeSet<_> = records.iter().map(key).collect();
            all = old
                .into_iter()
                .map(|mut r| {
                    // Every record before issue 16 (no run id) measured Ferrogate.
                    if r.run.is_none() {
                        r.implementation.get_or_insert_with(|| "ferrogate".into());
                    }
                    r
                })
                // A side-by-side table comes from one run: a new one replaces the old whole,
                // unless asked to add to it (--merge: another table beside the old).
                .filter(|r| !(peers && !args.merge && is_side_by_side(r)))
                .filter(|r| !new.contains(&key(r)))
                .chain(records.iter().cloned())
                .collect();
        }
        let old_context = md.as_ref().map(|m| previous_runs(m)).unwrap_or_default();
        let old_context: String = old_context
            .split_inclusive("\n\n")
            .filter(|l| !(peers && !args.merge && l.contains(SIDE_BY_SIDE_MARK)))
            .collect();
        context = format!("{old_context}{context}");
    }
    // Every record before issue 16 (no run id) measured Ferrogate.
    for r in all.iter_mut().filter(|r| r.run.is_none()) {
        r.implementation.get_or_insert_with(|| "ferrogate".into());
    }
    if let Some(json) = &json {
        report::write_json(json, &all)?;
    }
    if let Some(md) = &md {
        report::write_markdown(md, &all, &context, preamble)?;
    }
    println!("{}", serde_json::to_string(&records)?);
    result
}
