//! Wire formats the echo backend emits: the ports line printed at start-up and
//! the JSON body of echoed requests. Both derive `Deserialize` so harness code
//! can read them back with the same types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// First stdout line: the ports actually bound (matters when 0 was requested).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub http: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2c: Option<u16>,
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
