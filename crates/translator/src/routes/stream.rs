//! TLSRoute, TCPRoute and UDPRoute into the shared route input: one set of weighted
//! backends each. TCPRoute and UDPRoute take exactly one rule.

use std::sync::Arc;

use ferrogate_api::gateway::{TcpRoute, TlsRoute, UdpRoute};
use ferrogate_ir::{Backend, WeightedBackend};
use ferrogate_status::Condition;
use ferrogate_store::{ObjectKey, Snapshot};

use super::{Payload, RouteInput, StreamRoute, creation_time, parent_refs};
use crate::backend::{self, BackendRef, RefProblem, backend_ref};
use crate::conditions::{Problem, reasons, types};

struct Resolved {
    backends: Vec<WeightedBackend>,
    resolved: Vec<Backend>,
    problems: Vec<RefProblem>,
}

fn resolve<'a>(
    snapshot: &Snapshot,
    kind: &str,
    namespace: &str,
    udp: bool,
    refs: impl Iterator<Item = (BackendRef<'a>, Option<i32>)>,
) -> Resolved {
    let mut out = Resolved {
        backends: vec![],
        resolved: vec![],
        problems: vec![],
    };
    for (reference, weight) in refs {
        let weight = weight.unwrap_or(1).max(0) as u32;
        match backend::resolve_stream(snapshot, kind, namespace, &reference, udp) {
            Ok(b) => {
                if weight > 0 {
                    out.backends
                        .push(WeightedBackend::new(b.name.clone(), weight));
                }
                if !out.resolved.iter().any(|x| x.name == b.name) {
                    out.resolved.push(b);
                }
            }
            Err(p) => out.problems.push(p),
        }
    }
    out
}

fn finish<'a>(
    kind: &'static str,
    key: &'a ObjectKey,
    meta: &ferrogate_api::k8s::ObjectMeta,
    hostnames: &'a [String],
    parents: Vec<ferrogate_status::ParentRef>,
    rule_count: usize,
    r: Resolved,
) -> RouteInput<'a> {
    let resolved_refs = match r.problems.first() {
        Some(first) => Condition::not(
            types::RESOLVED_REFS,
            first.reason,
            r.problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        None => Condition::ok(
            types::RESOLVED_REFS,
            reasons::RESOLVED_REFS,
            "Resolved all the Object references for the Route",
        ),
    };
    let problem = (kind != "TLSRoute" && rule_count > 1).then(|| {
        Problem::not_accepted(
            reasons::INVALID_RULE,
            format!("{kind} supports exactly one rule, found {rule_count}"),
        )
    });
    RouteInput {
        kind,
        namespace: &key.namespace,
        name: &key.name,
        generation: meta.generation,
        hostnames,
        parents,
        problem,
        resolved_refs,
        partially_invalid: None,
        payload: Payload::Stream(Arc::new(StreamRoute {
            kind,
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            created: creation_time(meta),
            backends: r.backends,
        })),
        backends: r.resolved,
    }
}

pub(super) fn tls_input<'a>(
    snapshot: &Snapshot,
    key: &'a ObjectKey,
    route: &'a TlsRoute,
) -> RouteInput<'a> {
    let refs = route
        .spec
        .rules
        .iter()
        .flat_map(|r| r.backend_refs.iter())
        .map(|b| (backend_ref!(b), b.weight));
    let r = resolve(snapshot, "TLSRoute", &key.namespace, false, refs);
    finish(
        "TLSRoute",
        key,
        &route.metadata,
        &route.spec.hostnames,
        parent_refs!(route.spec.parent_refs),
        route.spec.rules.len(),
        r,
    )
}

pub(super) fn tcp_input<'a>(
    snapshot: &Snapshot,
    key: &'a ObjectKey,
    route: &'a TcpRoute,
) -> RouteInput<'a> {
    let refs = route
        .spec
        .rules
        .iter()
        .flat_map(|r| r.backend_refs.iter())
        .map(|b| (backend_ref!(b), b.weight));
    let r = resolve(snapshot, "TCPRoute", &key.namespace, false, refs);
    finish(
        "TCPRoute",
        key,
        &route.metadata,
        &[],
        parent_refs!(route.spec.parent_refs),
        route.spec.rules.len(),
        r,
    )
}

pub(super) fn udp_input<'a>(
    snapshot: &Snapshot,
    key: &'a ObjectKey,
    route: &'a UdpRoute,
) -> RouteInput<'a> {
    let refs = route
        .spec
        .rules
        .iter()
        .flat_map(|r| r.backend_refs.iter())
        .map(|b| (backend_ref!(b), b.weight));
    let r = resolve(snapshot, "UDPRoute", &key.namespace, true, refs);
    finish(
        "UDPRoute",
        key,
        &route.metadata,
        &[],
        parent_refs!(route.spec.parent_refs),
        route.spec.rules.len(),
        r,
    )
}
