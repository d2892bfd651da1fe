//! Gateways of our classes: their listeners (their own, then those of the ListenerSets
//! they allow), conflicts between them, and the Gateway and ListenerSet statuses.

use std::sync::Arc;

use ferrogate_api::envoyproxy::ServiceType;
use ferrogate_api::gateway::{
    Gateway, GatewayAllowedListenersNamespacesFrom as AllowedFrom, GatewayListeners, ListenerSet,
};
use ferrogate_ir::GatewayKey;
use ferrogate_status::{Condition, GatewayAddress, GatewayStatus, ListenerSetStatus};
use ferrogate_store::{Snapshot, UnsupportedValue, unsupported_values};

use crate::Options;
use crate::conditions::{Problem, reasons, types};
use crate::fleet_status::{fleet_addresses, fleet_of, fleet_programmed, gateway_address};
use crate::gatewayclass::Classes;
use crate::listener::{ListenerCtx, clash};
use crate::namespaces::selector_matches;

/// A ListenerSet that names one of our Gateways as parent.
pub(crate) struct ListenerSetCtx {
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    /// `Accepted: False` (`NotAllowed`) when the Gateway does not allow it.
    pub allowed: Result<(), Problem>,
    /// Its listeners' indices in the Gateway's merged listener list.
    pub listeners: std::ops::Range<usize>,
}

/// A Gateway being translated.
pub(crate) struct GatewayCtx {
    pub key: GatewayKey,
    pub gateway: Arc<Gateway>,
    /// Its own listeners first, then those of allowed ListenerSets.
    pub listeners: Vec<ListenerCtx>,
    /// Per listener: the ListenerSet (namespace, name) it comes from, or `None`.
    owners: Vec<Option<(String, String)>>,
    pub listener_sets: Vec<ListenerSetCtx>,
    /// `Accepted: False` for the Gateway itself.
    pub rejected: Option<Problem>,
    /// Effective EnvoyProxy parameters (class, overridden by the Gateway's own reference).
    pub parameters: ferrogate_api::envoyproxy::EnvoyProxySpec,
    /// Why the Gateway's own parametersRef cannot be used (it still serves, with its
    /// class's parameters): `Accepted: False`.
    pub parameters_problem: Option<Problem>,
    /// `spec.tls.backend.clientCertificateRef`, resolved: the certificate Envoy presents to
    /// backends that ask for one, or why it cannot be used.
    pub backend_client_cert: Option<Result<ferrogate_ir::TlsSecret, Problem>>,
}

/// Every Gateway of an accepted class of ours, in input order, with listeners judged.
pub(crate) fn collect(snapshot: &Snapshot, classes: &Classes) -> Vec<GatewayCtx> {
    let mut out = Vec::new();
    for (key, gateway) in snapshot.gateways.in_order() {
        if !classes.accepted.contains(&gateway.spec.gateway_class_name) {
            continue;
        }
        let mut listeners: Vec<ListenerCtx> = gateway
            .spec
            .listeners
            .iter()
            .map(|l| ListenerCtx::new(snapshot, "Gateway", &key.namespace, l))
            .collect();
        // Enum values the types do not know were substituted when the Gateway was read: the
        // listeners holding one are not accepted, so a substitute never acts (an unknown
        // `allowedRoutes.namespaces.from` must not widen access, for one).
        let values = unsupported_values(&gateway.metadata);
        for (i, l) in listeners.iter_mut().enumerate() {
            mark_unsupported(l, &values, Some(i));
        }
        crate::frontend_tls::apply(snapshot, gateway, &key.namespace, &mut listeners);
        let mut owners = vec![None; listeners.len()];
        mark_conflicts(&mut listeners, 0..owners.len());
        let own = listeners.len();

        let mut listener_sets = Vec::new();
        let mut sets: Vec<_> = snapshot
            .listener_sets
            .in_order()
            .into_iter()
            .filter(|(ls_key, ls)| {
                let p = &ls.spec.parent_ref;
                p.kind.as_deref().unwrap_or("Gateway") == "Gateway"
                    && p.name == key.name
                    && p.namespace.as_deref().unwrap_or(&ls_key.namespace) == key.namespace
            })
            .collect();
        // Older ListenerSets win conflicts: order by creation time, then namespace/name.
        sets.sort_by(|a, b| {
            crate::routes::creation_time(&a.1.metadata)
                .cmp(&crate::routes::creation_time(&b.1.metadata))
                .then(a.0.cmp(b.0))
        });
        for (ls_key, ls) in sets {
            let allowed =
                listener_set_allowed(snapshot, gateway, &key.namespace, &ls_key.namespace);
            let start = listeners.len();
            if allowed.is_ok() {
                let values = unsupported_values(&ls.metadata);
                for (j, spec) in listener_set_listeners(ls).iter().enumerate() {
                    let mut l = ListenerCtx::new(snapshot, "ListenerSet", &ls_key.namespace, spec);
                    // A value outside the listeners concerns the whole set: every listener.
                    mark_unsupported(&mut l, &values, Some(j));
                    mark_unsupported(&mut l, &values, None);
                    listeners.push(l);
                    owners.push(Some((ls_key.namespace.clone(), ls_key.name.clone())));
                }
            }
            listener_sets.push(ListenerSetCtx {
                namespace: ls_key.namespace.clone(),
                name: ls_key.name.clone(),
                generation: ls.metadata.generation,
                allowed,
                listeners: start..listeners.len(),
            });
        }
        // The Gateway's own listeners win over ListenerSet listeners.
        let (own_listeners, set_listeners) = listeners.split_at_mut(own);
        for l in set_listeners.iter_mut() {
            if let Some(reason) = own_listeners
                .iter()
                .filter(|o| o.conflict.is_none())
                .find_map(|o| clash(o, l))
            {
                let reason = if reason == crate::listener::PORT_TAKEN {
                    reasons::PROTOCOL_CONFLICT
                } else {
                    reason
                };
                l.conflict = Some(Problem::conflicted(
                    reason,
                    format!("conflicts with listener of the Gateway on port {}", l.port),
                ));
            }
        }
        let n = listeners.len();
        // Across ListenerSets, protocol clashes mark every listener involved (neither can be
        // served), as before; hostname clashes are settled below, oldest set first.
        let mut protocol_clashes = Vec::new();
        for i in own..n {
            if listeners[i].conflict.is_some() {
                continue;
            }
            for j in own..n {
                if i == j || listeners[j].conflict.is_some() {
                    continue;
                }
                match clash(&listeners[i], &listeners[j]) {
                    Some(r) if r == reasons::PROTOCOL_CONFLICT => {
                        protocol_clashes.push(i);
                        break;
                    }
                    Some(r) if r == crate::listener::PORT_TAKEN && j < i => {
                        protocol_clashes.push(i);
                        break;
                    }
                    _ => {}
                }
            }
        }
        for i in protocol_clashes {
            listeners[i].conflict = Some(Problem::conflicted(
                reasons::PROTOCOL_CONFLICT,
                format!(
                    "All listeners for port {} must use a compatible protocol",
                    listeners[i].port
                ),
            ));
        }
        // Hostname clashes: inside one set every listener involved is marked; a listener that
        // clashes with one of an older set (conflicted or not) loses.
        for set in &listener_sets {
            let range = set.listeners.clone();
            let mut found = Vec::new();
            for i in range.clone() {
                if listeners[i].conflict.is_some() {
                    continue;
                }
                let inside = range.clone().any(|j| {
                    j != i
                        && clash(&listeners[i], &listeners[j]) == Some(reasons::HOSTNAME_CONFLICT)
                });
                let older = (own..range.start).any(|j| {
                    clash(&listeners[j], &listeners[i]) == Some(reasons::HOSTNAME_CONFLICT)
                });
                if inside || older {
                    found.push(i);
                }
            }
            for i in found {
                listeners[i].conflict = Some(Problem::conflicted(
                    reasons::HOSTNAME_CONFLICT,
                    format!(
                        "All listeners for port {} must use a unique hostname",
                        listeners[i].port
                    ),
                ));
            }
        }
        mark_overlapping_tls(&mut listeners);

        let rejected = unsupported_address(gateway).or_else(|| gateway_unsupported_values(&values));
        let class_parameters = classes
            .parameters
            .get(&gateway.spec.gateway_class_name)
            .cloned()
            .unwrap_or_default();
        let (parameters, parameters_problem) =
            crate::parameters::for_gateway(snapshot, gateway, &key.namespace, &class_parameters);
        let backend_client_cert = gateway
            .spec
            .tls
            .as_ref()
            .and_then(|t| t.backend.as_ref())
            .and_then(|b| b.client_certificate_ref.as_ref())
            .map(|r| {
                let cert = crate::certificates::CertRef {
                    group: r.group.as_deref(),
                    kind: r.kind.as_deref(),
                    name: &r.name,
                    namespace: r.namespace.as_deref(),
                };
                crate::certificates::resolve(snapshot, "Gateway", &key.namespace, &cert).map_err(
                    |p| match p {
                        crate::certificates::CertProblem::NotPermitted(m) => {
                            Problem::unresolved(reasons::REF_NOT_PERMITTED, m)
                        }
                        crate::certificates::CertProblem::Invalid(m) => Problem::unresolved(
                            reasons::INVALID_CLIENT_CERTIFICATE_REF,
                            format!("invalid backend client certificate: {m}"),
                        ),
                    },
                )
            });
        out.push(GatewayCtx {
            key: GatewayKey::new(key.namespace.clone(), key.name.clone()),
            gateway: gateway.clone(),
            listeners,
            owners,
            listener_sets,
            rejected,
            parameters,
            parameters_problem,
            backend_client_cert,
        });
    }
    out
}

/// Listener `index` (or, with `None`, every listener for values outside `spec.listeners`) is
/// not accepted when the object holds unsupported values there.
fn mark_unsupported(l: &mut ListenerCtx, values: &[UnsupportedValue], index: Option<usize>) {
    let found: Vec<String> = values
        .iter()
        .filter(|v| v.index_in(LISTENERS) == index)
        .map(UnsupportedValue::describe)
        .collect();
    if !found.is_empty() && l.not_accepted.is_none() {
        l.not_accepted = Some(Problem::not_accepted(
            reasons::UNSUPPORTED_VALUE,
            found.join("; "),
        ));
    }
}

/// Unsupported values of a Gateway outside its listeners: the Gateway is not accepted.
fn gateway_unsupported_values(values: &[UnsupportedValue]) -> Option<Problem> {
    let found: Vec<String> = values
        .iter()
        .filter(|v| v.index_in(LISTENERS).is_none())
        .map(UnsupportedValue::describe)
        .collect();
    (!found.is_empty()).then(|| Problem::not_accepted(reasons::UNSUPPORTED_VALUE, found.join("; ")))
}

const LISTENERS: &str = "spec.listeners";

/// Marks conflicts among the listeners in `range` that are not yet marked.
fn mark_conflicts(listeners: &mut [ListenerCtx], range: std::ops::Range<usize>) {
    let mut found = Vec::new();
    for i in range.clone() {
        if listeners[i].conflict.is_some() {
            continue;
        }
        for j in range.clone() {
            if i == j || listeners[j].conflict.is_some() {
                continue;
            }
            if let Some(reason) = clash(&listeners[i], &listeners[j]) {
                // Hostname conflicts mark every listener involved; a port taken by a
                // listener of another protocol (or a second TCP/UDP listener) stays with
                // the listener declared first.
                if reason != crate::listener::PORT_TAKEN {
                    found.push((i, reason));
                    break;
                }
                if j < i {
                    found.push((i, reasons::PROTOCOL_CONFLICT));
                    break;
                }
            }
        }
    }
    for (i, reason) in found {
        let message = if reason == reasons::PROTOCOL_CONFLICT {
            format!(
                "All listeners for port {} must use a compatible protocol",
                listeners[i].port
            )
        } else {
            format!(
                "All listeners for port {} must use a unique hostname",
                listeners[i].port
            )
        };
        listeners[i].conflict = Some(Problem::conflicted(reason, message));
    }
}

/// HTTPS listeners sharing a port whose certificates or hostnames overlap: HTTP/2
/// connection coalescing could send a request for one listener's host over a connection
/// made for the other, so users are warned with `OverlappingTLSConfig`.
fn mark_overlapping_tls(listeners: &mut [ListenerCtx]) {
    use crate::listener::Protocol;
    let names = |l: &ListenerCtx| -> Vec<String> {
        l.certificates
            .iter()
            .flat_map(|c| crate::certificates::dns_names(&c.certificate_chain))
            .collect()
    };
    let overlap = |a: &str, b: &str| {
        a.eq_ignore_ascii_case(b)
            || crate::hostname::matches(a, b)
            || crate::hostname::matches(b, a)
    };
    let mut found = Vec::new();
    for i in 0..listeners.len() {
        for j in 0..listeners.len() {
            let (a, b) = (&listeners[i], &listeners[j]);
            if i == j
                || a.port != b.port
                || a.protocol != Some(Protocol::Https)
                || b.protocol != Some(Protocol::Https)
                || !a.is_ready()
                || !b.is_ready()
            {
                continue;
            }
            let certs = names(a)
                .iter()
                .any(|x| names(b).iter().any(|y| overlap(x, y)));
            let hosts = matches!((&a.hostname, &b.hostname), (Some(x), Some(y)) if overlap(x, y));
            if certs {
                found.push((
                    i,
                    Problem::overlapping_tls(
                        reasons::OVERLAPPING_CERTIFICATES,
                        format!(
                            "the certificates of listeners {} and {} overlap",
                            a.name, b.name
                        ),
                    ),
                ));
            } else if hosts {
                found.push((
                    i,
                    Problem::overlapping_tls(
                        reasons::OVERLAPPING_HOSTNAMES,
                        format!(
                            "the hostnames of listeners {} and {} overlap",
                            a.name, b.name
                        ),
                    ),
                ));
            }
        }
    }
    for (i, problem) in found {
        listeners[i].overlapping.get_or_insert(problem);
    }
}

/// A ListenerSet listener counts as valid for the set's `Accepted` unless it was not
/// accepted, conflicts, or refers to something its namespace may not use (a missing Secret
/// still leaves it valid: that is reported on the listener).
fn set_listener_valid(l: &ListenerCtx) -> bool {
    l.accepts_attachments()
        && l.conflict.is_none()
        && !matches!(&l.unresolved, Some(p) if p.reason == reasons::REF_NOT_PERMITTED)
}

fn listener_set_listeners(ls: &ListenerSet) -> Vec<GatewayListeners> {
    // Same JSON shape as Gateway listeners.
    serde_json::to_value(&ls.spec.listeners)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

fn listener_set_allowed(
    snapshot: &Snapshot,
    gateway: &Gateway,
    gateway_ns: &str,
    set_ns: &str,
) -> Result<(), Problem> {
    let namespaces = gateway
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let allowed = match namespaces
        .and_then(|n| n.from.as_ref())
        .unwrap_or(&AllowedFrom::None)
    {
        AllowedFrom::None => false,
        AllowedFrom::Same => gateway_ns == set_ns,
        AllowedFrom::All => true,
        AllowedFrom::Selector => {
            let labels = snapshot
                .namespaces
                .get("", set_ns)
                .and_then(|n| n.metadata.labels.clone())
                .unwrap_or_default();
            let selector = namespaces.and_then(|n| n.selector.as_ref());
            let as_value = serde_json::to_value(selector)
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default();
            selector.is_some() && selector_matches(&as_value, &labels)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(Problem::not_accepted(
            reasons::NOT_ALLOWED,
            format!(
                "ListenerSet attachment from namespace {set_ns} not allowed by Gateway {gateway_ns}/{}",
                gateway.metadata.name.as_deref().unwrap_or_default()
            ),
        ))
    }
}

fn unsupported_address(gateway: &Gateway) -> Option<Problem> {
    for a in gateway.spec.addresses.iter().flatten() {
        let type_ = a.r#type.as_deref().unwrap_or("IPAddress");
        if type_ != "IPAddress" {
            return Some(Problem::not_accepted(
                reasons::UNSUPPORTED_ADDRESS,
                format!("address type {type_} is not supported, only IPAddress"),
            ));
        }
        // No value: the implementation picks one (GatewayOptionalAddressValue).
        let Some(value) = a.value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        if value.parse::<std::net::IpAddr>().is_err() {
            return Some(Problem::not_accepted(
                reasons::UNSUPPORTED_ADDRESS,
                format!("{value:?} is not an IP address"),
            ));
        }
    }
    None
}

impl GatewayCtx {
    /// In a cluster, requested addresses reach the Gateway's Service only as a load
    /// balancer's (MetalLB's `metallb.io/loadBalancerIPs`): a ClusterIP or NodePort Service,
    /// chosen by the EnvoyProxy's `envoyService.type`, never holds them, so the Gateway would
    /// wait for them forever. The problem says so instead (GEP-1762: `AddressNotUsable`).
    fn requested_without_load_balancer(&self) -> Option<Problem> {
        let service_type = self
            .parameters
            .service()
            .and_then(|s| s.type_)
            .unwrap_or_default();
        if service_type == ServiceType::LoadBalancer {
            return None;
        }
        let requested: Vec<&str> = self
            .gateway
            .spec
            .addresses
            .iter()
            .flatten()
            .filter_map(|a| a.value.as_deref())
            .filter(|v| !v.is_empty())
            .collect();
        if requested.is_empty() {
            return None;
        }
        Some(Problem::not_programmed(
            reasons::ADDRESS_NOT_USABLE,
            format!(
                "Cannot use the requested address {}: the Gateway's Service is of type {} (EnvoyProxy envoyService.type), and only a LoadBalancer Service can take a requested address",
                requested.join(", "),
                service_type.as_str()
            ),
        ))
    }

    /// The ListenerSet a listener comes from, if any.
    pub(crate) fn listener_owner(&self, i: usize) -> Option<&(String, String)> {
        self.owners[i].as_ref()
    }

    /// Namespace whose routes a listener's `from: Same` means: its ListenerSet's, else the Gateway's.
    pub(crate) fn listener_namespace(&self, i: usize) -> Option<&str> {
        self.owners[i].as_ref().map(|(ns, _)| ns.as_str())
    }

    /// Whether an allowed ListenerSet of this Gateway has that name.
    pub(crate) fn has_listener_set(&self, namespace: &str, name: &str) -> bool {
        self.listener_sets
            .iter()
            .any(|s| s.namespace == namespace && s.name == name && s.allowed.is_ok())
    }

    /// The address the Gateway's Envoy binds.
    pub(crate) fn bind_address<'a>(&self, options: &'a Options) -> &'a str {
        options
            .assigned_addresses
            .get(&self.key)
            .map_or(options.default_bind_address.as_str(), |a| a.as_str())
    }

    pub(crate) fn status(&self, options: &Options) -> GatewayStatus {
        let generation = self.gateway.metadata.generation;
        let own = self.owners.iter().take_while(|o| o.is_none()).count();
        let own_listeners = &self.listeners[..own];
        // A listener is valid when it is accepted and not conflicted (bad references still
        // leave it valid: it is reported, the others serve).
        let valid = |l: &ListenerCtx| l.accepts_attachments() && l.conflict.is_none();
        let all_valid = own_listeners.iter().all(valid);
        let any_valid = own_listeners.iter().any(valid) || own_listeners.is_empty();
        // A rejection first; a parametersRef that cannot be used says so, but the Gateway
        // keeps serving with its class's parameters.
        let accepted = match self.rejected.as_ref().or(self.parameters_problem.as_ref()) {
            Some(problem) => problem.condition(),
            None if all_valid => Condition::ok(
                types::ACCEPTED,
                reasons::ACCEPTED,
                "The Gateway has been scheduled by Ferrogate",
            ),
            None if any_valid => Condition::ok(
                types::ACCEPTED,
                reasons::LISTENERS_NOT_VALID,
                "Some listeners are not valid, see listener conditions",
            ),
            None => Condition::not(
                types::ACCEPTED,
                reasons::LISTENERS_NOT_VALID,
                "No listener is valid, see listener conditions",
            ),
        };
        // Programmed: the Gateway's data plane runs with its address (listeners report their
        // own programming).
        let fleet = fleet_of(options, &self.key);
        let unusable = match options.unusable_addresses.get(&self.key) {
            Some(why) => Some(Problem::not_programmed(
                reasons::ADDRESS_NOT_USABLE,
                why.clone(),
            )),
            None => fleet
                .as_ref()
                .and_then(|_| self.requested_without_load_balancer()),
        };
        let programmed = if let Some(problem) = &unusable {
            problem.condition()
        } else if self.rejected.is_some() || !any_valid {
            Condition::not(
                types::PROGRAMMED,
                reasons::INVALID,
                "The Gateway is not accepted",
            )
        } else {
            fleet_programmed(fleet.as_ref())
        };
        let status_addresses: Vec<GatewayAddress> = match &fleet {
            Some(f) => fleet_addresses(f, unusable.is_some()),
            None => options
                .assigned_addresses
                .get(&self.key)
                .or(options.default_status_address.as_ref())
                .map(|a| vec![gateway_address(a)])
                .unwrap_or_default(),
        };
        let allows_sets = self.gateway.spec.allowed_listeners.is_some();
        let mut conditions = vec![
            accepted.at_generation(generation),
            programmed.at_generation(generation),
        ];
        if self.listeners.iter().any(|l| {
            l.client_validation
                .as_ref()
                .is_some_and(|v| v.allow_insecure_fallback)
        }) {
            conditions.push(
                Condition::ok(types::INSECURE_FRONTEND_VALIDATION_MODE, reasons::CONFIGURATION_CHANGED, "Client certificate validation allows clients without a valid certificate (AllowInsecureFallback)")
                    .at_generation(generation),
            );
        }
        match &self.backend_client_cert {
            Some(Err(problem)) => conditions.push(problem.condition().at_generation(generation)),
            Some(Ok(_)) => conditions.push(
                Condition::ok(
                    types::RESOLVED_REFS,
                    reasons::RESOLVED_REFS,
                    "Gateway references have been resolved",
                )
                .at_generation(generation),
            ),
            None => {}
        }
        GatewayStatus {
            namespace: self.key.namespace.clone(),
            name: self.key.name.clone(),
            conditions,
            attached_listener_sets: (allows_sets || !self.listener_sets.is_empty()).then(|| {
                self.listener_sets
                    .iter()
                    .filter(|s| s.allowed.is_ok() && self.set_accepted(s))
                    .count() as i32
            }),
            addresses: status_addresses,
            listeners: own_listeners.iter().map(|l| l.status(generation)).collect(),
        }
    }

    fn set_accepted(&self, set: &ListenerSetCtx) -> bool {
        self.listeners[set.listeners.clone()]
            .iter()
            .any(set_listener_valid)
    }

    pub(crate) fn listener_set_statuses(&self) -> Vec<ListenerSetStatus> {
        let mut out = Vec::new();
        for set in &self.listener_sets {
            let g = set.generation;
            let (conditions, listeners) = match &set.allowed {
                Err(problem) => (
                    vec![
                        problem.condition().at_generation(g),
                        Condition::not(types::PROGRAMMED, problem.reason, "Not Programmed")
                            .at_generation(g),
                    ],
                    Vec::new(),
                ),
                Ok(()) => {
                    let ls = &self.listeners[set.listeners.clone()];
                    let accepted = ls.iter().filter(|l| set_listener_valid(l)).count();
                    let programmed = ls.iter().filter(|l| l.is_ready()).count();
                    let accepted_c = if accepted == ls.len() {
                        Condition::ok(
                            types::ACCEPTED,
                            reasons::ACCEPTED,
                            "ListenerSet is accepted",
                        )
                    } else if accepted > 0 {
                        Condition::ok(
                            types::ACCEPTED,
                            reasons::LISTENERS_NOT_VALID,
                            "Some listeners are invalid",
                        )
                    } else {
                        Condition::not(
                            types::ACCEPTED,
                            reasons::LISTENERS_NOT_VALID,
                            "No listeners are accepted",
                        )
                    };
                    let programmed_c = if programmed == ls.len() {
                        Condition::ok(
                            types::PROGRAMMED,
                            reasons::PROGRAMMED,
                            "ListenerSet is programmed",
                        )
                    } else if programmed > 0 {
                        Condition::ok(
                            types::PROGRAMMED,
                            reasons::PROGRAMMED,
                            "Some listeners are not programmed",
                        )
                    } else {
                        Condition::not(
                            types::PROGRAMMED,
                            reasons::LISTENERS_NOT_VALID,
                            "No listeners are programmed",
                        )
                    };
                    (
                        vec![accepted_c.at_generation(g), programmed_c.at_generation(g)],
                        ls.iter().map(|l| l.status(g)).collect(),
                    )
                }
            };
            out.push(ListenerSetStatus {
                namespace: set.namespace.clone(),
                name: set.name.clone(),
                conditions,
                listeners,
            });
        }
        out
    }
}
