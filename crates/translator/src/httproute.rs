//! HTTPRoute: attachment to Gateway listeners (parentRefs, sectionName, port, allowedRoutes,
//! hostnames), conversion of rules into IR routes, and per-parent status.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrogate_api::GATEWAY_GROUP;
use ferrogate_api::gateway::HttpRoute;
use ferrogate_ir::{Backend, GatewayKey, HeaderMods, HttpMatch, RouteAction};
use ferrogate_status::{Condition, ParentRef, RouteParentStatus, RouteStatus};
use ferrogate_store::Snapshot;

use crate::conditions::{reasons, types};
use crate::gateway::GatewayCtx;
use crate::hostname;

mod rule;

/// A route attached to one listener of one Gateway.
pub(crate) struct Attachment {
    pub gateway: GatewayKey,
    /// Index of the listener in the Gateway's listeners.
    pub listener: usize,
    /// Request hosts the route serves through this listener.
    pub hostnames: Vec<String>,
    pub route: Arc<ConvertedRoute>,
}

/// An HTTPRoute converted to IR pieces (shared by every listener it attaches to).
pub(crate) struct ConvertedRoute {
    pub namespace: String,
    pub name: String,
    /// RFC 3339 creation time, for precedence tie-breaks (empty when unknown).
    pub created: String,
    pub rules: Vec<ConvertedRule>,
}

/// One rule of a route.
pub(crate) struct ConvertedRule {
    pub index: usize,
    pub matches: Vec<HttpMatch>,
    pub request_headers: HeaderMods,
    pub response_headers: HeaderMods,
    pub action: RouteAction,
}

/// All HTTPRoutes of a translation.
#[derive(Default)]
pub(crate) struct Routes {
    pub attachments: Vec<Attachment>,
    /// Every backend a route resolved, by name.
    pub backends: BTreeMap<String, Backend>,
    pub statuses: Vec<RouteStatus>,
}

pub(crate) fn translate(snapshot: &Snapshot, gateways: &mut [GatewayCtx]) -> Routes {
    let mut routes = Routes::default();
    for (key, route) in snapshot.http_routes.in_order() {
        let converted = rule::convert_route(snapshot, &key.namespace, route);
        for backend in &converted.backends {
            routes.backends.insert(backend.name.clone(), backend.clone());
        }
        let shared = Arc::new(ConvertedRoute {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            created: creation_time(route),
            rules: converted.rules,
        });
        let mut parents = Vec::new();
        for parent in route.spec.parent_refs.iter().flatten() {
            let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
            let kind = parent.kind.as_deref().unwrap_or("Gateway");
            if group != GATEWAY_GROUP || kind != "Gateway" {
                continue; // not a Gateway: not ours to report on
            }
            let namespace = parent.namespace.as_deref().unwrap_or(&key.namespace);
            let Some(gateway) = gateways.iter_mut().find(|g| g.key.namespace == namespace && g.key.name == parent.name) else {
                continue; // missing Gateway, or one of another controller: no status from us
            };
            let parent_ref = ParentRef {
                group: parent.group.clone(),
                kind: parent.kind.clone(),
                namespace: parent.namespace.clone(),
                name: parent.name.clone(),
                section_name: parent.section_name.clone(),
                port: parent.port,
            };
            let accepted = attach(snapshot, gateway, route, &key.namespace, &parent_ref, &converted.problem, &shared, &mut routes.attachments);
            let generation = route.metadata.generation;
            parents.push(RouteParentStatus {
                parent_ref,
                conditions: vec![accepted.at_generation(generation), converted.resolved_refs.clone().at_generation(generation)],
            });
        }
        routes.statuses.push(RouteStatus {
            kind: "HTTPRoute".into(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            parents,
        });
    }
    routes
}

/// Attaches a route to the listeners of one parent Gateway; returns the `Accepted` condition.
#[allow(clippy::too_many_arguments)]
fn attach(
    snapshot: &Snapshot,
    gateway: &mut GatewayCtx,
    route: &HttpRoute,
    route_ns: &str,
    parent: &ParentRef,
    problem: &Option<(&'static str, String)>,
    converted: &Arc<ConvertedRoute>,
    attachments: &mut Vec<Attachment>,
) -> Condition {
    let candidates: Vec<usize> = (0..gateway.listeners.len())
        .filter(|&i| {
            let l = &gateway.listeners[i];
            parent.section_name.as_deref().is_none_or(|s| s == l.name)
                && parent.port.is_none_or(|p| i32::from(l.port) == p)
        })
        .collect();
    if candidates.is_empty() {
        return Condition::not(types::ACCEPTED, reasons::NO_MATCHING_PARENT, "No listener matches the parentRef's sectionName and port");
    }
    let gateway_ns = gateway.key.namespace.clone();
    let allowed: Vec<usize> = candidates
        .into_iter()
        .filter(|&i| {
            let l = &gateway.listeners[i];
            l.is_ready() && l.accepts_kind("HTTPRoute") && l.namespaces.allows(snapshot, &gateway_ns, route_ns)
        })
        .collect();
    if allowed.is_empty() {
        return Condition::not(types::ACCEPTED, reasons::NOT_ALLOWED_BY_LISTENERS, "No listener of the parent allows this route");
    }
    let route_hosts = route.spec.hostnames.clone().unwrap_or_default();
    let matching: Vec<(usize, Vec<String>)> = allowed
        .into_iter()
        .filter_map(|i| {
            let hosts = hostname::intersect(gateway.listeners[i].hostname.as_deref(), &route_hosts);
            (!hosts.is_empty()).then_some((i, hosts))
        })
        .collect();
    if matching.is_empty() {
        return Condition::not(types::ACCEPTED, reasons::NO_MATCHING_LISTENER_HOSTNAME, "No listener hostname matches the route's hostnames");
    }
    if let Some((reason, message)) = problem {
        return Condition::not(types::ACCEPTED, reason, message.clone());
    }
    for (listener, hostnames) in matching {
        gateway.listeners[listener].attached_routes += 1;
        attachments.push(Attachment { gateway: gateway.key.clone(), listener, hostnames, route: converted.clone() });
    }
    Condition::ok(types::ACCEPTED, reasons::ACCEPTED, "Route is accepted")
}

fn creation_time(route: &HttpRoute) -> String {
    route
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
