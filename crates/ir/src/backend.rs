//! Upstream clusters and their endpoints. Endpoints are kept apart from the rest so that an
//! EndpointSlice change can become an endpoints-only (EDS) push.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An upstream cluster: one Service port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    /// Stable, content-derived name: `<namespace>/<service>/<port>`. Becomes the Envoy
    /// cluster and ClusterLoadAssignment name.
    pub name: String,
    /// Protocol spoken to the endpoints.
    pub protocol: BackendProtocol,
    /// Ready endpoints, sorted by (address, port). May be empty (Envoy answers 503).
    /// Shared: every route to the same Service port holds this backend in its kept
    /// conversion, so one list serves them all.
    pub endpoints: Arc<[Endpoint]>,
    /// TLS to the backend (BackendTLSPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
}

/// TLS from Envoy to a backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpstreamTls {
    /// SNI sent, and the name the certificate must carry when `subject_alt_names` is empty.
    pub sni: String,
    /// PEM CA bundle; `None` means the system trust store (WellKnownCACertificates: System).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    /// Accepted subject alternative names (`dns:<name>` or `uri:<uri>`); empty: `sni`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// Client certificate Envoy presents (Gateway `spec.tls.backend`), a TlsSecret name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
}

/// Protocol spoken to a backend, from the Service port's `appProtocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendProtocol {
    /// HTTP/1.1.
    #[default]
    Http1,
    /// HTTP/2 over clear text (`kubernetes.io/h2c`, gRPC).
    Http2,
    /// Raw TCP (TLSRoute, TCPRoute).
    Tcp,
    /// UDP (UDPRoute).
    Udp,
}

/// One address and port of a backend.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    /// IP address.
    pub address: String,
    /// Port.
    pub port: u16,
}
