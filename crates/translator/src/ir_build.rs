//! Assembles one Gateway's IR from its ready listeners and the routes attached to them.
//! Listeners sharing a port become one Envoy listener: plain HTTP merges virtual hosts (each
//! request host is served only by the most specific listener that admits it: listener
//! isolation), HTTPS and TLS get one filter chain per listener (selected by SNI), TCP and
//! UDP take the oldest attached route.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferrogate_api::{PRIVILEGED_PORT_LIMIT, PRIVILEGED_PORT_OFFSET};
use ferrogate_ir::{
    Backend, Forward, GatewayIr, HttpListener, HttpRoute, HttpsChain, HttpsListener, InfraIr,
    InfraPort, Listener, ListenerKind, PortProtocol, RouteAction, StreamListener, TlsChain,
    TlsListener, TlsSecret, VirtualHost,
};

use crate::Options;
use crate::gateway::GatewayCtx;
use crate::hostname;
use crate::ir_route_memo::{IrRouteMemo, IrRoutes};
use crate::listener::Protocol;
use crate::route_order::{Entry, HostId, entry_id};
use crate::routes::{Attachment, ConvertedRoute, ConvertedRule, Payload, Routes};

/// Builds the IR of `gw` from the routes attached to it (`attached`: its attachments, in
/// route order). IR routes the Gateway's last build made from the same conversions come
/// from `memo` (see `ir_route_memo`).
pub(crate) fn build(
    gw: &GatewayCtx,
    attached: &[&Attachment],
    routes: &Routes,
    options: &Options,
    memo: &mut IrRouteMemo,
) -> (GatewayIr, InfraIr) {
    let address = gw.bind_address(options).to_string();
    let blocked_here: BTreeSet<&str> = routes
        .blocked
        .iter()
        .filter(|(g, _)| *g == gw.key)
        .map(|(_, b)| b.as_str())
        .collect();
    let blocked = |backend: &str| !blocked_here.is_empty() && blocked_here.contains(backend);
    let blocked = Blocked {
        is: &blocked,
        none: blocked_here.is_empty(),
    };
    // Ready listeners grouped by (port, UDP or not): TCP-based and UDP may share a number.
    let mut groups: BTreeMap<(u16, bool), Vec<usize>> = BTreeMap::new();
    for (i, l) in gw.listeners.iter().enumerate() {
        if l.is_ready() {
            groups
                .entry((l.port, l.protocol == Some(Protocol::Udp)))
                .or_default()
                .push(i);
        }
    }

    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    // Backends of the HTTP and HTTPS virtual hosts, gathered per host while they are made.
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut secrets: BTreeMap<String, TlsSecret> = BTreeMap::new();
    for (&(port, udp), indices) in &groups {
        let bound = bind_port(port, options);
        let attachments: Vec<&Attachment> = attached
            .iter()
            .copied()
            .filter(|a| indices.contains(&a.listener))
            .collect();
        let protocol = gw.listeners[indices[0]]
            .protocol
            .expect("ready listeners have a protocol");
        let (name, kind) = match protocol {
            Protocol::Http => {
                let name = format!("http-{port}");
                let virtual_hosts =
                    virtual_hosts(gw, indices, &attachments, port, &blocked, memo, &mut used);
                (
                    name.clone(),
                    ListenerKind::Http(HttpListener {
                        route_config: name,
                        virtual_hosts,
                    }),
                )
            }
            Protocol::Https => {
                let mut chains = Vec::new();
                for &i in indices
                    .iter()
                    .filter(|&&i| gw.listeners[i].protocol == Some(Protocol::Https))
                {
                    let l = &gw.listeners[i];
                    let own: Vec<&Attachment> = attachments
                        .iter()
                        .copied()
                        .filter(|a| a.listener == i)
                        .collect();
                    for cert in &l.certificates {
                        secrets
                            .entry(cert.name.clone())
                            .or_insert_with(|| cert.clone());
                    }
                    chains.push(HttpsChain {
                        name: l.name.clone(),
                        server_names: l.hostname.iter().cloned().collect(),
                        certificates: l.certificates.iter().map(|c| c.name.clone()).collect(),
                        client_validation: l.client_validation.clone(),
                        route_config: format!("https-{port}-{}", l.name),
                        virtual_hosts: virtual_hosts(
                            gw,
                            &[i],
                            &own,
                            port,
                            &blocked,
                            memo,
                            &mut used,
                        ),
                    });
                }
                add_misdirected_hosts(&mut chains);
                sort_chains_https(&mut chains);
                (
                    format!("https-{port}"),
                    ListenerKind::Https(HttpsListener { chains }),
                )
            }
            Protocol::Tls { .. } => {
                let mut chains: Vec<TlsChain> = Vec::new();
                for &i in indices
                    .iter()
                    .filter(|&&i| matches!(gw.listeners[i].protocol, Some(Protocol::Tls { .. })))
                {
                    let l = &gw.listeners[i];
                    for cert in &l.certificates {
                        secrets
                            .entry(cert.name.clone())
                            .or_insert_with(|| cert.clone());
                    }
                    for a in stream_attachments(&attachments, i) {
                        let Payload::Stream(route) = &a.payload else {
                            continue;
                        };
                        let server_names: Vec<String> =
                            a.hostnames.iter().filter(|h| *h != "*").cloned().collect();
                        if chains.iter().any(|c| c.server_names == server_names) {
                            continue; // an older route already serves these names
                        }
                        chains.push(TlsChain {
                            name: format!("{}/{}/{}", l.name, route.namespace, route.name),
                            server_names,
                            certificates: l.certificates.iter().map(|c| c.name.clone()).collect(),
                            backends: route
                                .backends
                                .iter()
                                .filter(|b| !(blocked.is)(&b.backend))
                                .cloned()
                                .collect(),
                        });
                    }
                }
                chains.sort_by(|a, b| {
                    chain_order(&a.server_names, &b.server_names).then(a.name.cmp(&b.name))
                });
                (
                    format!("tls-{port}"),
                    ListenerKind::Tls(TlsListener { chains }),
                )
            }
            Protocol::Tcp | Protocol::Udp => {
                let first = indices
                    .iter()
                    .flat_map(|&i| stream_attachments(&attachments, i))
                    .next();
                let (route, backends) = match first.map(|a| &a.payload) {
                    Some(Payload::Stream(r)) => (
                        format!("{}/{}/{}", r.kind.to_ascii_lowercase(), r.namespace, r.name),
                        r.backends
                            .iter()
                            .filter(|b| !(blocked.is)(&b.backend))
                            .cloned()
                            .collect(),
                    ),
                    _ => (String::new(), Vec::new()),
                };
                let stream = StreamListener { route, backends };
                if udp {
                    (format!("udp-{port}"), ListenerKind::Udp(stream))
                } else {
                    (format!("tcp-{port}"), ListenerKind::Tcp(stream))
                }
            }
        };
        ports.push(InfraPort {
            name: name.clone(),
            protocol: if udp {
                PortProtocol::Udp
            } else {
                PortProtocol::Tcp
            },
            port,
            container_port: bound,
        });
        listeners.push(Listener {
            name,
            address: address.clone(),
            port: bound,
            kind,
        });
    }

    stream_backends(&listeners, &mut used);
    let mut backends: Vec<Backend> = used
        .iter()
        .filter_map(|name| routes.backends.get(name).map(|b| Backend::clone(b)))
        .collect();
    // The Gateway's backend client certificate goes to every backend that speaks TLS.
    if let Some(Ok(cert)) = &gw.backend_client_cert {
        for b in backends.iter_mut() {
            if let Some(tls) = b.tls.as_mut() {
                tls.client_certificate = Some(cert.name.clone());
                secrets
                    .entry(cert.name.clone())
                    .or_insert_with(|| cert.clone());
            }
        }
    }
    let spec = &gw.gateway.spec;
    let infrastructure = spec.infrastructure.as_ref();
    let infra = InfraIr {
        gateway: gw.key.clone(),
        gateway_class: spec.gateway_class_name.clone(),
        ports,
        addresses: spec
            .addresses
            .iter()
            .flatten()
            .filter(|a| a.r#type.as_deref().unwrap_or("IPAddress") == "IPAddress")
            .filter_map(|a| a.value.clone())
            .collect(),
        labels: infrastructure
            .and_then(|i| i.labels.clone())
            .unwrap_or_default(),
        annotations: infrastructure
            .and_then(|i| i.annotations.clone())
            .unwrap_or_default(),
        access_logs: crate::access_log::translate(&gw.parameters),
    };
    let ir = GatewayIr {
        gateway: gw.key.clone(),
        listeners,
        backends,
        secrets: secrets.into_values().collect(),
    };
    memo.finish();
    (ir, infra)
}

/// A request on a connection whose TLS server name chose one chain, for a host that another
/// chain of the port serves, was meant for that other listener: answer 421 Misdirected
/// Request (RFC 9110 §15.5.20) so HTTP/2 clients retry on a new connection. Hosts no chain
/// serves still get 404.
fn add_misdirected_hosts(chains: &mut [HttpsChain]) {
    let served: Vec<Vec<String>> = chains
        .iter()
        .map(|c| {
            let mut hosts: Vec<String> = c
                .server_names
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect();
            hosts.extend(
                c.virtual_hosts
                    .iter()
                    .filter(|v| !v.routes.is_empty())
                    .flat_map(|v| v.domains.iter().cloned()),
            );
            hosts.retain(|h| h != "*");
            hosts.sort();
            hosts.dedup();
            hosts
        })
        .collect();
    // With a catch-all chain (a listener without hostname), every host a named chain does
    // not serve belongs to the catch-all listener: misdirected too.
    let catch_all = chains.iter().any(|c| c.server_names.is_empty());
    for (i, chain) in chains.iter_mut().enumerate() {
        if catch_all
            && !chain.server_names.is_empty()
            && !chain
                .virtual_hosts
                .iter()
                .any(|v| v.domains.iter().any(|d| d == "*"))
        {
            served_elsewhere(chain, "*");
        }
        for (j, hosts) in served.iter().enumerate() {
            if i == j {
                continue;
            }
            for h in hosts {
                if !chain.virtual_hosts.iter().any(|v| v.domains.contains(h)) {
                    served_elsewhere(chain, h);
                }
            }
        }
        chain.virtual_hosts.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// Adds a virtual host answering 421 for `domain` to a chain.
fn served_elsewhere(chain: &mut HttpsChain, domain: &str) {
    chain.virtual_hosts.push(VirtualHost {
        name: format!("misdirected/{domain}"),
        domains: vec![domain.to_string()],
        routes: vec![Arc::new(HttpRoute {
            name: "misdirected".into(),
            matcher: Arc::new(ferrogate_ir::HttpMatch {
                path: ferrogate_ir::PathMatch::Prefix("/".into()),
                headers: vec![],
                query_params: vec![],
                method: None,
            }),
            request_headers: Default::default(),
            response_headers: Default::default(),
            cors: None,
            session_persistence: None,
            action: Arc::new(RouteAction::DirectResponse { status: 421 }),
        })],
    });
}

/// Stream routes attached to listener `i`, oldest first.
fn stream_attachments<'a>(attachments: &[&'a Attachment], i: usize) -> Vec<&'a Attachment> {
    let mut out: Vec<&Attachment> = attachments
        .iter()
        .copied()
        .filter(|a| a.listener == i && matches!(a.payload, Payload::Stream(_)))
        .collect();
    out.sort_by(|a, b| match (&a.payload, &b.payload) {
        (Payload::Stream(x), Payload::Stream(y)) => {
            (&x.created, &x.namespace, &x.name).cmp(&(&y.created, &y.namespace, &y.name))
        }
        _ => std::cmp::Ordering::Equal,
    });
    out
}

/// Exact names first, then longer wildcards, then the catch-all (no names).
fn chain_order(a: &[String], b: &[String]) -> std::cmp::Ordering {
    let rank = |names: &[String]| {
        names
            .first()
            .map(|n| hostname::specificity(Some(n)))
            .unwrap_or((0, 0))
    };
    rank(b).cmp(&rank(a))
}

fn sort_chains_https(chains: &mut [HttpsChain]) {
    chains.sort_by(|a, b| chain_order(&a.server_names, &b.server_names).then(a.name.cmp(&b.name)));
}

/// Adds the backends of the TLS, TCP and UDP listeners to `used` (those of the HTTP and
/// HTTPS virtual hosts are gathered as the hosts are made).
fn stream_backends(listeners: &[Listener], used: &mut BTreeSet<String>) {
    for l in listeners {
        match &l.kind {
            ListenerKind::Http(_) | ListenerKind::Https(_) => {}
            ListenerKind::Tls(t) => add_backends(
                used,
                t.chains
                    .iter()
                    .flat_map(|c| c.backends.iter().map(|b| b.backend.as_str())),
            ),
            ListenerKind::Tcp(s) | ListenerKind::Udp(s) => {
                add_backends(used, s.backends.iter().map(|b| b.backend.as_str()))
            }
        }
    }
}

/// Adds `names` to `used`, copying only the names it does not hold yet.
fn add_backends<'a>(used: &mut BTreeSet<String>, names: impl IntoIterator<Item = &'a str>) {
    for name in names {
        if !used.contains(name) {
            used.insert(name.to_string());
        }
    }
}

/// The backends `routes` send requests (or copies of them) to, each once.
fn backends_of(routes: &[Arc<HttpRoute>]) -> Arc<[String]> {
    // Borrowed while collecting: thousands of routes name the same few backends.
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for r in routes {
        if let RouteAction::Forward(f) = &*r.action {
            used.extend(f.backends.iter().map(|b| b.backend.as_str()));
            used.extend(f.mirrors.iter().map(|m| m.backend.as_str()));
        }
    }
    used.into_iter().map(str::to_string).collect()
}

fn bind_port(port: u16, options: &Options) -> u16 {
    if options.shift_privileged_ports && port < PRIVILEGED_PORT_LIMIT {
        port + PRIVILEGED_PORT_OFFSET
    } else {
        port
    }
}

/// Virtual hosts of listeners `indices` (sharing a port). Every listener hostname gets a
/// host even without routes, so its requests never fall through to a wildcard listener's
/// routes.
fn virtual_hosts(
    gw: &GatewayCtx,
    indices: &[usize],
    attachments: &[&Attachment],
    port: u16,
    blocked: &Blocked<'_>,
    memo: &mut IrRouteMemo,
    used: &mut BTreeSet<String>,
) -> Vec<VirtualHost> {
    // (route, rule position, match position), borrowed: most hosts keep their last IR
    // routes, and need no entry of their own.
    type Arrived<'a> = (&'a Arc<ConvertedRoute>, usize, usize);
    let mut hosts: BTreeMap<String, Vec<Arrived<'_>>> = BTreeMap::new();
    for &i in indices {
        hosts
            .entry(
                gw.listeners[i]
                    .hostname
                    .clone()
                    .unwrap_or_else(|| "*".into())
                    .to_ascii_lowercase(),
            )
            .or_default();
    }
    for a in attachments {
        let Payload::Http(route) = &a.payload else {
            continue;
        };
        for host in &a.hostnames {
            if owner(gw, indices, host) != Some(a.listener) {
                continue; // a more specific listener owns this host
            }
            // Hostnames are lowercase already, as a rule: no copy to look one up.
            let arrived = match hosts.get_mut(host.as_str()) {
                Some(arrived) => arrived,
                None => hosts.entry(host.to_ascii_lowercase()).or_default(),
            };
            for (rule, r) in route.rules.iter().enumerate() {
                arrived.extend((0..r.matches.len()).map(|m| (route, rule, m)));
            }
        }
    }
    let group = indices.first().copied().unwrap_or_default();
    hosts
        .into_iter()
        .map(|(host, arrived)| {
            let id: HostId = (group, port, host);
            let ids = || {
                arrived
                    .iter()
                    .map(|&(route, rule, m)| entry_id(route, rule, m))
            };
            // Kept IR routes were made with none of their backends blocked: still right
            // while nothing is blocked.
            let unchanged = if blocked.none {
                memo.orders.unchanged(&id, ids())
            } else {
                None
            };
            let (routes, backends) = match unchanged {
                Some(kept) => kept,
                None => {
                    let entries = arrived
                        .iter()
                        .map(|&(route, rule, m)| Entry {
                            route: Arc::clone(route),
                            rule,
                            m,
                            ir: None,
                        })
                        .collect();
                    let routes = ir_routes(
                        memo.orders.sorted(id.clone(), entries, ids().collect()),
                        port,
                        blocked.is,
                        &mut memo.routes,
                    );
                    let backends = backends_of(&routes);
                    memo.orders.keep_backends(&id, Arc::clone(&backends));
                    (routes, backends)
                }
            };
            add_backends(used, backends.iter().map(String::as_str));
            let (_, _, host) = id;
            VirtualHost {
                name: host.clone(),
                domains: vec![host],
                routes,
            }
        })
        .collect()
}

/// The backends a Gateway must not reach.
struct Blocked<'a> {
    /// Whether the Gateway must not reach a backend.
    is: &'a dyn Fn(&str) -> bool,
    /// Whether it may reach them all.
    none: bool,
}

/// The IR routes of one host's `sorted` entries on `port`.
fn ir_routes(
    sorted: &mut [Entry],
    port: u16,
    blocked: &dyn Fn(&str) -> bool,
    built: &mut IrRoutes,
) -> Vec<Arc<HttpRoute>> {
    sorted
        .iter_mut()
        .map(|e| {
            let (route, m) = (&e.route, e.m);
            let rule = &route.rules[e.rule];
            let build = || to_ir_route((route, rule, m), port, blocked);
            // A blocked backend makes the IR route differ from the one kept (its share is
            // answered 500): it is made again at every build.
            if blocks(rule, blocked) {
                e.ir = None;
                return Arc::new(build());
            }
            // An entry kept from the last build carries its IR route.
            if let Some(ir) = &e.ir {
                return Arc::clone(ir);
            }
            let ir = built.get_or_build(route, rule, m, port, build);
            e.ir = Some(Arc::clone(&ir));
            ir
        })
        .collect()
}

/// Whether the Gateway must not reach one of the rule's backends.
fn blocks(rule: &ConvertedRule, blocked: &dyn Fn(&str) -> bool) -> bool {
    matches!(&*rule.action, RouteAction::Forward(f) if forwards_to_blocked(f, blocked))
}

/// Whether `f` sends requests (or copies of them) to a backend the Gateway must not reach.
fn forwards_to_blocked(f: &Forward, blocked: &dyn Fn(&str) -> bool) -> bool {
    f.backends.iter().any(|b| blocked(&b.backend)) || f.mirrors.iter().any(|m| blocked(&m.backend))
}

fn to_ir_route(
    (route, rule, m): (&ConvertedRoute, &ConvertedRule, usize),
    listener_port: u16,
    blocked: &dyn Fn(&str) -> bool,
) -> HttpRoute {
    let action = gateway_action(&rule.action, listener_port, blocked)
        .map_or_else(|| Arc::clone(&rule.action), Arc::new);
    let mut name = format!(
        "{}/{}/{}/rule/{}/match/{}",
        route.kind.to_ascii_lowercase(),
        route.namespace,
        route.name,
        rule.index,
        m
    );
    // Kept with the Gateway's IR: give back what formatting reserved (about 60 bytes for a
    // 38-byte name).
    name.shrink_to_fit();
    HttpRoute {
        name,
        matcher: Arc::clone(&rule.matches[m]),
        request_headers: rule.request_headers.clone(),
        response_headers: rule.response_headers.clone(),
        cors: rule.cors.clone(),
        session_persistence: rule.session_persistence.clone(),
        action,
    }
}

/// The most specific ready listener of the port that admits `host`.
fn owner(gw: &GatewayCtx, indices: &[usize], host: &str) -> Option<usize> {
    indices
        .iter()
        .copied()
        .filter(|&i| hostname::listener_admits(gw.listeners[i].hostname.as_deref(), host))
        .max_by_key(|&i| {
            (
                hostname::specificity(gw.listeners[i].hostname.as_deref()),
                std::cmp::Reverse(i),
            )
        })
}

/// The action a rule has on this Gateway when it differs from the rule's own, `None` when
/// it is the rule's (most rules: the IR route then shares it with the conversion).
fn gateway_action(
    action: &RouteAction,
    listener_port: u16,
    blocked: &dyn Fn(&str) -> bool,
) -> Option<RouteAction> {
    match action {
        // A backend this Gateway must not reach: its share is answered 500, like an
        // unresolved reference.
        RouteAction::Forward(f) if forwards_to_blocked(f, blocked) => {
            let mut forward = f.clone();
            let (kept, dropped): (Vec<_>, Vec<_>) = std::mem::take(&mut forward.backends)
                .into_iter()
                .partition(|b| !blocked(&b.backend));
            forward.invalid_weight += dropped.iter().map(|b| b.weight).sum::<u32>();
            forward.backends = kept;
            forward.backends.shrink_to_fit();
            forward.mirrors.retain(|m| !blocked(&m.backend));
            Some(if forward.backends.is_empty() {
                RouteAction::DirectResponse { status: 500 }
            } else {
                RouteAction::Forward(forward)
            })
        }
        // The spec: without a port, a redirect keeps the listener's port unless it changes
        // the scheme (then the scheme's well-known port, which Envoy leaves out of Location).
        RouteAction::Redirect(redirect) if redirect.port.is_none() && redirect.scheme.is_none() => {
            let mut redirect = redirect.clone();
            redirect.port = Some(listener_port);
            Some(RouteAction::Redirect(redirect))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use ferrogate_ir::{Redirect, WeightedBackend};

    use super::*;

    fn to(backend: &str, weight: u32) -> WeightedBackend {
        WeightedBackend {
            backend: backend.into(),
            weight,
            request_headers: Default::default(),
            response_headers: Default::default(),
            host_rewrite: None,
        }
    }

    fn forward(backends: Vec<WeightedBackend>) -> RouteAction {
        RouteAction::Forward(Forward {
            backends,
            invalid_weight: 0,
            rewrite: None,
            mirrors: vec![],
            timeouts: None,
            retry: None,
        })
    }

    fn redirect(port: Option<u16>, scheme: Option<&str>) -> RouteAction {
        RouteAction::Redirect(Redirect {
            scheme: scheme.map(Into::into),
            hostname: None,
            port,
            path: None,
            status_code: 302,
        })
    }

    #[test]
    fn a_rule_the_gateway_does_not_change_keeps_its_own_action() {
        let none = |_: &str| false;
        assert_eq!(
            gateway_action(&forward(vec![to("ns/a/80", 1)]), 8080, &none),
            None
        );
        assert_eq!(
            gateway_action(&redirect(Some(8443), None), 8080, &none),
            None
        );
        assert_eq!(
            gateway_action(&redirect(None, Some("https")), 8080, &none),
            None
        );
        let answer = RouteAction::DirectResponse { status: 500 };
        assert_eq!(gateway_action(&answer, 8080, &none), None);
    }

    #[test]
    fn a_blocked_backend_gets_its_share_answered_with_500() {
        let blocked = |b: &str| b == "ns/b/80";
        let action = forward(vec![to("ns/a/80", 1), to("ns/b/80", 3)]);
        let Some(RouteAction::Forward(f)) = gateway_action(&action, 8080, &blocked) else {
            panic!("expected a forward action");
        };
        assert_eq!(f.backends, vec![to("ns/a/80", 1)]);
        assert_eq!(f.invalid_weight, 3);
        let only_blocked = forward(vec![to("ns/b/80", 1)]);
        assert_eq!(
            gateway_action(&only_blocked, 8080, &blocked),
            Some(RouteAction::DirectResponse { status: 500 })
        );
    }

    #[test]
    fn a_redirect_without_port_or_scheme_keeps_the_listener_port() {
        let none = |_: &str| false;
        assert_eq!(
            gateway_action(&redirect(None, None), 8080, &none),
            Some(redirect(Some(8080), None))
        );
    }
}
