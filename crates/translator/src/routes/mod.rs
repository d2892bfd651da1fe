//! Routes of every kind: attachment to listeners through parentRefs (sectionName, port,
//! allowedRoutes kinds and namespaces, hostnames), and the per-parent status.
//!
//! Each kind converts its rules once (`http`, `grpc`, `stream`), resolving its backendRefs
//! (with their BackendTLSPolicies, see `backend_tls`); the attachment logic here is shared,
//! so every kind gets the same reasons for the same problems. Route statuses are assembled
//! once every route is attached, because a BackendTLSPolicy's ancestors (and so the parents
//! through which it is unimplementable) depend on all of them.

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

use std::collections::BTreeSet;
use std::sync::Arc;

use ferrogate_api::GATEWAY_GROUP;
use ferrogate_ir::{Backend, GatewayKey, HeaderMods, HttpMatch, RouteAction, WeightedBackend};
use ferrogate_status::{
    Condition, ConditionStatus, ParentRef, PolicyStatus, RouteParentStatus, RouteStatus,
};
use ferrogate_store::{Kind, ObjectKey, Snapshot};

use crate::backend::Resolver;
use crate::backend_tls::{Ancestors, PolicyId, Targets};
use crate::conditions::{Problem, reasons, types};
use crate::gateway::GatewayCtx;
use crate::hostname;
use crate::route_cache::RouteCache;
use crate::shared::Shared;

/// The condition lists of route parents handed out during one translation.
type ConditionSets = Shared<[Condition]>;

/// A route attached to one listener of one Gateway.
pub(crate) struct Attachment {
    pub gateway: GatewayKey,
    /// Index of the listener in the Gateway's (merged) listeners.
    pub listener: usize,
    /// Request hosts (or SNI names) the route serves through this listener.
    pub hostnames: Vec<String>,
    pub payload: Payload,
}

impl Attachment {
    /// The same attachment: same Gateway listener and host names, and the same conversion
    /// (not merely an equal one: a kept conversion is shared, a new one is new).
    pub(crate) fn same_as(&self, other: &Attachment) -> bool {
        self.gateway == other.gateway
            && self.listener == other.listener
            && self.hostnames == other.hostnames
            && match (&self.payload, &other.payload) {
                (Payload::Http(a), Payload::Http(b)) => Arc::ptr_eq(a, b),
                (Payload::Stream(a), Payload::Stream(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }

    /// The route this attachment is of: its kind, namespace and name.
    pub(crate) fn route(&self) -> (&'static str, &str, &str) {
        match &self.payload {
            Payload::Http(r) => (r.kind, &r.namespace, &r.name),
            Payload::Stream(r) => (r.kind, &r.namespace, &r.name),
        }
    }
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
    /// Shared with the IR routes made of this rule (one per match).
    pub matches: Vec<Arc<HttpMatch>>,
    pub request_headers: HeaderMods,
    pub response_headers: HeaderMods,
    /// Boxed as in the IR route: rarely set, and every conversion is kept.
    pub cors: Option<Box<ferrogate_ir::Cors>>,
    pub session_persistence: Option<Box<ferrogate_ir::SessionPersistence>>,
    /// Shared with the IR routes made of this rule, unless a Gateway changes it.
    pub action: Arc<RouteAction>,
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
    pub attachments: Vec<Arc<Attachment>>,
    /// Every backend a route resolved, by name.
    pub backends: std::collections::BTreeMap<String, Arc<Backend>>,
    /// (Gateway, backend) pairs the Gateway must not send to (a BackendTLSPolicy that could
    /// not list the Gateway among its ancestors): their share is answered with 500.
    pub blocked: BTreeSet<(GatewayKey, String)>,
    pub statuses: Vec<Arc<RouteStatus>>,
    /// Every route's status, some waiting for the BackendTLSPolicies to be settled.
    pending: Vec<StatusSlot>,
    /// The BackendTLSPolicies backend resolution met, by backend.
    tls_policies: Targets,
    /// The parents through which accepted routes reach each BackendTLSPolicy.
    ancestors: Ancestors,
}

/// What attaching one route gave. It depends on nothing but the route's conversion and the
/// contexts of the Gateways (listeners, allowed namespaces and kinds): while both are what
/// they were, a translation replays it instead of attaching the route again (see
/// `route_cache`), and the route's status is the same `Arc` as last time.
pub(crate) struct Outcome {
    attached: Attached,
    status: StatusSlot,
}

impl Outcome {
    /// (position of the Gateway among the translation's Gateways, listener) of every
    /// listener the route counts on.
    pub(crate) fn increments(&self) -> &[(usize, usize)] {
        &self.attached.increments
    }

    /// Where the route attached, in order.
    pub(crate) fn attachments(&self) -> &[Arc<Attachment>] {
        &self.attached.attachments
    }

    /// The route's status, unless BackendTLSPolicies still have to settle it.
    pub(crate) fn final_status(&self) -> Option<&Arc<RouteStatus>> {
        match &self.status {
            StatusSlot::Final(status) => Some(status),
            StatusSlot::Pending(_) => None,
        }
    }
}

/// Routes of every kind in `snapshot`.
pub(crate) fn route_count(snapshot: &Snapshot) -> usize {
    snapshot.http_routes.len()
        + snapshot.grpc_routes.len()
        + snapshot.tls_routes.len()
        + snapshot.tcp_routes.len()
        + snapshot.udp_routes.len()
}

/// Attaches one route to `gateways`, as a whole translation would.
pub(crate) fn attach_one(
    snapshot: &Snapshot,
    gateways: &[GatewayCtx],
    input: &RouteInput,
) -> Outcome {
    attach(
        snapshot,
        gateways,
        &GatewayIndex::new(gateways),
        input,
        &mut ConditionSets::default(),
    )
}

/// The conversion of the route `key` of `kind` (a route kind), `None` when the snapshot has
/// no such route.
pub(crate) fn convert_one(
    resolver: &Resolver<'_>,
    kind: Kind,
    key: &ObjectKey,
) -> Option<RouteInput> {
    let s = resolver.snapshot;
    let (ns, name) = (key.namespace.as_str(), key.name.as_str());
    match kind {
        Kind::HttpRoute => s
            .http_routes
            .get(ns, name)
            .map(|r| http::input(resolver, key, &r.unpack())),
        Kind::GrpcRoute => s
            .grpc_routes
            .get(ns, name)
            .map(|r| grpc::input(resolver, key, &r.unpack())),
        Kind::TlsRoute => s
            .tls_routes
            .get(ns, name)
            .map(|r| stream::tls_input(resolver, key, &r.unpack())),
        Kind::TcpRoute => s
            .tcp_routes
            .get(ns, name)
            .map(|r| stream::tcp_input(resolver, key, &r.unpack())),
        Kind::UdpRoute => s
            .udp_routes
            .get(ns, name)
            .map(|r| stream::udp_input(resolver, key, &r.unpack())),
        _ => None,
    }
}

/// Where a route of `kind` (as its status names it) stands in a translation's route order
/// (kinds in the order [`translate`] walks them, then the snapshot's order), `None` when the
/// snapshot has no such route.
pub(crate) fn route_order(
    snapshot: &Snapshot,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Option<(u8, u64)> {
    let order = match kind {
        "HTTPRoute" => (0, snapshot.http_routes.order_of(namespace, name)?),
        "GRPCRoute" => (1, snapshot.grpc_routes.order_of(namespace, name)?),
        "TLSRoute" => (2, snapshot.tls_routes.order_of(namespace, name)?),
        "TCPRoute" => (3, snapshot.tcp_routes.order_of(namespace, name)?),
        "UDPRoute" => (4, snapshot.udp_routes.order_of(namespace, name)?),
        _ => return None,
    };
    Some(order)
}

/// Where a route attached.
#[derive(Default)]
struct Attached {
    /// (position of the Gateway among the translation's Gateways, listener) of every
    /// listener the route counts on.
    increments: Vec<(usize, usize)>,
    attachments: Vec<Arc<Attachment>>,
    /// (policy, Gateway, parentRef as policies name it), in the order they were met.
    ancestors: Vec<(PolicyId, GatewayKey, ParentRef)>,
}

/// A route's status: final, or waiting for the BackendTLSPolicies its backends have.
#[derive(Clone)]
enum StatusSlot {
    Final(Arc<RouteStatus>),
    Pending(Box<PendingStatus>),
}

/// A route's status until the BackendTLSPolicies are settled.
#[derive(Clone)]
struct PendingStatus {
    kind: &'static str,
    namespace: String,
    name: String,
    generation: Option<i64>,
    resolved_refs: Condition,
    partially_invalid: Option<Problem>,
    /// The BackendTLSPolicies that target its backends.
    tls_policies: BTreeSet<PolicyId>,
    /// Per parentRef: its `Accepted` condition, and, when the route attached through it, the
    /// parentRef as policies name their ancestors.
    parents: Vec<(Arc<ParentRef>, Condition, Option<ParentRef>)>,
}

/// What a route kind hands to the shared attachment logic. It owns everything, so an
/// incremental translation can keep it for a route nothing it depends on changed.
///
/// Kept for every route, so what most routes lack is boxed (a problem, a partially invalid
/// rule), and its namespace and name are its payload's.
pub(crate) struct RouteInput {
    pub kind: &'static str,
    pub generation: Option<i64>,
    pub hostnames: Vec<String>,
    pub parents: Vec<Arc<ParentRef>>,
    /// A problem that makes the route unacceptable for every parent.
    pub problem: Option<Box<Problem>>,
    /// `ResolvedRefs` when it is not true (see [`RouteInput::resolved_refs`]).
    pub unresolved_refs: Option<Box<Condition>>,
    /// Some rules were dropped: `PartiallyInvalid: True`.
    pub partially_invalid: Option<Box<Problem>>,
    pub payload: Payload,
    pub backends: Vec<Arc<Backend>>,
    /// The BackendTLSPolicies resolution met, by backend.
    pub tls_policies: Targets,
}

impl RouteInput {
    /// Its `ResolvedRefs` condition. Kept only when it is not true: nearly every route
    /// resolves all its references, and a condition held inline is 96 bytes a route.
    pub(crate) fn resolved_refs(&self) -> Condition {
        match &self.unresolved_refs {
            Some(condition) => Condition::clone(condition),
            None => resolved_refs(&[]),
        }
    }

    /// `unresolved_refs` for a route whose `ResolvedRefs` condition is `condition`.
    pub(crate) fn unresolved(condition: Condition) -> Option<Box<Condition>> {
        (condition.status != ConditionStatus::True).then(|| Box::new(condition))
    }

    /// The route's namespace.
    pub(crate) fn namespace(&self) -> &str {
        match &self.payload {
            Payload::Http(route) => &route.namespace,
            Payload::Stream(route) => &route.namespace,
        }
    }

    /// The route's name.
    pub(crate) fn name(&self) -> &str {
        match &self.payload {
            Payload::Http(route) => &route.name,
            Payload::Stream(route) => &route.name,
        }
    }

    /// Gives back the spare capacity of every vector: a conversion kept between
    /// translations lives as long as its route, and collecting leaves room for four of
    /// everything (a one-rule route kept ~3.4 kB of its conversion's ~5 kB spare).
    pub(crate) fn compact(&mut self) {
        self.hostnames.shrink_to_fit();
        self.parents.shrink_to_fit();
        self.backends.shrink_to_fit();
        match &mut self.payload {
            Payload::Http(route) => {
                if let Some(route) = Arc::get_mut(route) {
                    route.rules.shrink_to_fit();
                    for rule in &mut route.rules {
                        rule.matches.shrink_to_fit();
                        if let Some(RouteAction::Forward(forward)) = Arc::get_mut(&mut rule.action)
                        {
                            forward.backends.shrink_to_fit();
                            forward.mirrors.shrink_to_fit();
                        }
                    }
                }
            }
            Payload::Stream(route) => {
                if let Some(route) = Arc::get_mut(route) {
                    route.backends.shrink_to_fit();
                }
            }
        }
    }
}

/// Translates every route, then settles the BackendTLSPolicies from what resolution and
/// attachment recorded; returns the routes and the policy statuses.
pub(crate) fn translate(
    resolver: &Resolver<'_>,
    gateways: &mut [GatewayCtx],
    mut cache: Option<&mut RouteCache>,
) -> (Routes, Vec<PolicyStatus>) {
    let snapshot = resolver.snapshot;
    let mut routes = Routes::default();
    // One status per route, and usually one attachment: growing these one push at a time
    // copied them over and over (a tenth of a one-route edit at 10 000 routes).
    let count = route_count(snapshot);
    routes.pending.reserve_exact(count);
    routes.attachments.reserve(count);
    let index = GatewayIndex::new(gateways);
    let mut sets = ConditionSets::default();
    // Converts a route, or takes the conversion the cache kept for it, and attaches it, or
    // replays what attaching it gave last time.
    let mut add =
        |routes: &mut Routes, kind: Kind, key: &ObjectKey, convert: &dyn Fn() -> RouteInput| {
            match cache.as_deref_mut() {
                Some(cache) => {
                    let kept = cache.get_or_convert(resolver, kind, key, convert);
                    let outcome = routes.add(
                        snapshot,
                        gateways,
                        &index,
                        &kept.input,
                        kept.outcome.take(),
                        &mut sets,
                    );
                    kept.outcome = Some(outcome);
                }
                None => {
                    routes.add(snapshot, gateways, &index, &convert(), None, &mut sets);
                }
            }
        };
    for (key, route) in snapshot.http_routes.in_order() {
        add(&mut routes, Kind::HttpRoute, key, &|| {
            http::input(resolver, key, &route.unpack())
        });
    }
    for (key, route) in snapshot.grpc_routes.in_order() {
        add(&mut routes, Kind::GrpcRoute, key, &|| {
            grpc::input(resolver, key, &route.unpack())
        });
    }
    for (key, route) in snapshot.tls_routes.in_order() {
        add(&mut routes, Kind::TlsRoute, key, &|| {
            stream::tls_input(resolver, key, &route.unpack())
        });
    }
    for (key, route) in snapshot.tcp_routes.in_order() {
        add(&mut routes, Kind::TcpRoute, key, &|| {
            stream::tcp_input(resolver, key, &route.unpack())
        });
    }
    for (key, route) in snapshot.udp_routes.in_order() {
        add(&mut routes, Kind::UdpRoute, key, &|| {
            stream::udp_input(resolver, key, &route.unpack())
        });
    }
    let settled = resolver.policies.settle(
        std::mem::take(&mut routes.ancestors),
        &std::mem::take(&mut routes.tls_policies),
    );
    routes.blocked.extend(settled.blocked);
    routes.statuses = std::mem::take(&mut routes.pending)
        .into_iter()
        .map(|slot| match slot {
            StatusSlot::Final(status) => status,
            StatusSlot::Pending(p) => Arc::new(p.finish(&settled.unimplementable, &mut sets)),
        })
        .collect();
    (routes, settled.statuses)
}

/// A route's `ResolvedRefs` condition from the problems of its backendRefs: the first
/// problem's reason, every message.
pub(crate) fn resolved_refs(problems: &[Problem]) -> Condition {
    match problems.first() {
        Some(first) => Condition::not(
            types::RESOLVED_REFS,
            first.reason,
            problems
                .iter()
                .map(|p| &*p.message)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        None => Condition::ok(
            types::RESOLVED_REFS,
            reasons::RESOLVED_REFS,
            "Resolved all the Object references for the Route",
        ),
    }
}

impl PendingStatus {
    /// The status, once the parents through which BackendTLSPolicies are unimplementable
    /// are known: a route reaching such a policy through such a parent says so there.
    fn finish(
        self,
        unimplementable: &[(PolicyId, ParentRef, Problem)],
        sets: &mut ConditionSets,
    ) -> RouteStatus {
        // Collected into a vector sized here: collecting `self.parents.into_iter().map(..)`
        // would reuse the larger source allocation (std's in-place collect), room for two
        // parents kept for every one-parent route.
        let mut parents = Vec::with_capacity(self.parents.len());
        parents.extend(
            self.parents
                .into_iter()
                .map(|(parent_ref, accepted, attached_as)| {
                    let unimplementable = attached_as.and_then(|written| {
                        unimplementable
                            .iter()
                            .rev()
                            .find(|(i, p, _)| *p == written && self.tls_policies.contains(i))
                    });
                    let resolved_refs = match unimplementable {
                        Some((_, _, problem)) => problem.condition(),
                        None => self.resolved_refs.clone(),
                    };
                    let partially_invalid = self.partially_invalid.as_ref().map(Problem::condition);
                    let conditions = [Some(accepted), Some(resolved_refs), partially_invalid]
                        .into_iter()
                        .flatten()
                        .map(|c| c.at_generation(self.generation))
                        .collect::<Vec<_>>();
                    RouteParentStatus {
                        parent_ref,
                        conditions: sets.share(conditions),
                    }
                }),
        );
        RouteStatus {
            kind: self.kind.into(),
            namespace: self.namespace,
            name: self.name,
            parents,
        }
    }
}

impl Routes {
    /// The attachments of each Gateway, in route order (one pass, rather than a scan of
    /// every attachment per Gateway).
    pub(crate) fn by_gateway(&self) -> std::collections::BTreeMap<&GatewayKey, Vec<&Attachment>> {
        let mut out: std::collections::BTreeMap<&GatewayKey, Vec<&Attachment>> =
            std::collections::BTreeMap::new();
        for a in &self.attachments {
            out.entry(&a.gateway).or_default().push(&**a);
        }
        out
    }

    /// What IR assembly reads of every route (the backends and the blocked ones), for the
    /// route-edit path to assemble Gateways with later. The backends move out: nothing reads
    /// them here once every Gateway is built.
    pub(crate) fn ir_inputs(&mut self) -> Routes {
        Routes {
            backends: std::mem::take(&mut self.backends),
            blocked: self.blocked.clone(),
            ..Routes::default()
        }
    }

    /// Adds the backends a route resolved. One name is one Service port resolved against
    /// one snapshot: the same backend whichever route resolved it, so the first one stays.
    pub(crate) fn add_backends(&mut self, backends: &[Arc<Backend>]) {
        for backend in backends {
            if !self.backends.contains_key(&backend.name) {
                self.backends.insert(backend.name.clone(), backend.clone());
            }
        }
    }

    /// Adds a route: its backends, and its outcome (`kept`, or attached now); returns the
    /// outcome.
    fn add(
        &mut self,
        snapshot: &Snapshot,
        gateways: &mut [GatewayCtx],
        index: &GatewayIndex,
        input: &RouteInput,
        kept: Option<Arc<Outcome>>,
        sets: &mut ConditionSets,
    ) -> Arc<Outcome> {
        self.add_backends(&input.backends);
        for (backend, policies) in &input.tls_policies {
            self.tls_policies
                .entry(backend.clone())
                .or_insert_with(|| policies.clone());
        }
        let outcome =
            kept.unwrap_or_else(|| Arc::new(attach(snapshot, gateways, index, input, sets)));
        let attached = &outcome.attached;
        for &(gateway, listener) in &attached.increments {
            gateways[gateway].listeners[listener].attached_routes += 1;
        }
        self.attachments
            .extend(attached.attachments.iter().cloned());
        for (policy, gateway, parent) in &attached.ancestors {
            let ancestors = self.ancestors.entry(*policy).or_default();
            if !ancestors.iter().any(|(_, r)| r == parent) {
                ancestors.push((gateway.clone(), parent.clone()));
            }
        }
        self.pending.push(outcome.status.clone());
        outcome
    }
}

/// Attaches a route through each of its parentRefs.
fn attach(
    snapshot: &Snapshot,
    gateways: &[GatewayCtx],
    index: &GatewayIndex,
    input: &RouteInput,
    sets: &mut ConditionSets,
) -> Outcome {
    let mut attached = Attached::default();
    let mut parents = Vec::with_capacity(input.parents.len());
    for parent in &input.parents {
        let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = parent.kind.as_deref().unwrap_or("Gateway");
        let namespace = parent.namespace.as_deref().unwrap_or(input.namespace());
        let gateway = match (group, kind) {
            (GATEWAY_GROUP, "Gateway") => index.find(namespace, &parent.name),
            (GATEWAY_GROUP, "ListenerSet") => gateways
                .iter()
                .position(|g| g.has_listener_set(namespace, &parent.name)),
            _ => None,
        };
        let Some(gateway) = gateway else {
            continue; // missing parent, or one of another controller: no status from us
        };
        let listener_set =
            (kind == "ListenerSet").then(|| (namespace.to_string(), parent.name.clone()));
        let (accepted, attached_as) = attach_to(
            snapshot,
            gateways,
            gateway,
            input,
            parent,
            listener_set,
            &mut attached,
        );
        parents.push((parent.clone(), accepted, attached_as));
    }
    // Kept with the route's conversion: give back the room pushing one item left (four).
    attached.increments.shrink_to_fit();
    attached.attachments.shrink_to_fit();
    attached.ancestors.shrink_to_fit();
    let pending = PendingStatus {
        kind: input.kind,
        namespace: input.namespace().to_string(),
        name: input.name().to_string(),
        generation: input.generation,
        resolved_refs: input.resolved_refs(),
        partially_invalid: input.partially_invalid.as_deref().cloned(),
        tls_policies: input.tls_policies.values().flatten().copied().collect(),
        parents,
    };
    // Without BackendTLSPolicies, settling them cannot change the status: it is final now.
    let status = if pending.tls_policies.is_empty() {
        StatusSlot::Final(Arc::new(pending.finish(&[], sets)))
    } else {
        StatusSlot::Pending(Box::new(pending))
    };
    Outcome { attached, status }
}

/// Attaches a route to the listeners of one parent (the Gateway at `position`); returns the
/// `Accepted` condition and, when it attached, the parentRef as policies name their
/// ancestors (it is recorded as an ancestor of the BackendTLSPolicies of the route's
/// backends).
fn attach_to(
    snapshot: &Snapshot,
    gateways: &[GatewayCtx],
    position: usize,
    input: &RouteInput,
    parent: &ParentRef,
    listener_set: Option<(String, String)>,
    outcome: &mut Attached,
) -> (Condition, Option<ParentRef>) {
    let gateway = &gateways[position];
    let candidates: Vec<usize> = (0..gateway.listeners.len())
        .filter(|&i| {
            let l = &gateway.listeners[i];
            gateway.listener_owner(i) == listener_set.as_ref()
                && parent.section_name.as_deref().is_none_or(|s| s == l.name)
                && parent.port.is_none_or(|p| i32::from(l.port) == p)
        })
        .collect();
    if candidates.is_empty() {
        return not_accepted(
            reasons::NO_MATCHING_PARENT,
            "No listeners match this parent ref",
        );
    }
    let allowed: Vec<usize> = candidates
        .into_iter()
        .filter(|&i| {
            let l = &gateway.listeners[i];
            let owner_ns = gateway
                .listener_namespace(i)
                .unwrap_or(&gateway.key.namespace);
            l.accepts_attachments()
                && l.accepts_kind(input.kind)
                && l.namespaces.allows(snapshot, owner_ns, input.namespace())
        })
        .collect();
    if allowed.is_empty() {
        return not_accepted(
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
            let mut hosts =
                hostname::intersect(gateway.listeners[i].hostname.as_deref(), &input.hostnames);
            hosts.shrink_to_fit();
            (!hosts.is_empty()).then_some((i, hosts))
        })
        .collect();
    if matching.is_empty() {
        return not_accepted(
            reasons::NO_MATCHING_LISTENER_HOSTNAME,
            "There were no hostname intersections between the HTTPRoute and this parent ref's Listener(s).",
        );
    }
    // Attachment depends only on parentRefs and what the listeners allow; a route with
    // broken rules is still attached (and counted), just not accepted. A route whose
    // shape the kind does not allow at all (InvalidRule) is not attached.
    if !matches!(input.problem.as_deref(), Some(p) if p.reason == reasons::INVALID_RULE) {
        for (listener, _) in &matching {
            outcome.increments.push((position, *listener));
        }
    }
    if let Some(p) = input.problem.as_deref() {
        return (p.condition(), None);
    }
    let parent = ParentRef {
        namespace: Some(
            parent
                .namespace
                .clone()
                .unwrap_or_else(|| input.namespace().to_string()),
        ),
        ..parent.clone()
    };
    for (listener, hostnames) in matching {
        outcome.attachments.push(Arc::new(Attachment {
            gateway: gateway.key.clone(),
            listener,
            hostnames,
            payload: input.payload.clone(),
        }));
    }
    for &policy in input.tls_policies.values().flatten() {
        outcome
            .ancestors
            .push((policy, gateway.key.clone(), parent.clone()));
    }
    let accepted = Condition::ok(types::ACCEPTED, reasons::ACCEPTED, "Route is accepted");
    (accepted, Some(parent))
}

/// A parentRef through which the route did not attach, and why.
fn not_accepted(reason: &'static str, message: &'static str) -> (Condition, Option<ParentRef>) {
    (Condition::not(types::ACCEPTED, reason, message), None)
}

/// The Gateways by namespace and name, so a parentRef costs a binary search rather than a
/// scan of every Gateway (100 Gateways x 100 000 routes).
struct GatewayIndex(Vec<(String, String, usize)>);

impl GatewayIndex {
    fn new(gateways: &[GatewayCtx]) -> Self {
        let mut keys: Vec<_> = gateways
            .iter()
            .enumerate()
            .map(|(i, g)| (g.key.namespace.clone(), g.key.name.clone(), i))
            .collect();
        keys.sort();
        Self(keys)
    }

    fn find(&self, namespace: &str, name: &str) -> Option<usize> {
        self.0
            .binary_search_by(|(n, m, _)| (n.as_str(), m.as_str()).cmp(&(namespace, name)))
            .ok()
            .map(|i| self.0[i].2)
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
    ($resolver:expr, $refs:expr) => {
        $refs
            .iter()
            .flatten()
            .map(|p| {
                $resolver.share_parent(ferrogate_status::ParentRef {
                    group: p.group.clone(),
                    kind: p.kind.clone(),
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    section_name: p.section_name.clone(),
                    port: p.port,
                })
            })
            .collect::<Vec<_>>()
    };
}
pub(crate) use parent_refs;
