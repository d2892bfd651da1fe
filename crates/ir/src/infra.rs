//! Infra IR: what must run for one Gateway (ports to expose, addresses, metadata), without
//! saying how (Kubernetes Deployment or local process).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::GatewayKey;

/// Data-plane infrastructure for one accepted Gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InfraIr {
    /// The Gateway.
    pub gateway: GatewayKey,
    /// Its GatewayClass.
    pub gateway_class: String,
    /// Ports to expose, sorted by port.
    pub ports: Vec<InfraPort>,
    /// Addresses requested in `spec.addresses` (IPAddress values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// `spec.infrastructure.labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `spec.infrastructure.annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Access logs every listener of the Gateway writes (EnvoyProxy
    /// `spec.telemetry.accessLog`); empty: access logging is off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_logs: Vec<AccessLog>,
}

/// One access log: a line format written to one sink.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessLog {
    /// The line format.
    pub format: AccessLogFormat,
    /// Where lines go.
    pub sink: AccessLogSink,
}

/// The format of access log lines.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AccessLogFormat {
    /// Ferrogate's JSON fields (the xDS translator owns the list: they are Envoy command
    /// operators).
    DefaultJson,
    /// An Envoy format string.
    Text {
        /// The format string, ending in a newline.
        text: String,
    },
    /// One JSON object per line: field name -> Envoy command operator(s).
    Json {
        /// The fields, sorted by name.
        fields: BTreeMap<String, String>,
    },
}

/// Where access log lines go.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AccessLogSink {
    /// Envoy's standard output: the container log in a pod, the Envoy's log file in
    /// standalone mode.
    Stdout,
    /// Envoy's standard error.
    Stderr,
    /// A file Envoy opens and appends to.
    File {
        /// Path in the Envoy's filesystem.
        path: String,
    },
}

/// One exposed port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InfraPort {
    /// Stable port name.
    pub name: String,
    /// Transport protocol.
    pub protocol: PortProtocol,
    /// Port the Gateway listener declares (the Service port).
    pub port: u16,
    /// Port Envoy binds in a pod (listener ports below 1024 get +10000 so Envoy needs no
    /// privileges).
    pub container_port: u16,
}

/// Transport protocol of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PortProtocol {
    /// TCP.
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}
