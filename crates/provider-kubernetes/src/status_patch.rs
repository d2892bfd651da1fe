//! Pure helpers of the status writer: the translator's [`StatusSet`] as Kubernetes status
//! values, merged with what the cluster holds.
//!
//! Ownership: a GatewayClass's, Gateway's and ListenerSet's whole status is ours. A route's
//! `status.parents` and a policy's `status.ancestors` are shared with other controllers:
//! only entries whose `controllerName` is ours are replaced; every other entry is kept as
//! the cluster has it. `lastTransitionTime` is carried over from the cluster while a
//! condition keeps its status, and set to now when it flips or appears.

use std::collections::BTreeMap;

use std::sync::Arc;

use ferrogate_status::{RouteStatus, StatusSet};
use ferrogate_store::Kind;
use serde_json::{Map, Value, json};

/// An object whose status we write.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Target {
    pub kind: Kind,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
}

/// What of a status is ours.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ours {
    /// The whole status (GatewayClass, Gateway, ListenerSet).
    Whole(Map<String, Value>),
    /// Our entries of a shared list (`parents` of routes, `ancestors` of policies).
    Shared {
        field: &'static str,
        entries: Vec<Value>,
    },
}

/// The object a route status is for (`None` for a kind that is not a Gateway API route).
pub(crate) fn route_target(status: &RouteStatus) -> Option<Target> {
    let kind = Kind::from_group_kind("gateway.networking.k8s.io", &status.kind)?;
    Some(Target {
        kind,
        namespace: status.namespace.clone(),
        name: status.name.clone(),
    })
}

/// Every status of `set`, keyed by object, but for the routes `skip` says are written
/// already. Entries carry no timestamps yet.
pub(crate) fn desired(
    set: &StatusSet,
    controller_name: &str,
    skip: &dyn Fn(&Arc<RouteStatus>) -> bool,
) -> BTreeMap<Target, Ours> {
    let mut out = BTreeMap::new();
    for s in &set.gateway_classes {
        let mut status = json!({ "conditions": s.conditions });
        // Only accepted classes list features; no empty list, so a class without them
        // compares equal to what the cluster holds.
        if !s.supported_features.is_empty() {
            status["supportedFeatures"] = json!(s.supported_features);
        }
        out.insert(
            Target {
                kind: Kind::GatewayClass,
                namespace: String::new(),
                name: s.name.clone(),
            },
            whole(status),
        );
    }
    for s in &set.gateways {
        out.insert(
            Target {
                kind: Kind::Gateway,
                namespace: s.namespace.clone(),
                name: s.name.clone(),
            },
            whole(without_key(s)),
        );
    }
    for s in &set.listener_sets {
        out.insert(
            Target {
                kind: Kind::ListenerSet,
                namespace: s.namespace.clone(),
                name: s.name.clone(),
            },
            whole(without_key(s)),
        );
    }
    for s in set.routes.iter().filter(|s| !skip(s)) {
        let Some(target) = route_target(s) else {
            continue;
        };
        let entries = s
            .parents
            .iter()
            .map(|p| json!({ "parentRef": p.parent_ref, "controllerName": controller_name, "conditions": p.conditions }))
            .collect();
        out.insert(
            target,
            Ours::Shared {
                field: "parents",
                entries,
            },
        );
    }
    for s in &set.backend_tls_policies {
        let entries = s
            .ancestors
            .iter()
            .map(|a| json!({ "ancestorRef": a.ancestor_ref, "controllerName": controller_name, "conditions": a.conditions }))
            .collect();
        out.insert(
            Target {
                kind: Kind::BackendTlsPolicy,
                namespace: s.namespace.clone(),
                name: s.name.clone(),
            },
            Ours::Shared {
                field: "ancestors",
                entries,
            },
        );
    }
    out
}

/// The status to write, given the cluster's current one: ours merged in, timestamps
/// carried over or set to `now`. For [`Ours::Whole`], keys the cluster has and we do not are
/// set to `null` so a merge patch removes them.
pub(crate) fn merged(live: Option<&Value>, ours: &Ours, controller_name: &str, now: &str) -> Value {
    let empty = Value::Object(Map::new());
    let live = live.filter(|v| v.is_object()).unwrap_or(&empty);
    let mut next = match ours {
        Ours::Whole(map) => Value::Object(map.clone()),
        Ours::Shared { field, entries } => {
            let theirs = live
                .get(*field)
                .and_then(|v| v.as_array())
                .map(|list| {
                    list.iter()
                        .filter(|e| {
                            e.get("controllerName").and_then(|c| c.as_str())
                                != Some(controller_name)
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let mut all: Vec<Value> = theirs;
            all.extend(entries.iter().cloned());
            json!({ *field: all })
        }
    };
    carry_times(&mut next, Some(live), now);
    next
}

/// The merge patch body for `next` over `live`.
pub(crate) fn patch_body(
    live: Option<&Value>,
    next: &Value,
    ours: &Ours,
    resource_version: Option<&str>,
) -> Value {
    let mut status = next.clone();
    if let (Ours::Whole(_), Some(Value::Object(live)), Value::Object(map)) =
        (ours, live, &mut status)
    {
        for key in live.keys() {
            map.entry(key.clone()).or_insert(Value::Null);
        }
    }
    match resource_version {
        Some(rv) => json!({ "metadata": { "resourceVersion": rv }, "status": status }),
        None => json!({ "status": status }),
    }
}

/// Whether the cluster's status `live` already holds `ours` (times aside): writing would
/// change nothing. Other controllers' entries of a shared list are part of `live` and stay
/// as they are, so only our entries (and, for a whole status, every key) are compared.
pub(crate) fn in_sync(live: Option<&Value>, ours: &Ours, controller_name: &str) -> bool {
    same_ignoring_times(live, &merged(live, ours, controller_name, ""))
}

/// Whether two statuses differ only in `lastTransitionTime`s.
pub(crate) fn same_ignoring_times(a: Option<&Value>, b: &Value) -> bool {
    let empty = Value::Object(Map::new());
    strip_times(a.unwrap_or(&empty)) == strip_times(b)
}

fn whole(value: Value) -> Ours {
    match value {
        Value::Object(map) => Ours::Whole(map),
        _ => Ours::Whole(Map::new()),
    }
}

fn without_key(status: &impl serde::Serialize) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("namespace");
        map.remove("name");
    }
    value
}

fn strip_times(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| *k != "lastTransitionTime" && !v.is_null())
                .map(|(k, v)| (k.clone(), strip_times(v)))
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.iter().map(strip_times).collect()),
        other => other.clone(),
    }
}

/// Identity of a list entry, to find "the same" entry in the cluster's status.
fn identity(v: &Value) -> Option<Value> {
    let controller = v.get("controllerName").cloned().unwrap_or(Value::Null);
    for key in ["parentRef", "ancestorRef"] {
        if let Some(r) = v.get(key) {
            return Some(json!([r, controller]));
        }
    }
    v.get("name").cloned()
}

fn carry_times(next: &mut Value, live: Option<&Value>, now: &str) {
    match next {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let old = live.and_then(|l| l.get(key));
                if key == "conditions" {
                    stamp(value, old, now);
                } else {
                    carry_times(value, old, now);
                }
            }
        }
        Value::Array(list) => {
            let old: &[Value] = live
                .and_then(|l| l.as_array())
                .map(|a| a.as_slice())
                .unwrap_or(&[]);
            for item in list {
                let id = identity(item);
                let matching = id
                    .as_ref()
                    .and_then(|id| old.iter().find(|o| identity(o).as_ref() == Some(id)));
                carry_times(item, matching, now);
            }
        }
        _ => {}
    }
}

fn stamp(conditions: &mut Value, old: Option<&Value>, now: &str) {
    let old: &[Value] = old
        .and_then(|o| o.as_array())
        .map(|a| a.as_slice())
        .unwrap_or(&[]);
    for c in conditions.as_array_mut().into_iter().flatten() {
        let previous = old
            .iter()
            .find(|o| o.get("type") == c.get("type") && o.get("status") == c.get("status"));
        let time = previous
            .and_then(|p| p.get("lastTransitionTime"))
            .cloned()
            .unwrap_or_else(|| now.into());
        c["lastTransitionTime"] = time;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "gateway.ferrogate.dev/gatewayclass-controller";

    #[test]
    fn shared_parents_keep_other_controllers_entries_and_times() {
        let live = json!({ "parents": [
            { "parentRef": {"name": "other"}, "controllerName": "example.com/other", "conditions": [{"type": "Accepted", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}] },
            { "parentRef": {"name": "ours"}, "controllerName": ME, "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "lastTransitionTime": "2021-01-01T00:00:00Z"}] },
        ]});
        let ours = Ours::Shared {
            field: "parents",
            entries: vec![
                json!({ "parentRef": {"name": "ours"}, "controllerName": ME, "conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted"},
                    {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound"},
                ]}),
            ],
        };
        let next = merged(Some(&live), &ours, ME, "2026-11-23T00:00:00Z");
        let parents = next["parents"].as_array().unwrap();
        assert_eq!(parents.len(), 2);
        assert_eq!(
            parents[0]["controllerName"], "example.com/other",
            "another controller's entry is kept first, untouched"
        );
        assert_eq!(
            parents[1]["conditions"][0]["lastTransitionTime"], "2021-01-01T00:00:00Z",
            "unchanged condition keeps its time"
        );
        assert_eq!(
            parents[1]["conditions"][1]["lastTransitionTime"], "2026-11-23T00:00:00Z",
            "new condition gets now"
        );
        assert!(!same_ignoring_times(Some(&live), &next));
        let again = merged(Some(&next), &ours, ME, "2030-01-01T00:00:00Z");
        assert!(same_ignoring_times(Some(&next), &again));
        assert_eq!(
            again, next,
            "a second write changes nothing, not even times"
        );
    }

    #[test]
    fn accepted_gateway_classes_carry_supported_features_and_others_none() {
        use ferrogate_status::{Condition, GatewayClassStatus, SupportedFeature};
        let class = |name: &str, features: &[&str]| GatewayClassStatus {
            name: name.into(),
            conditions: vec![Condition::ok("Accepted", "Accepted", "m")],
            supported_features: features
                .iter()
                .map(|f| SupportedFeature { name: (*f).into() })
                .collect(),
        };
        let set = StatusSet {
            gateway_classes: vec![
                class("ours", &["Gateway", "HTTPRoute"]),
                class("rejected", &[]),
            ],
            ..Default::default()
        };
        let desired = desired(&set, ME, &|_| false);
        let status = |name: &str| match &desired[&Target {
            kind: Kind::GatewayClass,
            namespace: String::new(),
            name: name.into(),
        }] {
            Ours::Whole(map) => Value::Object(map.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            status("ours")["supportedFeatures"],
            json!([{"name": "Gateway"}, {"name": "HTTPRoute"}])
        );
        // No empty list: a class without features compares equal to what the cluster holds.
        assert!(status("rejected").get("supportedFeatures").is_none());
    }

    #[test]
    fn a_status_is_in_sync_when_only_times_or_other_controllers_entries_differ() {
        let ours_entry = |reason: &str| {
            json!({ "parentRef": {"name": "gw"}, "controllerName": ME, "conditions": [
                {"type": "Accepted", "status": "True", "reason": reason},
            ]})
        };
        let other = json!({ "parentRef": {"name": "theirs"}, "controllerName": "example.com/other", "conditions": [] });
        let with_time = |mut entry: Value| {
            entry["conditions"][0]["lastTransitionTime"] = json!("2021-01-01T00:00:00Z");
            entry
        };
        let ours = Ours::Shared {
            field: "parents",
            entries: vec![ours_entry("Accepted")],
        };
        let live = json!({ "parents": [other.clone(), with_time(ours_entry("Accepted"))] });
        assert!(in_sync(Some(&live), &ours, ME), "only times differ");

        let live = json!({ "parents": [other.clone(), with_time(ours_entry("Pending"))] });
        assert!(!in_sync(Some(&live), &ours, ME), "our condition changed");
        let live = json!({ "parents": [other.clone()] });
        assert!(!in_sync(Some(&live), &ours, ME), "our entry is missing");
        assert!(!in_sync(None, &ours, ME), "no status at all");

        // Our entries cleared (a detached route): in sync once none of ours is left.
        let cleared = Ours::Shared {
            field: "parents",
            entries: Vec::new(),
        };
        assert!(in_sync(
            Some(&json!({ "parents": [other.clone()] })),
            &cleared,
            ME
        ));
        let live = json!({ "parents": [other, with_time(ours_entry("Accepted"))] });
        assert!(!in_sync(Some(&live), &cleared, ME));

        // A whole status: a key we no longer set is a difference.
        let ours = whole(json!({ "conditions": [{"type": "Programmed", "status": "True"}] }));
        let live = json!({ "conditions": [{"type": "Programmed", "status": "True", "lastTransitionTime": "t"}] });
        assert!(in_sync(Some(&live), &ours, ME));
        let mut extra = live.clone();
        extra["addresses"] = json!([{"value": "10.0.0.1"}]);
        assert!(!in_sync(Some(&extra), &ours, ME));
    }

    #[test]
    fn whole_status_removes_keys_we_no_longer_set() {
        let live =
            json!({ "addresses": [{"type": "IPAddress", "value": "10.0.0.1"}], "conditions": [] });
        let ours = whole(json!({ "conditions": [{"type": "Programmed", "status": "False"}] }));
        let next = merged(Some(&live), &ours, ME, "now");
        let body = patch_body(Some(&live), &next, &ours, Some("42"));
        assert_eq!(body["status"]["addresses"], Value::Null);
        assert_eq!(body["metadata"]["resourceVersion"], "42");
        assert_eq!(body["status"]["conditions"][0]["lastTransitionTime"], "now");
    }
}
