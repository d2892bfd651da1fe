//! Control-plane metrics (Prometheus, `ferrogate_` prefix), served on `/metrics` (19001).
//!
//! Counters end in `_total`, durations are histograms in seconds, sizes end in `_bytes`.
//! The xDS server's own bookkeeping (streams, pushes, ACKs/NACKs, bytes, snapshot versions)
//! is read at scrape time by [`crate::xds_metrics`], so nothing has to keep counters in step
//! with it. `docs/metrics.md` is generated from [`reference`] (`make docs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use ferrogate_status::{Condition, ConditionStatus, StatusSet};
use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Every metric the control plane exports (except the xDS ones read from the cache).
///
/// Cloning is cheap; clones share the same series. Fields are public so every mode (standalone,
/// controller) updates the same set.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served on `/metrics`.
    pub registry: Registry,
    /// `ferrogate_translations_total`: translation runs of the whole input.
    pub translations: IntCounter,
    /// `ferrogate_translation_duration_seconds`: duration of a translation run.
    pub translation_seconds: Histogram,
    /// `ferrogate_translation_errors_total{kind}`: objects that became invalid in a run (see
    /// [`Metrics::observe_statuses`]).
    pub translation_errors: IntCounterVec,
    /// `ferrogate_invalid_objects{kind}`: objects currently invalid after the last run.
    pub invalid_objects: IntGaugeVec,
    /// `ferrogate_resources{kind}`: objects in the resource store, by kind.
    pub resources: IntGaugeVec,
    /// `ferrogate_watched_kinds{kind}`: 1 when a kind is watched, 0 when its API is absent
    /// (e.g. a CRD not installed). Set with [`Metrics::set_watched`].
    pub watched_kinds: IntGaugeVec,
    /// `ferrogate_gateways`: Gateways of our classes that are translated.
    pub gateways: IntGauge,
    /// `ferrogate_gateways_by_status{accepted,programmed}`: Gateways of our classes by the
    /// status of their `Accepted` and `Programmed` conditions (`true`, `false`, `unknown`).
    pub gateways_by_status: IntGaugeVec,
    /// `ferrogate_xds_snapshot_updates_total{namespace,gateway}`: snapshots published to the
    /// xDS cache (per Gateway, only when its content changed): the pushes a Gateway's Envoys get.
    pub snapshot_updates: IntCounterVec,
    /// `ferrogate_xds_propagation_duration_seconds{type_url}`: from a change reaching the
    /// control plane to the ACK of every Envoy of each Gateway it touched, per resource type
    /// (fed by the xDS server, see [`Metrics::observe_propagation`]).
    pub propagation_seconds: HistogramVec,
    /// `ferrogate_xds_snapshot_build_duration_seconds`: translating one Gateway's IR into Envoy
    /// resources and publishing the snapshot.
    pub snapshot_build_seconds: Histogram,
    /// `ferrogate_config_problems`: problems found in the last read of the configuration.
    pub config_problems: IntGauge,
    /// `ferrogate_config_duplicate_objects`: objects defined more than once in the last read
    /// of the config directory (standalone; the later file in path order wins).
    pub config_duplicates: IntGauge,
    /// `ferrogate_routes_rejected_by_envoy`: routes held out of their Gateway because Envoy
    /// rejected the configuration with them (until their content changes).
    pub routes_rejected_by_envoy: IntGauge,
    /// `ferrogate_status_writes_total`: status objects written because they changed.
    pub status_writes: IntCounter,
    /// `ferrogate_status_write_duration_seconds`: one round of status writes (every changed
    /// status of a run, to files or status subresources).
    pub status_write_seconds: Histogram,
    /// `ferrogate_status_write_conflicts_total`: status writes refused with a conflict (HTTP 409;
    /// the object changed underneath and the write is retried).
    pub status_write_conflicts: IntCounter,
    /// `ferrogate_infra_applies_total{kind}`: infrastructure objects applied (server-side apply or
    /// delete) by the infra manager, by kind.
    pub infra_applies: IntCounterVec,
    /// `ferrogate_sink_superseded_total{sink}`: values for a slow sink (status writes,
    /// infrastructure applies) replaced by a newer one before the sink took them.
    pub sink_superseded: IntCounterVec,
    /// `ferrogate_sink_retries_total{sink}`: values a sink tried again after its work on them
    /// failed (an API error, an unwritable file).
    pub sink_retries: IntCounterVec,
    /// `ferrogate_fleet_status_refreshes_total`: runs where only the provisioned Envoy fleets
    /// changed, answered by refreshing Gateway statuses without translating routes.
    pub fleet_status_refreshes: IntCounter,
    /// `ferrogate_infra_apply_failures_total{kind}`: infrastructure applies that failed, by kind.
    pub infra_apply_failures: IntCounterVec,
    /// `ferrogate_infra_apply_duration_seconds`: one round of infrastructure applies (the
    /// Kubernetes objects of a run, or starting and stopping local Envoys in standalone mode).
    pub infra_apply_seconds: Histogram,
    /// `ferrogate_events_total{reason}`: Kubernetes Events queued for status transitions.
    pub events: IntCounterVec,
    /// `ferrogate_events_dropped_total`: Events left out by the rate limit.
    pub events_dropped: IntCounter,
    /// `ferrogate_events_queue_dropped_total`: Events dropped because the publishing queue
    /// was full (the API server is slow to take them).
    pub events_dropped_queue: IntCounter,
    /// `ferrogate_leader`: 1 while this replica holds the leader Lease (standalone: always 1).
    pub leader: IntGauge,
    /// Objects invalid after the previous run, to count only new ones.
    invalid: Arc<Mutex<BTreeSet<(String, String)>>>,
    /// The statuses of the previous run and, per route, its address and whether one of its
    /// parents was invalid: a route status handed back in the same `Arc` is not read again
    /// (walking every route's conditions was a tenth of a one-route edit's CPU at 100 000
    /// routes). The set is held whole, so its routes stay alive and comparing addresses is
    /// sound without touching each status's reference count.
    routes_seen: Arc<Mutex<RoutesSeen>>,
}

/// The last observed statuses and, in their order, each route status's address and whether
/// that route had an invalid parent (see [`Metrics::routes_seen`]).
type RoutesSeen = Option<(Arc<StatusSet>, Vec<(usize, bool)>)>;

/// How far ahead in the last run's routes a route status is looked for. An edit inserts,
/// removes or replaces a few routes, which shifts the rest by as many places; a status not
/// found within this distance is read again, which is always correct, only slower.
const SEEN_WINDOW: usize = 8;

/// Whether a route status at `address` was in `seen` (at `from` or a little further), and
/// with which verdict; moves `from` past it.
fn seen_before(seen: &[(usize, bool)], from: &mut usize, address: usize) -> Option<bool> {
    let mut window = seen
        .get(*from..)
        .unwrap_or_default()
        .iter()
        .take(SEEN_WINDOW);
    let offset = window.position(|(a, _)| *a == address)?;
    let verdict = seen[*from + offset].1;
    *from += offset + 1;
    Some(verdict)
}

/// One metric family, for the generated reference (`docs/metrics.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricInfo {
    /// Full name as scraped (histograms add `_bucket`, `_sum`, `_count`).
    pub name: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Label names.
    pub labels: Vec<String>,
    /// Help text.
    pub help: String,
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

/// Buckets of in-process work (translation, snapshot builds).
const FAST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Buckets of work that waits on something else (API server round trips, Envoy ACKs): up to
/// 30 s, where a propagation alert would fire.
const SLOW_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn histogram(name: &str, help: &str) -> Histogram {
    histogram_with(name, help, FAST_BUCKETS)
}

fn histogram_with(name: &str, help: &str, buckets: &[f64]) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("valid metric")
}

/// The labels of a Gateway on Ferrogate's series: its namespace and its name apart, so they
/// join with the Envoy pods' own series (`namespace`, and `gateway` from the PodMonitor).
pub const GATEWAY_LABELS: [&str; 2] = ["namespace", "gateway"];

/// `[namespace, name]` of a Gateway id `<namespace>/<name>` (an id without `/` is all name).
pub fn gateway_label_values(id: &str) -> [&str; 2] {
    match id.split_once('/') {
        Some((namespace, name)) => [namespace, name],
        None => ["", id],
    }
}

/// `version` and `git_commit` (see [`crate::build_info`]).
fn build_info() -> IntGaugeVec {
    let build = gauge_vec(
        "ferrogate_build_info",
        "Build information (always 1)",
        &["version", "git_commit"],
    );
    let info = crate::build_info();
    build
        .with_label_values(&[info.version, info.git_commit])
        .set(1);
    build
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let m = Self {
            registry: Registry::new(),
            translations: counter("ferrogate_translations_total", "Translation runs of the whole input"),
            translation_seconds: histogram(
                "ferrogate_translation_duration_seconds",
                "Duration of a translation run (Gateway API to xDS)",
            ),
            translation_errors: counter_vec(
                "ferrogate_translation_errors_total",
                "Objects that became invalid in a translation run (a Gateway, ListenerSet, listener or route parent whose Accepted or ResolvedRefs condition turned False), by kind",
                &["kind"],
            ),
            invalid_objects: gauge_vec(
                "ferrogate_invalid_objects",
                "Objects with an Accepted or ResolvedRefs condition False after the last translation, by kind",
                &["kind"],
            ),
            resources: gauge_vec("ferrogate_resources", "Objects in the resource store, by kind", &["kind"]),
            watched_kinds: gauge_vec(
                "ferrogate_watched_kinds",
                "1 when a kind is watched, 0 when its API is not served (CRD absent)",
                &["kind"],
            ),
            gateways: gauge("ferrogate_gateways", "Gateways of our classes that are translated"),
            gateways_by_status: gauge_vec(
                "ferrogate_gateways_by_status",
                "Gateways of our classes by the status of their Accepted and Programmed conditions",
                &["accepted", "programmed"],
            ),
            snapshot_updates: counter_vec(
                "ferrogate_xds_snapshot_updates_total",
                "xDS snapshots published because a Gateway's config changed",
                &GATEWAY_LABELS,
            ),
            propagation_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "ferrogate_xds_propagation_duration_seconds",
                    "Time from a change reaching the control plane (from the file or Kubernetes provider) to its ACK by every Envoy of a Gateway it touched, by resource type",
                )
                .buckets(SLOW_BUCKETS.to_vec()),
                &["type_url"],
            )
            .expect("valid metric"),
            snapshot_build_seconds: histogram(
                "ferrogate_xds_snapshot_build_duration_seconds",
                "Time to translate one Gateway's IR into Envoy resources and publish its xDS snapshot",
            ),
            config_problems: gauge("ferrogate_config_problems", "Problems found in the last read of the configuration"),
            config_duplicates: gauge(
                "ferrogate_config_duplicate_objects",
                "Objects defined more than once in the last read of the config directory (the later file in path order wins)",
            ),
            routes_rejected_by_envoy: gauge(
                "ferrogate_routes_rejected_by_envoy",
                "Routes held out of their Gateway because Envoy rejected the configuration with them (until their content changes)",
            ),
            status_writes: counter("ferrogate_status_writes_total", "Status objects written because they changed"),
            status_write_seconds: histogram_with(
                "ferrogate_status_write_duration_seconds",
                "Time to write the changed statuses of one translation (status files or status subresources)",
                SLOW_BUCKETS,
            ),
            status_write_conflicts: counter(
                "ferrogate_status_write_conflicts_total",
                "Status writes refused with a conflict (the object changed; the write is retried)",
            ),
            infra_applies: counter_vec(
                "ferrogate_infra_applies_total",
                "Infrastructure objects applied or deleted by the infra manager, by kind",
                &["kind"],
            ),
            sink_superseded: counter_vec(
                "ferrogate_sink_superseded_total",
                "Values for a slow sink (status writes, infrastructure applies) replaced by a newer one before the sink took them",
                &["sink"],
            ),
            fleet_status_refreshes: counter(
                "ferrogate_fleet_status_refreshes_total",
                "Runs where only the provisioned Envoy fleets changed (a Deployment available, a Service address), answered by refreshing Gateway statuses without translating routes",
            ),
            sink_retries: counter_vec(
                "ferrogate_sink_retries_total",
                "Values a slow sink (status writes, infrastructure applies) tried again after its work on them failed",
                &["sink"],
            ),
            infra_apply_failures: counter_vec(
                "ferrogate_infra_apply_failures_total",
                "Infrastructure applies or deletes that failed, by kind",
                &["kind"],
            ),
            infra_apply_seconds: histogram_with(
                "ferrogate_infra_apply_duration_seconds",
                "Time to apply the infrastructure of one translation (Kubernetes objects, or local Envoy processes in standalone mode)",
                SLOW_BUCKETS,
            ),
            events: counter_vec("ferrogate_events_total", "Kubernetes Events queued for status transitions (controller mode), by reason", &["reason"]),
            events_dropped: counter("ferrogate_events_dropped_total", "Kubernetes Events left out by the rate limit"),
            events_dropped_queue: counter(
                "ferrogate_events_queue_dropped_total",
                "Kubernetes Events dropped because the publishing queue was full",
            ),
            leader: gauge("ferrogate_leader", "1 while this replica is the leader (writes statuses and infrastructure)"),
            invalid: Arc::default(),
            routes_seen: Arc::default(),
        };
        for c in m.collectors() {
            m.registry.register(c).expect("metric names are unique");
        }
        m.registry
            .register(Box::new(build_info()))
            .expect("metric names are unique");
        // process_resident_memory_bytes, process_cpu_seconds_total, open fds, ...: memory is
        // the figure Ferrogate is judged on, so it is on every scrape.
        m.registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("metric names are unique");
        m
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.translations.clone()),
            Box::new(self.translation_seconds.clone()),
            Box::new(self.translation_errors.clone()),
            Box::new(self.invalid_objects.clone()),
            Box::new(self.resources.clone()),
            Box::new(self.watched_kinds.clone()),
            Box::new(self.gateways.clone()),
            Box::new(self.gateways_by_status.clone()),
            Box::new(self.snapshot_updates.clone()),
            Box::new(self.snapshot_build_seconds.clone()),
            Box::new(self.propagation_seconds.clone()),
            Box::new(self.config_problems.clone()),
            Box::new(self.config_duplicates.clone()),
            Box::new(self.routes_rejected_by_envoy.clone()),
            Box::new(self.status_writes.clone()),
            Box::new(self.status_write_conflicts.clone()),
            Box::new(self.status_write_seconds.clone()),
            Box::new(self.infra_applies.clone()),
            Box::new(self.infra_apply_failures.clone()),
            Box::new(self.sink_superseded.clone()),
            Box::new(self.sink_retries.clone()),
            Box::new(self.fleet_status_refreshes.clone()),
            Box::new(self.infra_apply_seconds.clone()),
            Box::new(self.events.clone()),
            Box::new(self.events_dropped.clone()),
            Box::new(self.events_dropped_queue.clone()),
            Box::new(self.leader.clone()),
        ]
    }

    /// Feeds `propagation_seconds` from the xDS server's completed propagations.
    pub fn observe_propagation(&self, cache: &ferrogate_xds_server::SnapshotCache) {
        let histogram = self.propagation_seconds.clone();
        cache.on_propagated(Arc::new(
            move |_gateway: &str, type_url: &str, latency: std::time::Duration| {
                histogram
                    .with_label_values(&[type_url])
                    .observe(latency.as_secs_f64());
            },
        ));
    }

    /// Counts a published snapshot of Gateway `id` (`<namespace>/<name>`).
    pub fn snapshot_updated(&self, id: &str) {
        self.snapshot_updates
            .with_label_values(&gateway_label_values(id))
            .inc();
    }

    /// Marks `kind` (e.g. `TCPRoute`) as watched (1) or absent (0).
    pub fn set_watched(&self, kind: &str, watched: bool) {
        self.watched_kinds
            .with_label_values(&[kind])
            .set(i64::from(watched));
    }

    /// Updates the status-derived metrics from one translation's statuses:
    /// `gateways_by_status`, `invalid_objects`, and `translation_errors` for objects that
    /// were valid (or absent) before this run.
    pub fn observe_statuses(&self, statuses: &Arc<StatusSet>) {
        self.gateways_by_status.reset();
        let mut by_status: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for gw in &statuses.gateways {
            let key = (
                condition_label(&gw.conditions, "Accepted"),
                condition_label(&gw.conditions, "Programmed"),
            );
            *by_status.entry(key).or_default() += 1;
        }
        for ((accepted, programmed), n) in by_status {
            self.gateways_by_status
                .with_label_values(&[accepted, programmed])
                .set(n);
        }

        let mut invalid: BTreeSet<(String, String)> = BTreeSet::new();
        for gw in &statuses.gateways {
            let id = format!("{}/{}", gw.namespace, gw.name);
            if is_invalid(&gw.conditions) {
                invalid.insert(("Gateway".into(), id.clone()));
            }
            for l in gw.listeners.iter().filter(|l| is_invalid(&l.conditions)) {
                invalid.insert(("Listener".into(), format!("{id}/{}", l.name)));
            }
        }
        for ls in &statuses.listener_sets {
            if is_invalid(&ls.conditions) || ls.listeners.iter().any(|l| is_invalid(&l.conditions))
            {
                invalid.insert((
                    "ListenerSet".into(),
                    format!("{}/{}", ls.namespace, ls.name),
                ));
            }
        }
        let mut seen = self.routes_seen.lock().unwrap_or_else(|e| e.into_inner());
        let last: &[(usize, bool)] = seen.as_ref().map_or(&[], |(_, last)| last);
        let mut from = 0;
        let mut verdicts = Vec::with_capacity(statuses.routes.len());
        for route in &statuses.routes {
            let address = Arc::as_ptr(route) as usize;
            let has_invalid = seen_before(last, &mut from, address)
                .unwrap_or_else(|| route.parents.iter().any(|p| is_invalid(&p.conditions)));
            verdicts.push((address, has_invalid));
            if !has_invalid {
                continue;
            }
            for (i, parent) in route.parents.iter().enumerate() {
                if is_invalid(&parent.conditions) {
                    invalid.insert((
                        route.kind.clone(),
                        format!("{}/{}#{i}", route.namespace, route.name),
                    ));
                }
            }
        }
        *seen = Some((Arc::clone(statuses), verdicts));
        drop(seen);
        let mut previous = self.invalid.lock().unwrap_or_else(|e| e.into_inner());
        self.invalid_objects.reset();
        for (kind, _) in invalid.difference(&previous) {
            self.translation_errors.with_label_values(&[kind]).inc();
        }
        let mut current: BTreeMap<&str, i64> = BTreeMap::new();
        for (kind, _) in &invalid {
            *current.entry(kind).or_default() += 1;
        }
        for (kind, n) in current {
            self.invalid_objects.with_label_values(&[kind]).set(n);
        }
        *previous = invalid;
    }

    /// Text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_utf8(&self.registry.gather(), &mut out)
            .unwrap_or_default();
        out
    }
}

fn condition_label(conditions: &[Condition], type_: &str) -> &'static str {
    match conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| &c.status)
    {
        Some(ConditionStatus::True) => "true",
        Some(ConditionStatus::False) => "false",
        _ => "unknown",
    }
}

fn is_invalid(conditions: &[Condition]) -> bool {
    conditions.iter().any(|c| {
        (c.type_ == "Accepted" || c.type_ == "ResolvedRefs") && c.status == ConditionStatus::False
    })
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Every metric family Ferrogate exports (control plane and xDS), sorted by name: the source
/// of `docs/metrics.md`.
pub fn reference() -> Vec<MetricInfo> {
    let metrics = Metrics::new();
    let mut out: Vec<MetricInfo> = Vec::new();
    let mut add = |c: &dyn Collector, kind: &'static str| {
        for d in c.desc() {
            out.push(MetricInfo {
                name: d.fq_name.clone(),
                kind,
                labels: d.variable_labels.clone(),
                help: d.help.clone(),
            });
        }
    };
    for c in metrics.collectors() {
        // The type is not in a `Desc`: a collector's own collect() shows it only once it has a
        // series, so it is read from the name.
        let name = c.desc()[0].fq_name.clone();
        let kind = if name.ends_with("_seconds") {
            "histogram"
        } else if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        add(c.as_ref(), kind);
    }
    add(&build_info(), "gauge");
    for (c, kind) in crate::xds_metrics::reference_collectors() {
        add(c.as_ref(), kind);
    }
    let process = prometheus::process_collector::ProcessCollector::for_self();
    for d in process.desc() {
        let kind = if d.fq_name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        out.push(MetricInfo {
            name: d.fq_name.clone(),
            kind,
            labels: d.variable_labels.clone(),
            help: d.help.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogate_status::{ParentRef, RouteParentStatus, RouteStatus};

    fn route(name: &str, accepted: bool) -> Arc<RouteStatus> {
        let accepted = if accepted {
            Condition::ok("Accepted", "Accepted", "ok")
        } else {
            Condition::not("Accepted", "NotAllowedByListeners", "no")
        };
        Arc::new(RouteStatus {
            kind: "HTTPRoute".into(),
            namespace: "apps".into(),
            name: name.into(),
            parents: vec![RouteParentStatus {
                parent_ref: ParentRef {
                    name: "web".into(),
                    ..ParentRef::default()
                }
                .into(),
                conditions: [accepted].into(),
            }],
        })
    }

    fn invalid_routes(metrics: &Metrics) -> i64 {
        metrics
            .invalid_objects
            .with_label_values(&["HTTPRoute"])
            .get()
    }

    #[test]
    fn a_route_status_handed_back_keeps_its_count_and_a_new_one_is_read_again() {
        let metrics = Metrics::new();
        let (good, bad) = (route("a", true), route("b", false));
        let mut set = StatusSet {
            routes: [Arc::clone(&good), Arc::clone(&bad)].into_iter().collect(),
            ..StatusSet::default()
        };
        let shared = Arc::new(set.clone());
        metrics.observe_statuses(&shared);
        metrics.observe_statuses(&Arc::new(set.clone()));
        assert_eq!(invalid_routes(&metrics), 1);
        let errors = metrics.translation_errors.with_label_values(&["HTTPRoute"]);
        assert_eq!(
            errors.get(),
            1,
            "the same invalid route again is not a new error"
        );

        // `a` turns invalid in a new status; `b` is fixed; a route before them shifts both.
        set.routes = [route("0", true), route("a", false), route("b", true)]
            .into_iter()
            .collect();
        metrics.observe_statuses(&Arc::new(set.clone()));
        assert_eq!(invalid_routes(&metrics), 1);
        assert_eq!(errors.get(), 2);
        set.routes = [route("0", false), Arc::clone(&set.routes[1]), good]
            .into_iter()
            .collect();
        metrics.observe_statuses(&Arc::new(set));
        assert_eq!(
            invalid_routes(&metrics),
            2,
            "0 and a (handed back at its position)"
        );
    }

    #[test]
    fn a_route_status_shifted_by_an_edit_is_still_found() {
        let seen = [(10, false), (11, true), (12, false), (13, false)];
        let mut from = 0;
        // 99 was inserted before them: not seen, and the walk stays where it was.
        assert_eq!(seen_before(&seen, &mut from, 99), None);
        assert_eq!(from, 0);
        assert_eq!(seen_before(&seen, &mut from, 10), Some(false));
        // 11 was removed: 12 is found one place further.
        assert_eq!(seen_before(&seen, &mut from, 12), Some(false));
        assert_eq!(from, 3);
        // Nothing behind the walk is found again.
        assert_eq!(seen_before(&seen, &mut from, 11), None);
        assert_eq!(seen_before(&seen, &mut from, 13), Some(false));
        assert_eq!(seen_before(&seen, &mut from, 13), None, "past the end");
        let far: Vec<(usize, bool)> = (0..SEEN_WINDOW + 1).map(|a| (a, true)).collect();
        assert_eq!(
            seen_before(&far, &mut 0, SEEN_WINDOW),
            None,
            "beyond the window it is read again"
        );
    }
}
