//! Resource definitions the fake API server serves, and the discovery documents built from them.

use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One served resource (one group/version/plural).
#[derive(Clone, Debug)]
pub(crate) struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Has a `/status` subresource (main-resource writes keep `status`, `/status` writes only change it).
    pub status: bool,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn singular(&self) -> String {
        self.kind.to_ascii_lowercase()
    }
}

const fn def(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        plural,
        kind,
        namespaced,
        status,
    }
}

const GW: &str = "gateway.networking.k8s.io";

const BUILTIN: &[ResourceDef] = &[
    def("", "v1", "namespaces", "Namespace", false, true),
    def("", "v1", "services", "Service", true, true),
    def("", "v1", "secrets", "Secret", true, false),
    def("", "v1", "configmaps", "ConfigMap", true, false),
    def("", "v1", "serviceaccounts", "ServiceAccount", true, false),
    def("", "v1", "events", "Event", true, false),
    // kube::runtime::events::Recorder writes events.k8s.io/v1 Events.
    def("events.k8s.io", "v1", "events", "Event", true, false),
    def(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        false,
    ),
    def("apps", "v1", "deployments", "Deployment", true, true),
    def(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        true,
    ),
    def(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        true,
    ),
    def("coordination.k8s.io", "v1", "leases", "Lease", true, false),
    def(GW, "v1", "gatewayclasses", "GatewayClass", false, true),
    def(GW, "v1", "gateways", "Gateway", true, true),
    def(GW, "v1", "httproutes", "HTTPRoute", true, true),
    def(GW, "v1", "grpcroutes", "GRPCRoute", true, true),
    def(GW, "v1", "tlsroutes", "TLSRoute", true, true),
    def(GW, "v1", "referencegrants", "ReferenceGrant", true, false),
    def(
        GW,
        "v1",
        "backendtlspolicies",
        "BackendTLSPolicy",
        true,
        true,
    ),
    def(GW, "v1", "listenersets", "ListenerSet", true, true),
    def(GW, "v1alpha2", "tcproutes", "TCPRoute", true, true),
    def(GW, "v1alpha2", "udproutes", "UDPRoute", true, true),
    def(
        GW,
        "v1beta1",
        "referencegrants",
        "ReferenceGrant",
        true,
        false,
    ),
    def(
        "gateway.ferrogate.dev",
        "v1alpha1",
        "envoyproxies",
        "EnvoyProxy",
        true,
        false,
    ),
    def(
        "multicluster.x-k8s.io",
        "v1alpha1",
        "serviceimports",
        "ServiceImport",
        true,
        true,
    ),
];

/// Splits `group/version` (or `v1` for core) into (group, version).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first (`v1 > v1beta2 > v1beta1 > v1alpha1`).
fn version_priority(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> (u8, u32, u32) {
        let rest = v.strip_prefix('v').unwrap_or(v);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major = digits.parse().unwrap_or(0);
        let tail = &rest[digits.len()..];
        let (level, minor_s) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else {
            (2, "0")
        };
        (level, major, minor_s.parse().unwrap_or(0))
    }
    parse(b).cmp(&parse(a))
}

pub(crate) struct Registry {
    defs: Vec<ResourceDef>,
    without: Vec<String>,
}

impl Registry {
    /// The built-in registry minus every def whose `group/version` (or `v1` for core) is in `without`.
    pub fn new(without: &[String]) -> Self {
        let defs = BUILTIN
            .iter()
            .filter(|d| {
                !without
                    .iter()
                    .any(|w| w == &d.api_version() || (w == "core/v1" && d.group.is_empty()))
            })
            .cloned()
            .collect();
        Registry {
            defs,
            without: without.to_vec(),
        }
    }

    /// Starts serving a built-in `group/version` left out at start (a CRD installed later).
    pub fn install(&mut self, group_version: &str) {
        let without: Vec<String> = self
            .without
            .iter()
            .filter(|w| *w != group_version)
            .cloned()
            .collect();
        *self = Registry::new(&without);
    }

    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
    }

    /// Any served version of group + plural (for cascading deletes, which only know the storage key).
    pub fn by_resource(&self, group: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.plural == plural)
    }

    /// Finds a def by apiVersion + kind; falls back to any version of the group with that kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceDef> {
        let (group, version) = split_api_version(api_version);
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
            .or_else(|| {
                self.defs
                    .iter()
                    .find(|d| d.group == group && d.kind == kind)
            })
    }

    fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.defs
            .iter()
            .any(|d| d.group == group && d.version == version)
    }

    /// Non-core groups, each with its versions in priority order (preferred first).
    fn groups(&self) -> BTreeMap<&'static str, Vec<&'static str>> {
        let mut groups: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
        for d in self.defs.iter().filter(|d| !d.group.is_empty()) {
            let versions = groups.entry(d.group).or_default();
            if !versions.contains(&d.version) {
                versions.push(d.version);
            }
        }
        for versions in groups.values_mut() {
            versions.sort_by(|a, b| version_priority(a, b));
        }
        groups
    }

    /// `GET /api`.
    pub fn core_versions(&self) -> Value {
        let versions: Vec<&str> = if self.has_group_version("", "v1") {
            vec!["v1"]
        } else {
            vec![]
        };
        json!({"kind": "APIVersions", "apiVersion": "v1", "versions": versions, "serverAddressByClientCIDRs": []})
    }

    /// `GET /apis`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .into_iter()
            .map(|(g, vs)| group_doc(g, &vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/{group}`.
    pub fn group(&self, group: &str) -> Option<Value> {
        self.groups().get(group).map(|vs| {
            let mut doc = group_doc(group, vs);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        })
    }

    /// `GET /api/v1` or `GET /apis/{group}/{version}`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        if !self.has_group_version(group, version) {
            return None;
        }
        let mut resources = Vec::new();
        for d in self
            .defs
            .iter()
            .filter(|d| d.group == group && d.version == version)
        {
            resources.push(json!({
                "name": d.plural, "singularName": d.singular(), "namespaced": d.namespaced, "kind": d.kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            }));
            if d.status {
                resources.push(json!({
                    "name": format!("{}/status", d.plural), "singularName": "", "namespaced": d.namespaced, "kind": d.kind,
                    "verbs": ["get", "patch", "update"],
                }));
            }
        }
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        )
    }

    /// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`) for `/api` (core) or `/apis`.
    pub fn aggregated(&self, core: bool) -> Value {
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        if core {
            if self.has_group_version("", "v1") {
                groups.push(("", vec!["v1"]));
            }
        } else {
            groups.extend(self.groups());
        }
        let items: Vec<Value> = groups
            .into_iter()
            .map(|(group, versions)| {
                let versions: Vec<Value> = versions
                    .into_iter()
                    .map(|version| {
                        let resources: Vec<Value> = self
                            .defs
                            .iter()
                            .filter(|d| d.group == group && d.version == version)
                            .map(|d| {
                                let gvk = json!({"group": group, "version": version, "kind": d.kind});
                                let subresources: Vec<Value> = if d.status {
                                    vec![json!({"subresource": "status", "responseKind": gvk, "verbs": ["get", "patch", "update"]})]
                                } else {
                                    vec![]
                                };
                                json!({
                                    "resource": d.plural, "responseKind": gvk,
                                    "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                                    "singularResource": d.singular(),
                                    "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                                    "subresources": subresources,
                                })
                            })
                            .collect();
                        json!({"version": version, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": group}, "versions": versions})
            })
            .collect();
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
    }
}

fn group_doc(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": vs, "preferredVersion": preferred})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_order() {
        let mut v = vec!["v1alpha2", "v1beta1", "v1", "v2", "v1alpha1"];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(v, ["v2", "v1", "v1beta1", "v1alpha2", "v1alpha1"]);
    }
}
