//! Standalone mode: file provider + host infra + status files + xDS server, all in one
//! process, for a laptop, CI or the conformance harness.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use ferrogate_infra_manager::HostInfra;
use ferrogate_infra_render::HostPortPlan;
use ferrogate_provider_file::{DirectoryReader, StatusFileWriter, watch_directory};
use ferrogate_store::Snapshot;
use ferrogate_translator::Options;
use ferrogate_xds_server::SnapshotCache;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Metrics;
use crate::host_plan::{HostPlanner, XdsEndpoint};
use crate::host_xds_tls::HostXdsTls;
use crate::latest_wins::Sink;
use crate::pipeline::{Hosting, Pipeline};

/// Settings of `ferrogate standalone`.
#[derive(Clone, Debug)]
pub struct StandaloneConfig {
    /// Directory of Gateway API YAML.
    pub config_dir: PathBuf,
    /// Where status files go (must be outside the config directory).
    pub status_dir: PathBuf,
    /// Where Envoy bootstraps and logs go.
    pub work_dir: PathBuf,
    /// The Envoy binary.
    pub envoy_path: PathBuf,
    /// Envoy log level.
    pub envoy_log_level: String,
    /// xDS gRPC listen address.
    pub xds_addr: SocketAddr,
    /// Prometheus `/metrics` listen address.
    pub metrics_addr: SocketAddr,
    /// `/healthz` and `/readyz` listen address.
    pub health_addr: SocketAddr,
    /// Envoys use delta (incremental) xDS instead of state of the world.
    pub delta_xds: bool,
    /// Quiet time after file events before re-reading.
    pub debounce: Duration,
    /// First per-Gateway Envoy port (admin), see [`HostPortPlan`].
    pub envoy_base_port: u16,
    /// Give each Gateway its own address from this IPv4 network (local MetalLB analogue).
    pub address_pool: Option<ipnet::Ipv4Net>,
    /// Serve xDS over mutual TLS: a CA made at start signs the server's certificate and one
    /// client certificate per Gateway (written under `work_dir`), and each Envoy gets only
    /// its own Gateway's config.
    pub xds_tls: bool,
    /// Accept plaintext xDS on a non-loopback `xds_addr` (refused otherwise: anyone who
    /// reaches it could read every Gateway's configuration).
    pub xds_insecure_plaintext: bool,
}

/// Runs until Ctrl-C / SIGTERM, or until a task fails.
pub async fn run_standalone(config: StandaloneConfig) -> anyhow::Result<()> {
    let config_dir = std::fs::canonicalize(&config.config_dir)
        .with_context(|| format!("config directory {}", config.config_dir.display()))?;
    std::fs::create_dir_all(&config.status_dir)?;
    let status_dir = std::fs::canonicalize(&config.status_dir)?;
    anyhow::ensure!(
        !status_dir.starts_with(&config_dir),
        "--status-dir must be outside --config-dir (status files would be read back as config)"
    );
    anyhow::ensure!(
        config.envoy_path.exists(),
        "Envoy binary {} not found (run `make envoy`)",
        config.envoy_path.display()
    );

    let cancel = CancellationToken::new();
    let metrics = Metrics::new();
    metrics.leader.set(1); // one process, no election
    for kind in ferrogate_store::Kind::ALL {
        metrics.set_watched(kind.as_str(), true); // the file provider reads every kind
    }
    let cache = SnapshotCache::new();
    metrics
        .registry
        .register(Box::new(crate::xds_metrics::XdsCollector::new(
            cache.clone(),
        )))?;
    metrics.observe_propagation(&cache);
    let ready = Arc::new(AtomicBool::new(false));
    let mut tasks = crate::serving::Tasks::new();

    // xDS server first, so Envoys started below find it.
    crate::xds_exposure::check(
        config.xds_addr,
        config.xds_tls,
        config.xds_insecure_plaintext,
        "--xds-tls",
    )?;
    let xds_listener = TcpListener::bind(config.xds_addr)
        .await
        .with_context(|| format!("xDS address {}", config.xds_addr))?;
    let xds_port = xds_listener.local_addr()?.port();
    let xds_tls = if config.xds_tls {
        Some(crate::host_xds_tls::HostXdsTls::new(&config.work_dir)?)
    } else {
        None
    };
    crate::serving::spawn_xds(
        &mut tasks,
        xds_listener,
        cache.clone(),
        xds_tls.as_ref().map(|t| t.server_tls()),
        None,
        cancel.clone(),
    );
    crate::serving::spawn_admin(
        &mut tasks,
        &metrics,
        &ready,
        config.metrics_addr,
        config.health_addr,
        &cancel,
    )
    .await?;

    // File provider: publishes snapshots; the pipeline below consumes the latest one.
    let (snapshot_tx, mut snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
    let duplicates;
    {
        let cancel = cancel.clone();
        let reader = DirectoryReader::new(config_dir.clone());
        duplicates = reader.duplicate_counter();
        let debounce = config.debounce;
        tasks.spawn(async move {
            watch_directory(reader, debounce, snapshot_tx, cancel).await?;
            Ok("file provider")
        });
    }

    let host = Arc::new(HostInfra::new(
        config.envoy_path.clone(),
        config.work_dir.clone(),
        config.envoy_log_level.clone(),
    ));
    {
        let options = Options {
            shift_privileged_ports: false,
            default_status_address: Some("127.0.0.1".into()),
            ..Options::default()
        };
        let xds = XdsEndpoint {
            host: "127.0.0.1".into(),
            port: xds_port,
            delta: config.delta_xds,
        };
        let plan = HostPortPlan {
            base: config.envoy_base_port,
            ..HostPortPlan::default()
        };
        let mut planner = HostPlanner::new(xds, plan);
        planner.pool = config
            .address_pool
            .map(crate::address_pool::AddressPool::new);
        planner.seed_slots(host.recorded_admin_ports());
        planner.xds_tls_dir = xds_tls.as_ref().map(|t| t.work_dir().to_path_buf());
        let mut pipeline = Pipeline::new(
            options,
            cache.clone(),
            metrics.clone(),
            Hosting::Host(Box::new(planner)),
        );
        // Status files and Envoy processes are written and started off the translate path.
        let mut status_sink = spawn_status_files_sink(
            &mut tasks,
            &metrics,
            &cancel,
            StatusFileWriter::new(status_dir),
        );
        let mut host_sink = spawn_host_sink(&mut tasks, &metrics, &cancel, host.clone(), xds_tls);
        let (cancel, ready, metrics) = (cancel.clone(), ready.clone(), metrics.clone());
        let nack_cache = cache.clone();
        tasks.spawn(async move {
            let mut nacks = crate::nack_status::NackDigest::new();
            let mut answers = nack_cache.answers();
            // Nothing is applied before the file provider's first read: the host manager's
            // first apply also stops the Envoys of Gateways it is not given.
            let mut read = false;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok("pipeline"),
                    changed = snapshot_rx.changed() => if changed.is_err() { return Ok("pipeline") } else { read = true },
                    changed = answers.changed() => {
                        if changed.is_err() { return Ok("pipeline") }
                        crate::nack_status::coalesce(&mut answers).await;
                        let now = crate::nack_status::digest(&nack_cache.stats());
                        // An accepted trial of the route quarantine changes no NACK.
                        let answered = pipeline.envoy_answers_need_a_run();
                        if now == nacks && !answered { continue }
                        nacks = now;
                        if !read { continue }
                    }
                }
                // The provider's change just woke us: propagation latency counts from here.
                let seen = std::time::Instant::now();
                metrics.config_duplicates.set(duplicates.load(std::sync::atomic::Ordering::Relaxed) as i64);
                let snapshot = snapshot_rx.borrow_and_update().clone();
                let mut output = pipeline.run_at(&snapshot, seen);
                crate::nack_status::annotate(&mut output.statuses, &nacks);
                status_sink.send(output.statuses);
                host_sink.send(output.processes);
                ready.store(true, Ordering::Release);
            }
        });
    }
    tracing::info!(config_dir = %config_dir.display(), xds = %config.xds_addr, "ferrogate standalone running");

    let result =
        crate::serving::run_until(&mut tasks, &cancel, crate::serving::shutdown_signal()).await;
    host.shutdown().await;
    result
}

/// Status files, written off the translate path (and off the runtime's workers: a status
/// directory of thousands of files takes a while).
fn spawn_status_files_sink(
    tasks: &mut crate::serving::Tasks,
    metrics: &Metrics,
    cancel: &CancellationToken,
    writer: StatusFileWriter,
) -> Sink<Arc<ferrogate_status::StatusSet>> {
    let writer = Arc::new(std::sync::Mutex::new(writer));
    let metrics_for_task = metrics.clone();
    Sink::spawn(
        tasks,
        "status",
        metrics,
        cancel.clone(),
        move |statuses: Arc<Arc<ferrogate_status::StatusSet>>| {
            let (writer, metrics) = (writer.clone(), metrics_for_task.clone());
            async move {
                let writing = std::time::Instant::now();
                let written = tokio::task::spawn_blocking(move || {
                    writer
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .write(&statuses)
                })
                .await;
                metrics
                    .status_write_seconds
                    .observe(writing.elapsed().as_secs_f64());
                match written {
                    Ok(Ok(written)) => {
                        metrics.status_writes.inc_by(written.len() as u64);
                        for file in written {
                            tracing::info!(%file, "status updated");
                        }
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot write status files"),
                    Err(e) => tracing::error!(error = %e, "status file writer failed"),
                }
            }
        },
    )
}

/// Envoy processes on this host, started and stopped off the translate path.
fn spawn_host_sink(
    tasks: &mut crate::serving::Tasks,
    metrics: &Metrics,
    cancel: &CancellationToken,
    host: Arc<HostInfra>,
    xds_tls: Option<HostXdsTls>,
) -> Sink<Vec<ferrogate_infra_render::HostProcessSpec>> {
    let metrics_for_task = metrics.clone();
    let xds_tls = Arc::new(std::sync::Mutex::new(xds_tls));
    Sink::spawn(
        tasks,
        "infra",
        metrics,
        cancel.clone(),
        move |processes: Arc<Vec<ferrogate_infra_render::HostProcessSpec>>| {
            let (host, metrics, xds_tls) =
                (host.clone(), metrics_for_task.clone(), xds_tls.clone());
            async move {
                // Each Gateway's client certificate exists before its Envoys start (written
                // once per Gateway; the planner only named the paths).
                if let Some(tls) = xds_tls
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_mut()
                {
                    let gateways: std::collections::BTreeSet<_> =
                        processes.iter().map(|p| &p.gateway).collect();
                    for gateway in gateways {
                        tls.client_files(gateway);
                    }
                }
                let applying = std::time::Instant::now();
                let applied = host.apply((*processes).clone()).await;
                metrics
                    .infra_apply_seconds
                    .observe(applying.elapsed().as_secs_f64());
                if let Err(e) = applied {
                    tracing::error!(error = %e, "cannot start or stop Envoy processes");
                }
            }
        },
    )
}
