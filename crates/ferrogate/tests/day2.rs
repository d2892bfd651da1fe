//! Day-2 operations end to end, with a real `ferrogate standalone` and a real Envoy:
//! - access logs: the default JSON line of a real request in the Envoy's log file, field by
//!   field; an EnvoyProxy switching to a text format in a file of its own (over xDS, no
//!   restart); `disable: true` removing the loggers;
//! - `ferrogate config-dump` through the Envoy's admin port (used above to see the loggers);
//! - `ferrogate status` on the status directory.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferrogate_e2e::client;
use ferrogate_e2e::testing::{self, Standalone, eventually, free_block, free_port};

const HOST: &str = "www.example.com";
const BIN: &str = env!("CARGO_BIN_EXE_ferrogate");

/// Runs the ferrogate binary; returns stdout, or panics with stderr on failure.
fn ferrogate(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ferrogate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn config_dump(fg: &Standalone) -> serde_json::Value {
    let work = fg.work_dir();
    let text = ferrogate(&[
        "config-dump",
        "default/quickstart",
        "--work-dir",
        work.to_str().unwrap(),
    ]);
    serde_json::from_str(&text).unwrap()
}

/// The access log line of the request with `x-request-id: id` in `path`, if written yet.
fn line_with(path: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find(|l| l.contains(id)).map(str::to_string)
}

/// Waits for the line of request `id` in `path`; panics with the file's content after 30 s
/// (Envoy flushes access logs every second in standalone mode).
async fn wait_for_line(path: &Path, id: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = line_with(path, id) {
            return line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access log line for {id} in {}:\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The access logger names in the active listeners of a config dump (the bootstrap's list
/// of compiled-in extensions names them too, so the whole dump cannot be searched).
fn active_listener_loggers(dump: &serde_json::Value) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) if s.starts_with("envoy.access_loggers.") => {
                out.push(s.clone())
            }
            serde_json::Value::Object(m) => m.values().for_each(|v| walk(v, out)),
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let configs = dump["configs"]
        .as_array()
        .expect("a config dump has configs");
    let listeners = configs
        .iter()
        .find(|c| {
            c["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("ListenersConfigDump"))
        })
        .expect("a listeners dump");
    for l in listeners["dynamic_listeners"]
        .as_array()
        .expect("dynamic listeners")
    {
        walk(&l["active_state"], &mut out);
    }
    out
}

/// The value of request header `name` as the echo backend reports it received it.
fn header_seen_by_backend(r: &ferrogate_e2e::client::HttpResponse, name: &str) -> String {
    let body = r.json().unwrap();
    let headers = body["headers"]
        .as_object()
        .unwrap_or_else(|| panic!("no headers in {body}"));
    let (_, value) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no {name} in {body}"));
    let value = if value.is_array() { &value[0] } else { value };
    value.as_str().unwrap().to_string()
}

/// The Gateway with `infrastructure.parametersRef` to the EnvoyProxy `logs`.
fn gateway_with_parameters(port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: ferrogate}}\nspec: {{controllerName: gateway.ferrogate.dev/gatewayclass-controller}}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: quickstart, namespace: default}}\nspec:\n  gatewayClassName: ferrogate\n  \
         infrastructure: {{parametersRef: {{group: gateway.ferrogate.dev, kind: EnvoyProxy, name: logs}}}}\n  listeners: [{{name: http, protocol: HTTP, port: {port}}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_logs_config_dump_and_status_with_a_real_envoy() {
    let v1 = ferrogate_e2e::echo::spawn_for_test("echo-v1-day2", "default", "echo-v1").await;
    let v2 = ferrogate_e2e::echo::spawn_for_test("echo-v2-day2", "default", "echo-v2").await;
    let port = free_port();
    let fg = Standalone::start(
        BIN,
        testing::quickstart(port, v1, v2),
        free_block(32000, 10),
        &[],
    );
    let gateway = SocketAddr::from(([127, 0, 0, 1], port));
    testing::eventually_response(gateway, HOST, "/", &[], Duration::from_secs(60), |r| {
        r.status == 200
    })
    .await;

    // --- the default: one JSON line per request in the Envoy's log file (its stdout) -----
    // Envoy sets its own x-request-id on requests from outside (the client's is not trusted),
    // so the line is found by its path, and its id must be the one the backend received.
    let path = "/day2/json-1?x=1";
    let r = client::get(gateway, HOST, path, &[("user-agent", "day2-test")])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let upstream_id = header_seen_by_backend(&r, "x-request-id");
    let log = fg.work_dir().join("default/quickstart/envoy.log");
    let line = wait_for_line(&log, &format!("\"path\":\"{path}\"")).await;
    let entry: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(entry["method"], "GET", "{line}");
    assert_eq!(entry["authority"], HOST, "{line}");
    assert_eq!(entry["path"], path, "{line}");
    assert_eq!(entry["protocol"], "HTTP/1.1", "{line}");
    assert_eq!(
        entry["response_code"], 200,
        "a number, not a string: {line}"
    );
    assert_eq!(entry["response_flags"], "-", "{line}");
    assert_eq!(entry["x_request_id"], upstream_id.as_str(), "{line}");
    assert_eq!(entry["user_agent"], "day2-test", "{line}");
    assert_eq!(entry["upstream_host"], v1.to_string(), "{line}");
    assert!(
        entry["upstream_cluster"]
            .as_str()
            .is_some_and(|c| c.contains("echo-v1")),
        "{line}"
    );
    assert!(
        entry["route_name"]
            .as_str()
            .is_some_and(|r| r.contains("httproute/default/www")),
        "{line}"
    );
    assert!(
        entry["downstream_remote_address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{line}"
    );
    assert!(
        entry["start_time"]
            .as_str()
            .is_some_and(|t| t.contains('T')),
        "{line}"
    );
    assert!(
        entry["bytes_sent"]
            .as_u64()
            .is_some_and(|b| b == r.body.len() as u64),
        "{line}"
    );
    assert!(entry["duration"].is_u64(), "{line}");
    let loggers = active_listener_loggers(&config_dump(&fg));
    assert!(
        loggers.iter().any(|l| l == "envoy.access_loggers.stdout"),
        "the HCM has the stdout logger: {loggers:?}"
    );

    // --- an EnvoyProxy: text lines in a file of their own, over xDS ------------------------
    let text_log = fg.dir.path().join("access.log");
    let proxy = format!(
        "apiVersion: gateway.ferrogate.dev/v1alpha1\nkind: EnvoyProxy\nmetadata: {{name: logs, namespace: default}}\nspec:\n  telemetry:\n    accessLog:\n      settings:\n      \
         - format: {{type: Text, text: \"%REQ(:PATH)% %RESPONSE_CODE% %ROUTE_NAME%\"}}\n        sinks: [{{type: File, file: {{path: {}}}}}]\n",
        text_log.display()
    );
    let config = fg.dir.path().join("config");
    std::fs::write(config.join("proxy.yaml"), &proxy).unwrap();
    std::fs::write(config.join("gateway.yaml"), gateway_with_parameters(port)).unwrap();
    let text_line = eventually(
        "the text access log line",
        Duration::from_secs(30),
        || async {
            client::get(gateway, HOST, "/day2/text-1", &[]).await.ok()?;
            line_with(&text_log, "/day2/text-1")
        },
    )
    .await;
    let words: Vec<&str> = text_line.split(' ').collect();
    assert_eq!(words[..2], ["/day2/text-1", "200"], "{text_line}");
    assert!(words[2].starts_with("httproute/default/www"), "{text_line}");

    // --- disable: true removes every logger (seen in the running config) -------------------
    std::fs::write(config.join("proxy.yaml"), "apiVersion: gateway.ferrogate.dev/v1alpha1\nkind: EnvoyProxy\nmetadata: {name: logs, namespace: default}\nspec: {telemetry: {accessLog: {disable: true}}}\n").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let with_loggers = active_listener_loggers(&config_dump(&fg));
        if with_loggers.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "access loggers still configured at {with_loggers:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        client::get(gateway, HOST, "/day2/off-1", &[])
            .await
            .unwrap()
            .status,
        200
    );
    // The request above was served by a config without loggers, so nothing can log it.
    assert!(
        line_with(&text_log, "/day2/off-1").is_none() && line_with(&log, "/day2/off-1").is_none()
    );

    // --- ferrogate status on the status directory -------------------------------------------
    let status_dir = fg.dir.path().join("status");
    let table = ferrogate(&["status", "--status-dir", status_dir.to_str().unwrap()]);
    let row = |prefix: &str, name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains(name))
            .map(str::to_string)
    };
    let gw =
        row("Gateway", "default/quickstart").unwrap_or_else(|| panic!("no Gateway row:\n{table}"));
    assert!(
        gw.contains("Accepted=True") && gw.contains("Programmed=True"),
        "{table}"
    );
    let route =
        row("HTTPRoute", "default/www").unwrap_or_else(|| panic!("no HTTPRoute row:\n{table}"));
    assert!(
        route.contains("parent default/quickstart") && route.contains("Accepted=True"),
        "{table}"
    );
    assert!(table.contains("listener http (1 routes)"), "{table}");
}
