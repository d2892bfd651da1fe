//! Controller mode: the Kubernetes provider, the translators, the xDS server (mutual TLS),
//! Kubernetes infra and the status writer, with leader election.
//!
//! Every replica watches, translates and serves xDS, so an Envoy may connect to any of
//! them. Only the leader writes statuses and provisions infra. Nothing is translated before
//! every watcher has listed once, and nothing is provisioned or deleted before the watchers
//! of provisioned objects have listed once, so a restart never acts on a partial world.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use ferrogate_infra_manager::kubernetes::{KubernetesInfra, run_owned_watchers};
use ferrogate_infra_render::kubernetes::RenderOptions;
use ferrogate_provider_kubernetes::{
    LeaderConfig, LeaderElector, LiveStatuses, StatusWriter, discover,
};
use ferrogate_store::Snapshot;
use ferrogate_translator::Options;
use ferrogate_xds_server::{SnapshotCache, XdsTls};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Metrics;
use crate::pipeline::{Hosting, Pipeline};
use crate::pki::{XdsCa, XdsTlsFiles};

/// Settings of `ferrogate controller`.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// xDS gRPC listen address.
    pub xds_addr: SocketAddr,
    /// Prometheus `/metrics` listen address.
    pub metrics_addr: SocketAddr,
    /// `/healthz` and `/readyz` listen address.
    pub health_addr: SocketAddr,
    /// The controller's namespace (Lease, xDS Service).
    pub namespace: String,
    /// This replica's identity for leader election.
    pub pod_name: String,
    /// Name of the xDS Service in `namespace`.
    pub xds_service: String,
    /// Directory with `ca.crt`, `ca.key`, `tls.crt`, `tls.key`; `None` serves xDS in
    /// plaintext without client identities (development only).
    pub xds_tls_dir: Option<PathBuf>,
    /// Accept plaintext xDS (no `xds_tls_dir`) on a non-loopback `xds_addr`; refused
    /// otherwise, since any client could then read every Gateway's configuration.
    pub xds_insecure_plaintext: bool,
    /// Elect a leader; without it this replica always writes.
    pub leader_elect: bool,
    /// Name of the leader Lease.
    pub lease_name: String,
    /// Envoys use delta xDS.
    pub delta_xds: bool,
    /// Envoy image for Gateways whose parameters name none.
    pub envoy_image: Option<String>,
    /// How often watched changes are published to the translator (changes within one
    /// period go together; a publish shares the snapshot, O(log n)).
    pub debounce: Duration,
    /// How often API discovery runs again to notice CRDs installed or removed.
    pub rediscover_every: Duration,
    /// The load balancer's address pools: a Gateway asking for an address outside them gets
    /// `AddressNotUsable` at once. Empty: not judged (the Service waits for its address).
    pub static_address_pools: crate::StaticAddressPools,
    /// Validity of the xDS server certificates the controller renews itself (the first one
    /// comes from `ferrogate certgen`); renewed after two thirds of it.
    pub xds_server_cert_validity: Duration,
}

impl ControllerConfig {
    /// Defaults for `namespace`, as the chart deploys it.
    pub fn new(namespace: impl Into<String>, pod_name: impl Into<String>) -> Self {
        Self {
            xds_addr: ([0, 0, 0, 0], ferrogate_api::XDS_PORT).into(),
            metrics_addr: ([0, 0, 0, 0], ferrogate_api::METRICS_PORT).into(),
            health_addr: ([0, 0, 0, 0], ferrogate_api::HEALTH_PORT).into(),
            namespace: namespace.into(),
            pod_name: pod_name.into(),
            xds_service: "ferrogate".into(),
            xds_tls_dir: None,
            xds_insecure_plaintext: false,
            leader_elect: true,
            lease_name: "ferrogate-leader".into(),
            delta_xds: true,
            envoy_image: None,
            debounce: Duration::from_millis(10),
            rediscover_every: Duration::from_secs(60),
            static_address_pools: crate::StaticAddressPools::default(),
            xds_server_cert_validity: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// Runs until SIGTERM / Ctrl-C, with the in-cluster (or kubeconfig) client.
pub async fn run_controller(config: ControllerConfig) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster or kubeconfig)")?;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        crate::serving::shutdown_signal().await;
        stop.cancel();
    });
    run_controller_with(client, config, cancel).await
}

/// Runs until `cancel`, with `client` (tests pass one for an in-memory API server).
pub async fn run_controller_with(
    client: kube::Client,
    config: ControllerConfig,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let cache = SnapshotCache::new();
    metrics
        .registry
        .register(Box::new(crate::xds_metrics::XdsCollector::new(
            cache.clone(),
        )))?;
    metrics.observe_propagation(&cache);
    let ready = Arc::new(AtomicBool::new(false));
    let mut tasks = crate::serving::Tasks::new();

    crate::xds_exposure::check(
        config.xds_addr,
        config.xds_tls_dir.is_some(),
        config.xds_insecure_plaintext,
        "--xds-tls-dir",
    )?;
    let tls = match &config.xds_tls_dir {
        Some(dir) => {
            let files = XdsTlsFiles::load(dir)?;
            let ca = files.ca().context("the xDS TLS directory has no ca.key; the controller needs it to issue each Gateway's client certificate")??;
            Some((files, ca))
        }
        None => {
            tracing::warn!(
                "xDS without TLS: any client can read any Gateway's configuration (use --xds-tls-dir in a cluster)"
            );
            None
        }
    };

    let discovered = discover(&client).await.context("API discovery failed")?;
    for d in &discovered {
        metrics.set_watched(d.watched.kind_name, d.resource.is_some());
    }
    if let Some(missing) = discovered
        .iter()
        .find(|d| d.watched.required && d.resource.is_none())
    {
        anyhow::bail!(
            "the API server does not serve {} (required)",
            missing.watched.kind_name
        );
    }

    // xDS: every replica serves.
    let xds_listener = TcpListener::bind(config.xds_addr)
        .await
        .with_context(|| format!("xDS address {}", config.xds_addr))?;
    let xds_port = xds_listener.local_addr()?.port();
    let server_tls = tls.as_ref().map(|(files, _)| XdsTls {
        server_cert_pem: files.server_cert.clone(),
        server_key_pem: files.server_key.clone(),
        client_ca_pem: files.ca_cert.clone(),
    });
    let server_cert = server_tls.as_ref().map(XdsTls::server_cert).transpose()?;
    if let (Some(cert), Some((files, _))) = (&server_cert, &tls) {
        // A second handle on the CA (the first issues the Gateways' client certificates).
        let ca = files
            .ca()
            .context("the xDS TLS directory has no ca.key")??;
        let names = crate::pki::xds_service_dns_names(&config.xds_service, &config.namespace);
        let (cert, pem, validity, cancel) = (
            cert.clone(),
            files.server_cert.clone(),
            config.xds_server_cert_validity,
            cancel.clone(),
        );
        tasks.spawn(async move {
            crate::xds_cert_renewal::run(ca, names, cert, pem, validity, cancel).await;
            Ok("xDS server certificate renewal")
        });
    }
    crate::serving::spawn_xds(
        &mut tasks,
        xds_listener,
        cache.clone(),
        server_tls,
        server_cert,
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

    // Watchers: the Gateway API world, and the objects we provisioned.
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(64);
    let (served_tx, served_rx) = watch::channel(discovered.clone());
    let live_statuses = LiveStatuses::default();
    {
        let (client, discovered, cancel, metrics, live) = (
            client.clone(),
            discovered.clone(),
            cancel.clone(),
            metrics.clone(),
            live_statuses.clone(),
        );
        let timing = crate::controller_provider::ProviderTiming {
            debounce: config.debounce,
            rediscover_every: config.rediscover_every,
        };
        tasks.spawn(async move {
            crate::controller_provider::run(
                client,
                discovered,
                timing,
                snapshot_tx,
                events_tx,
                served_tx,
                live,
                metrics,
                cancel,
            )
            .await;
            Ok("kubernetes provider")
        });
    }
    let (owned_tx, owned_rx) = watch::channel(None);
    {
        let (client, cancel, debounce) = (client.clone(), cancel.clone(), config.debounce);
        tasks.spawn(async move {
            run_owned_watchers(client, debounce, owned_tx, cancel).await;
            Ok("provisioned-object watcher")
        });
    }
    let (leader_tx, leader_rx) = watch::channel(!config.leader_elect);
    if config.leader_elect {
        let elector = LeaderElector::new(
            client.clone(),
            LeaderConfig::new(&config.namespace, &config.lease_name, &config.pod_name),
        );
        let cancel = cancel.clone();
        tasks.spawn(async move {
            elector.run(leader_tx, cancel).await;
            Ok("leader election")
        });
    }

    let render_options = RenderOptions {
        xds_service: format!("{}.{}.svc", config.xds_service, config.namespace),
        xds_port,
        delta: config.delta_xds,
        xds_tls: tls.is_some(),
        envoy_image: config.envoy_image.clone(),
        ..RenderOptions::default()
    };
    let ca: Option<XdsCa> = tls.map(|(_, ca)| ca);
    let options = Options {
        provisioned: Some(Default::default()),
        ..Options::default()
    };
    let hosting = Hosting::Pods {
        ready_port: ferrogate_api::ENVOY_READY_PORT,
    };
    let pipeline = Pipeline::new(options, cache.clone(), metrics.clone(), hosting);
    let status_sink = crate::controller_sinks::spawn_status_sink(
        &mut tasks,
        &metrics,
        &cancel,
        StatusWriter::new(
            client.clone(),
            &discovered,
            ferrogate_api::CONTROLLER_NAME,
            live_statuses,
        ),
        crate::controller_events::ControllerEvents::new(client.clone(), &config.pod_name),
        served_rx.clone(),
    );
    let infra_sink = crate::controller_sinks::spawn_infra_sink(
        &mut tasks,
        &metrics,
        &cancel,
        KubernetesInfra::new(client.clone()),
        render_options,
        ca,
    );
    let mode = crate::controller_mode::ControllerMode {
        served: served_rx,
        snapshot: snapshot_rx,
        owned: owned_rx,
        leader: leader_rx,
        events: events_rx,
        synced: false,
        current: None,
        was_leader: false,
        leadership: 0,
        metrics: metrics.clone(),
        static_address_pools: config.static_address_pools.clone(),
        status_sink,
        infra_sink,
    };
    {
        let (cache, ready, cancel) = (cache.clone(), ready.clone(), cancel.clone());
        tasks.spawn(async move {
            crate::run_loop::run(mode, pipeline, cache, ready, cancel).await;
            Ok("controller loop")
        });
    }
    tracing::info!(namespace = %config.namespace, identity = %config.pod_name, xds = %config.xds_addr, "ferrogate controller running");

    crate::serving::run_until(&mut tasks, &cancel, std::future::pending()).await
}
