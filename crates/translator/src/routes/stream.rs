//! TLSRoute, TCPRoute and UDPRoute into the shared route input: one set of weighted
//! backends each. TCPRoute and UDPRoute take exactly one rule.

use std::sync::Arc;

use ferrogate_api::gateway::{TcpRoute, TlsRoute, UdpRoute};
use ferrogate_ir::{Backend, WeightedBackend};
use ferrogate_store::ObjectKey;

use super::{Payload, RouteInput, StreamRoute, creation_time, parent_refs, resolved_refs};
use crate::backend::{BackendRef, RefProblem, Resolver, backend_ref};
use crate::backend_tls::Targets;
use crate::conditions::{Problem, reasons};

struct Resolved {
    backends: Vec<WeightedBackend>,
    resolved: Vec<Arc<Backend>>,
    problems: Vec<RefProblem>,
    tls_policies: Targets,
}

fn resolve<'a>(
    resolver: &Resolver<'_>,
    kind: &str,
    namespace: &str,
    udp: bool,
    refs: impl Iterator<Item = (BackendRef<'a>, Option<i32>)>,
) -> Resolved {
    let mut out = Resolved {
        backends: vec![],
        resolved: vec![],
        problems: vec![],
        tls_policies: Targets::new(),
    };
    for (reference, weight) in refs {
        let weight = weight.unwrap_or(1).max(0) as u32;
        match resolver.resolve_stream(kind, namespace, &reference, udp, &mut out.tls_policies) {
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

fn finish(
    kind: &'static str,
    key: &ObjectKey,
    meta: &ferrogate_api::k8s::ObjectMeta,
    hostnames: &[String],
    parents: Vec<Arc<ferrogate_status::ParentRef>>,
    rule_count: usize,
    r: Resolved,
) -> RouteInput {
    let resolved_refs = resolved_refs(&r.problems);
    let problem = (kind != "TLSRoute" && rule_count > 1).then(|| {
        Problem::not_accepted(
            reasons::INVALID_RULE,
            format!("{kind} supports exactly one rule, found {rule_count}"),
        )
    });
    RouteInput {
        kind,
        generation: meta.generation,
        hostnames: hostnames.to_vec(),
        parents,
        problem: problem.map(Box::new),
        unresolved_refs: RouteInput::unresolved(resolved_refs),
        partially_invalid: None,
        payload: Payload::Stream(Arc::new(StreamRoute {
            kind,
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            created: creation_time(meta),
            backends: r.backends,
        })),
        backends: r.resolved,
        tls_policies: r.tls_policies,
    }
}

pub(super) fn tls_input(resolver: &Resolver<'_>, key: &ObjectKey, route: &TlsRoute) -> RouteInput {
    let refs = route
        .spec
        .rules
        .iter()
        .flat_map(|r| r.backend_refs.iter())
        .map(|b| (backend_ref!(b), b.weight));
    let r = resolve(resolver, "TLSRoute", &key.namespace, false, refs);
    finish(
        "TLSRoute",
        key,
        &route.metadata,
        &route.spec.hostnames,
        parent_refs!(resolver, route.spec.parent_refs),
        route.spec.rules.len(),
        r,
    )
}

pub(super) fn tcp_input(resolver: &Resolver<'_>, key: &ObjectKey, route: &TcpRoute) -> RouteInput {
    let refs = route
        .spec
        .rules
        .iter()
        .flat_map(|r| r.backend_refs.iter())
        .map(|b| (backend_ref!(b), b.weight));
    let r = resolve(resolver, "TCPRoute", &key.namespace, false, refs);
    finish(
        "TCPRoute",
        key,
        &route.metadata,
        &[],
        parent_refs!(resolver, route.spec.parent_refs),
        route.spec.rules.len(),
        r,
    )
}

pub(super) fn udp_input(resolver: &Resolver<'_>, key: &ObjectKey, route: &UdpRoute) -> RouteInput {
    let refs = route
        .spec
        .rules
        .iter()
        .flat_map(|r| r.backend_refs.iter())
        .map(|b| (backend_ref!(b), b.weight));
    let r = resolve(resolver, "UDPRoute", &key.namespace, true, refs);
    finish(
        "UDPRoute",
        key,
        &route.metadata,
        &[],
        parent_refs!(resolver, route.spec.parent_refs),
        route.spec.rules.len(),
        r,
    )
}
