//! Watchers over the objects Ferrogate created (label `app.kubernetes.io/managed-by:
//! ferrogate`), across namespaces: what exists, for drift correction, deletion, and for the
//! Gateways' observed state (Service addresses, Deployment availability).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{OWNED_KINDS, owned_resource};

/// Kind, namespace and name of an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectId {
    /// The id of a plain object value.
    pub fn of(object: &Value) -> Option<Self> {
        Some(Self {
            kind: object.get("kind")?.as_str()?.to_string(),
            namespace: object
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            name: object.pointer("/metadata/name")?.as_str()?.to_string(),
        })
    }

    /// An id from parts.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// The owned objects as last seen, each as a plain value (managedFields dropped).
#[derive(Clone, Debug, Default)]
pub struct OwnedState {
    objects: BTreeMap<ObjectId, Value>,
}

/// Published owned-object states; `None` until every watcher has listed once.
pub type OwnedObjects = watch::Receiver<Option<Arc<OwnedState>>>;

impl OwnedState {
    /// The live object.
    pub fn get(&self, id: &ObjectId) -> Option<&Value> {
        self.objects.get(id)
    }

    /// Every owned object's id.
    pub fn ids(&self) -> impl Iterator<Item = &ObjectId> {
        self.objects.keys()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Watches every owned kind until `cancel`, publishing on `out` (debounced by `debounce`)
/// once all have listed.
pub async fn run_owned_watchers(
    client: Client,
    debounce: Duration,
    out: watch::Sender<Option<Arc<OwnedState>>>,
    cancel: CancellationToken,
) {
    let selector = format!(
        "{}={}",
        ferrogate_api::LABEL_MANAGED_BY,
        ferrogate_api::MANAGED_BY_VALUE
    );
    let streams = OWNED_KINDS.iter().filter_map(|(_, kind, _)| {
        let resource = owned_resource(kind)?;
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let id = Typed {
            kind: kind.to_string(),
            api_version: resource.api_version.clone(),
        };
        Some(
            watcher::watcher(api, watcher::Config::default().labels(&selector))
                .default_backoff()
                .map(move |e| (id.clone(), e))
                .boxed(),
        )
    });
    let mut merged = stream::select_all(streams);
    let mut state = OwnedState::default();
    let mut relisting: BTreeMap<String, BTreeMap<ObjectId, Value>> = BTreeMap::new();
    let mut synced: BTreeSet<String> = BTreeSet::new();
    let mut dirty = true;
    let mut tick = tokio::time::interval(debounce.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            next = merged.next() => {
                let Some((typed, event)) = next else { return };
                let kind = typed.kind.clone();
                match event {
                    Ok(Event::Init) => { relisting.insert(kind, BTreeMap::new()); }
                    Ok(Event::InitApply(o)) => {
                        if let Some((id, v)) = plain(&typed, o) { relisting.entry(kind).or_default().insert(id, v); }
                    }
                    Ok(Event::InitDone) => {
                        let fresh = relisting.remove(&kind).unwrap_or_default();
                        state.objects.retain(|id, _| id.kind != kind);
                        state.objects.extend(fresh);
                        synced.insert(kind);
                        dirty = true;
                    }
                    Ok(Event::Apply(o)) => {
                        if let Some((id, v)) = plain(&typed, o) { state.objects.insert(id, v); dirty = true; }
                    }
                    Ok(Event::Delete(o)) => {
                        if let Some((id, _)) = plain(&typed, o) { state.objects.remove(&id); dirty = true; }
                    }
                    Err(e) => tracing::warn!(%kind, error = %e, "watch of provisioned objects failed; retrying"),
                }
            }
            _ = tick.tick() => {
                if dirty && synced.len() == OWNED_KINDS.len() {
                    out.send_replace(Some(Arc::new(state.clone())));
                    dirty = false;
                }
            }
        }
    }
}

/// The type of the objects one watcher lists.
#[derive(Clone)]
struct Typed {
    kind: String,
    api_version: String,
}

/// An object as a plain value with its type. Items of a list response carry neither `kind`
/// nor `apiVersion`, and the reconciler compares the wanted object (which has both) as a
/// subset of this one: without them every listed object would look drifted and be
/// re-applied on every pass, a no-op write per object per pass.
fn plain(typed: &Typed, object: DynamicObject) -> Option<(ObjectId, Value)> {
    let mut value = serde_json::to_value(object).ok()?;
    value["kind"] = typed.kind.as_str().into();
    value["apiVersion"] = typed.api_version.as_str().into();
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    Some((ObjectId::of(&value)?, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_object_without_its_type_gets_kind_and_api_version() {
        // As an item of a list response arrives: no kind, no apiVersion.
        let listed: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "gw", "namespace": "apps", "managedFields": [{}]},
            "spec": {"replicas": 2}
        }))
        .unwrap();
        let typed = Typed {
            kind: "Deployment".into(),
            api_version: "apps/v1".into(),
        };
        let (id, value) = plain(&typed, listed).unwrap();
        assert_eq!(id, ObjectId::new("Deployment", "apps", "gw"));
        assert_eq!(value["apiVersion"], "apps/v1");
        assert_eq!(value["kind"], "Deployment");
        assert!(value["metadata"].get("managedFields").is_none());
        // So the wanted object, which names its type, is a subset of the live one.
        let wanted = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "gw", "namespace": "apps"}, "spec": {"replicas": 2}
        });
        assert!(super::super::is_subset(&wanted, &value));
    }
}
