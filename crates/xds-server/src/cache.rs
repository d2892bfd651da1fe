//! The shared per-Gateway snapshot cache.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::acks::{GatewayCounters, TotalCounters, XdsStats};
use crate::propagation::{Propagated, Propagation};
use crate::snapshot::Snapshot;

/// Told each completed propagation: Gateway id, type URL, time from the change being seen
/// to the last Envoy of the Gateway ACKing it (see [`SnapshotCache::on_propagated`]).
pub type PropagationObserver = Arc<dyn Fn(&str, &str, Duration) + Send + Sync>;

/// One Gateway's slot: its current snapshot (a watch channel, so only this Gateway's streams
/// wake on a change) and its bookkeeping.
#[derive(Debug)]
pub(crate) struct GatewayEntry {
    pub(crate) snapshot: watch::Sender<Option<Arc<Snapshot>>>,
    pub(crate) counters: GatewayCounters,
    pub(crate) propagation: Propagation,
}

impl GatewayEntry {
    fn new() -> Self {
        Self {
            snapshot: watch::Sender::new(None),
            counters: GatewayCounters::default(),
            propagation: Propagation::default(),
        }
    }

    /// True when nothing refers to this entry but the map: no snapshot, no stream.
    fn is_idle(&self) -> bool {
        self.snapshot.borrow().is_none()
            && self.snapshot.receiver_count() == 0
            && self.counters.streams.load(Ordering::Relaxed) == 0
    }
}

type GatewayMap = HashMap<String, Arc<GatewayEntry>>;

#[derive(Default)]
struct Inner {
    /// Read without locks; replaced (copy on write) only when a Gateway appears or goes.
    gateways: ArcSwap<GatewayMap>,
    /// Serializes writers of `gateways` so no insertion or removal is lost.
    write: Mutex<()>,
    totals: TotalCounters,
    observer: OnceLock<PropagationObserver>,
}

impl std::fmt::Debug for PropagationObserverSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Some(observer)"
        } else {
            "None"
        })
    }
}

/// Formats the observer slot for `Debug` (closures have none).
struct PropagationObserverSlot<'a>(&'a OnceLock<PropagationObserver>);

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("gateways", &self.gateways)
            .field("totals", &self.totals)
            .field("observer", &PropagationObserverSlot(&self.observer))
            .finish()
    }
}

/// Shared, lock-light cache: Gateway id (`<namespace>/<name>`) -> `Arc<Snapshot>`.
///
/// Reads are lock-free. Each Gateway's snapshot sits in its own watch channel and is swapped
/// atomically; setting a snapshot with the same content (same fingerprint) is a no-op that
/// wakes no stream, and a change wakes only the streams of that Gateway. Cloning is cheap and
/// every clone shares the same state.
#[derive(Debug, Clone, Default)]
pub struct SnapshotCache {
    inner: Arc<Inner>,
}

impl SnapshotCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes `snapshot` for `gateway`. Returns whether anything changed (and so whether
    /// the Gateway's streams were woken). The change counts as seen now; see [`Self::set_at`].
    pub fn set(&self, gateway: &str, snapshot: Snapshot) -> bool {
        self.set_at(gateway, snapshot, Instant::now())
    }

    /// [`Self::set`] for a change first seen at `seen` (when the provider's input arrived):
    /// its propagation latency, reported to [`Self::on_propagated`], counts from there.
    pub fn set_at(&self, gateway: &str, snapshot: Snapshot, seen: Instant) -> bool {
        let entry = self.entry(gateway);
        let mut snapshot = Some(Arc::new(snapshot));
        let changed = entry.snapshot.send_if_modified(|current| {
            let same = matches!((&*current, &snapshot),
                (Some(old), Some(new)) if old.fingerprint() == new.fingerprint());
            if !same {
                if let Some(new) = &snapshot {
                    entry.propagation.published(current.as_deref(), new, seen);
                }
                *current = snapshot.take();
            }
            !same
        });
        if changed {
            tracing::debug!(gateway, "xDS snapshot published");
        }
        changed
    }

    /// Forgets `gateway`'s snapshot. Its streams stay open, keep the config they have and
    /// get a push when a snapshot is set again.
    pub fn remove(&self, gateway: &str) {
        let Some(entry) = self.inner.gateways.load().get(gateway).cloned() else {
            return;
        };
        entry
            .snapshot
            .send_if_modified(|current| current.take().is_some());
        drop(entry);
        self.drop_if_idle(gateway);
    }

    /// The current snapshot of `gateway`.
    pub fn get(&self, gateway: &str) -> Option<Arc<Snapshot>> {
        self.inner
            .gateways
            .load()
            .get(gateway)?
            .snapshot
            .borrow()
            .clone()
    }

    /// A copy of the bookkeeping: per Gateway streams, ACKed versions and NACKs; totals.
    pub fn stats(&self) -> XdsStats {
        let gateways = self
            .inner
            .gateways
            .load()
            .iter()
            .map(|(id, e)| {
                (
                    id.clone(),
                    e.counters.snapshot(e.snapshot.borrow().is_some()),
                )
            })
            .collect();
        XdsStats {
            gateways,
            totals: self.inner.totals.snapshot(),
        }
    }

    /// A receiver that changes after every ACK or NACK any Envoy sends (the value is a
    /// counter; only the change matters). What was answered is in [`Self::stats`].
    pub fn answers(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.totals.answers()
    }

    pub(crate) fn totals(&self) -> &TotalCounters {
        &self.inner.totals
    }

    /// Registers the one observer of completed propagations (later calls are ignored: the
    /// runtime wires metrics once).
    pub fn on_propagated(&self, observer: PropagationObserver) {
        let _ = self.inner.observer.set(observer);
    }

    /// Hands completed propagations of `gateway` to the observer.
    pub(crate) fn report(&self, gateway: &str, done: impl IntoIterator<Item = Propagated>) {
        let Some(observer) = self.inner.observer.get() else {
            return;
        };
        for (type_url, latency) in done {
            tracing::debug!(
                gateway,
                type_url,
                ?latency,
                "xDS change propagated to every Envoy"
            );
            observer(gateway, &type_url, latency);
        }
    }

    /// The entry of `gateway`, created empty if missing (so a stream can wait for its first
    /// snapshot).
    pub(crate) fn entry(&self, gateway: &str) -> Arc<GatewayEntry> {
        if let Some(e) = self.inner.gateways.load().get(gateway) {
            return e.clone();
        }
        let _w = self
            .inner
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.inner.gateways.load_full();
        if let Some(e) = current.get(gateway) {
            return e.clone();
        }
        let entry = Arc::new(GatewayEntry::new());
        let mut next: GatewayMap = (*current).clone();
        next.insert(gateway.to_string(), entry.clone());
        self.inner.gateways.store(Arc::new(next));
        entry
    }

    /// Drops `gateway`'s entry when it has no snapshot and no stream, so ids of clients that
    /// never got a snapshot do not pile up.
    pub(crate) fn drop_if_idle(&self, gateway: &str) {
        let _w = self
            .inner
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.inner.gateways.load_full();
        if current.get(gateway).is_some_and(|e| e.is_idle()) {
            let mut next: GatewayMap = (*current).clone();
            next.remove(gateway);
            self.inner.gateways.store(Arc::new(next));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use envoy_types::pb::google::protobuf::Any;

    use super::*;
    use crate::snapshot::CLUSTER_TYPE;

    fn snap(bytes: &[u8]) -> Snapshot {
        let any = Any {
            type_url: CLUSTER_TYPE.into(),
            value: bytes.to_vec(),
        };
        Snapshot::new(BTreeMap::from([(
            CLUSTER_TYPE.to_string(),
            vec![("c".to_string(), any)],
        )]))
    }

    #[test]
    fn setting_identical_content_reports_no_change_and_wakes_nobody() {
        let cache = SnapshotCache::new();
        assert!(cache.set("ns/gw", snap(b"1")));
        let mut rx = cache.entry("ns/gw").snapshot.subscribe();
        rx.borrow_and_update();
        assert!(!cache.set("ns/gw", snap(b"1")));
        assert!(!rx.has_changed().unwrap());
        assert!(cache.set("ns/gw", snap(b"2")));
        assert!(rx.has_changed().unwrap());
    }

    #[test]
    fn a_change_to_one_gateway_does_not_wake_another() {
        let cache = SnapshotCache::new();
        cache.set("ns/a", snap(b"1"));
        cache.set("ns/b", snap(b"1"));
        let mut rx_b = cache.entry("ns/b").snapshot.subscribe();
        rx_b.borrow_and_update();
        cache.set("ns/a", snap(b"2"));
        assert!(!rx_b.has_changed().unwrap());
    }

    #[test]
    fn removing_a_gateway_without_streams_forgets_it() {
        let cache = SnapshotCache::new();
        cache.set("ns/a", snap(b"1"));
        assert!(cache.get("ns/a").is_some());
        cache.remove("ns/a");
        assert!(cache.get("ns/a").is_none());
        assert!(!cache.stats().gateways.contains_key("ns/a"));
    }

    #[test]
    fn removing_a_gateway_with_a_waiting_stream_keeps_its_entry() {
        let cache = SnapshotCache::new();
        cache.set("ns/a", snap(b"1"));
        let rx = cache.entry("ns/a").snapshot.subscribe();
        cache.remove("ns/a");
        assert!(rx.borrow().is_none());
        assert!(cache.set("ns/a", snap(b"1")));
        assert!(rx.borrow().is_some());
    }
}
