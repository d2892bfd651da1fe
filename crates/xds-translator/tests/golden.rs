//! Golden tests: `testdata/<case>.in.yaml` (a GatewayIr) is translated and compared with
//! `testdata/<case>.out.txt`. envoy-types has no serde, so the output is pretty `Debug` text,
//! with the bytes of every packed `Any` replaced by its decoded message.
//!
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p ferrogate-xds-translator --test golden`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::substitution_format_string;
use envoy_types::pb::envoy::config::core::v3::transport_socket;
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter::ConfigType, listener_filter};
use envoy_types::pb::envoy::config::route::v3::{FilterConfig, RouteConfiguration};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    FileAccessLog, file_access_log,
};
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::{
    StderrAccessLog, StdoutAccessLog, stderr_access_log, stdout_access_log,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::{Cors, CorsPolicy};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::http::stateful_session::v3::{
    StatefulSession, StatefulSessionPerRoute, stateful_session_per_route,
};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::extensions::filters::udp::udp_proxy::v3::{
    Route as UdpRoute, UdpProxyConfig, udp_proxy_config::RouteSpecifier as RouteSpecifier2,
};
use envoy_types::pb::envoy::extensions::http::stateful_session::cookie::v3::CookieBasedSessionState;
use envoy_types::pb::envoy::extensions::http::stateful_session::header::v3::HeaderBasedSessionState;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    DownstreamTlsContext, UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::xds::r#type::matcher::v3::matcher::on_match;
use ferrogate_ir::GatewayIr;
use ferrogate_xds_translator::{EnvoyResources, XdsOptions, translate, type_url};
use prost::Message;

const READY_PORT: u16 = 19003;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Renders resources as readable, deterministic text.
fn render(res: &EnvoyResources) -> String {
    let mut out = String::new();
    for l in &res.listeners {
        writeln!(out, "=== Listener {}", l.name).unwrap();
        out.push_str(&render_listener(l));
    }
    for r in &res.route_configs {
        writeln!(out, "=== RouteConfiguration {}", r.name).unwrap();
        out.push_str(&render_route_config(r));
    }
    for c in &res.clusters {
        writeln!(out, "=== Cluster {}", c.name).unwrap();
        out.push_str(&render_cluster(c));
    }
    for e in &res.endpoints {
        writeln!(out, "=== ClusterLoadAssignment {}\n{e:#?}", e.cluster_name).unwrap();
    }
    for s in &res.secrets {
        writeln!(out, "=== Secret {}\n{s:#?}", s.name).unwrap();
    }
    out
}

/// Decodes a packed message of a known type as pretty `Debug` text (nested `Any`s decoded
/// after it), and clears the `Any`'s bytes.
fn decode(any: &mut Any) -> String {
    let text = match any.type_url.as_str() {
        type_url::HTTP_CONNECTION_MANAGER => {
            let mut hcm = HttpConnectionManager::decode(any.value.as_slice()).unwrap();
            let mut nested = String::new();
            for hf in &mut hcm.http_filters {
                if let Some(http_filter::ConfigType::TypedConfig(a)) = &mut hf.config_type {
                    match a.type_url.as_str() {
                        type_url::ROUTER => assert_eq!(
                            Router::decode(a.value.as_slice()).unwrap(),
                            Router::default()
                        ),
                        type_url::CORS => {
                            assert_eq!(Cors::decode(a.value.as_slice()).unwrap(), Cors::default())
                        }
                        type_url::STATEFUL_SESSION => assert_eq!(
                            StatefulSession::decode(a.value.as_slice()).unwrap(),
                            StatefulSession::default()
                        ),
                        other => panic!("unexpected HTTP filter type {other}"),
                    }
                    a.value.clear();
                }
            }
            if let Some(RouteSpecifier::RouteConfig(rc)) = &mut hcm.route_specifier {
                nested = render_route_config_nested(rc);
            }
            nested.push_str(&render_access_logs(&mut hcm.access_log));
            format!("{hcm:#?}\n{nested}")
        }
        type_url::TCP_PROXY => {
            let mut p = TcpProxy::decode(any.value.as_slice()).unwrap();
            let nested = render_access_logs(&mut p.access_log);
            if nested.is_empty() {
                format!("{p:#?}")
            } else {
                format!("{p:#?}\n{nested}")
            }
        }
        type_url::TLS_INSPECTOR => {
            format!("{:#?}", TlsInspector::decode(any.value.as_slice()).unwrap())
        }
        type_url::UDP_PROXY => {
            let mut p = UdpProxyConfig::decode(any.value.as_slice()).unwrap();
            let mut nested = String::new();
            if let Some(RouteSpecifier2::Matcher(m)) = &mut p.route_specifier
                && let Some(on_no_match) = &mut m.on_no_match
                && let Some(on_match::OnMatch::Action(action)) = &mut on_no_match.on_match
                && let Some(a) = &mut action.typed_config
            {
                nested = format!("--- on_no_match action (decoded)\n{}", decode(a));
            }
            let logs = render_access_logs(&mut p.access_log);
            if !logs.is_empty() {
                nested.push_str(&format!("\n{logs}"));
            }
            format!("{p:#?}\n{nested}")
        }
        type_url::UDP_PROXY_ROUTE => {
            format!("{:#?}", UdpRoute::decode(any.value.as_slice()).unwrap())
        }
        type_url::DOWNSTREAM_TLS_CONTEXT => format!(
            "{:#?}",
            DownstreamTlsContext::decode(any.value.as_slice()).unwrap()
        ),
        type_url::UPSTREAM_TLS_CONTEXT => format!(
            "{:#?}",
            UpstreamTlsContext::decode(any.value.as_slice()).unwrap()
        ),
        type_url::FILTER_CONFIG => {
            let mut fc = FilterConfig::decode(any.value.as_slice()).unwrap();
            let nested = fc.config.as_mut().map(decode).unwrap_or_default();
            format!("{fc:#?}\n--- wrapped config (decoded)\n{nested}")
        }
        type_url::CORS_POLICY => {
            format!("{:#?}", CorsPolicy::decode(any.value.as_slice()).unwrap())
        }
        type_url::STATEFUL_SESSION_PER_ROUTE => {
            let mut per_route = StatefulSessionPerRoute::decode(any.value.as_slice()).unwrap();
            let mut nested = String::new();
            if let Some(stateful_session_per_route::Override::StatefulSession(s)) =
                &mut per_route.r#override
                && let Some(state) = s
                    .session_state
                    .as_mut()
                    .and_then(|t| t.typed_config.as_mut())
            {
                nested = match state.type_url.as_str() {
                    type_url::COOKIE_SESSION_STATE => format!(
                        "{:#?}",
                        CookieBasedSessionState::decode(state.value.as_slice()).unwrap()
                    ),
                    type_url::HEADER_SESSION_STATE => format!(
                        "{:#?}",
                        HeaderBasedSessionState::decode(state.value.as_slice()).unwrap()
                    ),
                    other => panic!("unexpected session state type {other}"),
                };
                state.value.clear();
            }
            format!("{per_route:#?}\n--- session state (decoded)\n{nested}")
        }
        type_url::HTTP_PROTOCOL_OPTIONS => format!(
            "{:#?}",
            HttpProtocolOptions::decode(any.value.as_slice()).unwrap()
        ),
        other => panic!("unexpected packed type {other}"),
    };
    any.value.clear();
    text
}

/// Decodes (and clears) access loggers. A JSON format is a `Struct`, whose map prost keeps
/// in a `HashMap` (random `Debug` order): its fields are listed sorted instead.
fn render_access_logs(logs: &mut [AccessLog]) -> String {
    let mut out = String::new();
    for log in logs {
        let Some(access_log::ConfigType::TypedConfig(any)) = &mut log.config_type else {
            continue;
        };
        let (path, format) = match any.type_url.as_str() {
            type_url::STDOUT_ACCESS_LOG => {
                let l = StdoutAccessLog::decode(any.value.as_slice()).unwrap();
                let Some(stdout_access_log::AccessLogFormat::LogFormat(f)) = l.access_log_format
                else {
                    panic!("stdout logger without a format")
                };
                ("stdout".to_string(), f)
            }
            type_url::STDERR_ACCESS_LOG => {
                let l = StderrAccessLog::decode(any.value.as_slice()).unwrap();
                let Some(stderr_access_log::AccessLogFormat::LogFormat(f)) = l.access_log_format
                else {
                    panic!("stderr logger without a format")
                };
                ("stderr".to_string(), f)
            }
            type_url::FILE_ACCESS_LOG => {
                let l = FileAccessLog::decode(any.value.as_slice()).unwrap();
                let Some(file_access_log::AccessLogFormat::LogFormat(f)) = l.access_log_format
                else {
                    panic!("file logger without a format")
                };
                (l.path, f)
            }
            other => panic!("unexpected access logger type {other}"),
        };
        any.value.clear();
        writeln!(out, "--- access log {} to {path}", log.name).unwrap();
        match format.format {
            Some(substitution_format_string::Format::JsonFormat(s)) => {
                let mut fields: Vec<_> = s.fields.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, v) in fields {
                    writeln!(out, "  {k}: {:?}", v.kind).unwrap();
                }
            }
            other => writeln!(out, "  {other:?}").unwrap(),
        }
    }
    out
}

fn render_listener(l: &Listener) -> String {
    let mut l = l.clone();
    let mut decoded = String::new();
    for lf in &mut l.listener_filters {
        if let Some(listener_filter::ConfigType::TypedConfig(any)) = &mut lf.config_type {
            writeln!(
                decoded,
                "--- {} typed_config (decoded)\n{}",
                lf.name,
                decode(any)
            )
            .unwrap();
        }
    }
    for chain in &mut l.filter_chains {
        if let Some(ts) = &mut chain.transport_socket
            && let Some(transport_socket::ConfigType::TypedConfig(any)) = &mut ts.config_type
        {
            writeln!(
                decoded,
                "--- chain {:?} transport_socket {} (decoded)\n{}",
                chain.name,
                ts.name,
                decode(any)
            )
            .unwrap();
        }
        for f in &mut chain.filters {
            let Some(ConfigType::TypedConfig(any)) = &mut f.config_type else {
                continue;
            };
            writeln!(
                decoded,
                "--- {} typed_config (decoded)\n{}",
                f.name,
                decode(any)
            )
            .unwrap();
        }
    }
    format!("{l:#?}\n{decoded}")
}

fn render_route_config(r: &RouteConfiguration) -> String {
    let mut r = r.clone();
    let nested = render_route_config_nested(&mut r);
    format!("{r:#?}\n{nested}")
}

/// Decodes (and clears) the per-filter configs of the routes, returning their text.
fn render_route_config_nested(r: &mut RouteConfiguration) -> String {
    let mut decoded = String::new();
    for vh in &mut r.virtual_hosts {
        for route in &mut vh.routes {
            let mut keys: Vec<String> = route.typed_per_filter_config.keys().cloned().collect();
            keys.sort();
            for key in keys {
                let any = route.typed_per_filter_config.get_mut(&key).unwrap();
                writeln!(
                    decoded,
                    "--- route {:?} {key} (decoded)\n{}",
                    route.name,
                    decode(any)
                )
                .unwrap();
            }
        }
    }
    decoded
}

fn render_cluster(c: &Cluster) -> String {
    let mut c = c.clone();
    let mut decoded = String::new();
    for (key, any) in &mut c.typed_extension_protocol_options {
        assert_eq!(any.type_url, type_url::HTTP_PROTOCOL_OPTIONS);
        writeln!(decoded, "--- {key} (decoded)\n{}", decode(any)).unwrap();
    }
    if let Some(ts) = &mut c.transport_socket
        && let Some(transport_socket::ConfigType::TypedConfig(any)) = &mut ts.config_type
    {
        writeln!(
            decoded,
            "--- transport_socket {} (decoded)\n{}",
            ts.name,
            decode(any)
        )
        .unwrap();
    }
    format!("{c:#?}\n{decoded}")
}

#[test]
fn golden() {
    let dir = testdata();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".in.yaml").map(str::to_string)
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", dir.display());

    let mut stale = Vec::new();
    for case in &cases {
        let input = fs::read_to_string(dir.join(format!("{case}.in.yaml"))).unwrap();
        let ir: GatewayIr =
            yaml_serde::from_str(&input).unwrap_or_else(|e| panic!("{case}.in.yaml: {e}"));
        // A case may name access logs in `<case>.access-logs.yaml` (they come from the infra
        // IR, not the route graph); the others have none, so they show only routing.
        let logs_path = dir.join(format!("{case}.access-logs.yaml"));
        let access_logs = match fs::read_to_string(&logs_path) {
            Ok(text) => yaml_serde::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", logs_path.display())),
            Err(_) => Vec::new(),
        };
        let got = render(&translate(
            &ir,
            &XdsOptions {
                ready_port: READY_PORT,
                access_logs,
            },
        ));
        let out_path = dir.join(format!("{case}.out.txt"));
        if update {
            fs::write(&out_path, &got).unwrap();
            continue;
        }
        match fs::read_to_string(&out_path) {
            Ok(want) if want == got => {}
            Ok(_) => stale.push(format!("{case}.out.txt (differs)")),
            Err(_) => stale.push(format!("{case}.out.txt (missing)")),
        }
    }
    // Outputs without an input are stale too.
    for e in fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if let Some(case) = name.strip_suffix(".out.txt")
            && !cases.iter().any(|c| c == case)
        {
            if update {
                fs::remove_file(dir.join(&name)).unwrap();
            } else {
                stale.push(format!("{name} (no input)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale golden outputs (regenerate with UPDATE_GOLDEN=1 and review the diff):\n  {}",
        stale.join("\n  ")
    );
}
