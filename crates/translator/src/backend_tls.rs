//! BackendTLSPolicy: TLS from Envoy to Services. A policy targets a Service (or one of its
//! ports by name); it applies to every backend of that Service port, and it is reported on
//! every Gateway listener through which an accepted route reaches that backend.
//! Two policies on the same target conflict: the older one (creation time, then
//! namespace/name) wins and the other is `Accepted: False` / `Conflicted`. A policy on a
//! port (sectionName) is more specific than one on the whole Service and both may exist.

use std::collections::{BTreeMap, BTreeSet};

use ferrogate_api::gateway::{BackendTlsPolicy, BackendTlsPolicyValidationSubjectAltNamesType as SanType};
use ferrogate_ir::{GatewayKey, RouteAction, UpstreamTls};
use ferrogate_status::{AncestorStatus, Condition, ParentRef, PolicyStatus};
use ferrogate_store::{ObjectKey, Snapshot};

use crate::conditions::{reasons, types};
use crate::gateway::GatewayCtx;
use crate::routes::{Payload, Routes};

/// A policy, judged.
struct Judged<'a> {
    key: &'a ObjectKey,
    policy: &'a BackendTlsPolicy,
    /// `Ok(tls)` or `Err((accepted reason, resolved-refs reason, message))`.
    result: Result<UpstreamTls, (&'static str, &'static str, String)>,
    /// Lost a conflict to an older policy.
    conflicted: bool,
}

/// Applies policies to the resolved backends and returns the policy statuses.
pub(crate) fn apply(snapshot: &Snapshot, routes: &mut Routes, gateways: &[GatewayCtx]) -> Vec<PolicyStatus> {
    if snapshot.backend_tls_policies.is_empty() {
        return Vec::new(); // the common case: no work per backend or route
    }
    let mut judged: Vec<Judged<'_>> = snapshot
        .backend_tls_policies
        .in_order()
        .into_iter()
        .map(|(key, policy)| Judged { key, policy, result: validate(snapshot, &key.namespace, policy), conflicted: false })
        .collect();
    // Conflicts: same (namespace, service, section) targeted twice; the oldest wins.
    let mut order: Vec<usize> = (0..judged.len()).collect();
    order.sort_by(|&a, &b| {
        let ta = crate::routes::creation_time(&judged[a].policy.metadata);
        let tb = crate::routes::creation_time(&judged[b].policy.metadata);
        ta.cmp(&tb).then(judged[a].key.cmp(judged[b].key))
    });
    let mut claimed: BTreeSet<(String, String, Option<String>)> = BTreeSet::new();
    for i in order {
        let mut lost = false;
        for t in targets(&judged[i]) {
            if !claimed.insert(t) {
                lost = true;
            }
        }
        judged[i].conflicted = lost;
    }

    // Which policies target each backend (for status), and which one applies: the
    // sectioned one first, then the whole-Service one.
    let targets: Vec<Vec<(String, String, Option<String>)>> = judged.iter().map(targets).collect();
    let mut targeting: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut invalid_backends: BTreeSet<String> = BTreeSet::new();
    for (name, backend) in routes.backends.iter_mut() {
        let Some((ns, service, port_name)) = service_port(snapshot, name) else { continue };
        let whole = (ns.clone(), service.clone(), None);
        let section = port_name.map(|p| (ns, service, Some(p)));
        let hits = |i: usize, key: &(String, String, Option<String>)| targets[i].contains(key);
        let all: Vec<usize> = (0..judged.len()).filter(|&i| hits(i, &whole) || section.as_ref().is_some_and(|k| hits(i, k))).collect();
        if all.is_empty() {
            continue;
        }
        let usable = |key: &(String, String, Option<String>)| {
            all.iter().copied().find(|&i| !judged[i].conflicted && judged[i].result.is_ok() && hits(i, key))
        };
        match section.as_ref().and_then(usable).or_else(|| usable(&whole)) {
            Some(i) => backend.tls = judged[i].result.as_ref().ok().cloned(),
            // Only invalid policies target it: routes to it must say so.
            None if all.iter().any(|&i| !judged[i].conflicted) => {
                invalid_backends.insert(name.clone());
            }
            None => {}
        }
        targeting.insert(name.clone(), all);
    }

    // Ancestors: the Gateway listeners through which routes reach a targeted backend.
    let mut ancestors: BTreeMap<usize, Vec<ParentRef>> = BTreeMap::new();
    for a in &routes.attachments {
        let Some(gw) = gateways.iter().find(|g| g.key == a.gateway) else { continue };
        for backend in backends_of(&a.payload) {
            for &i in targeting.get(&backend).into_iter().flatten() {
                let r = ancestor_ref(&a.gateway, &gw.listeners[a.listener].name);
                let list = ancestors.entry(i).or_default();
                if !list.contains(&r) {
                    list.push(r);
                }
            }
        }
    }
    mark_invalid_backend_tls(routes, &invalid_backends);
    judged
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let generation = j.policy.metadata.generation;
            let conditions = conditions(j).into_iter().map(|c| c.at_generation(generation)).collect::<Vec<_>>();
            PolicyStatus {
                namespace: j.key.namespace.clone(),
                name: j.key.name.clone(),
                ancestors: ancestors
                    .get(&i)
                    .into_iter()
                    .flatten()
                    .map(|r| AncestorStatus { ancestor_ref: r.clone(), conditions: conditions.clone() })
                    .collect(),
            }
        })
        .collect()
}

fn conditions(j: &Judged<'_>) -> Vec<Condition> {
    match (&j.result, j.conflicted) {
        (Err((accepted, resolved, message)), _) => vec![
            Condition::not(types::ACCEPTED, accepted, message.clone()),
            Condition::not(types::RESOLVED_REFS, resolved, message.clone()),
        ],
        (Ok(_), true) => vec![
            Condition::not(types::ACCEPTED, "Conflicted", "Another, older BackendTLSPolicy targets the same Service port"),
            Condition::ok(types::RESOLVED_REFS, reasons::RESOLVED_REFS, "Resolved all the Object references."),
        ],
        (Ok(_), false) => vec![
            Condition::ok(types::ACCEPTED, reasons::ACCEPTED, "Policy has been accepted."),
            Condition::ok(types::RESOLVED_REFS, reasons::RESOLVED_REFS, "Resolved all the Object references."),
        ],
    }
}

fn ancestor_ref(gateway: &GatewayKey, section: &str) -> ParentRef {
    ParentRef {
        group: None,
        kind: None,
        namespace: Some(gateway.namespace.clone()),
        name: gateway.name.clone(),
        section_name: Some(section.to_string()),
        port: None,
    }
}

fn backends_of(payload: &Payload) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match payload {
        Payload::Http(route) => {
            for rule in &route.rules {
                if let RouteAction::Forward(f) = &rule.action {
                    out.extend(f.backends.iter().map(|b| b.backend.clone()));
                    out.extend(f.mirrors.iter().map(|m| m.backend.clone()));
                }
            }
        }
        Payload::Stream(route) => out.extend(route.backends.iter().map(|b| b.backend.clone())),
    }
    out
}

/// (namespace, service, sectionName) targets of a policy (Services only).
fn targets(j: &Judged<'_>) -> Vec<(String, String, Option<String>)> {
    j.policy
        .spec
        .target_refs
        .iter()
        .filter(|t| t.group.is_empty() && t.kind == "Service")
        .map(|t| (j.key.namespace.clone(), t.name.clone(), t.section_name.clone()))
        .collect()
}

/// The Service port behind a backend name (`<ns>/<service>/<port>[/<suffix>]`, as
/// `backend.rs` builds them): namespace, service and the port's name.
fn service_port(snapshot: &Snapshot, backend: &str) -> Option<(String, String, Option<String>)> {
    let mut parts = backend.split('/');
    let (ns, service, port) = (parts.next()?, parts.next()?, parts.next()?.parse::<i32>().ok()?);
    let svc = snapshot.services.get(ns, service)?;
    let name = svc.spec.as_ref()?.ports.as_ref()?.iter().find(|p| p.port == port)?.name.clone();
    Some((ns.to_string(), service.to_string(), name))
}

fn validate(snapshot: &Snapshot, namespace: &str, policy: &BackendTlsPolicy) -> Result<UpstreamTls, (&'static str, &'static str, String)> {
    let v = &policy.spec.validation;
    let refs = v.ca_certificate_refs.as_deref().unwrap_or_default();
    let well_known = v.well_known_ca_certificates.as_deref();
    let invalid = |message: String| ("NoValidCACertificate", "InvalidCACertificateRef", message);
    if refs.is_empty() && well_known.is_none() {
        return Err(("Invalid", reasons::UNSUPPORTED_VALUE, "validation needs caCertificateRefs or wellKnownCACertificates".into()));
    }
    if !refs.is_empty() && well_known.is_some() {
        return Err(("Invalid", reasons::UNSUPPORTED_VALUE, "caCertificateRefs and wellKnownCACertificates are exclusive".into()));
    }
    if let Some(w) = well_known
        && w != "System" {
            return Err(("Invalid", reasons::UNSUPPORTED_VALUE, format!("wellKnownCACertificates {w} is not supported")));
        }
    let mut bundle = String::new();
    for r in refs {
        let pem = match (r.group.as_str(), r.kind.as_str()) {
            ("", "ConfigMap") => {
                let cm = snapshot.config_maps.get(namespace, &r.name).ok_or_else(|| invalid(format!("ConfigMap {namespace}/{} not found", r.name)))?;
                pick_ca(cm.data.clone().unwrap_or_default()).ok_or_else(|| invalid(format!("No ca found in configmap {}.", r.name)))?
            }
            ("", "Secret") => {
                let s = snapshot.secrets.get(namespace, &r.name).ok_or_else(|| invalid(format!("Secret {namespace}/{} not found", r.name)))?;
                let data = s.data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).to_string())).collect();
                pick_ca(data).ok_or_else(|| invalid(format!("No ca found in secret {}.", r.name)))?
            }
            ("" | "certificates.k8s.io", "ClusterTrustBundle") => {
                let b = snapshot.cluster_trust_bundles.get("", &r.name).ok_or_else(|| invalid(format!("ClusterTrustBundle {} not found", r.name)))?;
                b.spec.trust_bundle.clone()
            }
            (g, k) => {
                return Err(("NoValidCACertificate", reasons::INVALID_KIND, format!("caCertificateRef {g}/{k} {} is not a ConfigMap, Secret or ClusterTrustBundle", r.name)));
            }
        };
        if x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).next().and_then(Result::ok).is_none() {
            return Err(invalid(format!("{} holds no PEM certificate", r.name)));
        }
        bundle.push_str(&pem);
        if !bundle.ends_with('\n') {
            bundle.push('\n');
        }
    }
    let subject_alt_names = v
        .subject_alt_names
        .iter()
        .flatten()
        .filter_map(|s| match s.r#type {
            SanType::Hostname => s.hostname.as_ref().map(|h| format!("dns:{h}")),
            SanType::Uri => s.uri.as_ref().map(|u| format!("uri:{u}")),
        })
        .collect();
    Ok(UpstreamTls {
        sni: v.hostname.clone(),
        ca_certificates: (!bundle.is_empty()).then_some(bundle),
        subject_alt_names,
        client_certificate: None,
    })
}

/// The CA bundle of a ConfigMap or Secret: `ca.crt`, else `tls.crt`, else the first key.
fn pick_ca(data: BTreeMap<String, String>) -> Option<String> {
    data.get("ca.crt").or_else(|| data.get("tls.crt")).or_else(|| data.values().next()).filter(|v| v.contains("BEGIN CERTIFICATE")).cloned()
}


/// Routes that reach a backend whose BackendTLSPolicy is invalid get `ResolvedRefs: False`.
fn mark_invalid_backend_tls(routes: &mut Routes, invalid: &BTreeSet<String>) {
    if invalid.is_empty() {
        return;
    }
    let mut affected = BTreeSet::new();
    for a in &routes.attachments {
        if backends_of(&a.payload).iter().any(|b| invalid.contains(b)) {
            let (kind, ns, name) = match &a.payload {
                Payload::Http(r) => (r.kind, r.namespace.clone(), r.name.clone()),
                Payload::Stream(r) => (r.kind, r.namespace.clone(), r.name.clone()),
            };
            affected.insert((kind.to_string(), ns, name));
        }
    }
    for status in &mut routes.statuses {
        if !affected.contains(&(status.kind.clone(), status.namespace.clone(), status.name.clone())) {
            continue;
        }
        for parent in &mut status.parents {
            for c in &mut parent.conditions {
                if c.type_ == types::RESOLVED_REFS && c.status == ferrogate_status::ConditionStatus::True {
                    *c = Condition::not(types::RESOLVED_REFS, "InvalidBackendTLS", "the BackendTLSPolicy of a backend is invalid")
                        .at_generation(c.observed_generation);
                }
            }
        }
    }
}
