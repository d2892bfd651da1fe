//! Gateway listeners: validation, conflicts between listeners sharing a port, route kinds,
//! and the listener status.

use std::collections::BTreeMap;

use ferrogate_api::GATEWAY_GROUP;
use ferrogate_api::gateway::GatewayListeners;
use ferrogate_status::{Condition, ListenerStatus, RouteGroupKind};

use crate::conditions::{reasons, types};
use crate::namespaces::NamespacePolicy;

/// A listener being judged.
#[derive(Clone, Debug)]
pub(crate) struct ListenerCtx {
    pub name: String,
    pub port: u16,
    pub protocol: String,
    pub hostname: Option<String>,
    pub namespaces: NamespacePolicy,
    /// Route kinds the listener accepts (valid ones only).
    pub kinds: Vec<RouteGroupKind>,
    /// A problem that keeps the listener out of the data plane: (condition type, reason, message).
    pub rejected: Option<(&'static str, &'static str, String)>,
    /// allowedRoutes.kinds named kinds we cannot serve.
    pub invalid_kinds: Option<String>,
    /// (reason, message) when it conflicts with another listener.
    pub conflict: Option<(&'static str, String)>,
    pub attached_routes: i32,
}

impl ListenerCtx {
    pub(crate) fn new(spec: &GatewayListeners) -> Self {
        let allowed = spec.allowed_routes.as_ref();
        let namespaces = allowed.and_then(|a| a.namespaces.as_ref());
        let mut listener = ListenerCtx {
            name: spec.name.clone(),
            port: u16::try_from(spec.port).unwrap_or(0),
            protocol: spec.protocol.clone(),
            hostname: spec.hostname.clone().filter(|h| !h.is_empty()),
            namespaces: NamespacePolicy::new(
                namespaces.and_then(|n| n.from.as_ref()),
                namespaces.and_then(|n| n.selector.as_ref()),
            ),
            kinds: Vec::new(),
            rejected: None,
            invalid_kinds: None,
            conflict: None,
            attached_routes: 0,
        };
        let supported: &[&str] = match spec.protocol.as_str() {
            "HTTP" => &["HTTPRoute", "GRPCRoute"],
            other => {
                listener.rejected = Some((
                    types::ACCEPTED,
                    reasons::UNSUPPORTED_PROTOCOL,
                    format!("protocol {other} is not supported yet"),
                ));
                &[]
            }
        };
        if listener.port == 0 {
            listener.rejected = Some((types::ACCEPTED, reasons::UNSUPPORTED_VALUE, format!("port {} is out of range", spec.port)));
        }
        match allowed.and_then(|a| a.kinds.as_ref()) {
            None => {
                listener.kinds = supported.iter().map(|k| group_kind(k)).collect();
            }
            Some(kinds) => {
                let mut bad = Vec::new();
                for k in kinds {
                    let group = k.group.clone().unwrap_or_else(|| GATEWAY_GROUP.to_string());
                    if group == GATEWAY_GROUP && supported.contains(&k.kind.as_str()) {
                        let gk = group_kind(&k.kind);
                        if !listener.kinds.contains(&gk) {
                            listener.kinds.push(gk);
                        }
                    } else {
                        bad.push(format!("{group}/{}", k.kind));
                    }
                }
                if !bad.is_empty() {
                    listener.invalid_kinds = Some(format!("route kinds not supported here: {}", bad.join(", ")));
                }
            }
        }
        listener
    }

    /// Whether the listener is served.
    pub(crate) fn is_ready(&self) -> bool {
        self.rejected.is_none() && self.conflict.is_none()
    }

    /// Whether it accepts routes of `kind`.
    pub(crate) fn accepts_kind(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k.kind == kind)
    }

    pub(crate) fn status(&self, generation: Option<i64>) -> ListenerStatus {
        let mut conditions = Vec::new();
        match (&self.rejected, &self.conflict) {
            (Some((type_, reason, message)), _) => {
                conditions.push(Condition::not(type_, reason, message.clone()));
                conditions.push(Condition::not(types::PROGRAMMED, reasons::INVALID, "Listener is invalid, see other conditions"));
            }
            (None, Some((reason, message))) => {
                conditions.push(Condition::ok(types::CONFLICTED, reason, message.clone()));
                conditions.push(Condition::not(types::PROGRAMMED, reasons::INVALID, "Listener conflicts with another listener"));
            }
            (None, None) => {
                conditions.push(Condition::ok(types::ACCEPTED, reasons::ACCEPTED, "Listener has been successfully translated"));
                conditions.push(Condition::ok(types::PROGRAMMED, reasons::PROGRAMMED, "Sending translated listener configuration to the data plane"));
                conditions.push(Condition::not(types::CONFLICTED, reasons::NO_CONFLICTS, "No conflicts"));
            }
        }
        conditions.push(match &self.invalid_kinds {
            Some(message) => Condition::not(types::RESOLVED_REFS, reasons::INVALID_ROUTE_KINDS, message.clone()),
            None => Condition::ok(types::RESOLVED_REFS, reasons::RESOLVED_REFS, "Listener references have been resolved"),
        });
        ListenerStatus {
            name: self.name.clone(),
            attached_routes: self.attached_routes,
            supported_kinds: self.kinds.clone(),
            conditions: conditions.into_iter().map(|c| c.at_generation(generation)).collect(),
        }
    }
}

fn group_kind(kind: &str) -> RouteGroupKind {
    RouteGroupKind { group: GATEWAY_GROUP.to_string(), kind: kind.to_string() }
}

/// Marks listeners that share a port with an incompatible protocol, or with the same
/// protocol and hostname.
pub(crate) fn mark_conflicts(listeners: &mut [ListenerCtx]) {
    let mut by_port: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (i, l) in listeners.iter().enumerate() {
        if l.rejected.is_none() {
            by_port.entry(l.port).or_default().push(i);
        }
    }
    for indices in by_port.values() {
        let protocols: Vec<&str> = indices.iter().map(|&i| listeners[i].protocol.as_str()).collect();
        if protocols.iter().any(|p| *p != protocols[0]) {
            for &i in indices {
                listeners[i].conflict = Some((reasons::PROTOCOL_CONFLICT, format!("port {} is used by listeners of different protocols", listeners[i].port)));
            }
            continue;
        }
        for &i in indices {
            let same_host = indices
                .iter()
                .filter(|&&j| j != i)
                .any(|&j| listeners[j].hostname.as_deref().map(str::to_ascii_lowercase) == listeners[i].hostname.as_deref().map(str::to_ascii_lowercase));
            if same_host {
                listeners[i].conflict = Some((reasons::HOSTNAME_CONFLICT, format!("another listener on port {} has the same hostname", listeners[i].port)));
            }
        }
    }
}
