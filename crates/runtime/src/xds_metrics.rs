//! xDS metrics, read from the snapshot cache's statistics at scrape time, so no counter has
//! to be kept in step with the server.
//!
//! What the cache's [`XdsStats`](ferrogate_xds_server::XdsStats) holds is exported: totals of
//! pushes, ACKs and NACKs by type URL and of bytes sent; per Gateway (labels `namespace` and
//! `gateway`, see [`crate::metrics::GATEWAY_LABELS`]) the connected streams, the types whose
//! latest config Envoy rejects and whether each type the Gateway uses was ACKed at its latest
//! version. No label carries a snapshot version: each config change would start a new series.

use ferrogate_xds_server::SnapshotCache;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};

use crate::metrics::{GATEWAY_LABELS, gateway_label_values};

/// Exposes the xDS server's statistics.
pub(crate) struct XdsCollector {
    cache: SnapshotCache,
    descs: Vec<Desc>,
}

struct Families {
    pushes: IntCounterVec,
    acks: IntCounterVec,
    nacks: IntCounterVec,
    bytes: IntCounterVec,
    proxies: IntGaugeVec,
    rejected: IntGaugeVec,
    acked: IntGaugeVec,
    refused: IntCounterVec,
}

impl Families {
    fn new() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).unwrap()
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(Opts::new(name, help), labels).unwrap()
        };
        Self {
            pushes: counter(
                "ferrogate_xds_pushes_total",
                "xDS responses sent to Envoy, by resource type",
                &["type_url"],
            ),
            acks: counter(
                "ferrogate_xds_acks_total",
                "xDS responses Envoy accepted, by resource type",
                &["type_url"],
            ),
            nacks: counter(
                "ferrogate_xds_nacks_total",
                "xDS responses Envoy rejected, by resource type",
                &["type_url"],
            ),
            bytes: counter(
                "ferrogate_xds_sent_bytes_total",
                "Bytes of xDS responses sent to Envoy",
                &[],
            ),
            proxies: gauge(
                "ferrogate_xds_connected_proxies",
                "Envoy xDS streams connected, by Gateway",
                &GATEWAY_LABELS,
            ),
            rejected: gauge(
                "ferrogate_xds_rejected_config",
                "1 while Envoy rejects the latest config of a Gateway for a resource type (last good config keeps serving)",
                &[GATEWAY_LABELS[0], GATEWAY_LABELS[1], "type_url"],
            ),
            acked: gauge(
                "ferrogate_xds_config_acked",
                "1 when an Envoy of the Gateway ACKed the latest snapshot version of a resource type, 0 while not (yet); only types the Gateway has resources of (a plain-HTTP Gateway has no Secret series)",
                &[GATEWAY_LABELS[0], GATEWAY_LABELS[1], "type_url"],
            ),
            refused: counter(
                "ferrogate_xds_rejected_streams_total",
                "xDS streams refused because the client certificate does not allow them (wrong_gateway, no_identity, no_client_certificate, node_changed)",
                &["reason"],
            ),
        }
    }

    fn all(&self) -> [(&dyn Collector, &'static str); 8] {
        [
            (&self.pushes, "counter"),
            (&self.acks, "counter"),
            (&self.nacks, "counter"),
            (&self.bytes, "counter"),
            (&self.proxies, "gauge"),
            (&self.rejected, "gauge"),
            (&self.acked, "gauge"),
            (&self.refused, "counter"),
        ]
    }
}

/// The xDS families with their types, for the generated reference.
pub(crate) fn reference_collectors() -> Vec<(Box<dyn Collector>, &'static str)> {
    let f = Families::new();
    let kinds: Vec<&'static str> = f.all().iter().map(|(_, k)| *k).collect();
    let boxed: [Box<dyn Collector>; 8] = [
        Box::new(f.pushes),
        Box::new(f.acks),
        Box::new(f.nacks),
        Box::new(f.bytes),
        Box::new(f.proxies),
        Box::new(f.rejected),
        Box::new(f.acked),
        Box::new(f.refused),
    ];
    boxed.into_iter().zip(kinds).collect()
}

impl XdsCollector {
    pub(crate) fn new(cache: SnapshotCache) -> Self {
        let f = Families::new();
        let descs = f
            .all()
            .iter()
            .flat_map(|(c, _)| c.desc())
            .cloned()
            .collect();
        Self { cache, descs }
    }
}

impl Collector for XdsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = self.cache.stats();
        let f = Families::new();
        for (type_url, n) in &stats.totals.pushes {
            f.pushes.with_label_values(&[type_url]).inc_by(*n);
        }
        for (type_url, n) in &stats.totals.acks {
            f.acks.with_label_values(&[type_url]).inc_by(*n);
        }
        for (type_url, n) in &stats.totals.nacks {
            f.nacks.with_label_values(&[type_url]).inc_by(*n);
        }
        f.bytes
            .with_label_values::<&str>(&[])
            .inc_by(stats.totals.bytes_sent);
        for (reason, n) in &stats.totals.rejected_streams {
            f.refused.with_label_values(&[reason]).inc_by(*n);
        }
        for (gateway, g) in &stats.gateways {
            let [namespace, name] = gateway_label_values(gateway);
            f.proxies
                .with_label_values(&[namespace, name])
                .set(g.connected_streams as i64);
            for type_url in g.active_nacks.keys() {
                f.rejected
                    .with_label_values(&[namespace, name, type_url])
                    .set(1);
            }
            let Some(snapshot) = self.cache.get(gateway) else {
                continue;
            };
            // A type without resources is one this Gateway does not use (no Secret for plain
            // HTTP, no RouteConfiguration for TCP only): Envoy never subscribes to it, so it
            // can never be ACKed and must not read as "unacknowledged".
            for type_url in snapshot
                .type_urls()
                .filter(|t| snapshot.resource_names(t).next().is_some())
            {
                let acked = snapshot
                    .version(type_url)
                    .is_some_and(|v| g.acked_versions.get(type_url).is_some_and(|a| a == v));
                f.acked
                    .with_label_values(&[namespace, name, type_url])
                    .set(i64::from(acked));
            }
        }
        f.all().iter().flat_map(|(c, _)| c.collect()).collect()
    }
}
