//! Kubernetes Events (`events.k8s.io/v1`) for the status transitions an operator must see in
//! `kubectl describe` and `kubectl get events`: a Gateway or route accepted or rejected, a
//! Gateway programmed or not, its address assigned or lost, Envoy rejecting its config (NACK)
//! and recovering.
//!
//! [`transitions`] is a pure comparison of two status sets; [`EventLimiter`] keeps a storm of
//! them (a bad edit touching thousands of routes) from flooding the API server; [`EventSink`]
//! publishes off the control loop through a bounded queue, counting what it drops. The first
//! status set after a start gives no events: it says what is, not what changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrogate_status::{Condition, ConditionStatus, GatewayStatus, StatusSet};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;

/// The NACK condition the runtime adds to a Gateway's status (see its `nack_status`).
const CONFIG_ACCEPTED: &str = "gateway.ferrogate.dev/ConfigAccepted";
/// Events queued for publishing before new ones are dropped.
const QUEUE: usize = 256;

/// One transition worth an Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// `Gateway`, `HTTPRoute`, ...
    pub kind: String,
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// A Warning (something is wrong) rather than a Normal event.
    pub warning: bool,
    /// PascalCase reason (`Accepted`, `NotProgrammed`, `AddressAssigned`, `ConfigRejected`, ...).
    pub reason: String,
    /// Human-readable detail.
    pub note: String,
}

/// The transitions from `before` to `after`. `None` before (the first set after a start)
/// gives none.
pub fn transitions(before: Option<&StatusSet>, after: &StatusSet) -> Vec<Transition> {
    let Some(before) = before else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let old_gateways: BTreeMap<(&str, &str), &GatewayStatus> = before
        .gateways
        .iter()
        .map(|g| ((g.namespace.as_str(), g.name.as_str()), g))
        .collect();
    for g in &after.gateways {
        let old = old_gateways.get(&(g.namespace.as_str(), g.name.as_str()));
        let at = |warning: bool, reason: &str, note: String| Transition {
            kind: "Gateway".into(),
            namespace: g.namespace.clone(),
            name: g.name.clone(),
            warning,
            reason: reason.into(),
            note,
        };
        let old_conditions = old.map(|o| o.conditions.as_slice()).unwrap_or_default();
        for (type_, ok, not_ok) in [
            ("Accepted", "Accepted", "NotAccepted"),
            ("Programmed", "Programmed", "NotProgrammed"),
        ] {
            if let Some((ok_now, c)) = flipped(old_conditions, &g.conditions, type_) {
                out.push(if ok_now {
                    at(false, ok, c.message.to_string())
                } else {
                    at(true, not_ok, format!("{}: {}", c.reason, c.message))
                });
            }
        }
        let old_addresses: Vec<&str> = old
            .map(|o| o.addresses.iter().map(|a| a.value.as_str()).collect())
            .unwrap_or_default();
        let addresses: Vec<&str> = g.addresses.iter().map(|a| a.value.as_str()).collect();
        if addresses != old_addresses {
            if addresses.is_empty() {
                out.push(at(
                    true,
                    "AddressLost",
                    format!("no address any more (had {})", old_addresses.join(", ")),
                ));
            } else {
                out.push(at(false, "AddressAssigned", addresses.join(", ")));
            }
        }
        let rejected = |cs: &[Condition]| {
            cs.iter()
                .find(|c| c.type_ == CONFIG_ACCEPTED && c.status == ConditionStatus::False)
                .cloned()
        };
        match (rejected(old_conditions), rejected(&g.conditions)) {
            (None, Some(c)) => out.push(at(true, "ConfigRejected", c.message.into_owned())),
            (Some(_), None) => out.push(at(
                false,
                "ConfigRecovered",
                "Envoy accepted the newest configuration".into(),
            )),
            _ => {}
        }
    }
    let old_routes: BTreeMap<(&str, &str, &str), &ferrogate_status::RouteStatus> = before
        .routes
        .iter()
        .map(|r| {
            (
                (r.kind.as_str(), r.namespace.as_str(), r.name.as_str()),
                &**r,
            )
        })
        .collect();
    for r in &after.routes {
        let old = old_routes.get(&(r.kind.as_str(), r.namespace.as_str(), r.name.as_str()));
        if old.is_some_and(|o| std::ptr::eq(*o, &**r)) {
            continue; // the translation handed the route its last status back
        }
        for p in &r.parents {
            let old_conditions = old
                .and_then(|o| o.parents.iter().find(|op| op.parent_ref == p.parent_ref))
                .map(|op| &op.conditions[..])
                .unwrap_or_default();
            let parent = format!(
                "{}/{}",
                p.parent_ref.namespace.as_deref().unwrap_or(&r.namespace),
                p.parent_ref.name
            );
            for (type_, ok, not_ok) in [
                ("Accepted", "Accepted", "NotAccepted"),
                ("ResolvedRefs", "ResolvedRefs", "UnresolvedRefs"),
            ] {
                let Some((ok_now, c)) = flipped(old_conditions, &p.conditions, type_) else {
                    continue;
                };
                // A route that just appeared and resolves fine is not news; a fix is.
                if ok_now && type_ == "ResolvedRefs" && old_conditions.is_empty() {
                    continue;
                }
                out.push(Transition {
                    kind: r.kind.clone(),
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    warning: !ok_now,
                    reason: (if ok_now { ok } else { not_ok }).into(),
                    note: if ok_now {
                        format!("parent {parent}: {}", c.message)
                    } else {
                        format!("parent {parent}: {}: {}", c.reason, c.message)
                    },
                });
            }
        }
    }
    out
}

/// `Some((now True, condition))` when condition `type_` is in `now` and its status differs
/// from `before` (absent before counts as a change).
fn flipped<'a>(
    before: &[Condition],
    now: &'a [Condition],
    type_: &str,
) -> Option<(bool, &'a Condition)> {
    let c = now.iter().find(|c| c.type_ == type_)?;
    let old = before.iter().find(|c| c.type_ == type_).map(|c| &c.status);
    (old != Some(&c.status)).then_some((c.status == ConditionStatus::True, c))
}

/// Rate limit: the same (object, reason) at most once per `per_key`, and at most `burst`
/// events at once refilled at `per_second` overall.
#[derive(Debug)]
pub struct EventLimiter {
    per_key: Duration,
    last: HashMap<(String, String, String, String), Instant>,
    burst: f64,
    per_second: f64,
    tokens: f64,
    refilled: Instant,
}

impl EventLimiter {
    /// A limiter; `now` starts the token bucket full.
    pub fn new(per_key: Duration, burst: u32, per_second: f64, now: Instant) -> Self {
        Self {
            per_key,
            last: HashMap::new(),
            burst: f64::from(burst),
            per_second,
            tokens: f64::from(burst),
            refilled: now,
        }
    }

    /// Whether `t` may be published at `now` (and counts it if so).
    pub fn admit(&mut self, t: &Transition, now: Instant) -> bool {
        self.tokens = (self.tokens
            + now.saturating_duration_since(self.refilled).as_secs_f64() * self.per_second)
            .min(self.burst);
        self.refilled = now;
        let key = (
            t.kind.clone(),
            t.namespace.clone(),
            t.name.clone(),
            t.reason.clone(),
        );
        if self
            .last
            .get(&key)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.per_key)
            || self.tokens < 1.0
        {
            return false;
        }
        self.tokens -= 1.0;
        self.last.insert(key, now);
        // Forget keys older than the window so the map does not grow with every object ever seen.
        if self.last.len() > 4096 {
            let window = self.per_key;
            self.last
                .retain(|_, at| now.saturating_duration_since(*at) < window);
        }
        true
    }
}

/// Publishes Events in a task of its own; the control loop only queues them.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: mpsc::Sender<(Transition, ObjectReference)>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// Starts the publishing task (it ends when every sink is dropped). `instance` names this
    /// replica in the Events' `reportingInstance`.
    pub fn start(client: kube::Client, instance: &str) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Transition, ObjectReference)>(QUEUE);
        let recorder = Recorder::new(
            client,
            Reporter {
                controller: "ferrogate".into(),
                instance: Some(instance.to_string()),
            },
        );
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(async move {
            while let Some((t, reference)) = rx.recv().await {
                let event = Event {
                    type_: if t.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: t.reason.clone(),
                    note: Some(t.note.chars().take(1000).collect()),
                    action: "Reconcile".into(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&event, &reference).await {
                    tracing::warn!(error = %e, kind = %t.kind, namespace = %t.namespace, name = %t.name, reason = %t.reason, "cannot publish Event");
                }
            }
        });
        Self { tx, dropped }
    }

    /// Queues an Event about the object `reference` (which should carry its uid, so
    /// `kubectl describe` finds it); a full queue drops it and counts it.
    pub fn send(&self, t: Transition, reference: ObjectReference) {
        if self.tx.try_send((t, reference)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The reference of a Gateway API object for an Event. `api_version` is the one the cluster
/// serves for the kind (TCPRoute is `v1` from Gateway API v1.6, `v1alpha2` before).
pub fn reference(
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    uid: Option<String>,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        uid,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use ferrogate_status::{GatewayAddress, ParentRef, RouteParentStatus, RouteStatus};

    use super::*;

    fn gateway(
        accepted: bool,
        programmed: bool,
        address: Option<&str>,
        nack: bool,
    ) -> GatewayStatus {
        let c = |t: &'static str, ok: bool, reason: &'static str| {
            if ok {
                Condition::ok(t, t, "fine")
            } else {
                Condition::not(t, reason, "broken")
            }
        };
        let mut conditions = vec![
            c("Accepted", accepted, "InvalidParameters"),
            c("Programmed", programmed, "AddressNotAssigned"),
        ];
        if nack {
            conditions.push(Condition::not(CONFIG_ACCEPTED, "Rejected", "Envoy said no"));
        }
        GatewayStatus {
            namespace: "apps".into(),
            name: "web".into(),
            conditions,
            addresses: address
                .map(|a| GatewayAddress {
                    type_: "IPAddress".into(),
                    value: a.into(),
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    fn set(g: GatewayStatus, route_ok: bool) -> StatusSet {
        let route = RouteStatus {
            kind: "HTTPRoute".into(),
            namespace: "apps".into(),
            name: "echo".into(),
            parents: vec![RouteParentStatus {
                parent_ref: ParentRef {
                    name: "web".into(),
                    ..Default::default()
                }
                .into(),
                conditions: [if route_ok {
                    Condition::ok("Accepted", "Accepted", "ok")
                } else {
                    Condition::not("Accepted", "NotAllowedByListeners", "no")
                }]
                .into(),
            }],
        };
        StatusSet {
            gateways: vec![g],
            routes: vec![route.into()].into(),
            ..Default::default()
        }
    }

    fn reasons(ts: &[Transition]) -> Vec<(&str, &str, bool)> {
        ts.iter()
            .map(|t| (t.kind.as_str(), t.reason.as_str(), t.warning))
            .collect()
    }

    #[test]
    fn the_first_status_set_and_an_unchanged_one_give_no_events() {
        let s = set(gateway(true, true, Some("192.0.2.1"), false), true);
        assert!(transitions(None, &s).is_empty());
        assert!(transitions(Some(&s), &s).is_empty());
    }

    #[test]
    fn flips_addresses_and_nacks_become_events() {
        let healthy = set(gateway(true, true, Some("192.0.2.1"), false), true);
        let broken = set(gateway(true, false, None, true), false);
        assert_eq!(
            reasons(&transitions(Some(&healthy), &broken)),
            [
                ("Gateway", "NotProgrammed", true),
                ("Gateway", "AddressLost", true),
                ("Gateway", "ConfigRejected", true),
                ("HTTPRoute", "NotAccepted", true)
            ]
        );
        assert_eq!(
            reasons(&transitions(Some(&broken), &healthy)),
            [
                ("Gateway", "Programmed", false),
                ("Gateway", "AddressAssigned", false),
                ("Gateway", "ConfigRecovered", false),
                ("HTTPRoute", "Accepted", false)
            ]
        );
        let rejected = set(gateway(false, false, None, false), true);
        let t = transitions(Some(&broken), &rejected);
        assert!(
            t.iter()
                .any(|t| t.reason == "NotAccepted" && t.note.starts_with("InvalidParameters")),
            "{t:?}"
        );
    }

    #[test]
    fn the_limiter_allows_a_burst_then_one_per_key_and_window() {
        let start = Instant::now();
        let mut l = EventLimiter::new(Duration::from_secs(30), 2, 1.0, start);
        let t = |name: &str| Transition {
            kind: "Gateway".into(),
            namespace: "a".into(),
            name: name.into(),
            warning: false,
            reason: "R".into(),
            note: String::new(),
        };
        assert!(l.admit(&t("x"), start));
        assert!(!l.admit(&t("x"), start), "same key within the window");
        assert!(l.admit(&t("y"), start));
        assert!(!l.admit(&t("z"), start), "burst used up");
        assert!(l.admit(&t("z"), start + Duration::from_secs(1)), "refilled");
        assert!(
            l.admit(&t("x"), start + Duration::from_secs(31)),
            "window passed"
        );
    }

    #[tokio::test]
    async fn an_event_reaches_the_api_server_about_its_object() {
        let server = ferrogate_testkit::fake_apiserver::FakeApiServer::start().await;
        let sink = EventSink::start(server.client(), "ferrogate-0");
        let t = Transition {
            kind: "Gateway".into(),
            namespace: "apps".into(),
            name: "web".into(),
            warning: true,
            reason: "AddressLost".into(),
            note: "gone".into(),
        };
        sink.send(
            t,
            reference(
                "gateway.networking.k8s.io/v1",
                "Gateway",
                "apps",
                "web",
                Some("uid-1".into()),
            ),
        );
        server
            .wait_for("the Event", Duration::from_secs(10), |s| {
                !s.list("events.k8s.io/v1", "Event", Some("apps")).is_empty()
            })
            .await;
        let event = &server.list("events.k8s.io/v1", "Event", Some("apps"))[0];
        assert_eq!(event["reason"], "AddressLost");
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["regarding"]["uid"], "uid-1");
        assert_eq!(event["regarding"]["kind"], "Gateway");
        assert_eq!(sink.dropped(), 0);
    }
}
