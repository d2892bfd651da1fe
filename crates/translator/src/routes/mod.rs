//! Routes of every kind: attachment to listeners through parentRefs (sectionName, port,
//! allowedRoutes kinds and namespaces, hostnames), and the per-parent status.
//!
//! Each kind converts its rules once (`http`, `grpc`, `stream`); the attachment logic here
//! is shared, so every kind gets the same reasons for the same problems.

mod backend_filters;
mod envoy_limits;
mod grpc;
mod http;
pub(crate) mod http_filters;
pub(crate) mod http_matches;
pub(crate) mod http_rules;
pub(crate) mod http_timeouts;
mod open_values;
mod session;
mod stream;

use std::sync::Arc;

use ferrogate_api::GATEWAY_GROUP;
use ferrogate_ir::{Backend, GatewayKey, HeaderMods, HttpMatch, RouteAction, WeightedBackend};
use ferrogate_status::{Condition, ParentRef, RouteParentStatus, RouteStatus};
use ferrogate_store::Snapshot;

use crate::conditions::{Problem, reasons, types};
use crate::gateway::GatewayCtx;
use crate::hostname;

/// A route attached to one listener of one Gateway.
pub(crate) struct Attachment {
    pub gateway: GatewayKey,
    /// Index of the listener in the Gateway's (merged) listeners.
    pub listener: usize,
    /// Request hosts (or SNI names) the route serves through this listener.
    pub hostnames: Vec<String>,
    /// The parentRef through which the route attached, as the route wrote it, with the
    /// namespace filled in (policies name their ancestors this way).
    pub parent: ParentRef,
    pub payload: Payload,
}

/// What an attached route contributes.
#[derive(Clone)]
pub(crate) enum Payload {
    /// HTTPRoute or GRPCRoute rules.
    Http(Arc<ConvertedRoute>),
    /// TLSRoute, TCPRoute or UDPRoute backends.
    Stream(Arc<StreamRoute>),
}

/// An HTTP-like route converted to IR pieces (shared by every listener it attaches to).
pub(crate) struct ConvertedRoute {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// RFC 3339 creation time, for precedence tie-breaks (empty when unknown).
    pub created: String,
    pub rules: Vec<ConvertedRule>,
}

/// One rule of an HTTP-like route.
pub(crate) struct ConvertedRule {
    pub index: usize,
    pub matches: Vec<HttpMatch>,
    pub request_headers: HeaderMods,
    pub response_headers: HeaderMods,
    pub cors: Option<ferrogate_ir::Cors>,
    pub session_persistence: Option<ferrogate_ir::SessionPersistence>,
    pub action: RouteAction,
}

/// A TLS/TCP/UDP route: where its streams go.
pub(crate) struct StreamRoute {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub created: String,
    pub backends: Vec<WeightedBackend>,
}

/// All routes of a translation.
#[derive(Default)]
pub(crate) struct Routes {
    pub attachments: Vec<Attachment>,
    /// Every backend a route resolved, by name.
    pub backends: std::collections::BTreeMap<String, Backend>,
    /// (Gateway, backend) pairs the Gateway must not send to (a BackendTLSPolicy that could
    /// not list the Gateway among its ancestors): their share is answered with 500.
    pub blocked: std::collections::BTreeSet<(GatewayKey, String)>,
    pub statuses: Vec<RouteStatus>,
}

/// What a route kind hands to the shared attachment logic.
pub(crate) struct RouteInput<'a> {
    pub kind: &'static str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub generation: Option<i64>,
    pub hostnames: &'a [String],
    pub parents: Vec<ParentRef>,
    /// A problem that makes the route unacceptable for every parent.
    pub problem: Option<Problem>,
    pub resolved_refs: Condition,
    /// Some rules were dropped: `PartiallyInvalid: True`.
    pub partially_invalid: Option<Problem>,
    pub payload: Payload,
    pub backends: Vec<Backend>,
}

pub(crate) fn translate(snapshot: &Snapshot, gateways: &mut [GatewayCtx]) -> Routes {
    let mut routes = Routes::default();
    for (key, route) in snapshot.http_routes.in_order() {
        routes.add(snapshot, gateways, http::input(snapshot, key, route));
    }
    for (key, route) in snapshot.grpc_routes.in_order() {
        routes.add(snapshot, gateways, grpc::input(snapshot, key, route));
    }
    for (key, route) in snapshot.tls_routes.in_order() {
        routes.add(snapshot, gateways, stream::tls_input(snapshot, key, route));
    }
    for (key, route) in snapshot.tcp_routes.in_order() {
        routes.add(snapshot, gateways, stream::tcp_input(snapshot, key, route));
    }
    for (key, route) in snapshot.udp_routes.in_order() {
        routes.add(snapshot, gateways, stream::udp_input(snapshot, key, route));
    }
    routes
}

impl Routes {
    fn add(&mut self, snapshot: &Snapshot, gateways: &mut [GatewayCtx], input: RouteInput<'_>) {
        for backend in &input.backends {
            self.backends.insert(backend.name.clone(), backend.clone());
        }
        let mut parents = Vec::new();
        for parent in &input.parents {
            let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
            let kind = parent.kind.as_deref().unwrap_or("Gateway");
            let namespace = parent.namespace.as_deref().unwrap_or(input.namespace);
            let gateway = match (group, kind) {
                (GATEWAY_GROUP, "Gateway") => gateways
                    .iter_mut()
                    .find(|g| g.key.namespace == namespace && g.key.name == parent.name),
                (GATEWAY_GROUP, "ListenerSet") => gateways
                    .iter_mut()
                    .find(|g| g.has_listener_set(namespace, &parent.name)),
                _ => None,
            };
            let Some(gateway) = gateway else {
                continue; // missing parent, or one of another controller: no status from us
            };
            let listener_set =
                (kind == "ListenerSet").then(|| (namespace.to_string(), parent.name.clone()));
            let accepted = self.attach(snapshot, gateway, &input, parent, listener_set);
            let mut conditions = vec![accepted.at_generation(input.generation)];
            conditions.push(input.resolved_refs.clone().at_generation(input.generation));
            if let Some(p) = &input.partially_invalid {
                conditions.push(p.condition().at_generation(input.generation));
            }
            parents.push(RouteParentStatus {
                parent_ref: parent.clone(),
                conditions,
            });
        }
        self.statuses.push(RouteStatus {
            kind: input.kind.into(),
            namespace: input.namespace.to_string(),
            name: input.name.to_string(),
            parents,
        });
    }

    /// Attaches a route to the listeners of one parent; returns the `Accepted` condition.
    fn attach(
        &mut self,
        snapshot: &Snapshot,
        gateway: &mut GatewayCtx,
        input: &RouteInput<'_>,
        parent: &ParentRef,
        listener_set: Option<(String, String)>,
    ) -> Condition {
        let candidates: Vec<usize> = (0..gateway.listeners.len())
            .filter(|&i| {
                let l = &gateway.listeners[i];
                gateway.listener_owner(i) == listener_set.as_ref()
                    && parent.section_name.as_deref().is_none_or(|s| s == l.name)
                    && parent.port.is_none_or(|p| i32::from(l.port) == p)
            })
            .collect();
        if candidates.is_empty() {
            return Condition::not(
                types::ACCEPTED,
                reasons::NO_MATCHING_PARENT,
                "No listeners match this parent ref",
            );
        }
        let gateway_ns = gateway.key.namespace.clone();
        let allowed: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| {
                let l = &gateway.listeners[i];
                let owner_ns = gateway
                    .listener_namespace(i)
                    .unwrap_or(&gateway_ns)
                    .to_string();
                l.accepts_attachments()
                    && l.accepts_kind(input.kind)
                    && l.namespaces.allows(snapshot, &owner_ns, input.namespace)
            })
            .collect();
        if allowed.is_empty() {
            return Condition::not(
                types::ACCEPTED,
                reasons::NOT_ALLOWED_BY_LISTENERS,
                "No listeners included by this parent ref allowed this attachment.",
            );
        }
        let uses_hostnames = matches!(input.kind, "HTTPRoute" | "GRPCRoute" | "TLSRoute");
        let matching: Vec<(usize, Vec<String>)> = allowed
            .into_iter()
            .filter_map(|i| {
                if !uses_hostnames {
                    return Some((i, Vec::new()));
                }
                let hosts =
                    hostname::intersect(gateway.listeners[i].hostname.as_deref(), input.hostnames);
                (!hosts.is_empty()).then_some((i, hosts))
            })
            .collect();
        if matching.is_empty() {
            return Condition::not(
                types::ACCEPTED,
                reasons::NO_MATCHING_LISTENER_HOSTNAME,
                "There were no hostname intersections between the HTTPRoute and this parent ref's Listener(s).",
            );
        }
        // Attachment depends only on parentRefs and what the listeners allow; a route with
        // broken rules is still attached (and counted), just not accepted. A route whose
        // shape the kind does not allow at all (InvalidRule) is not attached.
        if !matches!(&input.problem, Some(p) if p.reason == reasons::INVALID_RULE) {
            for (listener, _) in &matching {
                gateway.listeners[*listener].attached_routes += 1;
            }
        }
        if let Some(p) = &input.problem {
            return p.condition();
        }
        let parent = ParentRef {
            namespace: Some(
                parent
                    .namespace
                    .clone()
                    .unwrap_or_else(|| input.namespace.to_string()),
            ),
            ..parent.clone()
        };
        for (listener, hostnames) in matching {
            self.attachments.push(Attachment {
                gateway: gateway.key.clone(),
                listener,
                hostnames,
                parent: parent.clone(),
                payload: input.payload.clone(),
            });
        }
        Condition::ok(types::ACCEPTED, reasons::ACCEPTED, "Route is accepted")
    }
}

/// RFC 3339 creation time of an object, or empty.
pub(crate) fn creation_time(meta: &ferrogate_api::k8s::ObjectMeta) -> String {
    meta.creation_timestamp
        .as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A parentRef of any route kind, as our status model writes it.
macro_rules! parent_refs {
    ($refs:expr) => {
        $refs
            .iter()
            .flatten()
            .map(|p| ferrogate_status::ParentRef {
                group: p.group.clone(),
                kind: p.kind.clone(),
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                section_name: p.section_name.clone(),
                port: p.port,
            })
            .collect::<Vec<_>>()
    };
}
pub(crate) use parent_refs;
