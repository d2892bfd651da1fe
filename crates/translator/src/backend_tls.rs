//! BackendTLSPolicy: TLS from Envoy to Services. A policy targets a Service or a
//! ServiceImport (or one of its ports by name); it applies to every backend of that port,
//! and it is reported on every parent through which an accepted route reaches that backend,
//! named as the route's parentRef names it (`sectionName`/`port` only when the parentRef
//! has them). A target of any other kind makes the policy `Accepted: False` (`Invalid`).
//! Two policies on the same target conflict: the older one (creation time, then
//! namespace/name) wins and the other is `Accepted: False` / `Conflicted`. A policy on a
//! port (sectionName) is more specific than one on the whole Service and both may exist.
//!
//! The policies are judged once per translation ([`Policies::judge`]). Backend resolution
//! asks them for the upstream TLS of every Service port it resolves
//! ([`Policies::upstream_tls`]): the backend leaves resolution with its TLS settings, or, when
//! only invalid policies target it, as the route's `ResolvedRefs: False` /
//! `InvalidBackendTLS` problem (no traffic goes to it: sending plaintext to a backend whose
//! policy asks for TLS would be wrong; the upstream conformance suite's
//! BackendTLSPolicyInvalidCACertificateRef and BackendTLSPolicyInvalidKind expect a 5xx).
//! Resolution records which policies it met; route attachment turns that into ancestors, and
//! [`Policies::settle`] writes the policy statuses from them. At most [`MAX_ANCESTORS`]
//! ancestors are listed, sorted (problems first, then by name); through the parents that do
//! not fit the policy is unimplementable, as the API says: routes through them say so, and
//! their Gateways do not send to the targeted backends.

use std::collections::{BTreeMap, BTreeSet};

use ferrogate_api::gateway::{
    BackendTlsPolicy, BackendTlsPolicyValidationSubjectAltNamesType as SanType,
};
use ferrogate_ir::{GatewayKey, UpstreamTls};
use ferrogate_status::{AncestorStatus, Condition, ParentRef, PolicyStatus};
use ferrogate_store::{ObjectKey, Snapshot};

use crate::conditions::{Problem, reasons, types};

/// `PolicyStatus.ancestors` MaxItems: the API server refuses more.
pub(crate) const MAX_ANCESTORS: usize = 16;

const MULTICLUSTER_GROUP: &str = "multicluster.x-k8s.io";

/// A policy, by its index in [`Policies`].
pub(crate) type PolicyId = usize;

/// What backend resolution met: by backend name, the policies that target its Service port.
pub(crate) type Targets = BTreeMap<String, Vec<PolicyId>>;

/// The parents through which accepted routes reach each policy's backends: the Gateway, and
/// the parentRef as the route wrote it with the namespace filled in.
pub(crate) type Ancestors = BTreeMap<PolicyId, Vec<(GatewayKey, ParentRef)>>;

/// What a policy targets: (kind, namespace, name, sectionName).
type Target = (&'static str, String, String, Option<String>);

/// Why a policy cannot be used: its `Accepted: False`, and its `ResolvedRefs: False` when
/// the problem is a reference.
#[derive(Clone)]
struct PolicyProblem {
    accepted: Problem,
    unresolved: Option<Problem>,
}

impl PolicyProblem {
    fn invalid(message: String) -> Self {
        Self {
            accepted: Problem::not_accepted(reasons::INVALID, message),
            unresolved: None,
        }
    }

    fn of_ref(accepted: &'static str, resolved: &'static str, message: String) -> Self {
        Self {
            accepted: Problem::not_accepted(accepted, message.clone()),
            unresolved: Some(Problem::unresolved(resolved, message)),
        }
    }
}

/// A policy, judged.
struct Judged<'a> {
    key: &'a ObjectKey,
    policy: &'a BackendTlsPolicy,
    /// Its Service and ServiceImport targets.
    targets: Vec<Target>,
    /// The TLS settings, or why the policy cannot be used.
    result: Result<UpstreamTls, PolicyProblem>,
    /// Lost a conflict to an older policy.
    conflicted: bool,
}

impl Judged<'_> {
    /// Applies where it targets: valid and not conflicted.
    fn applies(&self) -> bool {
        self.result.is_ok() && !self.conflicted
    }
}

/// Every BackendTLSPolicy of a snapshot, judged, in input order.
pub(crate) struct Policies<'a> {
    judged: Vec<Judged<'a>>,
}

/// What [`Policies::settle`] decided once every route was attached.
pub(crate) struct Settled {
    /// The status of every policy.
    pub statuses: Vec<PolicyStatus>,
    /// (Gateway, backend) pairs the Gateway must not send to: a policy that applies there
    /// could not list any of the Gateway's parents among its ancestors.
    pub blocked: Vec<(GatewayKey, String)>,
    /// Parents through which a policy is unimplementable (its ancestors were full), with the
    /// problem routes reaching its backends through them report.
    pub unimplementable: Vec<(PolicyId, ParentRef, Problem)>,
}

impl<'a> Policies<'a> {
    /// Validates every policy and settles conflicts between them.
    pub(crate) fn judge(snapshot: &'a Snapshot) -> Self {
        let mut judged: Vec<Judged<'a>> = snapshot
            .backend_tls_policies
            .in_order()
            .into_iter()
            .map(|(key, policy)| Judged {
                key,
                policy,
                targets: targets(&key.namespace, policy),
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
        let mut claimed: BTreeSet<&Target> = BTreeSet::new();
        let mut lost = vec![false; judged.len()];
        for i in order {
            for t in &judged[i].targets {
                if !claimed.insert(t) {
                    lost[i] = true;
                }
            }
        }
        for (j, lost) in judged.iter_mut().zip(lost) {
            j.conflicted = lost;
        }
        Self { judged }
    }

    /// The upstream TLS of `backend`, the resolved port `port` of the Service (or
    /// ServiceImport) `namespace/service`: the policy naming that port applies, else the one
    /// on the whole Service. Records the policies that target it in `met`. A backend that
    /// only invalid policies target is a problem of the route that refers to it.
    pub(crate) fn upstream_tls(
        &self,
        snapshot: &Snapshot,
        (namespace, service, port): (&str, &str, i32),
        backend: &str,
        met: &mut Targets,
    ) -> Result<Option<UpstreamTls>, Problem> {
        if self.judged.is_empty() {
            return Ok(None); // the common case: no work per backend
        }
        let ports = target_ports(snapshot, namespace, service, port);
        // `sectioned`: the policy names this port; otherwise it names the whole Service.
        let targeted = |j: &Judged<'_>, sectioned: bool| {
            ports.iter().any(|(kind, port_name)| {
                let section = match (sectioned, port_name) {
                    (false, _) => None,
                    (true, Some(p)) => Some(p.clone()),
                    (true, None) => return false,
                };
                let target = (*kind, namespace.to_string(), service.to_string(), section);
                j.targets.contains(&target)
            })
        };
        let all: Vec<PolicyId> = (0..self.judged.len())
            .filter(|&i| targeted(&self.judged[i], true) || targeted(&self.judged[i], false))
            .collect();
        if all.is_empty() {
            return Ok(None);
        }
        let usable = |sectioned: bool| {
            all.iter()
                .map(|&i| &self.judged[i])
                .find(|j| j.applies() && targeted(j, sectioned))
        };
        let tls = match usable(true).or_else(|| usable(false)) {
            Some(j) => Ok(j.result.as_ref().ok().cloned()),
            None if all.iter().any(|&i| !self.judged[i].conflicted) => Err(Problem::unresolved(
                reasons::INVALID_BACKEND_TLS,
                "the BackendTLSPolicy of a backend is invalid",
            )),
            None => Ok(None),
        };
        met.insert(backend.to_string(), all);
        tls
    }

    /// The policy statuses, from the ancestors route attachment recorded and the backends
    /// resolution met (`targets`). Ancestors are sorted and cut at the API's limit; through
    /// the parents that do not fit, a policy that applies is unimplementable.
    pub(crate) fn settle(&self, mut ancestors: Ancestors, targets: &Targets) -> Settled {
        let mut settled = Settled {
            statuses: Vec::new(),
            blocked: Vec::new(),
            unimplementable: Vec::new(),
        };
        // Deterministic order, then the API's limit. Every ancestor of one policy has the
        // same conditions today, so "problems first" orders policies' ancestors only by
        // their refs; the rank stays in the key so a per-ancestor problem would sort first.
        for (&i, list) in ancestors.iter_mut() {
            let j = &self.judged[i];
            let rank = u8::from(j.applies());
            list.sort_by(|a, b| (rank, ancestor_key(&a.1)).cmp(&(rank, ancestor_key(&b.1))));
            // Only a policy that applies can be unimplementable through a parent; a
            // conflicted or invalid one applies nowhere (and routes to its backends already
            // say so when it is the only one).
            if list.len() <= MAX_ANCESTORS || !j.applies() {
                list.truncate(MAX_ANCESTORS);
                continue;
            }
            let dropped = list.split_off(MAX_ANCESTORS);
            let backends: Vec<&String> = targets
                .iter()
                .filter(|(_, ps)| ps.contains(&i))
                .map(|(b, _)| b)
                .collect();
            let message = format!(
                "BackendTLSPolicy {} already lists {MAX_ANCESTORS} ancestors (the API's maximum), so it cannot be applied through this parent",
                j.key
            );
            for (gateway, parent) in dropped {
                // A backend is one cluster per Gateway, with or without TLS: the Gateway
                // stops sending to the policy's backends unless another of its parents made
                // the list.
                if !list.iter().any(|(g, _)| *g == gateway) {
                    settled
                        .blocked
                        .extend(backends.iter().map(|b| (gateway.clone(), (*b).clone())));
                }
                let problem = Problem::unresolved(reasons::INVALID_BACKEND_TLS, message.clone());
                settled.unimplementable.push((i, parent, problem));
            }
        }
        settled.statuses = self
            .judged
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
            .collect();
        settled
    }
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

fn conditions(j: &Judged<'_>) -> Vec<Condition> {
    match (&j.result, j.conflicted) {
        (Err(problem), _) => vec![
            problem.accepted.condition(),
            problem
                .unresolved
                .as_ref()
                .map_or_else(resolved, Problem::condition),
        ],
        (Ok(_), true) => vec![
            Condition::not(
                types::ACCEPTED,
                reasons::CONFLICTED,
                "Another, older BackendTLSPolicy targets the same Service port",
            ),
            resolved(),
        ],
        (Ok(_), false) => vec![
            Condition::ok(
                types::ACCEPTED,
                reasons::ACCEPTED,
                "Policy has been accepted.",
            ),
            resolved(),
        ],
    }
}

fn resolved() -> Condition {
    Condition::ok(
        types::RESOLVED_REFS,
        reasons::RESOLVED_REFS,
        "Resolved all the Object references.",
    )
}

/// The Service and ServiceImport targets of a policy (other kinds make it invalid, see
/// [`unsupported_targets`]).
fn targets(namespace: &str, policy: &BackendTlsPolicy) -> Vec<Target> {
    policy
        .spec
        .target_refs
        .iter()
        .filter_map(|t| {
            target_kind(&t.group, &t.kind).map(|kind| {
                (
                    kind,
                    namespace.to_string(),
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
    Err(PolicyProblem::invalid(
        values
            .iter()
            .map(ferrogate_store::UnsupportedValue::describe)
            .collect::<Vec<_>>()
            .join("; "),
    ))
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
    Err(PolicyProblem::invalid(format!(
        "targetRefs {} are not supported: a BackendTLSPolicy applies to a Service or a {MULTICLUSTER_GROUP} ServiceImport",
        bad.join(", ")
    )))
}

/// The ports numbered `port` of every Service and ServiceImport named `namespace/name`, as
/// (kind, port name). Both kinds may exist under one name, and a backend is named after
/// namespace, name and port only (see `backend.rs`), so a policy on either applies.
fn target_ports(
    snapshot: &Snapshot,
    namespace: &str,
    name: &str,
    port: i32,
) -> Vec<(&'static str, Option<String>)> {
    let mut out = Vec::new();
    if let Some(p) = snapshot.services.get(namespace, name).and_then(|s| {
        s.spec
            .as_ref()?
            .ports
            .as_ref()?
            .iter()
            .find(|p| p.port == port)
    }) {
        out.push(("Service", p.name.clone()));
    }
    if let Some(p) = snapshot
        .service_imports
        .get(namespace, name)
        .and_then(|s| s.spec.ports.iter().find(|p| p.port == port))
    {
        out.push(("ServiceImport", p.name.clone()));
    }
    out
}

fn validate(
    snapshot: &Snapshot,
    namespace: &str,
    policy: &BackendTlsPolicy,
) -> Result<UpstreamTls, PolicyProblem> {
    let problem = PolicyProblem::of_ref;
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
