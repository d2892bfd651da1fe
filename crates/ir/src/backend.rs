//! Upstream clusters and their endpoints. Endpoints are kept apart from the rest so that an
//! EndpointSlice change can become an endpoints-only (EDS) push.

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
    pub endpoints: Vec<Endpoint>,
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
}

/// One address and port of a backend.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    /// IP address.
    pub address: String,
    /// Port.
    pub port: u16,
}
