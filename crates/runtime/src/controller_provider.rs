//! The Kubernetes provider in controller mode: watchers for the kinds the cluster serves,
//! restarted when that set changes (a Gateway API CRD installed or removed after the
//! controller started), found by re-running discovery periodically.
//!
//! A restart drops the old watchers; the new ones publish again only once every kind has
//! listed, so the pipeline never sees the world without the kinds it was watching. Until
//! then the last snapshot keeps serving.

use std::sync::Arc;
use std::time::Duration;

use ferrogate_provider_kubernetes::{
    Discovered, LiveStatuses, ReflectorEvent, discover, run_reflectors, served_versions,
};
use ferrogate_store::Snapshot;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::Metrics;

/// Timing of the provider.
pub(crate) struct ProviderTiming {
    /// How often a changed snapshot is published.
    pub debounce: Duration,
    /// How often discovery runs again.
    pub rediscover_every: Duration,
}

/// Runs until `cancel`. `served` gets every new discovery result (the status writer needs
/// the resources of the kinds it writes); `live` the statuses the watchers see.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    client: kube::Client,
    mut discovered: Vec<Discovered>,
    timing: ProviderTiming,
    snapshots: watch::Sender<Arc<Snapshot>>,
    events: mpsc::Sender<ReflectorEvent>,
    served: watch::Sender<Vec<Discovered>>,
    live: LiveStatuses,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    loop {
        let next = {
            let reflectors = run_reflectors(
                client.clone(),
                &discovered,
                timing.debounce,
                &snapshots,
                events.clone(),
                &live,
                cancel.clone(),
            );
            tokio::pin!(reflectors);
            let mut check = tokio::time::interval(timing.rediscover_every);
            check.tick().await; // the first tick is immediate: discovery just ran
            loop {
                tokio::select! {
                    _ = &mut reflectors => return, // cancelled
                    _ = check.tick() => match discover(&client).await {
                        Ok(now) if served_versions(&now) != served_versions(&discovered) => break now,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "API discovery failed; keeping the current watchers"),
                    },
                }
            }
        };
        tracing::info!(before = ?served_versions(&discovered), after = ?served_versions(&next), "the served kinds changed; restarting the watchers");
        for d in &next {
            metrics.set_watched(d.watched.kind_name, d.resource.is_some());
        }
        discovered = next;
        served.send_replace(discovered.clone());
    }
}
