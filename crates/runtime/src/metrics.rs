//! Control-plane metrics (Prometheus, `ferrogate_` prefix).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Every metric the control plane exports.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served on `/metrics`.
    pub registry: Registry,
    /// Translation runs.
    pub translations: IntCounter,
    /// Translation duration.
    pub translation_seconds: Histogram,
    /// Objects in the store by kind.
    pub resources: IntGaugeVec,
    /// Gateways translated.
    pub gateways: IntGauge,
    /// Snapshots published to the xDS cache (per Gateway, only when content changed).
    pub snapshot_updates: IntCounterVec,
    /// Problems found while reading configuration.
    pub config_problems: IntGauge,
    /// Status files written.
    pub status_writes: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let translations = IntCounter::new("ferrogate_translations_total", "Translation runs of the whole input").unwrap();
        let translation_seconds = Histogram::with_opts(
            HistogramOpts::new("ferrogate_translation_duration_seconds", "Duration of a translation run (Gateway API to xDS)")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        )
        .unwrap();
        let resources = IntGaugeVec::new(Opts::new("ferrogate_resources", "Objects in the resource store, by kind"), &["kind"]).unwrap();
        let gateways = IntGauge::new("ferrogate_gateways", "Gateways of our classes that are translated").unwrap();
        let snapshot_updates = IntCounterVec::new(
            Opts::new("ferrogate_xds_snapshot_updates_total", "xDS snapshots published because a Gateway's config changed"),
            &["gateway"],
        )
        .unwrap();
        let config_problems = IntGauge::new("ferrogate_config_problems", "Problems found in the last read of the configuration").unwrap();
        let status_writes = IntCounter::new("ferrogate_status_writes_total", "Status objects written because they changed").unwrap();
        for c in [
            Box::new(translations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(translation_seconds.clone()),
            Box::new(resources.clone()),
            Box::new(gateways.clone()),
            Box::new(snapshot_updates.clone()),
            Box::new(config_problems.clone()),
            Box::new(status_writes.clone()),
        ] {
            registry.register(c).unwrap();
        }
        let build = IntGaugeVec::new(Opts::new("ferrogate_build_info", "Build information"), &["version"]).unwrap();
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(build)).unwrap();
        Self { registry, translations, translation_seconds, resources, gateways, snapshot_updates, config_problems, status_writes }
    }

    /// Text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        encoder.encode_utf8(&self.registry.gather(), &mut out).unwrap_or_default();
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
