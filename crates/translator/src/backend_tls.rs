//! BackendTLSPolicy: TLS from Envoy to Services. A policy targets a Service or a
//! ServiceImport (or one of its ports by name); it applies to every backend of that port,
//! and it is reported on every parent through which an accepted route reaches that backend,
//! named as the route's parentRef names it (`sectionName`/`port` only when the parentRef
//! has them). A target of any other kind makes the policy `Accepted: False` (`Invalid`).
//! At most [`MAX_ANCESTORS`] ancestors are listed, sorted (problems first, then by name);
//! through the parents that do not fit the policy is unimplementable, as the API says:
//! routes through them say so, and their Gateways do not send to the targeted backends.
//! Two policies on the same target conflict: the older one (creation time, then
//! namespace/name) wins and the other is `Accepted: False` / `Conflicted`. A policy on a
//! port (sectionName) is more specific than one on the whole Service and both may exist.

use std::collections::{BTreeMap, BTreeSet};

use ferrogate_api::gateway::{
    BackendTlsPolicy, BackendTlsPolicyValidationSubjectAltNamesType as SanType,
};
use ferrogate_ir::{GatewayKey, RouteAction, UpstreamTls};
use ferrogate_status::{AncestorStatus, Condition, ParentRef, PolicyStatus};
use ferrogate_store::{ObjectKey, Snapshot};

use crate::conditions::{reasons, types};
use crate::gateway::GatewayCtx;
use crate::routes::{Payload, Routes};

/// `PolicyStatus.ancestors` MaxItems: the API server refuses more.
pub(crate) const MAX_ANCESTORS: usize = 16;

const MULTICLUSTER_GROUP: &str = "multicluster.x-k8s.io";

/// What a policy targets: (kind, namespace, name, sectionName).
type Target = (&'static str, String, String, Option<String>);

/// Why a policy cannot be used.
#[derive(Clone)]
struct PolicyProblem {
    accepted: &'static str,
    /// `ResolvedRefs: False` reason, when the problem is a reference.
    resolved: Option<&'static str>,
    message: String,
}

/// A policy, judged.
struct Judged<'a> {
    key: &'a ObjectKey,
    policy: &'a BackendTlsPolicy,
    /// The TLS settings, or why the policy cannot be used.
    result: Result<UpstreamTls, PolicyProblem>,
    /// Lost a conflict to an older policy.
    conflicted: bool,
}

/// Applies policies to the resolved backends and returns the policy statuses.
pub(crate) fn apply(
    snapshot: &Snapshot,
    routes: &mut Routes,
    gateways: &[GatewayCtx],
) -> Vec<PolicyStatus> {
    if snapshot.backend_tls_policies.is_empty() {
        return Vec::new(); // the common case: no work per backend or route
    }
    let mut judged: Vec<Judged<'_>> = snapshot
        .backend_tls_policies
        .in_order()
        .into_iter()
        .map(|(key, policy)| Judged {
            key,
            policy,
            result: unsupported_values_of(policy)
                .and_then(|()| unsupported_targets(policy))
                .and_then(|()| validate(snapshot, &key.namespace, policy)),
            conflicted: false,
        })
        .collect();
    // Conflicts: same (namespace, service, section) targeted twice; the oldest wins.
    let mut order: Vec<usize> = (0..judged.len()).collect();
    order.sort_by(|&a, &b| {
        let ta = crate::routes::creation_time(&judged[a].policy.metadata);
        let tb = crate::routes::creation_time(&judged[b].policy.metadata);
        ta.cmp(&tb).then(judged[a].key.cmp(judged[b].key))
    });
    let mut claimed: BTreeSet<Target> = BTreeSet::new();
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
    let targets: Vec<Vec<Target>> = judged.iter().map(targets).collect();
    let mut targeting: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut invalid_backends: BTreeSet<String> = BTreeSet::new();
    for (name, backend) in routes.backends.iter_mut() {
        let ports = target_ports(snapshot, name);
        if ports.is_empty() {
            continue;
        }
        let hits = |i: usize, key: &Target| targets[i].contains(key);
        // `sectioned`: the policy names this port; otherwise it names the whole Service.
        let targeted = |i: usize, sectioned: bool| {
            ports.iter().any(|(kind, ns, service, port_name)| {
                let section = match (sectioned, port_name) {
                    (false, _) => None,
                    (true, Some(p)) => Some(p.clone()),
                    (true, None) => return false,
                };
                hits(i, &(*kind, ns.clone(), service.clone(), section))
            })
        };
        let all: Vec<usize> = (0..judged.len())
            .filter(|&i| targeted(i, true) || targeted(i, false))
            .collect();
        if all.is_empty() {
            continue;
        }
        let usable = |sectioned: bool| {
            all.iter().copied().find(|&i| {
                !judged[i].conflicted && judged[i].result.is_ok() && targeted(i, sectioned)
            })
        };
        match usable(true).or_else(|| usable(false)) {
            Some(i) => backend.tls = judged[i].result.as_ref().ok().cloned(),
            // Only invalid policies target it: routes to it must say so.
            None if all.iter().any(|&i| !judged[i].conflicted) => {
                invalid_backends.insert(name.clone());
            }
            None => {}
        }
        targeting.insert(name.clone(), all);
    }

    // Ancestors: the parents through which accepted routes reach a targeted backend.
    let mut ancestors: BTreeMap<usize, Vec<(GatewayKey, ParentRef)>> = BTreeMap::new();
    for a in &routes.attachments {
        if !gateways.iter().any(|g| g.key == a.gateway) {
            continue;
        }
        for backend in backends_of(&a.payload) {
            for &i in targeting.get(&backend).into_iter().flatten() {
                let list = ancestors.entry(i).or_default();
                if !list.iter().any(|(_, r)| *r == a.parent) {
                    list.push((a.gateway.clone(), a.parent.clone()));
                }
            }
        }
    }
    // Deterministic order, then the API's limit. Every ancestor of one policy has the same
    // conditions today, so "problems first" orders policies' ancestors only by their refs;
    // the rank stays in the key so a per-ancestor problem would sort first.
    let mut overflow: Vec<(usize, GatewayKey, ParentRef)> = Vec::new();
    for (&i, list) in ancestors.iter_mut() {
        let rank = u8::from(judged[i].result.is_ok() && !judged[i].conflicted);
        list.sort_by(|a, b| (rank, ancestor_key(&a.1)).cmp(&(rank, ancestor_key(&b.1))));
        if list.len() > MAX_ANCESTORS {
            let dropped = list.split_off(MAX_ANCESTORS);
            // Only a policy that applies can be unimplementable through a parent; a
            // conflicted or invalid one applies nowhere (and routes to its backends already
            // say so when it is the only one).
            if rank == 1 {
                overflow.extend(dropped.into_iter().map(|(g, r)| (i, g, r)));
            }
        }
    }
    mark_invalid_backend_tls(routes, &invalid_backends);
    mark_overflow(routes, &judged, &targeting, &ancestors, &overflow);
    judged
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let generation = j.policy.metadata.generation;
            let conditions = conditions(j)
                .into_iter()
                .map(|c| c.at_generation(generation))
                .collect::<Vec<_>>();
            PolicyStatus {
                namespace: j.key.namespace.clone(),
                name: j.key.name.clone(),
                ancestors: ancestors
                    .get(&i)
                    .into_iter()
                    .flatten()
                    .map(|(_, r)| AncestorStatus {
                        ancestor_ref: r.clone(),
                        conditions: conditions.clone(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Sort key of an ancestor ref: namespace, name, kind, section, port.
fn ancestor_key(r: &ParentRef) -> (Option<&str>, &str, Option<&str>, Option<&str>, Option<i32>) {
    (
        r.namespace.as_deref(),
        r.name.as_str(),
        r.kind.as_deref(),
        r.section_name.as_deref(),
        r.port,
    )
}

/// Through parents that did not fit in a policy's ancestors the policy cannot be applied:
/// routes through them get `ResolvedRefs: False`, and their Gateway stops sending to the
/// policy's backends unless another of its parents made the list (a backend is one cluster
/// per Gateway, with or without TLS).
fn mark_overflow(
    routes: &mut Routes,
    judged: &[Judged<'_>],
    targeting: &BTreeMap<String, Vec<usize>>,
    ancestors: &BTreeMap<usize, Vec<(GatewayKey, ParentRef)>>,
    overflow: &[(usize, GatewayKey, ParentRef)],
) {
    for (i, gateway, parent) in overflow {
        let policy = &judged[*i].key;
        let backends: BTreeSet<&String> = targeting
            .iter()
            .filter(|(_, ps)| ps.contains(i))
            .map(|(b, _)| b)
            .collect();
        let kept = ancestors
            .get(i)
            .is_some_and(|l| l.iter().any(|(g, _)| g == gateway));
        if !kept {
            routes
                .blocked
                .extend(backends.iter().map(|b| (gateway.clone(), (*b).clone())));
        }
        let affected: BTreeSet<(String, String, String)> = routes
            .attachments
            .iter()
            .filter(|a| {
                a.gateway == *gateway
                    && a.parent == *parent
                    && backends_of(&a.payload).iter().any(|b| backends.contains(b))
            })
            .map(|a| route_id(&a.payload))
            .collect();
        let message = format!(
            "BackendTLSPolicy {policy} already lists {MAX_ANCESTORS} ancestors (the API's maximum), so it cannot be applied through this parent"
        );
        for status in &mut routes.statuses {
            if !affected.contains(&(
                status.kind.clone(),
                status.namespace.clone(),
                status.name.clone(),
            )) {
                continue;
            }
            let route_ns = status.namespace.clone();
            for p in &mut status.parents {
                let written = ParentRef {
                    namespace: Some(
                        p.parent_ref
                            .namespace
                            .clone()
                            .unwrap_or_else(|| route_ns.clone()),
                    ),
                    ..p.parent_ref.clone()
                };
                if written != *parent {
                    continue;
                }
                for c in &mut p.conditions {
                    if c.type_ == types::RESOLVED_REFS {
                        *c = Condition::not(
                            types::RESOLVED_REFS,
                            reasons::INVALID_BACKEND_TLS,
                            message.clone(),
                        )
                        .at_generation(c.observed_generation);
                    }
                }
            }
        }
    }
}

fn route_id(payload: &Payload) -> (String, String, String) {
    match payload {
        Payload::Http(r) => (r.kind.to_string(), r.namespace.clone(), r.name.clone()),
        Payload::Stream(r) => (r.kind.to_string(), r.namespace.clone(), r.name.clone()),
    }
}

fn conditions(j: &Judged<'_>) -> Vec<Condition> {
    match (&j.result, j.conflicted) {
        (Err(problem), _) => vec![
            Condition::not(types::ACCEPTED, problem.accepted, problem.message.clone()),
            match problem.resolved {
                Some(reason) => {
                    Condition::not(types::RESOLVED_REFS, reason, problem.message.clone())
                }
                None => Condition::ok(
                    types::RESOLVED_REFS,
                    reasons::RESOLVED_REFS,
                    "Resolved all the Object references.",
                ),
            },
        ],
        (Ok(_), true) => vec![
            Condition::not(
                types::ACCEPTED,
                reasons::CONFLICTED,
                "Another, older BackendTLSPolicy targets the same Service port",
            ),
            Condition::ok(
                types::RESOLVED_REFS,
                reasons::RESOLVED_REFS,
                "Resolved all the Object references.",
            ),
        ],
        (Ok(_), false) => vec![
            Condition::ok(
                types::ACCEPTED,
                reasons::ACCEPTED,
                "Policy has been accepted.",
            ),
            Condition::ok(
                types::RESOLVED_REFS,
                reasons::RESOLVED_REFS,
                "Resolved all the Object references.",
            ),
        ],
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

/// The Service and ServiceImport targets of a policy (other kinds make it invalid, see
/// [`unsupported_targets`]).
fn targets(j: &Judged<'_>) -> Vec<Target> {
    j.policy
        .spec
        .target_refs
        .iter()
        .filter_map(|t| {
            target_kind(&t.group, &t.kind).map(|kind| {
                (
                    kind,
                    j.key.namespace.clone(),
                    t.name.clone(),
                    t.section_name.clone(),
                )
            })
        })
        .collect()
}

fn target_kind(group: &str, kind: &str) -> Option<&'static str> {
    match (group, kind) {
        ("" | "core", "Service") => Some("Service"),
        (MULTICLUSTER_GROUP, "ServiceImport") => Some("ServiceImport"),
        _ => None,
    }
}

/// Enum values the types do not know (a subjectAltNames type, say) were substituted when
/// the policy was read: such a policy is not accepted, so a substitute never acts.
fn unsupported_values_of(policy: &BackendTlsPolicy) -> Result<(), PolicyProblem> {
    let values = ferrogate_store::unsupported_values(&policy.metadata);
    if values.is_empty() {
        return Ok(());
    }
    Err(PolicyProblem {
        accepted: reasons::INVALID,
        resolved: None,
        message: values
            .iter()
            .map(ferrogate_store::UnsupportedValue::describe)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// A target Ferrogate cannot apply the policy to: the policy is not accepted (never
/// silently ignored).
fn unsupported_targets(policy: &BackendTlsPolicy) -> Result<(), PolicyProblem> {
    let bad: Vec<String> = policy
        .spec
        .target_refs
        .iter()
        .filter(|t| target_kind(&t.group, &t.kind).is_none())
        .map(|t| format!("{}/{} {}", t.group, t.kind, t.name))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(PolicyProblem {
        accepted: reasons::INVALID,
        resolved: None,
        message: format!(
            "targetRefs {} are not supported: a BackendTLSPolicy applies to a Service or a {MULTICLUSTER_GROUP} ServiceImport",
            bad.join(", ")
        ),
    })
}

/// The ports behind a backend name (`<ns>/<name>/<port>[/<suffix>]`, as `backend.rs` builds
/// them): every Service and ServiceImport of that name with that port, as (kind, namespace,
/// name, port name). Both kinds may exist under one name; a policy on either applies.
fn target_ports(
    snapshot: &Snapshot,
    backend: &str,
) -> Vec<(&'static str, String, String, Option<String>)> {
    let mut parts = backend.split('/');
    let (Some(ns), Some(name), Some(Ok(port))) = (
        parts.next(),
        parts.next(),
        parts.next().map(str::parse::<i32>),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(p) = snapshot.services.get(ns, name).and_then(|s| {
        s.spec
            .as_ref()?
            .ports
            .as_ref()?
            .iter()
            .find(|p| p.port == port)
            .cloned()
    }) {
        out.push(("Service", ns.to_string(), name.to_string(), p.name));
    }
    if let Some(p) = snapshot
        .service_imports
        .get(ns, name)
        .and_then(|s| s.spec.ports.iter().find(|p| p.port == port).cloned())
    {
        out.push(("ServiceImport", ns.to_string(), name.to_string(), p.name));
    }
    out
}

fn validate(
    snapshot: &Snapshot,
    namespace: &str,
    policy: &BackendTlsPolicy,
) -> Result<UpstreamTls, PolicyProblem> {
    let problem = |accepted: &'static str, resolved: &'static str, message: String| PolicyProblem {
        accepted,
        resolved: Some(resolved),
        message,
    };
    let v = &policy.spec.validation;
    let refs = v.ca_certificate_refs.as_deref().unwrap_or_default();
    let well_known = v.well_known_ca_certificates.as_deref();
    let invalid = |message: String| {
        problem(
            reasons::NO_VALID_CA_CERTIFICATE,
            reasons::INVALID_CA_CERTIFICATE_REF,
            message,
        )
    };
    if refs.is_empty() && well_known.is_none() {
        return Err(problem(
            reasons::INVALID,
            reasons::UNSUPPORTED_VALUE,
            "validation needs caCertificateRefs or wellKnownCACertificates".into(),
        ));
    }
    if !refs.is_empty() && well_known.is_some() {
        return Err(problem(
            reasons::INVALID,
            reasons::UNSUPPORTED_VALUE,
            "caCertificateRefs and wellKnownCACertificates are exclusive".into(),
        ));
    }
    if let Some(w) = well_known
        && w != "System"
    {
        return Err(problem(
            reasons::INVALID,
            reasons::UNSUPPORTED_VALUE,
            format!("wellKnownCACertificates {w} is not supported"),
        ));
    }
    let mut bundle = String::new();
    for r in refs {
        let pem = match (r.group.as_str(), r.kind.as_str()) {
            ("", "ConfigMap") => {
                let cm = snapshot
                    .config_maps
                    .get(namespace, &r.name)
                    .ok_or_else(|| {
                        invalid(format!("ConfigMap {namespace}/{} not found", r.name))
                    })?;
                pick_ca(cm.data.clone().unwrap_or_default())
                    .ok_or_else(|| invalid(format!("No ca found in configmap {}.", r.name)))?
            }
            ("", "Secret") => {
                let s = snapshot
                    .secrets
                    .get(namespace, &r.name)
                    .ok_or_else(|| invalid(format!("Secret {namespace}/{} not found", r.name)))?;
                let data = s
                    .data
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).to_string()))
                    .collect();
                pick_ca(data)
                    .ok_or_else(|| invalid(format!("No ca found in secret {}.", r.name)))?
            }
            ("" | "certificates.k8s.io", "ClusterTrustBundle") => {
                let b = snapshot
                    .cluster_trust_bundles
                    .get("", &r.name)
                    .ok_or_else(|| invalid(format!("ClusterTrustBundle {} not found", r.name)))?;
                b.spec.trust_bundle.clone()
            }
            (g, k) => {
                return Err(problem(
                    reasons::NO_VALID_CA_CERTIFICATE,
                    reasons::INVALID_KIND,
                    format!(
                        "caCertificateRef {g}/{k} {} is not a ConfigMap, Secret or ClusterTrustBundle",
                        r.name
                    ),
                ));
            }
        };
        if x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .is_none()
        {
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
    data.get("ca.crt")
        .or_else(|| data.get("tls.crt"))
        .or_else(|| data.values().next())
        .filter(|v| v.contains("BEGIN CERTIFICATE"))
        .cloned()
}

/// Routes that reach a backend whose BackendTLSPolicy is invalid get `ResolvedRefs: False`,
/// and no Gateway sends to that backend: its share is answered with 500. Sending plaintext
/// to a backend whose policy asks for TLS would be wrong (the upstream conformance suite's
/// BackendTLSPolicyInvalidCACertificateRef and BackendTLSPolicyInvalidKind expect a 5xx).
fn mark_invalid_backend_tls(routes: &mut Routes, invalid: &BTreeSet<String>) {
    if invalid.is_empty() {
        return;
    }
    let mut affected = BTreeSet::new();
    for a in &routes.attachments {
        let reached: Vec<String> = backends_of(&a.payload)
            .into_iter()
            .filter(|b| invalid.contains(b))
            .collect();
        if !reached.is_empty() {
            affected.insert(route_id(&a.payload));
        }
        for backend in reached {
            routes.blocked.insert((a.gateway.clone(), backend));
        }
    }
    for status in &mut routes.statuses {
        if !affected.contains(&(
            status.kind.clone(),
            status.namespace.clone(),
            status.name.clone(),
        )) {
            continue;
        }
        for parent in &mut status.parents {
            for c in &mut parent.conditions {
                if c.type_ == types::RESOLVED_REFS
                    && c.status == ferrogate_status::ConditionStatus::True
                {
                    *c = Condition::not(
                        types::RESOLVED_REFS,
                        reasons::INVALID_BACKEND_TLS,
                        "the BackendTLSPolicy of a backend is invalid",
                    )
                    .at_generation(c.observed_generation);
                }
            }
        }
    }
}
