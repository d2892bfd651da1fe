//! Benchmark harness (issue 7): runs `ferrogate standalone` with a real Envoy and real echo
//! backends, scales HTTPRoutes up and down, and measures control-plane memory and CPU, Envoy
//! memory, route convergence, translation and Envoy apply time, endpoint propagation, xDS
//! bytes per edit (delta vs state-of-the-world) and data-plane throughput against a
//! hand-written static Envoy config. [`run`] returns [`Record`]s; [`report`] writes them.
//! [`side_by_side::run`] drives Ferrogate and the peer, Envoy Gateway, through the same
//! workload in one run (issue 16); [`implementation`] is what differs between them.

pub mod fleet;
pub mod fleet_world;
pub mod implementation;
pub mod in_process;
pub mod peer;
pub mod peer_yaml;
pub mod procs;
pub mod report;
pub mod side_by_side;
pub mod side_by_side_report;
pub mod under_load;
pub mod world;
pub mod xds_sim;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use implementation::{ControlPlane, Implementation};
use procs::{Echo, Ferrogate, FerrogateLaunch, Ports, RssSampler, Scrape};
use world::{Dialect, World};

/// One measured figure.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub name: String,
    /// HTTPRoutes in the config when measured.
    pub routes: usize,
    pub value: f64,
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Which implementation was measured (`ferrogate`, `envoy-gateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<String>,
    /// The run the record came from (set by runs that compare implementations, and by
    /// every run since issue 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub ferrogate: PathBuf,
    pub echo: PathBuf,
    pub envoy: PathBuf,
    /// Route counts, in order (up then down).
    pub steps: Vec<usize>,
    /// Convergence samples per step (steps above `big_from` use `big_samples`).
    pub samples: usize,
    pub big_from: usize,
    pub big_samples: usize,
    /// Endpoint propagation and data-plane run at this route count (on the way up).
    pub at: usize,
    pub endpoint_samples: usize,
    /// Run wrk (data-plane comparison).
    pub wrk: bool,
    pub wrk_seconds: u32,
    /// Also run a state-of-the-world pass up to `at` routes.
    pub sotw: bool,
    /// Faults under load (kill -9 of ferrogate, Envoy crash).
    pub faults: bool,
    pub port_base: u16,
    /// Keep the scratch directory.
    pub keep: bool,
    pub log: bool,
    /// The peer's binary (`envoy-gateway`), for the side-by-side run.
    pub envoy_gateway: Option<PathBuf>,
    /// Run id put on every record.
    pub run: Option<String>,
    /// How long one convergence probe or endpoint change may take before the step fails.
    pub probe_budget: Duration,
    /// World sizes for the in-process translation pass ([`in_process`]).
    pub in_process: Vec<in_process::Size>,
    /// The fleet pass ([`fleet`]): many Gateways in one real process.
    pub fleet: Option<fleet::FleetSize>,
    pub fleet_samples: fleet::FleetSamples,
}

impl BenchConfig {
    /// The full run: 10 → 1000 → 10 routes, 50 samples per step.
    pub fn full(ferrogate: PathBuf, echo: PathBuf, envoy: PathBuf) -> Self {
        let up = [10, 50, 100, 300, 500, 1000];
        let steps = up.iter().chain(up.iter().rev().skip(1)).copied().collect();
        Self {
            ferrogate,
            echo,
            envoy,
            steps,
            samples: 50,
            big_from: 2000,
            big_samples: 10,
            at: 1000,
            endpoint_samples: 20,
            wrk: true,
            wrk_seconds: 8,
            sotw: true,
            faults: true,
            port_base: 31000,
            keep: false,
            log: true,
            envoy_gateway: None,
            run: None,
            probe_budget: Duration::from_secs(60),
            in_process: vec![
                in_process::Size {
                    gateways: 1,
                    routes_per_gateway: 10_000,
                },
                in_process::Size {
                    gateways: 100,
                    routes_per_gateway: 1000,
                },
            ],
            fleet: Some(fleet::FleetSize {
                gateways: 100,
                routes_per_gateway: 1000,
                streams_per_gateway: 10,
            }),
            fleet_samples: fleet::FleetSamples {
                edits: 20,
                endpoint_changes: 10,
            },
        }
    }

    /// The smoke run: 10 routes, 5 samples, no wrk, no sotw pass, no faults.
    pub fn smoke(ferrogate: PathBuf, echo: PathBuf, envoy: PathBuf) -> Self {
        Self {
            steps: vec![10],
            samples: 5,
            at: 10,
            endpoint_samples: 3,
            wrk: false,
            sotw: false,
            faults: false,
            port_base: 13000,
            in_process: vec![in_process::Size {
                gateways: 3,
                routes_per_gateway: 10,
            }],
            fleet: Some(fleet::FleetSize {
                gateways: 2,
                routes_per_gateway: 10,
                streams_per_gateway: 3,
            }),
            fleet_samples: fleet::FleetSamples {
                edits: 2,
                endpoint_changes: 2,
            },
            ..Self::full(ferrogate, echo, envoy)
        }
    }
}

/// Percentile (nearest rank) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

const MIB: f64 = 1024.0 * 1024.0;

struct Ctx {
    cfg: BenchConfig,
    dir: PathBuf,
    launch: FerrogateLaunch,
    world: World,
    cp: ControlPlane,
    echo_a: Echo,
    echo_b: Echo,
    sampler: RssSampler,
    envoy_sampler: Option<RssSampler>,
    ticks: f64,
    out: Vec<Record>,
    mode: String,
    probe_seq: usize,
    /// Put before every scenario name (`side-by-side/` in the side-by-side run).
    scenario_prefix: &'static str,
}

impl Ctx {
    fn log(&self, msg: &str) {
        if self.cfg.log {
            eprintln!(
                "[bench {} {}] {msg}",
                self.cp.implementation().name(),
                self.mode
            );
        }
    }

    fn rec(&mut self, name: &str, routes: usize, value: f64, unit: &str, scenario: &str) {
        if self.cfg.log {
            eprintln!(
                "  {name} = {value:.3} {unit} (routes {routes}, {}{scenario}, {})",
                self.scenario_prefix,
                self.cp.implementation().name()
            );
        }
        self.out.push(Record {
            name: name.into(),
            routes,
            value,
            unit: unit.into(),
            scenario: Some(format!("{}{scenario}", self.scenario_prefix)),
            implementation: Some(self.cp.implementation().name().into()),
            run: self.cfg.run.clone(),
        });
    }

    /// Ferrogate's own metrics (empty for the peer, whose metrics are not read).
    async fn metrics(&self) -> Scrape {
        if self.cp.implementation() != Implementation::Ferrogate {
            return Scrape::new();
        }
        procs::scrape(self.launch.ports.metrics(), "/metrics")
            .await
            .unwrap_or_default()
    }

    /// The Envoy's stats (empty for the peer's Envoy, whose admin port is chosen at random).
    async fn envoy_stats(&self) -> Scrape {
        if self.cp.implementation() != Implementation::Ferrogate {
            return Scrape::new();
        }
        procs::scrape(self.launch.ports.envoy_admin(), "/stats/prometheus")
            .await
            .unwrap_or_default()
    }

    fn envoy_pid(&self) -> Option<u32> {
        // The bench Gateway's own (other Gateways' Envoys may run beside it).
        self.cp
            .envoy_pid(&self.launch.work_dir().join("default").join("bench"))
    }

    /// GET through the Ferrogate-configured Envoy.
    async fn get(&self, host: &str, path: &str) -> Option<crate::client::HttpResponse> {
        crate::client::get(self.launch.ports.listener_addr(), host, path, &[])
            .await
            .ok()
    }

    /// Polls until `host path` answers `want` `times` times in a row; returns the time of the
    /// first answer of that run.
    async fn until_status(
        &self,
        host: &str,
        path: &str,
        want: u16,
        times: usize,
        budget: Duration,
    ) -> anyhow::Result<Instant> {
        until_status(
            self.launch.ports.listener_addr(),
            host,
            path,
            want,
            times,
            budget,
        )
        .await
    }

    /// One convergence sample: writes a new route file, waits for 3 consecutive 200s; then
    /// removes it and waits for 3 consecutive 404s. Returns (add ms, remove ms).
    async fn probe(&mut self, budget: Duration) -> anyhow::Result<(f64, f64)> {
        let k = self.probe_seq;
        self.probe_seq += 1;
        let name = format!("probe{k}");
        let host = world::host(k);
        let path = format!("/{name}");
        let t0 = Instant::now();
        self.world.add_probe(&name, &host, &path)?;
        let ok = self.until_status(&host, &path, 200, 3, budget).await?;
        let add = ok.duration_since(t0).as_secs_f64() * 1000.0;
        let t1 = Instant::now();
        self.world.remove_probe(&name)?;
        let gone = self.until_status(&host, &path, 404, 3, budget).await?;
        let remove = gone.duration_since(t1).as_secs_f64() * 1000.0;
        Ok((add, remove))
    }

    fn cpu(&self) -> f64 {
        procs::cpu_ticks(self.cp.pid()).unwrap_or(0) as f64 / self.ticks
    }

    /// Scales to `n` routes and measures the step.
    async fn step(&mut self, n: usize, scenario: &str) -> anyhow::Result<()> {
        let from = self.world.routes;
        self.log(&format!("step {from} -> {n} routes ({scenario})"));
        let _ = self.sampler.take_peak();
        if let Some(s) = &self.envoy_sampler {
            let _ = s.take_peak();
        }
        let cpu0 = self.cpu();
        let t0 = Instant::now();
        if n > from {
            for i in from..n {
                self.world.add_route(i)?;
            }
        } else {
            for i in n..from {
                self.world.remove_route(i)?;
            }
        }
        self.world.routes = n;
        // Generous: the peer reloads every file on each file event, so a bulk of N new files
        // costs it N reloads of up to N files (about 0.25 s each at 10-100 routes here).
        let budget = Duration::from_secs(300 + n as u64);
        let done = if n > from {
            self.until_status(&world::host(n - 1), &world::path(n - 1), 200, 1, budget)
                .await?
        } else {
            self.until_status(&world::host(n), &world::path(n), 404, 1, budget)
                .await?
        };
        let apply_ms = done.duration_since(t0).as_secs_f64() * 1000.0;
        if n > 0 {
            self.until_status(&world::host(0), &world::path(0), 200, 1, budget)
                .await?;
        }
        if self.envoy_sampler.is_none()
            && let Some(pid) = self.envoy_pid()
        {
            self.envoy_sampler = Some(RssSampler::start(pid));
        }
        // Long enough for Envoy's stats flush (5 s) to take in the bulk update, so the apply-time
        // histogram delta below covers only the probe edits.
        tokio::time::sleep(Duration::from_millis(5500)).await;
        let cpu_apply = self.cpu() - cpu0;
        self.rec("scale_apply_ms", n, apply_ms, "ms", scenario);
        self.rec("cp_cpu_apply_s", n, cpu_apply, "s", scenario);

        let samples = if n >= self.cfg.big_from {
            self.cfg.big_samples
        } else {
            self.cfg.samples
        };
        let m1 = self.metrics().await;
        let e1 = self.envoy_stats().await;
        let e1_at = Instant::now();
        let cpu1 = self.cpu();
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        for _ in 0..samples {
            match self.probe(self.cfg.probe_budget).await {
                Ok((a, r)) => {
                    adds.push(a);
                    removes.push(r);
                }
                Err(e) => {
                    // The step's memory is still worth having (the peer may time out here).
                    self.record_memory(n, scenario).await;
                    return Err(e);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu2 = self.cpu();
        let m2 = self.metrics().await;
        // Envoy merges histograms into its admin output at each stats flush (5 s).
        let flush = Duration::from_millis(5500).saturating_sub(e1_at.elapsed());
        tokio::time::sleep(flush).await;
        let e2 = self.envoy_stats().await;
        adds.sort_by(f64::total_cmp);
        removes.sort_by(f64::total_cmp);
        let edits = (2 * samples) as f64;
        self.rec("convergence_samples", n, samples as f64, "count", scenario);
        self.rec(
            "convergence_p50_ms",
            n,
            percentile(&adds, 50.0),
            "ms",
            scenario,
        );
        self.rec(
            "convergence_p90_ms",
            n,
            percentile(&adds, 90.0),
            "ms",
            scenario,
        );
        self.rec(
            "convergence_p99_ms",
            n,
            percentile(&adds, 99.0),
            "ms",
            scenario,
        );
        self.rec(
            "convergence_max_ms",
            n,
            percentile(&adds, 100.0),
            "ms",
            scenario,
        );
        self.rec(
            "route_removal_p50_ms",
            n,
            percentile(&removes, 50.0),
            "ms",
            scenario,
        );
        self.rec(
            "route_removal_p99_ms",
            n,
            percentile(&removes, 99.0),
            "ms",
            scenario,
        );
        self.rec(
            "cp_cpu_per_edit_ms",
            n,
            (cpu2 - cpu1) * 1000.0 / edits,
            "ms",
            scenario,
        );
        let d = |a: &Scrape, b: &Scrape, name: &str| procs::sum(b, name) - procs::sum(a, name);
        let tcount = d(&m1, &m2, "ferrogate_translation_duration_seconds_count");
        if tcount > 0.0 {
            let tsum = d(&m1, &m2, "ferrogate_translation_duration_seconds_sum");
            self.rec(
                "translate_full_ms",
                n,
                tsum * 1000.0 / tcount,
                "ms",
                scenario,
            );
            self.rec(
                "translations_per_edit",
                n,
                tcount / edits,
                "count",
                scenario,
            );
        }
        if !m2.is_empty() {
            self.rec(
                "xds_bytes_per_route_edit",
                n,
                d(&m1, &m2, "ferrogate_xds_sent_bytes_total") / edits,
                "bytes",
                scenario,
            );
        }
        let p1 = procs::by_label(&m1, "ferrogate_xds_pushes_total");
        for (label, v) in procs::by_label(&m2, "ferrogate_xds_pushes_total") {
            let delta = v - p1.get(&label).copied().unwrap_or(0.0);
            self.rec(
                &format!("xds_responses_per_route_edit_{}", short_type(&label)),
                n,
                delta / edits,
                "count",
                scenario,
            );
        }
        for (stat, name) in [
            ("envoy_http_rds_update_duration", "envoy_rds_apply_ms"),
            (
                "envoy_listener_manager_lds_update_duration",
                "envoy_lds_apply_ms",
            ),
            (
                "envoy_cluster_manager_cds_update_duration",
                "envoy_cds_apply_ms",
            ),
        ] {
            let c = d(&e1, &e2, &format!("{stat}_count"));
            if c > 0.0 {
                let s = d(&e1, &e2, &format!("{stat}_sum"));
                self.rec(name, n, s / c, "ms", scenario);
            }
        }
        self.record_memory(n, scenario).await;
        Ok(())
    }

    /// Control-plane RSS peak (since the step began) and settled (2 s from now), Envoy RSS.
    async fn record_memory(&mut self, n: usize, scenario: &str) {
        let peak = self.sampler.take_peak();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let settled = procs::rss_bytes(self.cp.pid()).unwrap_or(0);
        self.rec("cp_rss_peak_mib", n, peak as f64 / MIB, "MiB", scenario);
        self.rec(
            "cp_rss_settled_mib",
            n,
            settled as f64 / MIB,
            "MiB",
            scenario,
        );
        if let Some(pid) = self.envoy_pid() {
            if let Some(s) = &self.envoy_sampler {
                s.set_pid(pid);
            }
            let rss = procs::rss_bytes(pid).unwrap_or(0);
            self.rec("envoy_rss_mib", n, rss as f64 / MIB, "MiB", scenario);
        }
    }

    /// Endpoint propagation: adds / removes the second backend's EndpointSlice.
    async fn endpoints(&mut self) -> anyhow::Result<()> {
        let n = self.world.routes;
        self.log(&format!("endpoint propagation at {n} routes"));
        let (host, path) = (world::host(0), world::path(0));
        let b_pod = self.echo_b.pod.clone();
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        let mut failed = 0usize;
        let m1 = self.metrics().await;
        for _ in 0..self.cfg.endpoint_samples {
            let t0 = Instant::now();
            self.world.add_slice_b(self.echo_b.http_port)?;
            loop {
                anyhow::ensure!(
                    t0.elapsed() < self.cfg.probe_budget,
                    "new endpoint got no request in {:?}",
                    self.cfg.probe_budget
                );
                match self.get(&host, &path).await {
                    Some(r) if r.status == 200 => {
                        if r.json()
                            .ok()
                            .and_then(|v| v.get("pod").and_then(|p| p.as_str().map(String::from)))
                            == Some(b_pod.clone())
                        {
                            adds.push(t0.elapsed().as_secs_f64() * 1000.0);
                            break;
                        }
                    }
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let t1 = Instant::now();
            self.world.remove_slice_b()?;
            let mut run = 0;
            let mut first_a = Instant::now();
            while run < 20 {
                anyhow::ensure!(
                    t1.elapsed() < self.cfg.probe_budget,
                    "removed endpoint still served after {:?}",
                    self.cfg.probe_budget
                );
                match self.get(&host, &path).await {
                    Some(r) if r.status == 200 => {
                        let pod = r
                            .json()
                            .ok()
                            .and_then(|v| v.get("pod").and_then(|p| p.as_str().map(String::from)));
                        if pod == Some(b_pod.clone()) {
                            run = 0;
                        } else {
                            if run == 0 {
                                first_a = Instant::now();
                            }
                            run += 1;
                        }
                    }
                    _ => failed += 1,
                }
            }
            removes.push(first_a.duration_since(t1).as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let m2 = self.metrics().await;
        adds.sort_by(f64::total_cmp);
        removes.sort_by(f64::total_cmp);
        let s = "endpoints";
        let edits = (2 * self.cfg.endpoint_samples) as f64;
        self.rec("endpoint_samples", n, adds.len() as f64, "count", s);
        self.rec(
            "endpoint_propagation_add_p50_ms",
            n,
            percentile(&adds, 50.0),
            "ms",
            s,
        );
        self.rec(
            "endpoint_propagation_add_p99_ms",
            n,
            percentile(&adds, 99.0),
            "ms",
            s,
        );
        self.rec(
            "endpoint_propagation_remove_p50_ms",
            n,
            percentile(&removes, 50.0),
            "ms",
            s,
        );
        self.rec(
            "endpoint_propagation_remove_p99_ms",
            n,
            percentile(&removes, 99.0),
            "ms",
            s,
        );
        let mut all: Vec<f64> = adds.iter().chain(&removes).copied().collect();
        all.sort_by(f64::total_cmp);
        self.rec(
            "endpoint_propagation_p99_ms",
            n,
            percentile(&all, 99.0),
            "ms",
            s,
        );
        self.rec("failed_requests", n, failed as f64, "count", s);
        let bytes = procs::sum(&m2, "ferrogate_xds_sent_bytes_total")
            - procs::sum(&m1, "ferrogate_xds_sent_bytes_total");
        if !m2.is_empty() {
            self.rec("xds_bytes_per_endpoint_edit", n, bytes / edits, "bytes", s);
        }
        let p1 = procs::by_label(&m1, "ferrogate_xds_pushes_total");
        for (label, v) in procs::by_label(&m2, "ferrogate_xds_pushes_total") {
            let delta = v - p1.get(&label).copied().unwrap_or(0.0);
            self.rec(
                &format!("xds_responses_per_endpoint_edit_{}", short_type(&label)),
                n,
                delta / edits,
                "count",
                s,
            );
        }
        Ok(())
    }
}

/// Polls `host path` through the Envoy listening on `addr` (a new connection per request,
/// [`POLL`] between failed polls) until it answers `want` `times` times in a row; returns the time
/// of the first answer of that run.
pub async fn until_status(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
    want: u16,
    times: usize,
    budget: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + budget;
    let mut run = 0;
    let mut first = Instant::now();
    loop {
        let status = crate::client::get(addr, host, path, &[])
            .await
            .ok()
            .map(|r| r.status);
        if status == Some(want) {
            if run == 0 {
                first = Instant::now();
            }
            run += 1;
            if run >= times {
                return Ok(first);
            }
            continue;
        }
        run = 0;
        anyhow::ensure!(
            Instant::now() < deadline,
            "{host}{path} on {addr} did not answer {want} within {budget:?} (last {status:?})"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Time between failed polls of [`until_status`]: a convergence sample is late by up to this
/// (plus a timer tick), so it is the measurement's resolution. Each poll is one small
/// request on a new connection, which Envoy serves in well under a millisecond.
const POLL: Duration = Duration::from_millis(1);

/// `type_url="type.googleapis.com/envoy.config.route.v3.RouteConfiguration"` -> `rds`.
fn short_type(label: &str) -> &'static str {
    if label.contains("RouteConfiguration") {
        "rds"
    } else if label.contains("ClusterLoadAssignment") {
        "eds"
    } else if label.contains("Listener") {
        "lds"
    } else if label.contains("Cluster") {
        "cds"
    } else if label.contains("Secret") {
        "sds"
    } else {
        "other"
    }
}

/// A pass's scratch directory (kept with `--keep`) and its two echo backends.
struct Scratch {
    dir: PathBuf,
    echo_a: Echo,
    echo_b: Echo,
    /// Removes the directory when dropped (`None` when kept).
    temp: Option<tempfile::TempDir>,
}

impl Scratch {
    /// Echo pods are named `<pod>-a` and `<pod>-b`.
    async fn new(cfg: &BenchConfig, prefix: &str, pod: &str) -> anyhow::Result<Self> {
        let (dir, temp) = crate::testing::scratch_dir(prefix, cfg.keep)?;
        let echo_bin = std::fs::canonicalize(&cfg.echo)
            .with_context(|| format!("echo binary {}", cfg.echo.display()))?;
        let echo_a =
            Echo::start(&echo_bin, &format!("{pod}-a"), &dir.join("echo-a.stderr")).await?;
        let echo_b =
            Echo::start(&echo_bin, &format!("{pod}-b"), &dir.join("echo-b.stderr")).await?;
        Ok(Self {
            dir,
            echo_a,
            echo_b,
            temp,
        })
    }
}

impl FerrogateLaunch {
    /// `ferrogate standalone` from this run's binaries, working in `dir`.
    fn of(
        cfg: &BenchConfig,
        dir: &std::path::Path,
        ports: Ports,
        mode: &str,
        extra_args: Vec<String>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            binary: std::fs::canonicalize(&cfg.ferrogate)
                .with_context(|| format!("ferrogate binary {}", cfg.ferrogate.display()))?,
            envoy: std::fs::canonicalize(&cfg.envoy).unwrap_or_else(|_| cfg.envoy.clone()),
            dir: dir.to_path_buf(),
            ports,
            xds_mode: mode.to_string(),
            extra_args,
        })
    }
}

async fn setup(
    cfg: &BenchConfig,
    implementation: Implementation,
    mode: &str,
    port_base: u16,
) -> anyhow::Result<(Ctx, Option<tempfile::TempDir>)> {
    let scratch = Scratch::new(cfg, &format!("{}-bench-", implementation.name()), "bench").await?;
    let (dir, echo_a, echo_b, temp) = (scratch.dir, scratch.echo_a, scratch.echo_b, scratch.temp);
    let ports = Ports { base: port_base };
    let launch = FerrogateLaunch::of(cfg, &dir, ports, mode, Vec::new())?;
    let dialect = match implementation {
        Implementation::Ferrogate => Dialect::Ferrogate,
        Implementation::EnvoyGateway => Dialect::EnvoyGateway {
            envoy_version: peer::ENVOY_VERSION,
        },
    };
    let mut world = World::with_dialect(&dir, ports.listener(), dialect)?;
    world.write_base(echo_a.http_port)?;
    let cp = match implementation {
        Implementation::Ferrogate => ControlPlane::Ferrogate(Ferrogate::start(&launch).await?),
        Implementation::EnvoyGateway => {
            let binary = cfg
                .envoy_gateway
                .clone()
                .context("no envoy-gateway binary given")?;
            let peer = peer::EnvoyGatewayLaunch {
                binary: std::fs::canonicalize(&binary)
                    .with_context(|| format!("envoy-gateway binary {}", binary.display()))?,
                envoy: launch.envoy.clone(),
                dir: dir.clone(),
                config_dir: launch.config_dir(),
                admin_port: ports.base + 3,
            };
            ControlPlane::EnvoyGateway(peer::EnvoyGateway::start(&peer).await?)
        }
    };
    let sampler = RssSampler::start(cp.pid());
    let ctx = Ctx {
        cfg: cfg.clone(),
        dir,
        launch,
        world,
        cp,
        echo_a,
        echo_b,
        sampler,
        envoy_sampler: None,
        ticks: procs::clock_ticks(),
        out: Vec::new(),
        mode: mode.to_string(),
        probe_seq: 0,
        scenario_prefix: "",
    };
    if cfg.log {
        eprintln!(
            "[bench {} {mode}] scratch directory {}",
            implementation.name(),
            ctx.dir.display()
        );
    }
    Ok((ctx, temp))
}

async fn teardown(ctx: &mut Ctx) {
    ctx.cp.stop().await;
    // An Envoy orphaned by a kill -9 of its control plane is ours to stop too.
    stop_envoys(&ctx.launch.work_dir()).await;
    ctx.echo_a.stop().await;
    ctx.echo_b.stop().await;
}

/// SIGTERM to every Envoy started under `work_dir` (ferrogate stops its own on SIGTERM; one
/// left by a kill -9 of ferrogate would keep its ports).
async fn stop_envoys(work_dir: &std::path::Path) {
    for pid in dataplane_impl::all_envoys(work_dir) {
        let _ = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
    }
}

/// Runs the benchmark, appending records to `out` as passes finish (so a failure late in
/// the run keeps what was measured before it).
pub async fn run(cfg: &BenchConfig, out: &mut Vec<Record>) -> anyhow::Result<()> {
    let (mut ctx, _temp) = setup(cfg, Implementation::Ferrogate, "delta", cfg.port_base).await?;
    let result = main_pass(&mut ctx).await;
    teardown(&mut ctx).await;
    out.append(&mut ctx.out);
    result.context("delta pass")?;
    if cfg.sotw {
        let (mut ctx, _temp) =
            setup(cfg, Implementation::Ferrogate, "sotw", cfg.port_base + 200).await?;
        let result = sotw_pass(&mut ctx).await;
        teardown(&mut ctx).await;
        out.append(&mut ctx.out);
        result.context("sotw pass")?;
    }
    for &size in &cfg.in_process {
        println!("[bench ferrogate in-process] {size:?}");
        in_process::measure(size, IN_PROCESS_EDITS, out)
            .with_context(|| format!("in-process pass {size:?}"))?;
    }
    if let Some(size) = cfg.fleet {
        fleet::measure(cfg, size, cfg.fleet_samples, out)
            .await
            .with_context(|| format!("fleet pass {size:?}"))?;
    }
    Ok(())
}

/// Route edits per in-process size (half adds, half removals).
const IN_PROCESS_EDITS: usize = 40;

async fn main_pass(ctx: &mut Ctx) -> anyhow::Result<()> {
    let steps = ctx.cfg.steps.clone();
    let peak = steps.iter().copied().max().unwrap_or(0);
    let mut up = true;
    let mut endpoints_done = false;
    for n in steps {
        let scenario = if up { "scale-up" } else { "scale-down" };
        ctx.step(n, scenario).await?;
        if n == ctx.cfg.at && !endpoints_done {
            endpoints_done = true;
            ctx.endpoints().await?;
            if ctx.cfg.wrk {
                dataplane(ctx).await?;
                instructions::instructions(ctx).await?;
            }
        }
        if n == peak {
            up = false;
        }
    }
    if ctx.cfg.faults {
        faults(ctx).await?;
    }
    Ok(())
}

/// State-of-the-world pass: straight to `at` routes, then edits (for bytes per edit and
/// convergence under sotw).
async fn sotw_pass(ctx: &mut Ctx) -> anyhow::Result<()> {
    ctx.cfg.samples = ctx.cfg.samples.min(20);
    for n in [10, ctx.cfg.at] {
        ctx.step(n, "sotw").await?;
    }
    Ok(())
}

pub mod dataplane_impl;
pub mod instructions;
mod local_envoy;
use dataplane_impl::{dataplane, faults};
