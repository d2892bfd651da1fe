//! xDS metrics, read from the snapshot cache's statistics at scrape time, so no counter has
//! to be kept in step with the server.

use ferrogate_xds_server::SnapshotCache;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};

/// Exposes the xDS server's statistics.
pub(crate) struct XdsCollector {
    cache: SnapshotCache,
    descs: Vec<Desc>,
}

fn families() -> (IntCounterVec, IntCounterVec, IntCounterVec, IntCounterVec, IntGaugeVec, IntGaugeVec) {
    let pushes = IntCounterVec::new(Opts::new("ferrogate_xds_pushes_total", "xDS responses sent to Envoy, by resource type"), &["type_url"]).unwrap();
    let acks = IntCounterVec::new(Opts::new("ferrogate_xds_acks_total", "xDS responses Envoy accepted, by resource type"), &["type_url"]).unwrap();
    let nacks = IntCounterVec::new(Opts::new("ferrogate_xds_nacks_total", "xDS responses Envoy rejected, by resource type"), &["type_url"]).unwrap();
    let bytes = IntCounterVec::new(Opts::new("ferrogate_xds_sent_bytes_total", "Bytes of xDS responses sent to Envoy"), &[]).unwrap();
    let proxies = IntGaugeVec::new(Opts::new("ferrogate_xds_connected_proxies", "Envoy xDS streams connected, by Gateway"), &["gateway"]).unwrap();
    let rejected = IntGaugeVec::new(
        Opts::new("ferrogate_xds_rejected_config", "1 while Envoy rejects the latest config of a Gateway for a resource type (last good config keeps serving)"),
        &["gateway", "type_url"],
    )
    .unwrap();
    (pushes, acks, nacks, bytes, proxies, rejected)
}

impl XdsCollector {
    pub(crate) fn new(cache: SnapshotCache) -> Self {
        let (a, b, c, d, e, f) = families();
        let descs = [a.desc(), b.desc(), c.desc(), d.desc(), e.desc(), f.desc()].into_iter().flatten().cloned().collect();
        Self { cache, descs }
    }
}

impl Collector for XdsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = self.cache.stats();
        let (pushes, acks, nacks, bytes, proxies, rejected) = families();
        for (type_url, n) in &stats.totals.pushes {
            pushes.with_label_values(&[type_url]).inc_by(*n);
        }
        for (type_url, n) in &stats.totals.acks {
            acks.with_label_values(&[type_url]).inc_by(*n);
        }
        for (type_url, n) in &stats.totals.nacks {
            nacks.with_label_values(&[type_url]).inc_by(*n);
        }
        bytes.with_label_values::<&str>(&[]).inc_by(stats.totals.bytes_sent);
        for (gateway, g) in &stats.gateways {
            proxies.with_label_values(&[gateway]).set(g.connected_streams as i64);
            for type_url in g.active_nacks.keys() {
                rejected.with_label_values(&[gateway, type_url]).set(1);
            }
        }
        let mut out = Vec::new();
        for c in [&pushes as &dyn Collector, &acks, &nacks, &bytes, &proxies, &rejected] {
            out.extend(c.collect());
        }
        out
    }
}
