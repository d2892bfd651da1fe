//! Which of the watched kinds the cluster serves, and at which version. Gateway API CRDs
//! may be missing or older than ours; a missing kind is skipped with a log line (and the
//! runtime exports it as a metric), never a crash. Core kinds must be served.

use std::collections::BTreeMap;

use kube::Client;
use kube::core::{ApiResource, GroupVersionKind};

use crate::kinds::{WATCHED_KINDS, WatchedKind};

/// A watched kind and, when the cluster serves it, the resource to watch.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// The kind.
    pub watched: WatchedKind,
    /// The served resource, `None` when the cluster does not serve the kind.
    pub resource: Option<ApiResource>,
}

/// Asks the API server, once per group/version, which watched kinds it serves.
///
/// Errors other than "not found" (the API server unreachable, forbidden, ...) are returned:
/// guessing would risk treating a served kind as absent and deleting what it configures.
pub async fn discover(client: &Client) -> Result<Vec<Discovered>, kube::Error> {
    let mut served: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    let mut out = Vec::new();
    for watched in WATCHED_KINDS {
        let mut resource = None;
        for version in watched.versions {
            let api_version = watched.api_version(version);
            if !served.contains_key(&api_version) {
                let list = if watched.group.is_empty() {
                    client.list_core_api_resources(version).await
                } else {
                    client.list_api_group_resources(&api_version).await
                };
                let names = match list {
                    Ok(list) => Some(list.resources.into_iter().map(|r| r.name).collect()),
                    Err(kube::Error::Api(e)) if e.code == 404 => None,
                    Err(e) => return Err(e),
                };
                served.insert(api_version.clone(), names);
            }
            if served[&api_version]
                .as_ref()
                .is_some_and(|names| names.iter().any(|n| n == watched.plural))
            {
                let gvk = GroupVersionKind::gvk(watched.group, version, watched.kind_name);
                resource = Some(ApiResource::from_gvk_with_plural(&gvk, watched.plural));
                break;
            }
        }
        match &resource {
            Some(r) => {
                tracing::debug!(kind = watched.kind_name, api_version = %r.api_version, "watching")
            }
            None => tracing::warn!(
                kind = watched.kind_name,
                group = watched.group,
                "the cluster does not serve this kind (CRD not installed?); objects of this kind are ignored"
            ),
        }
        out.push(Discovered {
            watched: *watched,
            resource,
        });
    }
    Ok(out)
}

/// The served `apiVersion` of every watched kind (`None`: not served), to tell whether a
/// new discovery differs.
pub fn served_versions(discovered: &[Discovered]) -> Vec<(&'static str, Option<String>)> {
    discovered
        .iter()
        .map(|d| {
            (
                d.watched.kind_name,
                d.resource.as_ref().map(|r| r.api_version.clone()),
            )
        })
        .collect()
}
