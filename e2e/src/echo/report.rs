//! Wire formats the echo backend emits: the ports line printed at start-up and
//! the JSON body of echoed requests. Both derive `Deserialize` so harness code
//! can read them back with the same types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// First stdout line: the ports actually bound (matters when 0 was requested).
/// Only the ports of the running role appear: `http`/`h2c`/`https` for the HTTP
/// role, `grpc` (plaintext, `HTTP_PORT`) and `https` for the gRPC role,
/// `tcp`/`tls` for the TCP role and `udp` for the UDP role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// HTTP role's HTTP/1.1 port; 0 (and omitted) in the other roles.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub http: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2c: Option<u16>,
    /// TLS port of the HTTP or gRPC role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<u16>,
    /// Plaintext gRPC port (`HTTP_PORT` of the gRPC role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<u16>,
    /// TLS port of the TCP role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<u16>,
}

fn is_zero(port: &u16) -> bool {
    *port == 0
}

/// The `tls` object of an echo answered on the HTTPS port, fields in upstream's order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsAssertions {
    /// `TLSv1.2`, `TLSv1.3`.
    pub version: String,
    /// PEM of every client certificate received.
    #[serde(rename = "peerCertificates", skip_serializing_if = "Vec::is_empty")]
    pub peer_certificates: Vec<String>,
    /// SNI received (empty when none).
    #[serde(rename = "serverName")]
    pub server_name: String,
    /// ALPN protocol; omitted when none was negotiated.
    #[serde(
        rename = "negotiatedProtocol",
        skip_serializing_if = "String::is_empty"
    )]
    pub negotiated_protocol: String,
    /// IANA name, e.g. `TLS_AES_128_GCM_SHA256`.
    #[serde(rename = "cipherSuite")]
    pub cipher_suite: String,
}

/// JSON body of an echoed request, field names as upstream echo-basic writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EchoedRequest {
    /// Raw request target (path and query) as received.
    pub path: String,
    pub host: String,
    pub method: String,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub proto: String,
    /// Canonical header name (`X-Header-Set`) to its values; a BTreeMap because
    /// Go marshals maps with sorted keys.
    pub headers: BTreeMap<String, Vec<String>>,
    pub namespace: String,
    pub ingress: String,
    pub service: String,
    pub pod: String,
    /// Upstream echoes the `HTTP_PORT` variable, hence a string.
    #[serde(rename = "httpPort")]
    pub http_port: String,
    /// Present only on the HTTPS port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsAssertions>,
}

impl EchoedRequest {
    /// Values of a header, looked up case-insensitively, joined with `,` the way
    /// the conformance suite compares them.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.join(","))
    }
}
