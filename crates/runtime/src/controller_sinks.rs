//! Controller mode's slow I/O, each in its own latest-wins task ([`crate::latest_wins`]):
//! status subresources and Events, and the Kubernetes objects of each Gateway's Envoys.

use std::sync::Arc;

use ferrogate_infra_manager::kubernetes::KubernetesInfra;
use ferrogate_infra_render::kubernetes::RenderOptions;
use ferrogate_provider_kubernetes::StatusWriter;
use ferrogate_store::Snapshot;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Metrics;
use crate::controller_infra::{RecentlyIssued, desired_objects};
use crate::latest_wins::{Outcome, Sink};
use crate::pki::XdsCa;

/// What the status sink writes: the statuses of one run, as the leader of `leadership`.
pub(crate) struct StatusWork {
    pub statuses: Arc<ferrogate_status::StatusSet>,
    pub snapshot: Arc<Snapshot>,
    pub leadership: u64,
}

/// What the infrastructure sink applies: the Gateways of one run to provision.
pub(crate) struct InfraWork {
    pub infra: std::collections::BTreeMap<
        ferrogate_ir::GatewayKey,
        (
            ferrogate_ir::InfraIr,
            ferrogate_api::envoyproxy::EnvoyProxySpec,
        ),
    >,
    pub snapshot: Arc<Snapshot>,
    pub owned: Arc<ferrogate_infra_manager::kubernetes::OwnedState>,
}

/// Status subresources and Events, written by the leader off the translate path.
pub(crate) fn spawn_status_sink(
    tasks: &mut crate::serving::Tasks,
    metrics: &Metrics,
    cancel: &CancellationToken,
    writer: StatusWriter,
    events: crate::controller_events::ControllerEvents,
    served: watch::Receiver<Vec<ferrogate_provider_kubernetes::Discovered>>,
) -> Sink<StatusWork> {
    struct State {
        writer: StatusWriter,
        events: crate::controller_events::ControllerEvents,
        served: watch::Receiver<Vec<ferrogate_provider_kubernetes::Discovered>>,
        leadership: u64,
    }
    let state = Arc::new(tokio::sync::Mutex::new(State {
        writer,
        events,
        served,
        leadership: 0,
    }));
    let metrics_for_task = metrics.clone();
    Sink::spawn(
        tasks,
        "status",
        metrics,
        cancel.clone(),
        move |work: Arc<StatusWork>| {
            let (state, metrics) = (state.clone(), metrics_for_task.clone());
            async move {
                let mut guard = state.lock().await;
                let state = &mut *guard;
                if state.served.has_changed().unwrap_or(false) {
                    state.writer.set_served(&state.served.borrow_and_update());
                }
                if state.leadership != work.leadership {
                    state.writer.forget(); // another replica may have written meanwhile
                    state.events.forget();
                    state.leadership = work.leadership;
                }
                let writing = std::time::Instant::now();
                let report = state.writer.write(&work.statuses, &work.snapshot).await;
                metrics
                    .status_write_seconds
                    .observe(writing.elapsed().as_secs_f64());
                metrics.status_writes.inc_by(report.written as u64);
                metrics
                    .status_write_conflicts
                    .inc_by(report.conflicts as u64);
                state
                    .events
                    .observe(&work.statuses, &work.snapshot, &metrics, &state.writer);
                if report.failed > 0 {
                    Outcome::Retry
                } else {
                    Outcome::Done
                }
            }
        },
    )
}

/// Envoy Deployments, Services and the rest, applied by the leader off the translate path.
pub(crate) fn spawn_infra_sink(
    tasks: &mut crate::serving::Tasks,
    metrics: &Metrics,
    cancel: &CancellationToken,
    infra: KubernetesInfra,
    render_options: RenderOptions,
    ca: Option<XdsCa>,
) -> Sink<InfraWork> {
    let state = Arc::new(tokio::sync::Mutex::new((infra, RecentlyIssued::default())));
    let (render_options, ca) = (Arc::new(render_options), Arc::new(ca));
    let metrics_for_task = metrics.clone();
    Sink::spawn(
        tasks,
        "infra",
        metrics,
        cancel.clone(),
        move |work: Arc<InfraWork>| {
            let (state, metrics, render_options, ca) = (
                state.clone(),
                metrics_for_task.clone(),
                render_options.clone(),
                ca.clone(),
            );
            async move {
                let mut guard = state.lock().await;
                let (infra, issued) = &mut *guard;
                let desired = desired_objects(
                    &work.infra,
                    &work.snapshot,
                    &render_options,
                    ca.as_ref().as_ref(),
                    &work.owned,
                    issued,
                );
                let applying = std::time::Instant::now();
                let report = infra.reconcile(&desired, &work.owned).await;
                metrics
                    .infra_apply_seconds
                    .observe(applying.elapsed().as_secs_f64());
                for (kind, n) in report.applied.iter().chain(&report.deleted) {
                    metrics
                        .infra_applies
                        .with_label_values(&[kind.as_str()])
                        .inc_by(*n as u64);
                }
                for (kind, n) in &report.failed {
                    metrics
                        .infra_apply_failures
                        .with_label_values(&[kind.as_str()])
                        .inc_by(*n as u64);
                }
                if report.failed.is_empty() {
                    Outcome::Done
                } else {
                    Outcome::Retry
                }
            }
        },
    )
}
