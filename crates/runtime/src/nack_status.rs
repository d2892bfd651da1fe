//! Envoy's rejections (NACKs) in the Gateway's status.
//!
//! When an Envoy of a Gateway rejects a configuration, it keeps serving the last version it
//! accepted, and the xDS server records the NACK until that type is ACKed again. While such a
//! NACK is active, the Gateway's status carries the implementation-specific condition
//! [`CONDITION`] `False` (reason `Rejected`) with Envoy's own message, so a user sees in
//! `kubectl get gateway -o yaml` (or the status file) that the newest config is not live.
//! `Programmed` is left alone: the Gateway is programmed, with its last accepted config.
//! Without an active NACK the condition is absent, so statuses are unchanged in the usual
//! case.

use std::collections::BTreeMap;

use ferrogate_status::{Condition, StatusSet};
use ferrogate_xds_server::XdsStats;

/// Condition type (domain-prefixed, as the Gateway API asks of implementation-specific ones).
pub(crate) const CONDITION: &str = "gateway.ferrogate.dev/ConfigAccepted";

/// After Envoy's first answer, how long to wait for the rest of a burst (every type of a
/// push, every replica) before the statuses and the route quarantine look at them once.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(10);

/// Envoy's answers, taken in bursts: the first ACK or NACK opens a window of [`COALESCE`],
/// and the burst is ready when the window closes.
///
/// The window is kept here rather than slept through, so waiting on it is one branch of the
/// run loop's `select!` among the others: an input change arriving inside the window runs at
/// once instead of waiting out a burst of answers to the previous push.
pub(crate) struct AnswerBursts {
    answers: tokio::sync::watch::Receiver<u64>,
    closes_at: Option<tokio::time::Instant>,
}

impl AnswerBursts {
    /// Bursts of `answers` (see [`ferrogate_xds_server::SnapshotCache::answers`]).
    pub(crate) fn new(answers: tokio::sync::watch::Receiver<u64>) -> Self {
        Self {
            answers,
            closes_at: None,
        }
    }

    /// Waits for the next burst to close and marks it seen; `Err` when the xDS server is
    /// gone. Cancel safe: a window opened by a dropped call is waited out by the next one.
    pub(crate) async fn next(&mut self) -> Result<(), tokio::sync::watch::error::RecvError> {
        let closes_at = match self.closes_at {
            Some(at) => at,
            None => {
                self.answers.changed().await?;
                *self
                    .closes_at
                    .insert(tokio::time::Instant::now() + COALESCE)
            }
        };
        tokio::time::sleep_until(closes_at).await;
        self.closes_at = None;
        self.answers.borrow_and_update();
        Ok(())
    }
}

/// What changes the annotation: per Gateway, the active NACKs' (type, version, message).
pub(crate) type NackDigest = BTreeMap<String, Vec<(String, String, String)>>;

/// The active NACKs of every Gateway.
pub(crate) fn digest(stats: &XdsStats) -> NackDigest {
    stats
        .gateways
        .iter()
        .filter(|(_, g)| !g.active_nacks.is_empty())
        .map(|(id, g)| {
            let nacks = g
                .active_nacks
                .values()
                .map(|n| {
                    (
                        n.type_url.clone(),
                        n.rejected_version.clone(),
                        n.message.clone(),
                    )
                })
                .collect();
            (id.clone(), nacks)
        })
        .collect()
}

/// Adds the rejection condition to the status of every Gateway with an active NACK. The
/// statuses are copied only when there is one (they are shared with the pipeline's last run).
pub(crate) fn annotate(statuses: &mut std::sync::Arc<StatusSet>, nacks: &NackDigest) {
    if nacks.is_empty() {
        return;
    }
    for gateway in &mut std::sync::Arc::make_mut(statuses).gateways {
        let id = format!("{}/{}", gateway.namespace, gateway.name);
        let Some(rejected) = nacks.get(&id) else {
            continue;
        };
        let detail: Vec<String> = rejected
            .iter()
            .map(|(type_url, version, message)| {
                format!("{} version {version}: {message}", short_type(type_url))
            })
            .collect();
        let generation = gateway
            .conditions
            .first()
            .and_then(|c| c.observed_generation);
        let condition = Condition::not(
            CONDITION,
            "Rejected",
            format!("Envoy rejected the newest configuration and keeps serving the last one it accepted: {}", detail.join("; ")),
        )
        .at_generation(generation);
        gateway.conditions.retain(|c| c.type_ != CONDITION);
        gateway.conditions.push(condition);
    }
}

/// `type.googleapis.com/envoy.config.cluster.v3.Cluster` -> `Cluster`.
fn short_type(type_url: &str) -> &str {
    type_url.rsplit('.').next().unwrap_or(type_url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogate_status::GatewayStatus;
    use ferrogate_xds_server::{GatewayStats, NackRecord};

    #[test]
    fn an_active_nack_shows_on_its_gateway_only() {
        let mut stats = XdsStats::default();
        let nack = NackRecord {
            type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
            rejected_version: "v2".into(),
            accepted_version: "v1".into(),
            message: "bad cluster".into(),
            node_id: "envoy-1".into(),
        };
        stats.gateways.insert(
            "apps/web".into(),
            GatewayStats {
                active_nacks: BTreeMap::from([(nack.type_url.clone(), nack)]),
                ..Default::default()
            },
        );
        stats
            .gateways
            .insert("apps/fine".into(), GatewayStats::default());
        let mut statuses = StatusSet::default();
        for name in ["web", "fine"] {
            statuses.gateways.push(GatewayStatus {
                namespace: "apps".into(),
                name: name.into(),
                conditions: vec![Condition::ok("Accepted", "Accepted", "").at_generation(Some(4))],
                ..Default::default()
            });
        }
        let mut statuses = std::sync::Arc::new(statuses);
        annotate(&mut statuses, &digest(&stats));
        let web = &statuses.gateways[0].conditions;
        assert_eq!(web.len(), 2);
        assert_eq!(web[1].type_, CONDITION);
        assert_eq!(web[1].reason, "Rejected");
        assert_eq!(web[1].observed_generation, Some(4));
        assert!(
            web[1].message.contains("Cluster version v2: bad cluster"),
            "{}",
            web[1].message
        );
        assert_eq!(
            statuses.gateways[1].conditions.len(),
            1,
            "no NACK, no extra condition"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_burst_closes_after_its_window_even_when_a_wait_was_dropped() {
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let mut bursts = AnswerBursts::new(rx);
        let start = tokio::time::Instant::now();
        tx.send_replace(1);
        // Another input wins the loop's select half-way through the window.
        let dropped = tokio::time::timeout(COALESCE / 2, bursts.next()).await;
        assert!(dropped.is_err(), "the window is not over yet");
        // More answers inside the window join the same burst.
        tx.send_replace(2);
        bursts.next().await.expect("server alive");
        assert_eq!(
            start.elapsed(),
            COALESCE,
            "the window opened by the first answer"
        );
        // The burst was seen: nothing is ready until a new answer.
        let idle = tokio::time::timeout(COALESCE * 5, bursts.next()).await;
        assert!(idle.is_err(), "no new answer, no burst");
        drop(tx);
        assert!(bursts.next().await.is_err(), "the server is gone");
    }
}
