//! Object storage: objects by (group, plural, namespace, name), the global resourceVersion
//! counter, uids, the per-manager last-applied configurations used by server-side apply, and
//! the bounded event log watches replay from.

use super::registry::{Registry, ResourceDef};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// (group, plural, namespace or "", name)
pub(crate) type ObjKey = (String, String, String, String);

pub(crate) fn obj_key(def: &ResourceDef, ns: &str, name: &str) -> ObjKey {
    (
        def.group.to_string(),
        def.plural.to_string(),
        ns.to_string(),
        name.to_string(),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub kind: EventType,
    pub object: Value,
    /// The object before a MODIFIED (lets selector-filtered watches turn it into ADDED/DELETED).
    pub prev: Option<Value>,
}

pub(crate) struct Store {
    pub registry: Registry,
    rv: u64,
    uid: u64,
    objects: BTreeMap<ObjKey, Value>,
    /// (object, field manager, status subresource) -> last applied configuration.
    applied: HashMap<(ObjKey, String, bool), Value>,
    log: VecDeque<Event>,
    log_capacity: usize,
    /// Every event with rv > log_floor is still in the log.
    log_floor: u64,
    notify: tokio::sync::watch::Sender<u64>,
}

impl Store {
    pub fn new(registry: Registry, log_capacity: usize) -> Self {
        let (notify, _) = tokio::sync::watch::channel(0);
        Store {
            registry,
            // Never "0": that resourceVersion means "any" to watches and lists.
            rv: 100,
            uid: 0,
            objects: BTreeMap::new(),
            applied: HashMap::new(),
            log: VecDeque::new(),
            log_capacity: log_capacity.max(1),
            log_floor: 100,
            notify,
        }
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub fn next_uid(&mut self) -> String {
        self.uid += 1;
        format!("{:08x}-fa4e-4000-8000-{:012x}", self.uid, self.uid)
    }

    pub fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource (all namespaces when `ns` is None), ordered by namespace/name.
    pub fn list(&self, def: &ResourceDef, ns: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((g, p, n, _), _)| {
                g == def.group && p == def.plural && ns.is_none_or(|ns| ns == n)
            })
            .map(|(_, v)| v)
            .collect()
    }

    /// Keys of every object whose ownerReferences name `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<ObjKey> {
        self.objects
            .iter()
            .filter(|(_, v)| {
                v.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                    })
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Keys of every object in namespace `ns`.
    pub fn in_namespace(&self, ns: &str) -> Vec<ObjKey> {
        self.objects.keys().filter(|k| k.2 == ns).cloned().collect()
    }

    /// Stores `obj` (whose resourceVersion the caller already set to `rv`) and logs the event.
    pub fn put(&mut self, key: ObjKey, obj: Value, rv: u64) {
        let prev = self.objects.insert(key.clone(), obj.clone());
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.log_event(key, kind, obj, prev, rv);
    }

    /// Removes the object and logs DELETED with `final_obj` (carrying the deletion's rv).
    pub fn remove(&mut self, key: &ObjKey, final_obj: Value, rv: u64) {
        self.objects.remove(key);
        self.applied.retain(|(k, _, _), _| k != key);
        self.log_event(key.clone(), EventType::Deleted, final_obj, None, rv);
    }

    fn log_event(
        &mut self,
        key: ObjKey,
        kind: EventType,
        object: Value,
        prev: Option<Value>,
        rv: u64,
    ) {
        let (group, plural, namespace, _) = key;
        self.log.push_back(Event {
            rv,
            group,
            plural,
            namespace,
            kind,
            object,
            prev,
        });
        while self.log.len() > self.log_capacity {
            if let Some(e) = self.log.pop_front() {
                self.log_floor = e.rv;
            }
        }
        self.notify.send_replace(rv);
    }

    /// Events with rv > `since` for one resource, or None when the log no longer reaches back
    /// to `since` (the watch must answer 410 Gone).
    pub fn events_since(&self, since: u64, group: &str, plural: &str) -> Option<Vec<Event>> {
        if since < self.log_floor {
            return None;
        }
        Some(
            self.log
                .iter()
                .filter(|e| e.rv > since && e.group == group && e.plural == plural)
                .cloned()
                .collect(),
        )
    }

    pub fn last_applied(&self, key: &ObjKey, manager: &str, status: bool) -> Option<&Value> {
        self.applied
            .get(&(key.clone(), manager.to_string(), status))
    }

    pub fn set_last_applied(&mut self, key: ObjKey, manager: &str, status: bool, config: Value) {
        self.applied
            .insert((key, manager.to_string(), status), config);
    }
}
