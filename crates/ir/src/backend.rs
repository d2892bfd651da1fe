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
    /// Ready endpoints, sorted by (address, port), each once. May be empty (Envoy answers
    /// 503). The translator gathers them so and reading IR sorts them, so consumers (every
    /// EDS push) take them as they are. Shared: every route to the same Service port holds
    /// this backend in its kept conversion, so one list serves them all.
    #[serde(deserialize_with = "sorted_endpoints")]
    pub endpoints: Arc<[Endpoint]>,
    /// TLS to the backend (BackendTLSPolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
}

/// Reads a list of endpoints into the order [`Backend::endpoints`] promises.
fn sorted_endpoints<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<[Endpoint]>, D::Error> {
    let mut endpoints = Vec::<Endpoint>::deserialize(d)?;
    endpoints.sort();
    endpoints.dedup();
    Ok(endpoints.into())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_endpoints_come_sorted_and_each_once() {
        let backend: Backend = yaml_serde::from_str(
            "name: apps/foo/80
protocol: http1
endpoints:
  - {address: 10.1.0.2, port: 80}
  - {address: 10.1.0.1, port: 81}
  - {address: 10.1.0.2, port: 80}
  - {address: 10.1.0.1, port: 80}
",
        )
        .unwrap();
        let read: Vec<(&str, u16)> = backend
            .endpoints
            .iter()
            .map(|e| (e.address.as_str(), e.port))
            .collect();
        assert_eq!(read, [("10.1.0.1", 80), ("10.1.0.1", 81), ("10.1.0.2", 80)]);
    }
}
