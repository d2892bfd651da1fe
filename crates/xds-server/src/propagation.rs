//! Propagation latency: from a change the caller saw (the `seen` instant given to
//! [`SnapshotCache::set_at`](crate::SnapshotCache::set_at)) to the moment every Envoy of
//! the Gateway runs it, per resource type.
//!
//! When a snapshot changes a type's version, every stream connected at that moment is
//! waiting for it. A stream stops waiting when it ACKs that version, or when it handles
//! the snapshot and sends nothing of that type (it does not subscribe to it, or nothing it
//! subscribes to changed). The change has propagated when no stream waits any more and at
//! least one ACKed it; a stream that leaves stops waiting, and a change nobody ACKed (no
//! Envoy connected, all of them NACKed or left) is dropped, not measured. A newer version
//! before propagation replaces the target but keeps the older `seen`: the older change is
//! only live once the newer version is.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::snapshot::Snapshot;

/// Live propagation bookkeeping of one Gateway.
#[derive(Debug, Default)]
pub(crate) struct Propagation {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Ids of the Gateway's open streams.
    streams: BTreeSet<u64>,
    /// Type URL -> the change on its way.
    pending: BTreeMap<String, Pending>,
}

#[derive(Debug)]
struct Pending {
    version: String,
    seen: Instant,
    waiting: BTreeSet<u64>,
    acked: bool,
}

/// A completed propagation: the type and how long it took.
pub(crate) type Propagated = (String, Duration);

impl Propagation {
    pub(crate) fn join(&self, stream: u64) {
        self.lock().streams.insert(stream);
    }

    /// Forgets a stream that ended; a change only it still waited for has propagated to
    /// every Envoy left (if one of them ACKed it).
    pub(crate) fn leave(&self, stream: u64, now: Instant) -> Vec<Propagated> {
        let mut s = self.lock();
        s.streams.remove(&stream);
        let types: Vec<String> = s.pending.keys().cloned().collect();
        types
            .into_iter()
            .filter_map(|t| s.stop_waiting(&t, stream, None, now))
            .collect()
    }

    /// A snapshot replaced `old`: every type whose version changed now waits for the
    /// streams open at this moment.
    pub(crate) fn published(&self, old: Option<&Snapshot>, new: &Snapshot, seen: Instant) {
        let mut s = self.lock();
        let types: BTreeSet<&str> = new
            .type_urls()
            .chain(old.into_iter().flat_map(|o| o.type_urls()))
            .collect();
        for type_url in types {
            let version = new.version_or_empty(type_url);
            if old.is_some_and(|o| o.version_or_empty(type_url) == version) {
                continue;
            }
            if s.streams.is_empty() {
                // Nobody to propagate to: a first Envoy gets it as its initial config.
                s.pending.remove(type_url);
                continue;
            }
            let seen = s.pending.get(type_url).map_or(seen, |p| p.seen.min(seen));
            let waiting = s.streams.clone();
            s.pending.insert(
                type_url.to_string(),
                Pending {
                    version: version.to_string(),
                    seen,
                    waiting,
                    acked: false,
                },
            );
        }
    }

    /// `stream` handled a snapshot whose `type_url` is at `version` and sent nothing of it.
    pub(crate) fn settled(
        &self,
        stream: u64,
        type_url: &str,
        version: &str,
        now: Instant,
    ) -> Option<Propagated> {
        self.lock()
            .stop_waiting(type_url, stream, Some((version, false)), now)
    }

    /// `stream` ACKed `version` of `type_url`.
    pub(crate) fn acked(
        &self,
        stream: u64,
        type_url: &str,
        version: &str,
        now: Instant,
    ) -> Option<Propagated> {
        self.lock()
            .stop_waiting(type_url, stream, Some((version, true)), now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    /// Removes `stream` from the waiters of `type_url` if `about` (version, whether it is an
    /// ACK) concerns the pending version (`None`: the stream left). Completes the change when
    /// nobody waits any more.
    fn stop_waiting(
        &mut self,
        type_url: &str,
        stream: u64,
        about: Option<(&str, bool)>,
        now: Instant,
    ) -> Option<Propagated> {
        let p = self.pending.get_mut(type_url)?;
        if let Some((version, ack)) = about {
            // An answer about another (older) version says nothing about this change.
            if p.version != version || !p.waiting.contains(&stream) {
                return None;
            }
            p.acked |= ack;
        }
        p.waiting.remove(&stream);
        if !p.waiting.is_empty() {
            return None;
        }
        let p = self.pending.remove(type_url)?;
        p.acked
            .then(|| (type_url.to_string(), now.saturating_duration_since(p.seen)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use envoy_types::pb::google::protobuf::Any;

    use super::*;
    use crate::snapshot::{CLUSTER_TYPE, ROUTE_TYPE};

    fn snap(route: &[u8]) -> Snapshot {
        let any = |t: &str, v: &[u8]| Any {
            type_url: t.into(),
            value: v.to_vec(),
        };
        Snapshot::new(BTreeMap::from([
            (
                CLUSTER_TYPE.to_string(),
                vec![("c".to_string(), any(CLUSTER_TYPE, b"c"))],
            ),
            (
                ROUTE_TYPE.to_string(),
                vec![("r".to_string(), any(ROUTE_TYPE, route))],
            ),
        ]))
    }

    #[test]
    fn a_change_propagates_when_every_stream_acked_it() {
        let p = Propagation::default();
        p.join(1);
        p.join(2);
        let (old, new) = (snap(b"1"), snap(b"2"));
        let seen = Instant::now();
        p.published(Some(&old), &new, seen);
        let v = new.version_or_empty(ROUTE_TYPE).to_string();
        let later = seen + Duration::from_millis(30);
        // The cluster type did not change: nothing waits for it.
        assert_eq!(
            p.settled(1, CLUSTER_TYPE, new.version_or_empty(CLUSTER_TYPE), later),
            None
        );
        assert_eq!(
            p.acked(1, ROUTE_TYPE, &v, later),
            None,
            "stream 2 has not ACKed yet"
        );
        assert_eq!(
            p.acked(2, ROUTE_TYPE, old.version_or_empty(ROUTE_TYPE), later),
            None,
            "an older version"
        );
        assert_eq!(
            p.acked(2, ROUTE_TYPE, &v, later),
            Some((ROUTE_TYPE.to_string(), Duration::from_millis(30)))
        );
        assert_eq!(p.acked(2, ROUTE_TYPE, &v, later), None, "measured once");
    }

    #[test]
    fn a_stream_that_sends_nothing_or_leaves_does_not_hold_it_up() {
        let p = Propagation::default();
        for s in [1, 2, 3] {
            p.join(s);
        }
        let new = snap(b"2");
        let seen = Instant::now();
        p.published(Some(&snap(b"1")), &new, seen);
        let v = new.version_or_empty(ROUTE_TYPE).to_string();
        assert_eq!(p.settled(1, ROUTE_TYPE, &v, seen), None);
        assert_eq!(p.acked(2, ROUTE_TYPE, &v, seen), None);
        assert_eq!(p.leave(3, seen + Duration::from_millis(5)).len(), 1);
    }

    #[test]
    fn nothing_is_measured_without_an_ack_or_without_streams() {
        let p = Propagation::default();
        p.published(Some(&snap(b"1")), &snap(b"2"), Instant::now());
        p.join(1);
        let new = snap(b"3");
        p.published(Some(&snap(b"2")), &new, Instant::now());
        assert_eq!(
            p.settled(
                1,
                ROUTE_TYPE,
                new.version_or_empty(ROUTE_TYPE),
                Instant::now()
            ),
            None
        );
        assert!(p.leave(1, Instant::now()).is_empty());
    }

    #[test]
    fn a_newer_version_keeps_the_older_change_time() {
        let p = Propagation::default();
        p.join(1);
        let first = Instant::now();
        p.published(Some(&snap(b"1")), &snap(b"2"), first);
        let newest = snap(b"3");
        p.published(
            Some(&snap(b"2")),
            &newest,
            first + Duration::from_millis(10),
        );
        let done = p.acked(
            1,
            ROUTE_TYPE,
            newest.version_or_empty(ROUTE_TYPE),
            first + Duration::from_millis(50),
        );
        assert_eq!(
            done,
            Some((ROUTE_TYPE.to_string(), Duration::from_millis(50)))
        );
    }
}
