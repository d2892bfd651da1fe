//! In-cluster provisioning: server-side apply (field manager `ferrogate`) of the rendered
//! objects of every Gateway, deletion of what no Gateway needs any more, and drift
//! correction.
//!
//! What exists is known from watchers over the kinds Ferrogate creates, restricted to
//! objects labelled `app.kubernetes.io/managed-by: ferrogate` ([`OwnedObjects`]). An
//! object is applied when it is missing, when its desired content changed (an
//! `applied-hash` annotation records what was applied last, so a restarted controller does
//! not re-apply anything), or when the live object no longer contains what was applied
//! (someone edited or removed a field: drift). An owned object that no desired object
//! names is deleted. Nothing is deleted before every watcher has listed once.

mod owned;
mod subset;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use owned::{ObjectId, OwnedObjects, OwnedState, run_owned_watchers};
pub use subset::is_subset;

/// Field manager of every apply.
pub const FIELD_MANAGER: &str = "ferrogate";
/// Annotation holding the hash of the configuration applied last.
pub const APPLIED_HASH_ANNOTATION: &str = "gateway.ferrogate.dev/applied-hash";
/// How long an applied object may stay invisible to the watchers before it is applied again.
pub const WATCH_LAG_ALLOWANCE: Duration = Duration::from_secs(10);

/// The kinds Ferrogate creates: (apiVersion, kind, plural).
pub const OWNED_KINDS: &[(&str, &str, &str)] = &[
    ("v1", "ServiceAccount", "serviceaccounts"),
    ("v1", "ConfigMap", "configmaps"),
    ("v1", "Secret", "secrets"),
    ("apps/v1", "Deployment", "deployments"),
    ("v1", "Service", "services"),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
    ),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
];

/// The API resource of an owned kind.
pub fn owned_resource(kind: &str) -> Option<ApiResource> {
    OWNED_KINDS
        .iter()
        .find(|(_, k, _)| *k == kind)
        .map(|(api_version, kind, plural)| {
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
        })
}

/// What one [`KubernetesInfra::reconcile`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Objects applied, by kind.
    pub applied: BTreeMap<String, usize>,
    /// Objects deleted, by kind.
    pub deleted: BTreeMap<String, usize>,
    /// Failed applies or deletes, by kind (retried on the next reconcile).
    pub failed: BTreeMap<String, usize>,
}

/// Applies desired objects to a cluster.
pub struct KubernetesInfra {
    client: Client,
    /// Hash applied last per object and when, to bridge the watchers' lag.
    applied: BTreeMap<ObjectId, (String, Instant)>,
}

impl KubernetesInfra {
    /// Uses `client` for every call.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            applied: BTreeMap::new(),
        }
    }

    /// Makes the cluster match `desired` (plain objects with apiVersion, kind and
    /// metadata; every one labelled as Ferrogate's): applies what is missing, changed or
    /// drifted, and deletes owned objects no longer desired. `owned` must be synced.
    pub async fn reconcile(&mut self, desired: &[Value], owned: &OwnedState) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let mut wanted = BTreeSet::new();
        for object in desired {
            let Some(id) = ObjectId::of(object) else {
                tracing::error!(object = %object, "rendered object without kind or name; skipped");
                continue;
            };
            wanted.insert(id.clone());
            let hash = content_hash(object);
            let mut object = object.clone();
            object["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] =
                Value::String(hash.clone());
            let live = owned.get(&id);
            let live_hash = live.and_then(|l| {
                l.pointer(&format!(
                    "/metadata/annotations/{}",
                    APPLIED_HASH_ANNOTATION.replace('/', "~1")
                ))
            });
            let up_to_date = match live {
                // The watchers show this configuration: applied unless it drifted.
                Some(live) if live_hash.and_then(|h| h.as_str()) == Some(hash.as_str()) => {
                    is_subset(&object, live)
                }
                // Just applied; the watchers have not shown it yet.
                _ => self
                    .applied
                    .get(&id)
                    .is_some_and(|(h, at)| *h == hash && at.elapsed() < WATCH_LAG_ALLOWANCE),
            };
            if up_to_date {
                continue;
            }
            match self.apply(&id, &object).await {
                Ok(()) => {
                    *report.applied.entry(id.kind.clone()).or_default() += 1;
                    self.applied.insert(id, (hash, Instant::now()));
                }
                Err(e) => {
                    *report.failed.entry(id.kind.clone()).or_default() += 1;
                    tracing::warn!(kind = %id.kind, namespace = %id.namespace, name = %id.name, error = %e, "apply failed");
                }
            }
        }
        for id in owned.ids() {
            if wanted.contains(id) {
                continue;
            }
            match self.delete(id).await {
                Ok(()) => {
                    *report.deleted.entry(id.kind.clone()).or_default() += 1;
                    self.applied.remove(id);
                }
                Err(e) => {
                    *report.failed.entry(id.kind.clone()).or_default() += 1;
                    tracing::warn!(kind = %id.kind, namespace = %id.namespace, name = %id.name, error = %e, "delete failed");
                }
            }
        }
        self.applied.retain(|id, _| wanted.contains(id));
        report
    }

    async fn apply(&self, id: &ObjectId, object: &Value) -> Result<(), kube::Error> {
        let api = self.api(id)?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&id.name, &params, &Patch::Apply(object)).await?;
        tracing::info!(kind = %id.kind, namespace = %id.namespace, name = %id.name, "applied");
        Ok(())
    }

    async fn delete(&self, id: &ObjectId) -> Result<(), kube::Error> {
        let api = self.api(id)?;
        match api.delete(&id.name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(kind = %id.kind, namespace = %id.namespace, name = %id.name, "deleted");
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn api(&self, id: &ObjectId) -> Result<Api<DynamicObject>, kube::Error> {
        let resource = owned_resource(&id.kind).ok_or_else(|| {
            kube::Error::Service(format!("{} is not a kind Ferrogate provisions", id.kind).into())
        })?;
        Ok(Api::namespaced_with(
            self.client.clone(),
            &id.namespace,
            &resource,
        ))
    }
}

/// Hash of an object's canonical JSON (serde_json maps are sorted), first 16 hex digits.
pub fn content_hash(object: &Value) -> String {
    let digest = Sha256::digest(object.to_string().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
