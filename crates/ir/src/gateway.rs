//! One Gateway's data-plane configuration: listeners grouped by bind address and port, and
//! the backends its routes forward to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Backend, VirtualHost, WeightedBackend};

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
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
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
    /// Certificates the listeners serve, sorted by name (Envoy SDS Secrets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<TlsSecret>,
}

/// A certificate and its private key (PEM), served to clients.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsSecret {
    /// Stable name: `<namespace>/<secret name>`; becomes the Envoy Secret name.
    pub name: String,
    /// PEM certificate chain.
    pub certificate_chain: String,
    /// PEM private key.
    pub private_key: String,
}

impl std::fmt::Debug for TlsSecret {
    // Never print private keys in logs or panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSecret")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// HTTPS listener content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpsListener {
    /// Filter chains, most specific server names first; a chain with no server names (if
    /// any) is the default chain.
    pub chains: Vec<HttpsChain>,
}

/// One TLS-terminating HTTP filter chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpsChain {
    /// Stable name (the Gateway listener it comes from).
    pub name: String,
    /// SNI values this chain serves (exact or `*.suffix`); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_names: Vec<String>,
    /// Names of [`TlsSecret`]s served (several for different key types).
    pub certificates: Vec<String>,
    /// Client certificate validation, when the Gateway asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_validation: Option<ClientValidation>,
    /// Name of its RouteConfiguration (RDS resource).
    pub route_config: String,
    /// Virtual hosts, as for plain HTTP.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// Frontend (client certificate) validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientValidation {
    /// PEM CA bundle clients' certificates must chain to.
    pub ca_certificates: String,
    /// Accept clients without a valid certificate too (AllowInsecureFallback).
    #[serde(default)]
    pub allow_insecure_fallback: bool,
}

/// TLS listener content: filter chains selected by SNI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TlsListener {
    /// Chains, most specific server names first.
    pub chains: Vec<TlsChain>,
}

/// One SNI-selected TLS chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TlsChain {
    /// Stable name.
    pub name: String,
    /// SNI values (exact or `*.suffix`); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_names: Vec<String>,
    /// Certificates when Envoy terminates TLS; empty for passthrough.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
    /// Where the (decrypted or passed-through) stream goes.
    pub backends: Vec<WeightedBackend>,
}

/// TCP or UDP listener content: one set of weighted backends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamListener {
    /// Stable name of the route that feeds it.
    pub route: String,
    /// Weighted backends; empty means connections are refused/dropped.
    pub backends: Vec<WeightedBackend>,
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
    /// HTTP over TLS terminated by Envoy: one filter chain per server-name set, each with
    /// its certificates and its own route configuration.
    #[serde(rename = "HTTPS")]
    Https(HttpsListener),
    /// TLS routed by SNI (TLSRoute): passed through, or terminated then proxied as TCP.
    #[serde(rename = "TLS")]
    Tls(TlsListener),
    /// Plain TCP proxying (TCPRoute).
    #[serde(rename = "TCP")]
    Tcp(StreamListener),
    /// UDP proxying (UDPRoute).
    #[serde(rename = "UDP")]
    Udp(StreamListener),
}

/// Plain-text HTTP listener content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpListener {
    /// Name of the RouteConfiguration (RDS resource) this listener uses.
    pub route_config: String,
    /// Virtual hosts, most specific domain first; a `*` host, if any, last.
    pub virtual_hosts: Vec<VirtualHost>,
}
