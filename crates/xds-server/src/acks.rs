//! ACK/NACK classification and the counters behind [`XdsStats`](crate::XdsStats).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use envoy_types::pb::google::rpc::Status as RpcStatus;

/// Responses of one type awaiting an ACK or NACK, remembered per stream.
const MAX_UNANSWERED: usize = 16;

/// What a request says about a response of its type.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply<'a> {
    /// No nonce: the first request of this type on the stream.
    Initial,
    /// A nonce already answered or unknown: nothing to record.
    Nothing,
    /// The response with this version was accepted.
    Ack(String),
    /// The response with this version was rejected, with Envoy's message.
    Nack(String, &'a str),
}

/// The nonces sent for one type on one stream and which of them are still unanswered.
///
/// Envoy may answer an older response after a newer one was sent (a push raced its ACK);
/// such answers are still recorded, so ACK/NACK stats stay right under churn.
#[derive(Debug, Default)]
pub(crate) struct Nonces {
    latest: Option<String>,
    unanswered: VecDeque<(String, String)>,
}

impl Nonces {
    /// Remembers a response just sent.
    pub(crate) fn sent(&mut self, nonce: &str, version: &str) {
        if self.unanswered.len() == MAX_UNANSWERED {
            self.unanswered.pop_front();
        }
        self.unanswered
            .push_back((nonce.to_string(), version.to_string()));
        self.latest = Some(nonce.to_string());
    }

    /// Whether `response_nonce` is empty or names the latest response: only such a request
    /// speaks for the client's current state (for example its current SotW names).
    pub(crate) fn is_current(&self, response_nonce: &str) -> bool {
        response_nonce.is_empty() || self.latest.as_deref() == Some(response_nonce)
    }

    /// Classifies a request by its `response_nonce` and `error_detail`. An answered response
    /// (and every older one) is forgotten, so each response counts at most once.
    pub(crate) fn classify<'a>(
        &mut self,
        response_nonce: &str,
        error_detail: Option<&'a RpcStatus>,
    ) -> Reply<'a> {
        if response_nonce.is_empty() {
            return Reply::Initial;
        }
        let Some(pos) = self
            .unanswered
            .iter()
            .position(|(n, _)| n == response_nonce)
        else {
            return Reply::Nothing;
        };
        let (_, version) = self
            .unanswered
            .drain(..=pos)
            .next_back()
            .expect("pos is in range");
        match error_detail {
            Some(status) => Reply::Nack(version, status.message.as_str()),
            None => Reply::Ack(version),
        }
    }
}

/// A rejected configuration, as Envoy reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NackRecord {
    /// Type URL of the rejected response.
    pub type_url: String,
    /// The version Envoy rejected (the one the server sent).
    pub rejected_version: String,
    /// The version Envoy still runs for that type (its `version_info`; empty if none).
    pub accepted_version: String,
    /// Envoy's error message.
    pub message: String,
    /// `node.id` of the Envoy that rejected it.
    pub node_id: String,
}

/// xDS state of one Gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Whether the cache holds a snapshot for this Gateway.
    pub has_snapshot: bool,
    /// Open ADS streams (SotW and delta) of this Gateway.
    pub connected_streams: usize,
    /// Last version ACKed per type URL (by any Envoy of this Gateway).
    pub acked_versions: BTreeMap<String, String>,
    /// Most recent NACK of any type, kept even after a later ACK.
    pub last_nack: Option<NackRecord>,
    /// NACKs per type URL not yet followed by an ACK of that type: what status should show.
    pub active_nacks: BTreeMap<String, NackRecord>,
}

/// Counters over all Gateways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TotalStats {
    /// Responses sent, by type URL.
    pub pushes: BTreeMap<String, u64>,
    /// ACKs received, by type URL.
    pub acks: BTreeMap<String, u64>,
    /// NACKs received, by type URL.
    pub nacks: BTreeMap<String, u64>,
    /// Encoded bytes of every response sent.
    pub bytes_sent: u64,
    /// Streams refused because the client's identity does not allow them, by reason
    /// ([`Rejection::as_str`](crate::Rejection::as_str)).
    pub rejected_streams: BTreeMap<String, u64>,
}

/// A point-in-time copy of the xDS server's bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XdsStats {
    /// Per Gateway id (`<namespace>/<name>`).
    pub gateways: BTreeMap<String, GatewayStats>,
    /// Totals over all Gateways.
    pub totals: TotalStats,
}

/// Live per-Gateway bookkeeping (inside a cache entry).
#[derive(Debug, Default)]
pub(crate) struct GatewayCounters {
    pub(crate) streams: AtomicUsize,
    acks: Mutex<AckState>,
}

#[derive(Debug, Default)]
struct AckState {
    acked_versions: BTreeMap<String, String>,
    last_nack: Option<NackRecord>,
    active_nacks: BTreeMap<String, NackRecord>,
}

impl GatewayCounters {
    /// Records an ACK of `version`. It clears the active NACK of its type only when
    /// `version` is the Gateway's current version of that type (`current`): a Gateway can
    /// have several Envoys (replicas, pods), and a late ACK of an older version by one of
    /// them says nothing about the version another one just rejected.
    pub(crate) fn record_ack(&self, type_url: &str, version: &str, current: bool) {
        let mut s = lock(&self.acks);
        s.acked_versions
            .insert(type_url.to_string(), version.to_string());
        if current {
            s.active_nacks.remove(type_url);
        }
    }

    pub(crate) fn record_nack(&self, nack: NackRecord) {
        let mut s = lock(&self.acks);
        s.active_nacks.insert(nack.type_url.clone(), nack.clone());
        s.last_nack = Some(nack);
    }

    pub(crate) fn snapshot(&self, has_snapshot: bool) -> GatewayStats {
        let s = lock(&self.acks);
        GatewayStats {
            has_snapshot,
            connected_streams: self.streams.load(Ordering::Relaxed),
            acked_versions: s.acked_versions.clone(),
            last_nack: s.last_nack.clone(),
            active_nacks: s.active_nacks.clone(),
        }
    }
}

/// Live totals (inside the cache).
#[derive(Debug, Default)]
pub(crate) struct TotalCounters {
    bytes_sent: AtomicU64,
    by_type: Mutex<ByType>,
    answers: Answers,
}

/// Bumped after every ACK and NACK is recorded, so the control plane reacts to Envoy's
/// answers when they arrive instead of polling for them.
#[derive(Debug)]
struct Answers(tokio::sync::watch::Sender<u64>);

impl Default for Answers {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(0))
    }
}

#[derive(Debug, Default)]
struct ByType {
    pushes: BTreeMap<String, u64>,
    acks: BTreeMap<String, u64>,
    nacks: BTreeMap<String, u64>,
    rejected_streams: BTreeMap<String, u64>,
}

impl TotalCounters {
    pub(crate) fn record_push(&self, type_url: &str, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        bump(&mut lock(&self.by_type).pushes, type_url);
    }

    /// Counts an ACK; called after the Gateway's own record, so a woken subscriber of
    /// [`Self::answers`] sees it.
    pub(crate) fn record_ack(&self, type_url: &str) {
        bump(&mut lock(&self.by_type).acks, type_url);
        self.answers.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Counts a NACK; see [`Self::record_ack`].
    pub(crate) fn record_nack(&self, type_url: &str) {
        bump(&mut lock(&self.by_type).nacks, type_url);
        self.answers.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes after every ACK or NACK.
    pub(crate) fn answers(&self) -> tokio::sync::watch::Receiver<u64> {
        self.answers.0.subscribe()
    }

    pub(crate) fn record_rejected_stream(&self, reason: &str) {
        bump(&mut lock(&self.by_type).rejected_streams, reason);
    }

    pub(crate) fn snapshot(&self) -> TotalStats {
        let t = lock(&self.by_type);
        TotalStats {
            pushes: t.pushes.clone(),
            acks: t.acks.clone(),
            nacks: t.nacks.clone(),
            rejected_streams: t.rejected_streams.clone(),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
        }
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

/// Locks a bookkeeping mutex; a panic elsewhere cannot leave counters inconsistent, so a
/// poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(message: &str) -> RpcStatus {
        RpcStatus {
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_empty_nonce_is_an_initial_request() {
        let mut n = Nonces::default();
        n.sent("1", "v1");
        assert_eq!(n.classify("", None), Reply::Initial);
        assert!(n.is_current(""));
    }

    #[test]
    fn the_latest_nonce_is_an_ack_or_a_nack_once() {
        let mut n = Nonces::default();
        n.sent("1", "v1");
        assert_eq!(n.classify("1", None), Reply::Ack("v1".into()));
        assert_eq!(n.classify("1", None), Reply::Nothing);
        assert!(n.is_current("1"));
        n.sent("2", "v2");
        let e = err("bad");
        assert_eq!(n.classify("2", Some(&e)), Reply::Nack("v2".into(), "bad"));
    }

    #[test]
    fn a_late_answer_to_an_older_response_is_recorded_but_is_not_current() {
        let mut n = Nonces::default();
        n.sent("1", "v1");
        n.sent("2", "v2");
        assert!(!n.is_current("1"));
        assert_eq!(n.classify("1", None), Reply::Ack("v1".into()));
        assert_eq!(n.classify("2", None), Reply::Ack("v2".into()));
        assert_eq!(n.classify("1", None), Reply::Nothing);
        assert_eq!(n.classify("unknown", None), Reply::Nothing);
    }

    #[test]
    fn answering_a_newer_response_forgets_older_ones() {
        let mut n = Nonces::default();
        n.sent("1", "v1");
        n.sent("2", "v2");
        assert_eq!(n.classify("2", None), Reply::Ack("v2".into()));
        assert_eq!(n.classify("1", None), Reply::Nothing);
    }

    /// `node` rejected version v2 of type `t` and keeps v1.
    fn nack_of_v2(node: &str) -> NackRecord {
        NackRecord {
            type_url: "t".into(),
            rejected_version: "v2".into(),
            accepted_version: "v1".into(),
            message: "bad".into(),
            node_id: node.into(),
        }
    }

    #[test]
    fn an_ack_clears_the_active_nack_of_its_type_but_not_the_last_nack() {
        let g = GatewayCounters::default();
        g.record_nack(nack_of_v2("n"));
        assert_eq!(g.snapshot(true).active_nacks.len(), 1);
        g.record_ack("t", "v3", true);
        let s = g.snapshot(true);
        assert!(s.active_nacks.is_empty());
        assert_eq!(s.last_nack.unwrap().rejected_version, "v2");
        assert_eq!(s.acked_versions["t"], "v3");
    }

    #[test]
    fn a_late_ack_of_an_older_version_leaves_the_active_nack() {
        let g = GatewayCounters::default();
        g.record_nack(nack_of_v2("ns/gw/host"));
        // Another replica answers the previous push only now.
        g.record_ack("t", "v1", false);
        let s = g.snapshot(true);
        assert_eq!(s.active_nacks["t"].rejected_version, "v2");
        assert_eq!(s.acked_versions["t"], "v1");
    }
}
