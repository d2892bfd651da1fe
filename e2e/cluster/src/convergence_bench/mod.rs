//! Route convergence in controller mode, with and without a slow API server (issue 15:
//! "convergence with every API request delayed 500 ms: unchanged from the undelayed run").
//!
//! The controller's status writes and infra applies run in tasks of their own, never on the
//! path from a watch event to an xDS push, so a slow API server must not delay Envoy. This
//! measures it on the real thing: a local control plane with the chart installed, the node
//! running the Gateway's Envoy Pod, `ferrogate controller` as the chart's ServiceAccount, and
//! N standing routes. A route is created (and later deleted) by the admin directly against
//! the API server, and the time runs until the Envoy Pod answers it with 3 consecutive 200s
//! (then 404s). The same is done twice: (a) the controller talks to the API server directly;
//! (b) a fresh controller, on the same xDS port so the Envoy Pod only reconnects, talks to it
//! through [`ApiDelayProxy`], which holds every one of its requests for the delay. Each run
//! also times its controller's first status pass after the start and, after that pass, how
//! long a new route's Accepted status takes to appear, so the delayed run shows that status
//! writes still happen (later), while routes converge as fast as before. Edits are spread
//! over the controller's debounce period (`spread`), and the routes' backend is a quiet
//! in-process server (`backend`).

mod backend;
pub mod probe;
pub mod records;
pub mod world;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::api_delay::ApiDelayProxy;
use crate::controller::certgen_with;
use crate::node::{Node, NodeOptions};
use crate::{ControlPlane, ControlPlaneOptions, Controller, ControllerOptions, install, tools};
use records::Session;

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The `ferrogate` binary (a release build).
    pub ferrogate: PathBuf,
    /// Standing routes on the Gateway.
    pub routes: usize,
    /// Route additions (each followed by its removal) timed per run.
    pub samples: usize,
    /// How long the proxy holds each request of the delayed run.
    pub delay: Duration,
    /// The controller's `--debounce-ms` (its quiet time before translating).
    pub debounce_ms: u64,
    /// How long one probe may take before the run fails.
    pub probe_budget: Duration,
    /// Run id put on every record.
    pub run: Option<String>,
    /// Keep the control plane's folder (logs, kubeconfigs) for a person to read.
    pub keep: bool,
}

/// Both runs' results.
pub struct Outcome {
    pub direct: Session,
    pub delayed: Session,
    pub records: Vec<ferrogate_e2e::bench::Record>,
    /// The control plane's folder (only left behind with [`BenchOptions::keep`]).
    pub dir: PathBuf,
}

/// Long waits: the cluster, the Envoy Pod, a controller taking over.
const SETUP: Duration = Duration::from_secs(180);
/// Quiet time before a run's samples; see [`Bench::measure`].
const SETTLE: Duration = Duration::from_secs(5);

fn log(started: Instant, msg: &str) {
    eprintln!(
        "[cluster-bench {:6.1}s] {msg}",
        started.elapsed().as_secs_f64()
    );
}

/// The delayed run's scenario name.
pub fn delayed_scenario(delay: Duration) -> String {
    format!("controller, API delayed {} ms", delay.as_millis())
}

/// Runs both measurements; see the module documentation.
pub async fn run(options: &BenchOptions) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    anyhow::ensure!(options.samples > 0, "--samples must be at least 1");
    anyhow::ensure!(
        options.ferrogate.is_file(),
        "{} is missing: build it with `cargo build --release --bin ferrogate`",
        options.ferrogate.display()
    );
    let cluster = Cluster::start(options, started).await?;

    log(started, "run 1: controller -> API server directly");
    // The world first, so this controller's first status pass covers every route, as the
    // second one's does.
    apply(
        &cluster.plane,
        &world::yaml(cluster.backend, options.routes),
    )?;
    let first = cluster.controller_options("bench-direct", options);
    let mut controller = Controller::start(&cluster.plane, cluster.tls.path(), &first)?;
    let first_pass = first_status_pass(&controller, options);
    log(
        started,
        &format!(
            "{} routes applied; waiting for the Envoy Pod",
            options.routes
        ),
    );
    let mut bench = Bench {
        options,
        admin: cluster.admin.clone(),
        envoy: probe::envoy_pod(&cluster.admin, SETUP).await?,
        started,
        probes: 0,
    };
    bench.standing_routes_served().await?;
    probe::controller_serving(controller.health_port, controller.metrics_port, SETUP).await?;
    let direct = bench
        .measure(&controller, first_pass, "controller", None)
        .await
        .with_context(|| format!("controller log:\n{}", controller.log_tail(30)))?;
    controller.stop();

    log(
        started,
        &format!(
            "run 2: a fresh controller -> proxy delaying {:?} -> API server",
            options.delay
        ),
    );
    let proxy = ApiDelayProxy::start(
        &cluster.plane.server(),
        &cluster.plane.ca_pem(),
        options.delay,
    )
    .await?;
    let mut second = cluster.controller_options("bench-delayed", options);
    // The same xDS port: the provisioned bootstrap names it, so the Envoy Pod reconnects
    // instead of being rolled, and both runs probe the same Envoy.
    second.xds_port = Some(controller.xds_port);
    second.kubeconfig = Some(cluster.kubeconfig_through(&proxy)?);
    let mut controller = Controller::start(&cluster.plane, cluster.tls.path(), &second)?;
    let first_pass = first_status_pass(&controller, options);
    probe::controller_serving(controller.health_port, controller.metrics_port, SETUP)
        .await
        .with_context(|| format!("controller log:\n{}", controller.log_tail(30)))?;
    bench.standing_routes_served().await?;
    let scenario = delayed_scenario(options.delay);
    let delayed = bench
        .measure(&controller, first_pass, &scenario, Some(&proxy))
        .await
        .with_context(|| format!("controller log:\n{}", controller.log_tail(30)))?;
    controller.stop();

    let records = records::build(options.routes, options.run.as_deref(), &direct, &delayed);
    log(started, "done");
    Ok(Outcome {
        direct,
        delayed,
        records,
        dir: cluster.plane.dir().to_path_buf(),
    })
}

/// What both runs share: the control plane with CRDs and chart, the node, the xDS TLS
/// material and the routes' backend. Dropping it stops the node, then the control plane.
struct Cluster {
    node: Node,
    plane: ControlPlane,
    tls: tempfile::TempDir,
    admin: kube::Client,
    backend: std::net::SocketAddr,
}

impl Cluster {
    async fn start(options: &BenchOptions, started: Instant) -> anyhow::Result<Self> {
        log(
            started,
            "starting etcd, kube-apiserver, kube-controller-manager",
        );
        let plane = ControlPlane::start(ControlPlaneOptions {
            controller_manager: true,
            keep_dir: options.keep,
        })
        .await?;
        install::gateway_api_crds(&plane, "experimental").context("upstream Gateway API CRDs")?;
        let values = std::fs::read_to_string(
            tools::repo_root().join("charts/ferrogate/ci/local-cluster-values.yaml"),
        )
        .context("the chart's local-cluster values")?;
        install::chart(&plane, &values).context("installing the chart")?;
        let tls = tempfile::tempdir()?;
        certgen_with(&options.ferrogate, tls.path())?;
        let admin = plane.client().await?;
        let node = Node::start(
            admin.clone(),
            NodeOptions {
                host_aliases: vec!["ferrogate.ferrogate-system.svc".into()],
                ..NodeOptions::new("bench-node")
            },
        )
        .await
        .context("starting the node")?;
        // On the node's host address: the API server refuses loopback endpoints.
        let backend = backend::spawn(node.host_ip().into()).await?;
        Ok(Self {
            node,
            plane,
            tls,
            admin,
            backend,
        })
    }

    /// A replica serving xDS on the node's bridge, from the benchmark's binary.
    fn controller_options(&self, identity: &str, options: &BenchOptions) -> ControllerOptions {
        let mut controller = ControllerOptions::new(identity);
        controller.xds_ip = self.node.host_ip().into();
        controller.binary = Some(options.ferrogate.clone());
        controller.debounce_ms = options.debounce_ms;
        controller
    }

    /// A kubeconfig for the chart's ServiceAccount that goes through `proxy`.
    fn kubeconfig_through(&self, proxy: &ApiDelayProxy) -> anyhow::Result<PathBuf> {
        let direct = install::service_account_kubeconfig(
            &self.plane,
            install::NAMESPACE,
            install::SERVICE_ACCOUNT,
        )?;
        let through = self.plane.dir().join("controller-through-delay.kubeconfig");
        proxy.kubeconfig_through(&direct, &through)?;
        Ok(through)
    }
}

/// When a controller's first status pass ended, after its start.
type FirstPass = tokio::task::JoinHandle<anyhow::Result<Duration>>;

/// Starts timing `controller`'s first status pass (it has just been started). A new leader
/// forgets what was written and compares every status with what its watchers saw, writing
/// only the ones that differ (until December 2026 it read every object once, one GET each, in
/// turn, and with a slow API server a new route's status waited for that pass), so it is
/// timed on its own, beside the steady state. The time includes the start (discovery, the
/// Lease, the first list of every kind).
fn first_status_pass(controller: &Controller, options: &BenchOptions) -> FirstPass {
    let timeout = SETUP + options.delay * 2 * options.routes as u32;
    tokio::spawn(probe::first_status_pass(
        controller.metrics_port,
        Instant::now(),
        timeout,
    ))
}

/// `kubectl apply --server-side` of `yaml` as the admin.
fn apply(plane: &ControlPlane, yaml: &str) -> anyhow::Result<()> {
    crate::kubectl::run(
        &plane.binaries().kubectl,
        plane.kubeconfig(),
        &["apply", "--server-side", "--field-manager=bench", "-f", "-"],
        Some(yaml),
    )
    .context("applying the benchmark's objects")?;
    Ok(())
}

struct Bench<'a> {
    options: &'a BenchOptions,
    admin: kube::Client,
    envoy: std::net::SocketAddr,
    started: Instant,
    /// Probe routes made so far (each gets a new name).
    probes: usize,
}

impl Bench<'_> {
    fn routes_api(&self) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
        Api::namespaced_with(
            self.admin.clone(),
            world::NAMESPACE,
            &ApiResource::from_gvk(&gvk),
        )
    }

    /// The first and the last standing route answer through the Envoy Pod.
    async fn standing_routes_served(&self) -> anyhow::Result<()> {
        let last = self.options.routes.saturating_sub(1);
        for i in [0, last] {
            probe::until_status(self.envoy, &world::route_host(i), 200, 1, SETUP).await?;
        }
        Ok(())
    }

    async fn create_probe(&mut self) -> anyhow::Result<(String, Instant)> {
        let name = format!("probe{}", self.probes);
        self.probes += 1;
        let route: DynamicObject = serde_json::from_value(world::probe_route(&name))?;
        let t0 = Instant::now();
        self.routes_api()
            .create(&PostParams::default(), &route)
            .await
            .with_context(|| format!("creating HTTPRoute {name}"))?;
        Ok((name, t0))
    }

    async fn delete_probe(&self, name: &str) -> anyhow::Result<Instant> {
        let t0 = Instant::now();
        self.routes_api()
            .delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting HTTPRoute {name}"))?;
        Ok(t0)
    }

    /// One sample: (ms until served, ms until gone).
    async fn sample(&mut self) -> anyhow::Result<(f64, f64)> {
        let budget = self.options.probe_budget;
        // The controller publishes changes at most once per debounce period (a ticking
        // interval). An edit made right after the previous one converged would land just
        // after a tick every time and always wait the whole period; waiting a spread share of
        // the period first samples every phase, as edits arriving at any time do.
        let period = Duration::from_millis(self.options.debounce_ms);
        tokio::time::sleep(spread(2 * self.probes, period)).await;
        let (name, t0) = self.create_probe().await?;
        let host = world::probe_host(&name);
        let served = probe::until_status(self.envoy, &host, 200, 3, budget).await?;
        tokio::time::sleep(spread(2 * self.probes + 1, period)).await;
        let t1 = self.delete_probe(&name).await?;
        let gone = probe::until_status(self.envoy, &host, 404, 3, budget).await?;
        Ok((ms(served - t0), ms(gone - t1)))
    }

    /// A new route's Accepted condition: ms from its creation until the admin can read it.
    async fn status_accepted(&mut self) -> anyhow::Result<f64> {
        let (name, t0) = self.create_probe().await?;
        let api = self.routes_api();
        let accepted = crate::wait::until(&format!("HTTPRoute {name} Accepted"), SETUP, || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let route = api.get(&name).await.map_err(|e| e.to_string())?;
                let value = serde_json::to_value(&route).map_err(|e| e.to_string())?;
                if world::accepted(&value) {
                    Ok(Instant::now())
                } else {
                    Err(value["status"].to_string())
                }
            }
        })
        .await?;
        self.delete_probe(&name).await?;
        probe::until_status(
            self.envoy,
            &world::probe_host(&name),
            404,
            3,
            self.options.probe_budget,
        )
        .await?;
        Ok(ms(accepted - t0))
    }

    /// Times `samples` additions and removals with `controller` serving the Envoy Pod, after
    /// [`SETTLE`] and one untimed warm-up sample; then the controller's first status pass and
    /// a new route's Accepted status.
    async fn measure(
        &mut self,
        controller: &Controller,
        first_pass: FirstPass,
        scenario: &str,
        proxy: Option<&ApiDelayProxy>,
    ) -> anyhow::Result<Session> {
        // The same quiet time in both runs: a new controller's start-up churn (first status
        // passes, infra applies, the cluster's own controllers) settles in the direct run,
        // while the delayed run's first status pass is still going (and keeps going through
        // the samples, which is the point).
        tokio::time::sleep(SETTLE).await;
        self.sample().await.context("warm-up sample")?;
        let pid = controller.pid().context("the controller is not running")?;
        let cpu0 = cpu_seconds(pid)?;
        let (mut adds, mut removes) = (Vec::new(), Vec::new());
        for i in 0..self.options.samples {
            let (add, remove) = self
                .sample()
                .await
                .with_context(|| format!("{scenario}: sample {i}"))?;
            adds.push(add);
            removes.push(remove);
        }
        // Status writes of the last edits land after their routes converged; let them in.
        tokio::time::sleep(Duration::from_millis(500) + self.options.delay).await;
        let cpu = cpu_seconds(pid)? - cpu0;
        let status_first_pass_ms = ms(first_pass
            .await
            .context("the first-status-pass watcher")??);
        let status_accepted_ms = self.status_accepted().await?;
        log(
            self.started,
            &controller_metrics(controller.metrics_port).await,
        );
        // Everything this controller asked the API server went through the proxy.
        let delayed = proxy.map(ApiDelayProxy::counts);
        let session = Session {
            scenario: scenario.to_string(),
            adds,
            removes,
            cpu_per_edit_ms: cpu * 1000.0 / (2 * self.options.samples) as f64,
            status_accepted_ms,
            status_first_pass_ms,
            delayed,
        };
        log(
            self.started,
            &format!(
                "{scenario}: add p50 {:.1} ms p99 {:.1} ms, removal p50 {:.1} ms p99 {:.1} ms, \
                 first status pass done {status_first_pass_ms:.0} ms after the start, \
                 a new route Accepted after {status_accepted_ms:.0} ms, CPU {:.2} ms/edit{}",
                session.add_p(50.0),
                session.add_p(99.0),
                session.remove_p(50.0),
                session.remove_p(99.0),
                session.cpu_per_edit_ms,
                delayed.map_or(String::new(), |c| format!(
                    ", {} requests delayed ({} writes, {} watches)",
                    c.requests, c.writes, c.watches
                )),
            ),
        );
        Ok(session)
    }
}

/// The controller's own account of its slow I/O, for the log.
async fn controller_metrics(port: u16) -> String {
    let names = [
        "ferrogate_status_writes_total",
        "ferrogate_status_write_duration_seconds_count",
        "ferrogate_status_write_duration_seconds_sum",
        "ferrogate_infra_applies_total",
        "ferrogate_infra_apply_duration_seconds_count",
        "ferrogate_infra_apply_duration_seconds_sum",
        "ferrogate_sink_superseded_total",
        "ferrogate_sink_retries_total",
    ];
    let mut out = vec!["controller metrics:".to_string()];
    for name in names {
        match probe::metric(port, name).await {
            Ok(v) => out.push(format!("{name}={v}")),
            Err(e) => out.push(format!("{name}: {e:#}")),
        }
    }
    out.join(" ")
}

/// The `n`th of a low-discrepancy sequence of shares of `period` (multiples of the golden
/// ratio, modulo 1): evenly spread over the period for any number of samples, and the same
/// in every run.
fn spread(n: usize, period: Duration) -> Duration {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    period.mul_f64((n as f64 * GOLDEN).fract())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// User plus system CPU time of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let ticks = ferrogate_e2e::bench::procs::cpu_ticks(pid)
        .with_context(|| format!("no CPU time in /proc/{pid}/stat"))?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    anyhow::ensure!(per_second > 0, "sysconf(_SC_CLK_TCK) failed");
    Ok(ticks as f64 / per_second as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_covers_the_period_evenly() {
        let period = Duration::from_millis(100);
        let mut tenths = [0; 10];
        for n in 0..40 {
            let d = spread(n, period);
            assert!(d < period);
            tenths[(d.as_millis() / 10) as usize] += 1;
        }
        assert!(tenths.iter().all(|&c| (3..=5).contains(&c)), "{tenths:?}");
    }
}
