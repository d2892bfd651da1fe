//! One watcher per served kind, all feeding one store [`Snapshot`].
//!
//! Nothing is published until every watcher has listed its kind once, so a restarting
//! controller never translates (and never pushes to Envoy, or deletes infra for) a partial
//! world. After that, changes are published at most once per `debounce`, and only when the
//! store actually changed (a resync that delivers identical objects publishes nothing).
//! A relist (the watcher's `Init` .. `InitDone`) replaces that kind's objects atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ferrogate_store::{Kind, Object, ObjectKey, ObjectRef, Snapshot, load_object};
use futures::{StreamExt, stream};
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::discovery::Discovered;
use crate::live_status::{LiveReflector, LiveStatuses};

/// What the reflectors report besides snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReflectorEvent {
    /// Every served kind has been listed once; the first snapshot was published.
    Synced,
    /// An object could not be read into the store's types (kept out of the store).
    Invalid {
        kind: Kind,
        name: String,
        message: String,
    },
}

/// Runs until `cancel`. Publishes snapshots on `snapshots`, and reports on `events`
/// (best effort: a full events channel drops reports, never blocks the watchers). Keeps the
/// statuses the watched objects carry in `live`, for the status writer (the store drops
/// them).
pub async fn run_reflectors(
    client: Client,
    discovered: &[Discovered],
    debounce: Duration,
    snapshots: &watch::Sender<Arc<Snapshot>>,
    events: tokio::sync::mpsc::Sender<ReflectorEvent>,
    live: &LiveStatuses,
    cancel: CancellationToken,
) {
    let served: Vec<(Kind, ApiResource)> = discovered
        .iter()
        .filter_map(|d| d.resource.clone().map(|r| (d.watched.kind, r)))
        .collect();
    let streams = served.iter().map(|(kind, resource)| {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
        let (kind, resource) = (*kind, resource.clone());
        watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .map(move |event| (kind, resource.clone(), event))
            .boxed()
    });
    let mut merged = stream::select_all(streams);

    let mut store = Snapshot::default();
    let mut live = LiveReflector::new(live.clone());
    let mut pending: BTreeMap<Kind, Vec<Object>> = BTreeMap::new(); // relists in progress
    let mut synced: BTreeSet<Kind> = BTreeSet::new();
    let all: BTreeSet<Kind> = served.iter().map(|(k, _)| *k).collect();
    let mut dirty = false;
    let mut published_once = false;
    let mut tick = tokio::time::interval(debounce.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    if all.is_empty() {
        tracing::warn!("the cluster serves none of the watched kinds");
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            next = merged.next() => {
                let Some((kind, resource, event)) = next else { return };
                match event {
                    Ok(event) => {
                        live.handle(kind, &event);
                        dirty |= handle(&mut store, &mut pending, &mut synced, kind, &resource, event, &events);
                    }
                    Err(e) => tracing::warn!(kind = kind.as_str(), error = %e, "watch failed; retrying with backoff"),
                }
            }
            _ = tick.tick() => {
                let ready = synced.len() == all.len();
                if ready && (dirty || !published_once) {
                    snapshots.send_replace(Arc::new(store.clone()));
                    dirty = false;
                    if !published_once {
                        published_once = true;
                        tracing::info!(kinds = all.len(), "every watched kind listed; publishing the first snapshot");
                        let _ = events.try_send(ReflectorEvent::Synced);
                    }
                }
            }
        }
    }
}

/// Applies one watcher event; returns whether the store changed.
fn handle(
    store: &mut Snapshot,
    pending: &mut BTreeMap<Kind, Vec<Object>>,
    synced: &mut BTreeSet<Kind>,
    kind: Kind,
    resource: &ApiResource,
    event: Event<DynamicObject>,
    events: &tokio::sync::mpsc::Sender<ReflectorEvent>,
) -> bool {
    match event {
        Event::Init => {
            pending.insert(kind, Vec::new());
            false
        }
        Event::InitApply(object) => {
            if let Some(object) = read(kind, resource, object, events) {
                pending.entry(kind).or_default().push(object);
            }
            false
        }
        Event::InitDone => {
            synced.insert(kind);
            store.reset_kind(kind, pending.remove(&kind).unwrap_or_default())
        }
        Event::Apply(object) => {
            read(kind, resource, object, events).is_some_and(|o| store.apply(o))
        }
        Event::Delete(object) => {
            let key = ObjectKey::new(
                object.metadata.namespace.clone().unwrap_or_default(),
                object.metadata.name.clone().unwrap_or_default(),
            );
            store.delete(&ObjectRef { kind, key })
        }
    }
}

/// Secret types no Gateway API reference can use, kept out of the store: Helm release
/// records and service-account tokens are numerous and large in real clusters, and the
/// store holds what it watches in memory.
const UNREAD_SECRET_TYPES: &[&str] = &[
    "helm.sh/release.v1",
    "kubernetes.io/service-account-token",
    "kubernetes.io/dockercfg",
    "kubernetes.io/dockerconfigjson",
    "bootstrap.kubernetes.io/token",
];

/// Converts a served object into the store's typed form. List items carry no
/// apiVersion/kind on a real API server, so they are set from the resource.
fn read(
    kind: Kind,
    resource: &ApiResource,
    object: DynamicObject,
    events: &tokio::sync::mpsc::Sender<ReflectorEvent>,
) -> Option<Object> {
    let name = object.metadata.name.clone().unwrap_or_default();
    if kind == Kind::Secret
        && object
            .data
            .get("type")
            .and_then(|t| t.as_str())
            .is_some_and(|t| UNREAD_SECRET_TYPES.contains(&t))
    {
        return None; // never a certificate a Gateway can reference: not worth its memory
    }
    let mut value = match serde_json::to_value(object) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(kind = kind.as_str(), %name, error = %e, "cannot read object");
            return None;
        }
    };
    value["apiVersion"] = resource.api_version.clone().into();
    value["kind"] = resource.kind.clone().into();
    match load_object(value) {
        Ok(object) => Some(object),
        Err(e) => {
            tracing::warn!(kind = kind.as_str(), %name, error = %e, "invalid object ignored");
            let _ = events.try_send(ReflectorEvent::Invalid {
                kind,
                name,
                message: e.to_string(),
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::GroupVersionKind;

    fn secret(type_: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "n"},
            "type": type_, "data": {"tls.crt": "", "tls.key": ""},
        }))
        .unwrap()
    }

    #[test]
    fn secrets_no_reference_can_use_stay_out_of_the_store() {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("", "v1", "Secret"),
            "secrets",
        );
        let (events, _rx) = tokio::sync::mpsc::channel(4);
        assert!(
            read(
                Kind::Secret,
                &resource,
                secret("kubernetes.io/tls"),
                &events
            )
            .is_some()
        );
        assert!(read(Kind::Secret, &resource, secret("Opaque"), &events).is_some());
        assert!(
            read(
                Kind::Secret,
                &resource,
                secret("helm.sh/release.v1"),
                &events
            )
            .is_none()
        );
        assert!(
            read(
                Kind::Secret,
                &resource,
                secret("kubernetes.io/service-account-token"),
                &events
            )
            .is_none()
        );
    }
}
