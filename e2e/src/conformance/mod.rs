//! Conformance runner: replays the shared Gateway API conformance scenarios (a data
//! re-expression of the upstream suite, described by the data set's `SCHEMA.md`) against
//! `ferrogate standalone`, real Envoys and local `ferrogate-echo` backends.
//!
//! Per scenario the runner builds a fresh world in a temporary directory: it writes the
//! preprocessed manifests plus generated certificates into a config directory, starts one
//! echo process per Deployment replica and publishes EndpointSlices for them, starts
//! `ferrogate standalone` on ports and a loopback address pool of its own (so scenarios can
//! run in parallel), executes the steps and tears everything down.
//!
//! A step type the runner does not implement makes the scenario SKIPPED with the reason;
//! nothing is ever reported as passing without having run.

mod certs;
mod grpc;
mod http;
mod infra;
mod l4;
mod mirror;
mod report;
mod scenario;
mod status;
mod tls;
mod util;
mod world;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

pub use report::write_report;
pub use scenario::Scenario;

/// The GatewayClass controller name of ferrogate.
pub const CONTROLLER_NAME: &str = "gateway.ferrogate.dev/gatewayclass-controller";
/// Name of the GatewayClass under test that the runner creates.
pub const GATEWAY_CLASS_NAME: &str = "ferrogate";

/// How to run scenarios.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// The conformance data folder (with `SCHEMA.md`, `scenarios/`, `manifests/`).
    pub data_dir: PathBuf,
    /// `ferrogate` binary.
    pub ferrogate: PathBuf,
    /// `ferrogate-echo` binary.
    pub echo: PathBuf,
    /// Envoy binary.
    pub envoy: PathBuf,
    /// Scenarios run at the same time.
    pub jobs: usize,
    /// Only scenarios whose name matches.
    pub filter: Option<regex::Regex>,
    /// Upper bound for every status wait (the schema's budgets are 60-300 s; a standalone
    /// control plane converges in well under a second, so a cap speeds up failing runs).
    pub status_timeout_cap: Option<Duration>,
    /// Upper bound for one scenario.
    pub scenario_timeout: Duration,
    /// Features the implementation does not claim: scenarios needing one are skipped.
    pub unsupported_features: Vec<String>,
    /// Keep each scenario's temporary directory (for debugging).
    pub keep_temp: bool,
    /// First port of the range the runner uses for ferrogate's own listeners.
    pub port_base: u16,
    /// Print progress details to stderr.
    pub verbose: bool,
    /// Offset of scenario indexes when choosing each scenario's `/24` loopback pool
    /// (`127.(100 + i / 250 % 100).(i % 250).0/24`), so concurrent runners do not collide.
    pub address_index_base: usize,
}

impl RunnerConfig {
    /// Defaults for a data folder and binaries.
    pub fn new(
        data_dir: impl Into<PathBuf>,
        ferrogate: impl Into<PathBuf>,
        echo: impl Into<PathBuf>,
        envoy: impl Into<PathBuf>,
    ) -> Self {
        Self {
            data_dir: data_dir.into(),
            ferrogate: ferrogate.into(),
            echo: echo.into(),
            envoy: envoy.into(),
            jobs: 2,
            filter: None,
            status_timeout_cap: None,
            scenario_timeout: Duration::from_secs(420),
            unsupported_features: Vec::new(),
            keep_temp: false,
            port_base: 21000,
            verbose: false,
            address_index_base: 0,
        }
    }
}

/// What happened to one scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every step met its expectation.
    Pass,
    /// The first failure.
    Fail(String),
    /// Not run, with the reason.
    Skip(String),
}

/// Result of one scenario.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Wall time.
    pub duration: Duration,
    /// The scenario's metadata (profiles, features, level).
    pub meta: ScenarioMeta,
}

impl ScenarioResult {
    /// One line: `PASS name (Xs)`, `FAIL name: ...`, `SKIP name: ...`.
    pub fn line(&self) -> String {
        match &self.outcome {
            Outcome::Pass => format!("PASS {} ({:.1}s)", self.name, self.duration.as_secs_f64()),
            Outcome::Fail(why) => format!(
                "FAIL {}: {} ({:.1}s)",
                self.name,
                why,
                self.duration.as_secs_f64()
            ),
            Outcome::Skip(why) => format!("SKIP {}: {}", self.name, why),
        }
    }
}

/// Scenario metadata used for reports.
#[derive(Clone, Debug, Default)]
pub struct ScenarioMeta {
    /// Upstream features.
    pub features: Vec<String>,
    /// `(profile, support)` pairs.
    pub profiles: Vec<(String, String)>,
    /// `core` or `extended`.
    pub support_level: String,
    /// Area.
    pub area: String,
    /// Upstream provisional flag.
    pub provisional: bool,
}

/// Names of every scenario of the data folder, sorted.
pub fn scenario_names(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let dir = data_dir.join("scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("conformance scenarios folder {}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".yaml")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Runs every selected scenario with `config.jobs` in parallel; `on_result` sees each result
/// as it completes. Results come back in name order.
pub async fn run_all(
    config: &RunnerConfig,
    on_result: impl Fn(&ScenarioResult) + Send + Sync + 'static,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let names: Vec<String> = scenario_names(&config.data_dir)?
        .into_iter()
        .filter(|n| config.filter.as_ref().is_none_or(|f| f.is_match(n)))
        .collect();
    run_named(config, &names, on_result).await
}

/// Runs the named scenarios.
pub async fn run_named(
    config: &RunnerConfig,
    names: &[String],
    on_result: impl Fn(&ScenarioResult) + Send + Sync + 'static,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let caps = world::Capabilities::probe(&config.ferrogate).await;
    let jobs = if caps.address_pool {
        config.jobs.max(1)
    } else {
        1
    };
    if !caps.address_pool {
        eprintln!(
            "note: {} has no --address-pool; running one scenario at a time on 127.0.0.1",
            config.ferrogate.display()
        );
    }
    let config = Arc::new(config.clone());
    let names = Arc::new(names.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let on_result = Arc::new(on_result);
    let mut workers = Vec::new();
    for slot in 0..jobs {
        let (config, names, next, on_result, caps) = (
            config.clone(),
            names.clone(),
            next.clone(),
            on_result.clone(),
            caps.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(name) = names.get(index) else { break };
                let result = run_one(
                    &config,
                    &caps,
                    name,
                    slot,
                    config.address_index_base + index,
                )
                .await;
                on_result(&result);
                out.push(result);
            }
            out
        }));
    }
    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await?);
    }
    results.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(results)
}

/// Runs one scenario by name on a worker slot (ports) with a unique index (addresses).
pub async fn run_scenario(
    config: &RunnerConfig,
    name: &str,
    slot: usize,
    index: usize,
) -> ScenarioResult {
    let caps = world::Capabilities::probe(&config.ferrogate).await;
    run_one(config, &caps, name, slot, index).await
}

async fn run_one(
    config: &RunnerConfig,
    caps: &world::Capabilities,
    name: &str,
    slot: usize,
    index: usize,
) -> ScenarioResult {
    let started = Instant::now();
    let scenario = match Scenario::load(&config.data_dir, name) {
        Ok(s) => s,
        Err(e) => {
            return ScenarioResult {
                name: name.to_string(),
                outcome: Outcome::Fail(format!("cannot load scenario: {e:#}")),
                duration: started.elapsed(),
                meta: ScenarioMeta::default(),
            };
        }
    };
    let meta = scenario.meta();
    let outcome = match scenario.skip_reason(config, caps) {
        Some(why) => Outcome::Skip(why),
        None => {
            match tokio::time::timeout(
                config.scenario_timeout,
                world::run(config, caps, &scenario, slot, index),
            )
            .await
            {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Fail(format!(
                    "scenario timed out after {}s",
                    config.scenario_timeout.as_secs()
                )),
            }
        }
    };
    ScenarioResult {
        name: name.to_string(),
        outcome,
        duration: started.elapsed(),
        meta,
    }
}

/// Summary line: `N passed, M failed, K skipped`.
pub fn summary(results: &[ScenarioResult]) -> String {
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    format!(
        "{} passed, {} failed, {} skipped",
        count(|o| matches!(o, Outcome::Pass)),
        count(|o| matches!(o, Outcome::Fail(_))),
        count(|o| matches!(o, Outcome::Skip(_)))
    )
}
