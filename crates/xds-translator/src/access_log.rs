//! Access loggers (`envoy.config.accesslog.v3.AccessLog`) for the HTTP connection manager,
//! `tcp_proxy` and the UDP proxy, from the infra IR's access logs.
//!
//! Owns Ferrogate's default JSON fields ([`DEFAULT_JSON_FIELDS`]): they are Envoy command
//! operators, so they live with the other Envoy decisions.
//!
//! Determinism: Envoy's JSON format is a `google.protobuf.Struct`, whose field map prost
//! holds in a `HashMap`, so encoding it gives a different byte order per map. Listener
//! bytes must be a pure function of the IR (a changed Listener drains connections), so JSON
//! loggers are encoded through [`SortedStruct`] and friends: messages with the same field
//! numbers whose map is a sorted list of entries, which is exactly how protobuf puts a map
//! on the wire.

use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog as EnvoyAccessLog, access_log};
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    FileAccessLog, file_access_log,
};
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::{
    StderrAccessLog, StdoutAccessLog, stderr_access_log, stdout_access_log,
};
use envoy_types::pb::google::protobuf::{Any, Value, value};
use ferrogate_ir::{AccessLog, AccessLogFormat, AccessLogSink};

use crate::common::pack;
use crate::type_url;

/// Ferrogate's default access log line: field name -> Envoy command operator. Covers what an
/// operator reads first: when, what was asked (method, authority, original path, protocol),
/// what was answered (code, flags and details), sizes and duration, where it went (upstream
/// host, cluster, route), and who asked (request id, peer, user agent, forwarded-for). On TCP
/// and UDP listeners the HTTP fields are `null`.
pub const DEFAULT_JSON_FIELDS: &[(&str, &str)] = &[
    ("authority", "%REQ(:AUTHORITY)%"),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
    ("duration", "%DURATION%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("route_name", "%ROUTE_NAME%"),
    ("start_time", "%START_TIME%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
    ("x_request_id", "%REQ(X-REQUEST-ID)%"),
];

/// Extension names of the loggers.
const STDOUT_LOGGER: &str = "envoy.access_loggers.stdout";
const STDERR_LOGGER: &str = "envoy.access_loggers.stderr";
const FILE_LOGGER: &str = "envoy.access_loggers.file";

/// The Envoy access loggers for the IR's access logs, in IR order (already sorted).
pub fn access_logs(logs: &[AccessLog]) -> Vec<EnvoyAccessLog> {
    logs.iter().map(access_log).collect()
}

fn access_log(log: &AccessLog) -> EnvoyAccessLog {
    let (name, typed_config) = match &log.format {
        AccessLogFormat::Text { text } => text_logger(&log.sink, text),
        AccessLogFormat::DefaultJson => {
            let fields = DEFAULT_JSON_FIELDS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()));
            json_logger(&log.sink, fields.collect())
        }
        AccessLogFormat::Json { fields } => json_logger(
            &log.sink,
            fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ),
    };
    EnvoyAccessLog {
        name: name.to_string(),
        filter: None,
        config_type: Some(access_log::ConfigType::TypedConfig(typed_config)),
    }
}

fn text_logger(sink: &AccessLogSink, text: &str) -> (&'static str, Any) {
    let format = SubstitutionFormatString {
        format: Some(substitution_format_string::Format::TextFormatSource(
            DataSource {
                specifier: Some(data_source::Specifier::InlineString(text.to_string())),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    match sink {
        AccessLogSink::Stdout => (
            STDOUT_LOGGER,
            pack(
                type_url::STDOUT_ACCESS_LOG,
                &StdoutAccessLog {
                    access_log_format: Some(stdout_access_log::AccessLogFormat::LogFormat(format)),
                },
            ),
        ),
        AccessLogSink::Stderr => (
            STDERR_LOGGER,
            pack(
                type_url::STDERR_ACCESS_LOG,
                &StderrAccessLog {
                    access_log_format: Some(stderr_access_log::AccessLogFormat::LogFormat(format)),
                },
            ),
        ),
        AccessLogSink::File { path } => (
            FILE_LOGGER,
            pack(
                type_url::FILE_ACCESS_LOG,
                &FileAccessLog {
                    path: path.clone(),
                    access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(format)),
                },
            ),
        ),
    }
}

/// A JSON logger; `fields` must be sorted by name (both callers iterate sorted maps).
fn json_logger(sink: &AccessLogSink, fields: Vec<(String, String)>) -> (&'static str, Any) {
    let format = JsonFormatString {
        json_format: Some(SortedStruct {
            fields: fields
                .into_iter()
                .map(|(key, operator)| StructField {
                    key,
                    value: Some(Value {
                        kind: Some(value::Kind::StringValue(operator)),
                    }),
                })
                .collect(),
        }),
    };
    match sink {
        AccessLogSink::Stdout => (
            STDOUT_LOGGER,
            pack(
                type_url::STDOUT_ACCESS_LOG,
                &StreamJsonLogger {
                    log_format: Some(format),
                },
            ),
        ),
        AccessLogSink::Stderr => (
            STDERR_LOGGER,
            pack(
                type_url::STDERR_ACCESS_LOG,
                &StreamJsonLogger {
                    log_format: Some(format),
                },
            ),
        ),
        AccessLogSink::File { path } => (
            FILE_LOGGER,
            pack(
                type_url::FILE_ACCESS_LOG,
                &FileJsonLogger {
                    path: path.clone(),
                    log_format: Some(format),
                },
            ),
        ),
    }
}

/// `google.protobuf.Struct` with its `fields` map as a sorted list of map entries (same wire
/// format, deterministic bytes).
#[derive(Clone, PartialEq, prost::Message)]
struct SortedStruct {
    #[prost(message, repeated, tag = "1")]
    fields: Vec<StructField>,
}

/// One entry of `Struct.fields` (a protobuf map entry: key 1, value 2).
#[derive(Clone, PartialEq, prost::Message)]
struct StructField {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<Value>,
}

/// `envoy.config.core.v3.SubstitutionFormatString` with `json_format` (field 2) set.
#[derive(Clone, PartialEq, prost::Message)]
struct JsonFormatString {
    #[prost(message, optional, tag = "2")]
    json_format: Option<SortedStruct>,
}

/// `StdoutAccessLog` / `StderrAccessLog` with `log_format` (field 1).
#[derive(Clone, PartialEq, prost::Message)]
struct StreamJsonLogger {
    #[prost(message, optional, tag = "1")]
    log_format: Option<JsonFormatString>,
}

/// `FileAccessLog` with `path` (field 1) and `log_format` (field 5).
#[derive(Clone, PartialEq, prost::Message)]
struct FileJsonLogger {
    #[prost(string, tag = "1")]
    path: String,
    #[prost(message, optional, tag = "5")]
    log_format: Option<JsonFormatString>,
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn json_stdout() -> AccessLog {
        AccessLog {
            format: AccessLogFormat::DefaultJson,
            sink: AccessLogSink::Stdout,
        }
    }

    #[test]
    fn the_sorted_struct_decodes_as_envoys_own_message_with_every_field() {
        let log = access_log(&json_stdout());
        let Some(access_log::ConfigType::TypedConfig(any)) = log.config_type else {
            panic!()
        };
        assert_eq!(log.name, STDOUT_LOGGER);
        let decoded = StdoutAccessLog::decode(any.value.as_slice()).unwrap();
        let Some(stdout_access_log::AccessLogFormat::LogFormat(format)) = decoded.access_log_format
        else {
            panic!()
        };
        let Some(substitution_format_string::Format::JsonFormat(s)) = format.format else {
            panic!()
        };
        assert_eq!(s.fields.len(), DEFAULT_JSON_FIELDS.len());
        for (key, operator) in DEFAULT_JSON_FIELDS {
            assert_eq!(
                s.fields[*key].kind,
                Some(value::Kind::StringValue(operator.to_string())),
                "{key}"
            );
        }
    }

    #[test]
    fn default_fields_are_sorted_so_bytes_are_deterministic() {
        assert!(DEFAULT_JSON_FIELDS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(access_log(&json_stdout()), access_log(&json_stdout()));
    }

    #[test]
    fn a_file_sink_keeps_its_path() {
        let log = access_log(&AccessLog {
            format: AccessLogFormat::Text {
                text: "%RESPONSE_CODE%\n".into(),
            },
            sink: AccessLogSink::File {
                path: "/var/log/a.log".into(),
            },
        });
        let Some(access_log::ConfigType::TypedConfig(any)) = log.config_type else {
            panic!()
        };
        assert_eq!(
            FileAccessLog::decode(any.value.as_slice()).unwrap().path,
            "/var/log/a.log"
        );
    }
}
