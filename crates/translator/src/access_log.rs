//! EnvoyProxy `spec.telemetry.accessLog` -> the access logs of a Gateway's infra IR.
//!
//! Unset (or set without settings) means Ferrogate's default: JSON lines on Envoy's
//! standard output, because an operator expects a proxy to log its requests without
//! asking. `disable: true` is the only way to turn it off. A setting without a format
//! gets the default JSON fields; every sink of a setting becomes its own access log.

use ferrogate_api::envoyproxy::{
    EnvoyProxySpec, ProxyAccessLogFormat, ProxyAccessLogFormatType, ProxyAccessLogSink,
};
use ferrogate_ir::{AccessLog, AccessLogFormat, AccessLogSink};

/// The access logs the Envoys of a Gateway with these effective parameters write, sorted
/// and without duplicates (so equal configurations give equal IR).
pub(crate) fn translate(parameters: &EnvoyProxySpec) -> Vec<AccessLog> {
    let Some(config) = parameters.access_log() else {
        return vec![default_log()];
    };
    if config.disable {
        return Vec::new();
    }
    if config.settings.is_empty() {
        return vec![default_log()];
    }
    let mut out: Vec<AccessLog> = config
        .settings
        .iter()
        .flat_map(|setting| {
            let format = format(setting.format.as_ref());
            setting
                .sinks
                .iter()
                .filter_map(sink)
                .map(move |sink| AccessLog {
                    format: format.clone(),
                    sink,
                })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn default_log() -> AccessLog {
    AccessLog {
        format: AccessLogFormat::DefaultJson,
        sink: AccessLogSink::Stdout,
    }
}

fn format(format: Option<&ProxyAccessLogFormat>) -> AccessLogFormat {
    let Some(f) = format else {
        return AccessLogFormat::DefaultJson;
    };
    match f.type_ {
        // The CRD requires `text` for Text and `json` for JSON; a file-provider input is not
        // validated by an API server, so a missing one falls back to the default fields.
        ProxyAccessLogFormatType::Text => match &f.text {
            Some(text) if text.ends_with('\n') => AccessLogFormat::Text { text: text.clone() },
            // Envoy writes the format as given: without a newline, lines would run together.
            Some(text) => AccessLogFormat::Text {
                text: format!("{text}\n"),
            },
            None => AccessLogFormat::DefaultJson,
        },
        ProxyAccessLogFormatType::Json => match &f.json {
            Some(fields) if !fields.is_empty() => AccessLogFormat::Json {
                fields: fields.clone(),
            },
            _ => AccessLogFormat::DefaultJson,
        },
    }
}

/// The sink, or `None` for a File sink without a path (the CRD forbids it).
fn sink(sink: &ProxyAccessLogSink) -> Option<AccessLogSink> {
    let path = sink.file.as_ref()?.path.as_str();
    Some(match path {
        "" => return None,
        // The stream loggers write to the process's own descriptors: no file is opened, so
        // a read-only root filesystem and standalone mode's redirected stdout both work.
        "/dev/stdout" => AccessLogSink::Stdout,
        "/dev/stderr" => AccessLogSink::Stderr,
        path => AccessLogSink::File {
            path: path.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> EnvoyProxySpec {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn without_configuration_requests_are_logged_as_json_to_stdout() {
        assert_eq!(translate(&EnvoyProxySpec::default()), vec![default_log()]);
        assert_eq!(
            translate(&parse("telemetry: { accessLog: {} }")),
            vec![default_log()]
        );
    }

    #[test]
    fn disable_turns_access_logs_off() {
        assert!(translate(&parse("telemetry: { accessLog: { disable: true } }")).is_empty());
    }

    #[test]
    fn every_sink_of_every_setting_is_one_log() {
        let logs = translate(&parse(
            r#"
telemetry:
  accessLog:
    settings:
    - format: { type: Text, text: "%RESPONSE_CODE%" }
      sinks: [{ type: File, file: { path: /dev/stdout } }, { type: File, file: { path: /tmp/a.log } }]
    - sinks: [{ type: File, file: { path: /dev/stderr } }]
"#,
        ));
        let text = AccessLogFormat::Text {
            text: "%RESPONSE_CODE%\n".into(),
        };
        assert_eq!(
            logs,
            vec![
                AccessLog {
                    format: AccessLogFormat::DefaultJson,
                    sink: AccessLogSink::Stderr
                },
                AccessLog {
                    format: text.clone(),
                    sink: AccessLogSink::Stdout
                },
                AccessLog {
                    format: text,
                    sink: AccessLogSink::File {
                        path: "/tmp/a.log".into()
                    }
                },
            ]
        );
    }
}
