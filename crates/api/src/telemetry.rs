//! `EnvoyProxy.spec.telemetry`: access logs of the Envoy fleet, with Envoy Gateway's field
//! names (`gateway.envoyproxy.io/v1alpha1` `ProxyAccessLog`), so a configuration moves over
//! by changing `apiVersion`:
//!
//! ```yaml
//! telemetry:
//!   accessLog:
//!     disable: false
//!     settings:
//!     - format: { type: JSON, json: { status: "%RESPONSE_CODE%", path: "%REQ(:PATH)%" } }
//!       sinks: [{ type: File, file: { path: /dev/stdout } }]
//! ```
//!
//! Unset means Ferrogate's default: one JSON line per request on Envoy's standard output
//! (the container log in a pod, the Envoy's log file in standalone mode). Only the `File`
//! sink exists here (Envoy Gateway's `OpenTelemetry` sink has no counterpart yet), so an
//! unknown sink type is refused by the schema rather than silently ignored.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec.telemetry`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyTelemetry {
    /// Access logs (default: JSON to Envoy's standard output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<ProxyAccessLog>,
}

/// `spec.telemetry.accessLog`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyAccessLog {
    /// Turns access logging off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable: bool,
    /// Where and how to log; unset or empty: Ferrogate's JSON format to standard output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<ProxyAccessLogSetting>,
}

/// One access log: a format written to one or more sinks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyAccessLogSetting {
    /// The line format (default: Ferrogate's JSON fields, see docs/troubleshooting.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ProxyAccessLogFormat>,
    /// Where lines go.
    #[schemars(length(min = 1))]
    pub sinks: Vec<ProxyAccessLogSink>,
}

/// `format.type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ProxyAccessLogFormatType {
    /// An Envoy format string (`text`).
    #[default]
    Text,
    /// One JSON object per line (`json`: field name -> command operator).
    #[serde(rename = "JSON")]
    Json,
}

/// The format of access log lines; Envoy command operators (`%RESPONSE_CODE%`, ...) may be
/// used in `text` and in the values of `json`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.type == 'Text' ? has(self.text) : !has(self.text)", "message": "If AccessLogFormat type is Text, text field needs to be set."},
    {"rule": "self.type == 'JSON' ? has(self.json) : !has(self.json)", "message": "If AccessLogFormat type is JSON, json field needs to be set."},
]))]
pub struct ProxyAccessLogFormat {
    /// `Text` or `JSON`.
    #[serde(rename = "type")]
    pub type_: ProxyAccessLogFormatType,
    /// The format string (type `Text`); a trailing newline is added when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Field name -> value with command operators (type `JSON`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<BTreeMap<String, String>>,
}

/// `sinks[].type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ProxyAccessLogSinkType {
    /// A file in the Envoy's filesystem; `/dev/stdout` and `/dev/stderr` are the streams.
    #[default]
    File,
}

/// Where access log lines go.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.type == 'File' ? has(self.file) : !has(self.file)", "message": "If AccessLogSink type is File, file field needs to be set."},
]))]
pub struct ProxyAccessLogSink {
    /// Sink type (only `File`).
    #[serde(rename = "type")]
    pub type_: ProxyAccessLogSinkType,
    /// The file (type `File`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileEnvoyProxyAccessLog>,
}

/// `sinks[].file`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileEnvoyProxyAccessLog {
    /// Path of the file, e.g. `/dev/stdout`.
    #[schemars(length(min = 1))]
    pub path: String,
}

#[cfg(test)]
mod tests {
    use crate::envoyproxy::EnvoyProxySpec;

    use super::*;

    #[test]
    fn parses_envoy_gateway_access_log_fields() {
        let spec: EnvoyProxySpec = yaml_serde::from_str(
            r#"
telemetry:
  accessLog:
    settings:
    - format: { type: JSON, json: { code: "%RESPONSE_CODE%" } }
      sinks: [{ type: File, file: { path: /dev/stdout } }]
    - format: { type: Text, text: "%REQ(:PATH)%" }
      sinks: [{ type: File, file: { path: /var/log/envoy.log } }]
"#,
        )
        .unwrap();
        let log = spec.access_log().unwrap();
        assert!(!log.disable);
        assert_eq!(log.settings.len(), 2);
        let json = log.settings[0].format.as_ref().unwrap();
        assert_eq!(json.type_, ProxyAccessLogFormatType::Json);
        assert_eq!(json.json.as_ref().unwrap()["code"], "%RESPONSE_CODE%");
        assert_eq!(
            log.settings[1].sinks[0].file.as_ref().unwrap().path,
            "/var/log/envoy.log"
        );
        let yaml = yaml_serde::to_string(&spec).unwrap();
        assert!(
            yaml.contains("type: JSON") && yaml.contains("accessLog:"),
            "{yaml}"
        );
    }

    #[test]
    fn unsupported_sinks_and_formats_are_refused() {
        for bad in [
            "telemetry: { accessLog: { settings: [{ sinks: [{ type: OpenTelemetry }] }] } }",
            "telemetry: { accessLog: { settings: [{ format: { type: Yaml }, sinks: [] }] } }",
        ] {
            assert!(
                yaml_serde::from_str::<EnvoyProxySpec>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
