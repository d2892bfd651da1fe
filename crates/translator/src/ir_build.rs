//! Assembles one Gateway's IR from its ready listeners and the routes attached to them:
//! listeners sharing a port become one Envoy listener whose virtual hosts are keyed by
//! request host, and each request host is served only by the routes of the most specific
//! listener that admits it (listener isolation).

use std::collections::{BTreeMap, BTreeSet};

use ferrogate_api::{PRIVILEGED_PORT_LIMIT, PRIVILEGED_PORT_OFFSET};
use ferrogate_ir::{
    Backend, GatewayIr, HttpListener, HttpRoute, InfraIr, InfraPort, Listener, ListenerKind, PortProtocol,
    RouteAction, VirtualHost,
};

use crate::Options;
use crate::gateway::GatewayCtx;
use crate::hostname;
use crate::httproute::{Attachment, ConvertedRoute, ConvertedRule, Routes};
use crate::precedence::{self, EntryKey};

pub(crate) fn build(gw: &GatewayCtx, routes: &Routes, options: &Options) -> Option<(GatewayIr, InfraIr)> {
    let address = gw.bind_address(options).to_string();
    let mut by_port: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (i, l) in gw.listeners.iter().enumerate() {
        if l.is_ready() {
            by_port.entry(l.port).or_default().push(i);
        }
    }

    let mut listeners = Vec::new();
    let mut used_backends = BTreeSet::new();
    let mut ports = Vec::new();
    for (&port, indices) in &by_port {
        let bound = bind_port(port, options);
        let attachments: Vec<&Attachment> = routes
            .attachments
            .iter()
            .filter(|a| a.gateway == gw.key && indices.contains(&a.listener))
            .collect();
        let virtual_hosts = virtual_hosts(gw, indices, &attachments, port);
        for vh in &virtual_hosts {
            for r in &vh.routes {
                if let RouteAction::Forward(f) = &r.action {
                    used_backends.extend(f.backends.iter().map(|b| b.backend.clone()));
                }
            }
        }
        let name = format!("http-{port}");
        listeners.push(Listener {
            name: name.clone(),
            address: address.clone(),
            port: bound,
            kind: ListenerKind::Http(HttpListener { route_config: name.clone(), virtual_hosts }),
        });
        ports.push(InfraPort { name, protocol: PortProtocol::Tcp, port, container_port: bound });
    }
    let backends: Vec<Backend> = used_backends.iter().filter_map(|name| routes.backends.get(name).cloned()).collect();

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
        labels: infrastructure.and_then(|i| i.labels.clone()).unwrap_or_default(),
        annotations: infrastructure.and_then(|i| i.annotations.clone()).unwrap_or_default(),
    };
    Some((GatewayIr { gateway: gw.key.clone(), listeners, backends }, infra))
}

fn bind_port(port: u16, options: &Options) -> u16 {
    if options.shift_privileged_ports && port < PRIVILEGED_PORT_LIMIT {
        port + PRIVILEGED_PORT_OFFSET
    } else {
        port
    }
}

/// Virtual hosts of one port. Every listener hostname gets a host even without routes, so
/// that its requests never fall through to a wildcard listener's routes.
fn virtual_hosts(gw: &GatewayCtx, indices: &[usize], attachments: &[&Attachment], port: u16) -> Vec<VirtualHost> {
    let mut hosts: BTreeMap<String, Vec<(&ConvertedRoute, &ConvertedRule, usize)>> = BTreeMap::new();
    for &i in indices {
        hosts.entry(gw.listeners[i].hostname.clone().unwrap_or_else(|| "*".into()).to_ascii_lowercase()).or_default();
    }
    for a in attachments {
        for host in &a.hostnames {
            if owner(gw, indices, host) != Some(a.listener) {
                continue; // a more specific listener owns this host
            }
            let entries = hosts.entry(host.to_ascii_lowercase()).or_default();
            for rule in &a.route.rules {
                for m in 0..rule.matches.len() {
                    entries.push((&a.route, rule, m));
                }
            }
        }
    }
    hosts
        .into_iter()
        .map(|(host, mut entries)| {
            entries.sort_by(|a, b| precedence::compare(&entry_key(a), &entry_key(b)));
            // The same route can reach a host through two listeners: keep one entry.
            entries.dedup_by(|a, b| std::ptr::eq(a.0, b.0) && a.1.index == b.1.index && a.2 == b.2);
            VirtualHost { name: host.clone(), domains: vec![host], routes: entries.into_iter().map(|e| to_ir_route(e, port)).collect() }
        })
        .collect()
}

fn entry_key<'a>(e: &(&'a ConvertedRoute, &'a ConvertedRule, usize)) -> EntryKey<'a> {
    EntryKey {
        matcher: &e.1.matches[e.2],
        created: &e.0.created,
        namespace: &e.0.namespace,
        name: &e.0.name,
        rule: e.1.index,
        match_index: e.2,
    }
}

fn to_ir_route((route, rule, m): (&ConvertedRoute, &ConvertedRule, usize), listener_port: u16) -> HttpRoute {
    let mut action = rule.action.clone();
    if let RouteAction::Redirect(redirect) = &mut action {
        // The spec: without a port, a redirect keeps the listener's port unless it changes
        // the scheme (then the scheme's well-known port, which Envoy leaves out of Location).
        if redirect.port.is_none() && redirect.scheme.is_none() {
            redirect.port = Some(listener_port);
        }
    }
    HttpRoute {
        name: format!("httproute/{}/{}/rule/{}/match/{}", route.namespace, route.name, rule.index, m),
        matcher: rule.matches[m].clone(),
        request_headers: rule.request_headers.clone(),
        response_headers: rule.response_headers.clone(),
        action,
    }
}

/// The most specific ready listener of the port that admits `host`.
fn owner(gw: &GatewayCtx, indices: &[usize], host: &str) -> Option<usize> {
    indices
        .iter()
        .copied()
        .filter(|&i| hostname::listener_admits(gw.listeners[i].hostname.as_deref(), host))
        .max_by_key(|&i| (hostname::specificity(gw.listeners[i].hostname.as_deref()), std::cmp::Reverse(i)))
}
