//! Standalone mode: file provider + host infra + status files + xDS server, all in one
//! process, for a laptop, CI or the conformance harness.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
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
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
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
        let options = Options::standalone(config.address_pool.is_some());
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
        let pipeline = Pipeline::new(
            options,
            cache.clone(),
            metrics.clone(),
            Hosting::Host(Box::new(planner)),
        );
        // Status files and Envoy processes are written and started off the translate path.
        let status_sink = crate::standalone_mode::spawn_status_files_sink(
            &mut tasks,
            &metrics,
            &cancel,
            StatusFileWriter::new(status_dir),
        );
        let host_sink = crate::standalone_mode::spawn_host_sink(
            &mut tasks,
            &metrics,
            &cancel,
            host.clone(),
            xds_tls,
        );
        let mode = crate::standalone_mode::StandaloneMode {
            snapshot: snapshot_rx,
            read: false,
            duplicates,
            metrics: metrics.clone(),
            status_sink,
            host_sink,
        };
        let (cache, ready, cancel) = (cache.clone(), ready.clone(), cancel.clone());
        tasks.spawn(async move {
            crate::run_loop::run(mode, pipeline, cache, ready, cancel).await;
            Ok("pipeline")
        });
    }
    tracing::info!(config_dir = %config_dir.display(), xds = %config.xds_addr, "ferrogate standalone running");

    let result =
        crate::serving::run_until(&mut tasks, &cancel, crate::serving::shutdown_signal()).await;
    host.shutdown().await;
    result
}
