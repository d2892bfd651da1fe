//! Gateway (and ListenerSet) listeners: protocol, TLS settings and certificates, route kinds,
//! namespace policy, conflicts between listeners sharing a port, and the listener status.

use ferrogate_api::GATEWAY_GROUP;
use ferrogate_api::gateway::{GatewayListeners, GatewayListenersTlsMode as TlsMode};
use ferrogate_ir::TlsSecret;
use ferrogate_status::{Condition, ListenerStatus, RouteGroupKind};
use ferrogate_store::Snapshot;

use crate::certificates::{self, CertProblem, CertRef};
use crate::conditions::{Problem, reasons, types};
use crate::namespaces::NamespacePolicy;

/// Listener protocols we serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    Https,
    /// TLS routed by SNI; `terminate` when Envoy holds the certificate.
    Tls {
        terminate: bool,
    },
    Tcp,
    Udp,
}

impl Protocol {
    fn kinds(self) -> &'static [&'static str] {
        match self {
            Protocol::Http | Protocol::Https => &["HTTPRoute", "GRPCRoute"],
            Protocol::Tls { terminate: true } => &["TCPRoute", "TLSRoute"],
            Protocol::Tls { terminate: false } => &["TLSRoute"],
            Protocol::Tcp => &["TCPRoute"],
            Protocol::Udp => &["UDPRoute"],
        }
    }

    /// Listeners of the same family can share a port (HTTP virtual hosts, TLS by SNI).
    pub(crate) fn family(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https | Protocol::Tls { .. } => "TLS",
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// A listener being judged.
#[derive(Clone, Debug)]
pub(crate) struct ListenerCtx {
    pub name: String,
    pub port: u16,
    /// `None` when the protocol is not supported.
    pub protocol: Option<Protocol>,
    pub hostname: Option<String>,
    pub namespaces: NamespacePolicy,
    /// Route kinds the listener accepts (valid ones only).
    pub kinds: Vec<RouteGroupKind>,
    /// Certificates that resolved (HTTPS, TLS Terminate).
    pub certificates: Vec<TlsSecret>,
    /// `Accepted: False`.
    pub not_accepted: Option<Problem>,
    /// `ResolvedRefs: False`.
    pub unresolved: Option<Problem>,
    /// `Programmed: False`: other reasons it cannot be programmed.
    pub not_programmed: Option<Problem>,
    /// `Conflicted: True` (also makes it `Accepted: False`).
    pub conflict: Option<Problem>,
    /// `OverlappingTLSConfig: True`.
    pub overlapping: Option<Problem>,
    pub attached_routes: i32,
    /// Comes from a ListenerSet (whose status names the conflict in `Programmed` too).
    pub from_listener_set: bool,
    /// Client certificate validation (Gateway `spec.tls.frontend`).
    pub client_validation: Option<ferrogate_ir::ClientValidation>,
}

impl ListenerCtx {
    /// Judges a listener of an object of `owner_kind` (Gateway or ListenerSet) in `owner_ns`.
    pub(crate) fn new(
        snapshot: &Snapshot,
        owner_kind: &str,
        owner_ns: &str,
        spec: &GatewayListeners,
    ) -> Self {
        let allowed = spec.allowed_routes.as_ref();
        let namespaces = allowed.and_then(|a| a.namespaces.as_ref());
        let mut l = ListenerCtx {
            name: spec.name.clone(),
            port: u16::try_from(spec.port).unwrap_or(0),
            protocol: None,
            hostname: spec.hostname.clone().filter(|h| !h.is_empty()),
            namespaces: NamespacePolicy::new(
                namespaces.and_then(|n| n.from.as_ref()),
                namespaces.and_then(|n| n.selector.as_ref()),
            ),
            kinds: Vec::new(),
            certificates: Vec::new(),
            not_accepted: None,
            unresolved: None,
            not_programmed: None,
            conflict: None,
            overlapping: None,
            attached_routes: 0,
            from_listener_set: owner_kind == "ListenerSet",
            client_validation: None,
        };
        if let Err(message) = l.namespaces.validate() {
            l.not_programmed = Some(Problem::not_programmed(reasons::INVALID, message));
        }
        let tls = spec.tls.as_ref();
        let mode = tls
            .and_then(|t| t.mode.clone())
            .unwrap_or(TlsMode::Terminate);
        l.protocol = match spec.protocol.as_str() {
            "HTTP" => Some(Protocol::Http),
            "HTTPS" => Some(Protocol::Https),
            "TLS" => Some(Protocol::Tls {
                terminate: mode == TlsMode::Terminate,
            }),
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            other => {
                l.not_accepted = Some(Problem::not_accepted(
                    reasons::UNSUPPORTED_PROTOCOL,
                    format!("Protocol {other} is unsupported"),
                ));
                None
            }
        };
        if l.port == 0 {
            l.not_accepted = Some(Problem::not_accepted(
                reasons::UNSUPPORTED_VALUE,
                format!("port {} is out of range", spec.port),
            ));
        }
        let Some(protocol) = l.protocol else { return l };
        match protocol {
            Protocol::Http | Protocol::Tcp | Protocol::Udp if tls.is_some() => {
                l.not_programmed = Some(Problem::not_programmed(
                    reasons::INVALID,
                    format!("protocol {} does not take a tls section", spec.protocol),
                ));
            }
            Protocol::Tcp | Protocol::Udp if l.hostname.is_some() => {
                l.not_programmed = Some(Problem::not_programmed(
                    reasons::INVALID,
                    format!("protocol {} does not take a hostname", spec.protocol),
                ));
            }
            Protocol::Https if mode == TlsMode::Passthrough => {
                l.not_programmed = Some(Problem::not_programmed(
                    reasons::UNSUPPORTED_TLS_MODE,
                    "TLS Passthrough mode is not supported on HTTPS listeners, TLS mode must be Terminate",
                ));
            }
            Protocol::Tls { terminate: false }
                if tls
                    .and_then(|t| t.certificate_refs.as_ref())
                    .is_some_and(|c| !c.is_empty()) =>
            {
                l.not_programmed = Some(Problem::not_programmed(
                    reasons::INVALID,
                    "a TLS Passthrough listener takes no certificateRefs",
                ));
            }
            Protocol::Tls { .. } if tls.is_none() => {
                l.not_programmed = Some(Problem::not_programmed(
                    reasons::INVALID,
                    "a TLS listener needs a tls section (mode and, to terminate, certificateRefs)",
                ));
            }
            Protocol::Https | Protocol::Tls { terminate: true } => {
                l.resolve_certificates(snapshot, owner_kind, owner_ns, spec)
            }
            _ => {}
        }
        l.resolve_kinds(protocol, allowed.and_then(|a| a.kinds.as_deref()));
        l
    }

    fn resolve_certificates(
        &mut self,
        snapshot: &Snapshot,
        owner_kind: &str,
        owner_ns: &str,
        spec: &GatewayListeners,
    ) {
        let refs = spec
            .tls
            .as_ref()
            .and_then(|t| t.certificate_refs.as_deref())
            .unwrap_or_default();
        if refs.is_empty() {
            self.not_programmed = Some(Problem::not_programmed(
                reasons::INVALID,
                "Listener must have at least 1 TLS certificate ref",
            ));
            return;
        }
        let mut problems = Vec::new();
        let mut not_permitted = false;
        for (i, r) in refs.iter().enumerate() {
            let cert = CertRef {
                group: r.group.as_deref(),
                kind: r.kind.as_deref(),
                name: &r.name,
                namespace: r.namespace.as_deref(),
            };
            match certificates::resolve(snapshot, owner_kind, owner_ns, &cert) {
                Ok(secret) => self.certificates.push(secret),
                Err(CertProblem::NotPermitted(m)) => {
                    not_permitted = true;
                    problems.push(format!("certificate refs {i}: {m}"));
                }
                Err(CertProblem::Invalid(m)) => problems.push(format!("certificate refs {i}: {m}")),
            }
        }
        if problems.is_empty() {
            return;
        }
        let message = problems.join("; ");
        self.unresolved = Some(if self.certificates.is_empty() {
            if not_permitted && problems.len() == 1 {
                Problem::unresolved(reasons::REF_NOT_PERMITTED, message)
            } else {
                Problem::unresolved(
                    reasons::INVALID_CERTIFICATE_REF,
                    format!("No valid secrets exist: {message}"),
                )
            }
        } else {
            Problem::unresolved(reasons::PARTIALLY_INVALID_CERTIFICATE_REF, message)
        });
    }

    fn resolve_kinds(
        &mut self,
        protocol: Protocol,
        requested: Option<&[ferrogate_api::gateway::GatewayListenersAllowedRoutesKinds]>,
    ) {
        let supported = protocol.kinds();
        match requested {
            None => self.kinds = supported.iter().map(|k| group_kind(k)).collect(),
            Some(kinds) => {
                let mut bad = Vec::new();
                for k in kinds {
                    let group = k.group.clone().unwrap_or_else(|| GATEWAY_GROUP.to_string());
                    let gk = group_kind(&k.kind);
                    if group == GATEWAY_GROUP && supported.contains(&k.kind.as_str()) {
                        if !self.kinds.contains(&gk) {
                            self.kinds.push(gk);
                        }
                    } else {
                        bad.push(format!("{group}/{}", k.kind));
                    }
                }
                if !bad.is_empty() && self.unresolved.is_none() {
                    self.unresolved = Some(Problem::unresolved(
                        reasons::INVALID_ROUTE_KINDS,
                        format!(
                            "{} is not supported, kind must be one of {supported:?}",
                            bad.join(", ")
                        ),
                    ));
                }
            }
        }
    }

    /// Needs certificates (HTTPS, TLS Terminate) and has none that resolved.
    pub(crate) fn lacks_certificates(&self) -> bool {
        matches!(
            self.protocol,
            Some(Protocol::Https | Protocol::Tls { terminate: true })
        ) && self.certificates.is_empty()
    }

    /// Whether Envoy gets configuration for this listener.
    pub(crate) fn is_ready(&self) -> bool {
        let certs_ok = !matches!(
            self.protocol,
            Some(Protocol::Https | Protocol::Tls { terminate: true })
        ) || !self.certificates.is_empty();
        self.protocol.is_some()
            && self.not_accepted.is_none()
            && self.not_programmed.is_none()
            && self.conflict.is_none()
            && !self.kinds.is_empty()
            && certs_ok
    }

    /// Whether routes may attach (and count in `attachedRoutes`): the listener is accepted,
    /// even if it cannot be programmed (so users see where their routes went).
    pub(crate) fn accepts_attachments(&self) -> bool {
        self.protocol.is_some() && self.not_accepted.is_none()
    }

    /// Whether it accepts routes of `kind`.
    pub(crate) fn accepts_kind(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k.kind == kind)
    }

    pub(crate) fn status(&self, generation: Option<i64>) -> ListenerStatus {
        let mut conditions = vec![
            match (&self.not_accepted, &self.conflict) {
                (Some(problem), _) => problem.condition(),
                (None, Some(conflict)) => conflict.condition_as(types::ACCEPTED),
                (None, None) => Condition::ok(
                    types::ACCEPTED,
                    reasons::ACCEPTED,
                    "Listener has been successfully translated",
                ),
            },
            self.unresolved.as_ref().map_or_else(
                || {
                    Condition::ok(
                        types::RESOLVED_REFS,
                        reasons::RESOLVED_REFS,
                        "Listener references have been resolved",
                    )
                },
                Problem::condition,
            ),
            self.conflict.as_ref().map_or_else(
                || Condition::not(types::CONFLICTED, reasons::NO_CONFLICTS, "No conflicts"),
                Problem::condition,
            ),
        ];
        conditions.extend(self.overlapping.as_ref().map(Problem::condition));
        conditions.push(if self.is_ready() {
            Condition::ok(
                types::PROGRAMMED,
                reasons::PROGRAMMED,
                "Sending translated listener configuration to the data plane",
            )
        } else if let (Some(conflict), true) = (&self.conflict, self.from_listener_set) {
            conflict.condition_as(types::PROGRAMMED)
        } else if let Some(problem) = &self.not_programmed {
            problem.condition()
        } else if self.from_listener_set {
            Condition::not(
                types::PROGRAMMED,
                reasons::LISTENERS_NOT_VALID,
                "Listener is invalid, see other Conditions for details.",
            )
        } else {
            Condition::not(
                types::PROGRAMMED,
                reasons::INVALID,
                "Listener is invalid, see other Conditions for details.",
            )
        });
        ListenerStatus {
            name: self.name.clone(),
            attached_routes: self.attached_routes,
            supported_kinds: self.kinds.clone(),
            conditions: conditions
                .into_iter()
                .map(|c| c.at_generation(generation))
                .collect(),
        }
    }
}

fn group_kind(kind: &str) -> RouteGroupKind {
    RouteGroupKind {
        group: GATEWAY_GROUP.to_string(),
        kind: kind.to_string(),
    }
}

/// A second TCP or UDP listener on a port: reported as a protocol conflict, but only on
/// the later listener.
pub(crate) const PORT_TAKEN: &str = reasons::PORT_TAKEN;

/// Why two listeners cannot both be served, if they cannot: a `Conflicted` reason.
pub(crate) fn clash(a: &ListenerCtx, b: &ListenerCtx) -> Option<&'static str> {
    let (Some(pa), Some(pb)) = (a.protocol, b.protocol) else {
        return None;
    };
    if a.port != b.port || a.not_accepted.is_some() || b.not_accepted.is_some() {
        return None;
    }
    // A listener whose certificates all failed serves nothing: it takes no part in conflicts.
    if a.lacks_certificates() || b.lacks_certificates() {
        return None;
    }
    // UDP and TCP-based listeners may share a port number.
    if (pa == Protocol::Udp) != (pb == Protocol::Udp) {
        return None;
    }
    if pa.family() != pb.family() {
        return Some(reasons::PROTOCOL_CONFLICT);
    }
    let same_host = a.hostname.as_deref().map(str::to_ascii_lowercase)
        == b.hostname.as_deref().map(str::to_ascii_lowercase);
    match pa {
        // One TCP or UDP listener per port: the first declared keeps it.
        Protocol::Tcp | Protocol::Udp => Some(PORT_TAKEN),
        _ if same_host => Some(reasons::HOSTNAME_CONFLICT),
        _ => None,
    }
}
