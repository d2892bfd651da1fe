//! The statuses the cluster holds, as the watchers last saw them.
//!
//! The store drops every object's status (the translator never reads one), but the status
//! writer needs the cluster's status to know whether a write is needed at all. The watchers
//! already receive it with each object, so [`LiveStatuses`] keeps it, for the kinds whose
//! status we write, beside the object's uid and resourceVersion. After a leadership change
//! the writer compares against this instead of reading every object again (one API round
//! trip per object, most of them for nothing).
//!
//! Written by the reflectors only (a relist replaces a kind's entries at `InitDone`); read by
//! the status writer. The lock is never held across an await. Statuses are kept as compact
//! JSON text, parsed only when the writer compares one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use ferrogate_store::Kind;
use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde_json::Value;

use crate::status_patch::Target;

/// What the watchers last saw of one object.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Live {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// The status as compact JSON; `None` when the object has none.
    status: Option<Box<str>>,
}

impl Live {
    /// The status, parsed.
    pub fn status(&self) -> Option<Value> {
        self.status
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
    }
}

/// The statuses the watchers last saw, shared by the reflectors (writing) and the status
/// writer (reading). Cloning shares the same map.
#[derive(Clone, Debug, Default)]
pub struct LiveStatuses {
    map: Arc<RwLock<HashMap<Target, Live>>>,
}

impl LiveStatuses {
    /// Number of objects held.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub(crate) fn get(&self, target: &Target) -> Option<Live> {
        self.read().get(target).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Target, Live>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Target, Live>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether we write the status of objects of `kind` (see [`crate::status_patch::desired`]).
pub(crate) fn status_written(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::GatewayClass
            | Kind::Gateway
            | Kind::ListenerSet
            | Kind::HttpRoute
            | Kind::GrpcRoute
            | Kind::TlsRoute
            | Kind::TcpRoute
            | Kind::UdpRoute
            | Kind::BackendTlsPolicy
    )
}

/// Feeds [`LiveStatuses`] from watcher events; one per [`crate::run_reflectors`].
pub(crate) struct LiveReflector {
    live: LiveStatuses,
    /// The objects seen by each relist in progress.
    relisting: HashMap<Kind, HashSet<Target>>,
}

impl LiveReflector {
    pub fn new(live: LiveStatuses) -> Self {
        Self {
            live,
            relisting: HashMap::new(),
        }
    }

    /// Records one watcher event of `kind`. Objects of a relist replace what was held as they
    /// arrive (they are newer); at `InitDone` the objects the relist did not see are dropped.
    pub fn handle(&mut self, kind: Kind, event: &Event<DynamicObject>) {
        if !status_written(kind) {
            return;
        }
        match event {
            Event::Init => {
                self.relisting.insert(kind, HashSet::new());
            }
            Event::InitApply(object) => {
                let target = target(kind, object);
                self.live.write().insert(target.clone(), live(object));
                self.relisting.entry(kind).or_default().insert(target);
            }
            Event::InitDone => {
                let seen = self.relisting.remove(&kind).unwrap_or_default();
                self.live
                    .write()
                    .retain(|t, _| t.kind != kind || seen.contains(t));
            }
            Event::Apply(object) => {
                self.live.write().insert(target(kind, object), live(object));
            }
            Event::Delete(object) => {
                self.live.write().remove(&target(kind, object));
            }
        }
    }
}

fn target(kind: Kind, object: &DynamicObject) -> Target {
    Target {
        kind,
        namespace: object.metadata.namespace.clone().unwrap_or_default(),
        name: object.metadata.name.clone().unwrap_or_default(),
    }
}

fn live(object: &DynamicObject) -> Live {
    Live {
        uid: object.metadata.uid.clone(),
        resource_version: object.metadata.resource_version.clone(),
        status: object
            .data
            .get("status")
            .filter(|s| !s.is_null())
            .map(|s| s.to_string().into_boxed_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(name: &str, rv: &str, status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "apps", "uid": format!("uid-{name}"), "resourceVersion": rv},
            "spec": {}, "status": status,
        }))
        .unwrap()
    }

    fn key(name: &str) -> Target {
        Target {
            kind: Kind::HttpRoute,
            namespace: "apps".into(),
            name: name.into(),
        }
    }

    #[test]
    fn watch_events_keep_each_objects_latest_status_and_a_relist_drops_the_unseen() {
        let live = LiveStatuses::default();
        let mut reflector = LiveReflector::new(live.clone());
        let kind = Kind::HttpRoute;
        reflector.handle(kind, &Event::Init);
        reflector.handle(
            kind,
            &Event::InitApply(route("a", "1", json!({"parents": []}))),
        );
        reflector.handle(kind, &Event::InitApply(route("b", "2", Value::Null)));
        reflector.handle(kind, &Event::InitDone);
        assert_eq!(live.len(), 2);
        assert_eq!(
            live.get(&key("a")).unwrap().status(),
            Some(json!({"parents": []}))
        );
        assert_eq!(live.get(&key("b")).unwrap().status(), None, "no status");

        let parents = json!({"parents": [{"controllerName": "x"}]});
        reflector.handle(kind, &Event::Apply(route("a", "3", parents.clone())));
        let a = live.get(&key("a")).unwrap();
        assert_eq!(a.status(), Some(parents));
        assert_eq!(a.resource_version.as_deref(), Some("3"));
        assert_eq!(a.uid.as_deref(), Some("uid-a"));

        reflector.handle(kind, &Event::Delete(route("b", "4", Value::Null)));
        assert!(live.get(&key("b")).is_none());

        // A relist that no longer sees `a`: it goes at InitDone, not before.
        reflector.handle(kind, &Event::Init);
        reflector.handle(kind, &Event::InitApply(route("c", "5", Value::Null)));
        assert!(
            live.get(&key("a")).is_some(),
            "kept until the relist is done"
        );
        reflector.handle(kind, &Event::InitDone);
        assert!(live.get(&key("a")).is_none());
        assert!(live.get(&key("c")).is_some());
    }

    #[test]
    fn kinds_whose_status_we_never_write_are_not_kept() {
        let live = LiveStatuses::default();
        let mut reflector = LiveReflector::new(live.clone());
        reflector.handle(
            Kind::Service,
            &Event::Apply(route("svc", "1", json!({"loadBalancer": {}}))),
        );
        assert!(live.is_empty());
    }
}
