//! Standalone mode's inputs and outputs around the shared run loop ([`crate::run_loop`]):
//! the file provider's snapshot in; status files and Envoy processes on this host out, each
//! in its own latest-wins task ([`crate::latest_wins`]).

use std::sync::Arc;

use ferrogate_infra_manager::HostInfra;
use ferrogate_provider_file::StatusFileWriter;
use ferrogate_store::Snapshot;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Metrics;
use crate::host_xds_tls::HostXdsTls;
use crate::latest_wins::{Outcome, Sink};
use crate::pipeline::Pipeline;

/// Standalone mode around the shared run loop: the file provider's snapshot in; status
/// files and Envoy processes on this host out.
pub(crate) struct StandaloneMode {
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// Nothing is applied before the file provider's first read: the host manager's first
    /// apply also stops the Envoys of Gateways it is not given.
    pub read: bool,
    pub duplicates: Arc<std::sync::atomic::AtomicU64>,
    pub metrics: Metrics,
    pub status_sink: Sink<ferrogate_status::StatusSet>,
    pub host_sink: Sink<Vec<ferrogate_infra_render::HostProcessSpec>>,
}

impl crate::run_loop::Mode for StandaloneMode {
    async fn changed(&mut self) -> crate::run_loop::Wake {
        match self.snapshot.changed().await {
            Ok(()) => {
                self.read = true;
                crate::run_loop::Wake::Run
            }
            Err(_) => crate::run_loop::Wake::Stop,
        }
    }

    fn prepare(&mut self, _pipeline: &mut Pipeline) -> Option<Arc<Snapshot>> {
        if !self.read {
            return None;
        }
        let duplicates = self.duplicates.load(std::sync::atomic::Ordering::Relaxed);
        self.metrics.config_duplicates.set(duplicates as i64);
        Some(self.snapshot.borrow_and_update().clone())
    }

    fn deliver(&mut self, output: crate::pipeline::RunOutput, _snapshot: Arc<Snapshot>) {
        self.status_sink.send_shared(output.statuses);
        self.host_sink.send_shared(output.processes);
    }
}

/// Status files, written off the translate path (and off the runtime's workers: a status
/// directory of thousands of files takes a while).
pub(crate) fn spawn_status_files_sink(
    tasks: &mut crate::serving::Tasks,
    metrics: &Metrics,
    cancel: &CancellationToken,
    writer: StatusFileWriter,
) -> Sink<ferrogate_status::StatusSet> {
    let writer = Arc::new(std::sync::Mutex::new(writer));
    let metrics_for_task = metrics.clone();
    Sink::spawn(
        tasks,
        "status",
        metrics,
        cancel.clone(),
        move |statuses: Arc<ferrogate_status::StatusSet>| {
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
                        Outcome::Done
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "cannot write status files");
                        Outcome::Retry
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "status file writer failed");
                        Outcome::Retry
                    }
                }
            }
        },
    )
}

/// Envoy processes on this host, started and stopped off the translate path.
pub(crate) fn spawn_host_sink(
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
                match applied {
                    Ok(()) => Outcome::Done,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start or stop Envoy processes");
                        Outcome::Retry
                    }
                }
            }
        },
    )
}
