//! The controller's Kubernetes Events: after each status write, the transitions since the
//! previous one (leader only), rate-limited, with the involved object's uid from the store so
//! `kubectl describe` shows them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrogate_provider_kubernetes::{
    EventLimiter, EventSink, StatusWriter, Transition, event_reference, transitions,
};
use ferrogate_status::StatusSet;
use ferrogate_store::{Kind, ObjectKey, ObjectRef, Snapshot};

use crate::Metrics;

/// The same (object, reason) at most this often.
const PER_KEY: Duration = Duration::from_secs(60);
/// At most this many Events at once, refilled at [`PER_SECOND`].
const BURST: u32 = 50;
const PER_SECOND: f64 = 5.0;

/// State between runs of the controller loop.
pub(crate) struct ControllerEvents {
    sink: EventSink,
    limiter: EventLimiter,
    last: Option<Arc<StatusSet>>,
}

impl ControllerEvents {
    pub(crate) fn new(client: kube::Client, instance: &str) -> Self {
        Self {
            sink: EventSink::start(client, instance),
            limiter: EventLimiter::new(PER_KEY, BURST, PER_SECOND, Instant::now()),
            last: None,
        }
    }

    /// Forgets the previous statuses: after gaining the lease, another replica may have
    /// reported the transitions in between, so the first set says what is, not what changed.
    pub(crate) fn forget(&mut self) {
        self.last = None;
    }

    /// Queues the Events of the transitions from the previous statuses to `statuses`.
    pub(crate) fn observe(
        &mut self,
        statuses: &Arc<StatusSet>,
        snapshot: &Snapshot,
        metrics: &Metrics,
        writer: &StatusWriter,
    ) {
        let now = Instant::now();
        for t in transitions(self.last.as_deref(), statuses) {
            if !self.limiter.admit(&t, now) {
                metrics.events_dropped.inc();
                continue;
            }
            let uid = uid_of(snapshot, &t);
            metrics.events.with_label_values(&[&t.reason]).inc();
            // Every Gateway API kind is served at v1 from Gateway API v1.6 on; an older
            // cluster's discovery names the version it has (TCPRoute v1alpha2).
            let api_version = writer
                .served_api_version(&t.kind)
                .unwrap_or("gateway.networking.k8s.io/v1");
            let reference = event_reference(api_version, &t.kind, &t.namespace, &t.name, uid);
            self.sink.send(t, reference);
        }
        let queue_drops = self.sink.dropped();
        if queue_drops > metrics.events_dropped_queue.get() {
            metrics
                .events_dropped_queue
                .inc_by(queue_drops - metrics.events_dropped_queue.get());
        }
        self.last = Some(Arc::clone(statuses));
    }
}

/// The uid of the object a transition is about (Gateways and routes: Gateway API kinds).
fn uid_of(snapshot: &Snapshot, t: &Transition) -> Option<String> {
    let kind = Kind::from_group_kind(ferrogate_api::constants::GATEWAY_GROUP, &t.kind)?;
    let object = ObjectRef {
        kind,
        key: ObjectKey::new(t.namespace.as_str(), t.name.as_str()),
    };
    snapshot.uid(&object).map(str::to_string)
}
