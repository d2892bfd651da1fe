//! One Gateway's data-plane configuration: listeners grouped by bind address and port, and
//! the backends its routes forward to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Backend, VirtualHost};

/// Identifies a Gateway; Envoy's `node.cluster` carries it as `<namespace>/<name>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GatewayKey {
    /// Namespace of the Gateway.
    pub namespace: String,
    /// Name of the Gateway.
    pub name: String,
}

impl GatewayKey {
    /// Builds a key from namespace and name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }

    /// Parses `<namespace>/<name>`, the form Envoy sends as `node.cluster`.
    pub fn parse(node_cluster: &str) -> Option<Self> {
        let (namespace, name) = node_cluster.split_once('/')?;
        if namespace.is_empty() || name.is_empty() || name.contains('/') {
            return None;
        }
        Some(Self::new(namespace, name))
    }
}

impl fmt::Display for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Everything the Envoys of one Gateway need. Listeners are sorted by (address, port);
/// backends by name; every backend a route names is present in `backends`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayIr {
    /// The Gateway this configuration belongs to.
    pub gateway: GatewayKey,
    /// One entry per bind address and port: Gateway listeners that share a port are merged.
    pub listeners: Vec<Listener>,
    /// Upstream clusters, sorted by name.
    pub backends: Vec<Backend>,
}

/// A socket Envoy binds, and what it serves there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    /// Content-derived, stable name (e.g. `http-8080`); becomes the Envoy Listener name.
    pub name: String,
    /// Address to bind (e.g. `0.0.0.0`, or a per-Gateway loopback address in standalone mode).
    pub address: String,
    /// Port Envoy binds (already mapped for unprivileged ports where needed).
    pub port: u16,
    /// Protocol-specific content.
    #[serde(flatten)]
    pub kind: ListenerKind,
}

/// What a listener serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "protocol")]
pub enum ListenerKind {
    /// Plain-text HTTP: one route configuration, delivered over RDS.
    #[serde(rename = "HTTP")]
    Http(HttpListener),
}

/// Plain-text HTTP listener content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpListener {
    /// Name of the RouteConfiguration (RDS resource) this listener uses.
    pub route_config: String,
    /// Virtual hosts, most specific domain first; a `*` host, if any, last.
    pub virtual_hosts: Vec<VirtualHost>,
}
