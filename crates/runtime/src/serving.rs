//! What every mode runs the same way: the xDS server and the admin endpoints as supervised
//! tasks, and the end of a run (cancellation, a signal, or the first task that stops).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use ferrogate_xds_server::{ServerCert, SnapshotCache, XdsTls};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Metrics;
use crate::admin::{self, AdminState};

/// The supervised tasks of a run; each returns its name when it ends.
pub(crate) type Tasks = JoinSet<anyhow::Result<&'static str>>;

/// Serves ADS on `listener` (mutual TLS when `tls` is set; presenting `cert` when given, which
/// the caller may renew while serving) until `cancel`.
pub(crate) fn spawn_xds(
    tasks: &mut Tasks,
    listener: TcpListener,
    cache: SnapshotCache,
    tls: Option<XdsTls>,
    cert: Option<ServerCert>,
    cancel: CancellationToken,
) {
    tasks.spawn(async move {
        let shutdown = async move { cancel.cancelled().await };
        match (tls, cert) {
            (Some(tls), Some(cert)) => {
                ferrogate_xds_server::serve_tls_with_cert(listener, cache, tls, cert, shutdown)
                    .await?
            }
            (Some(tls), None) => {
                ferrogate_xds_server::serve_tls(listener, cache, tls, shutdown).await?
            }
            (None, _) => ferrogate_xds_server::serve(listener, cache, shutdown).await?,
        }
        Ok("xds server")
    });
}

/// Binds and serves `/metrics` on `metrics_addr` and `/healthz`, `/readyz` on `health_addr`.
pub(crate) async fn spawn_admin(
    tasks: &mut Tasks,
    metrics: &Metrics,
    ready: &Arc<AtomicBool>,
    metrics_addr: SocketAddr,
    health_addr: SocketAddr,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    for (addr, serve_metrics, serve_health) in
        [(metrics_addr, true, false), (health_addr, false, true)]
    {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("admin address {addr}"))?;
        let state = AdminState {
            metrics: metrics.clone(),
            ready: ready.clone(),
            serve_metrics,
            serve_health,
        };
        let cancel = cancel.clone();
        tasks.spawn(async move {
            admin::serve(listener, state, cancel).await?;
            Ok("admin server")
        });
    }
    Ok(())
}

/// Waits for `stop` (a requested end: `Ok`) or for the first task to end (a failure: tasks
/// run until cancelled). Then cancels every task and waits for them.
pub(crate) async fn run_until(
    tasks: &mut Tasks,
    cancel: &CancellationToken,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let result = tokio::select! {
        // Tasks also end on cancellation: that is not a failure.
        biased;
        _ = stop => Ok(()),
        _ = cancel.cancelled() => Ok(()),
        Some(done) = tasks.join_next() => match done {
            Ok(Ok(name)) => Err(anyhow::anyhow!("{name} stopped unexpectedly")),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.into()),
        },
    };
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    result
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
