//! The command line without Envoy: `version`, `translate` (exit status and `-o json`) and the
//! log output (no colour codes when stderr is not a terminal; JSON with flat fields).

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ferrogate");

const VALID: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ferrogate}\nspec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}\n";
/// A document that cannot load: a Gateway without `spec`.
const INVALID: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: broken, namespace: default}\nspec: 42\n";

fn run(args: &[&str], stdin_file: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.yaml");
    std::fs::write(&file, stdin_file).unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if *a == "INPUT" {
                file.display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    // stderr is a pipe here, as under a log collector.
    Command::new(BIN).args(&args).output().unwrap()
}

#[test]
fn version_prints_the_commit_and_build() {
    let out = run(&["version"], "");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("ferrogate {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    for key in ["commit:", "target:", "profile:", "rustc:"] {
        assert!(text.contains(key), "{key} missing: {text}");
    }
    // Built in a git checkout: the commit is known (12 hex digits).
    let commit = text
        .lines()
        .find_map(|l| l.strip_prefix("commit:"))
        .unwrap()
        .trim();
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{commit}"
    );
}

#[test]
fn translate_succeeds_on_valid_input_and_prints_json_on_request() {
    let out = run(&["translate", "-f", "INPUT", "-o", "json"], VALID);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["gatewayClasses"][0]["name"], "ferrogate");
    assert_eq!(json["gatewayClasses"][0]["conditions"][0]["status"], "True");
}

#[test]
fn translate_fails_on_an_invalid_document_but_still_prints_the_valid_ones() {
    let out = run(
        &["translate", "-f", "INPUT"],
        &format!("{VALID}---\n{INVALID}"),
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("name: ferrogate"), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("1 input document(s) are invalid"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a piped stderr: {stderr:?}"
    );
}

#[test]
fn json_logs_have_the_event_fields_at_the_top_level() {
    let out = run(
        &["--log-format", "json", "translate", "-f", "INPUT"],
        &format!("{VALID}---\n{INVALID}"),
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    let warning = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["level"] == "WARN")
        .unwrap_or_else(|| panic!("no JSON warning in {stderr}"));
    assert!(
        warning["message"]
            .as_str()
            .is_some_and(|m| m.contains("input.yaml")),
        "{warning}"
    );
    assert!(
        warning.get("fields").is_none(),
        "fields are nested: {warning}"
    );
    assert!(
        warning.get("timestamp").is_some() && warning.get("target").is_some(),
        "{warning}"
    );
}

/// A Gateway with a listener below 1024.
const GATEWAY_ON_80: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ferrogate}\nspec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: web, namespace: default}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n";

/// The listener ports of `translate -o xds` output.
fn listener_ports(out: &Output) -> Vec<u64> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gateways: serde_json::Value = yaml_serde::from_slice(&out.stdout).unwrap();
    let mut ports: Vec<u64> = gateways[0]["resources"]["Listener"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["address"]["socketAddress"]["portValue"].as_u64())
        .collect();
    ports.sort_unstable();
    ports
}

#[test]
fn translate_prints_what_the_controller_provisions_or_with_a_flag_what_standalone_runs() {
    // The controller's pods: port 80 shifted to 10080, readiness on 19003, and the
    // Deployment and Service of `-o infra` use those same ports.
    let xds = run(&["translate", "-f", "INPUT", "-o", "xds"], GATEWAY_ON_80);
    assert_eq!(listener_ports(&xds), [10080, 19003]);
    let infra = run(&["translate", "-f", "INPUT", "-o", "infra"], GATEWAY_ON_80);
    let infra = String::from_utf8(infra.stdout).unwrap();
    assert!(
        infra.contains("containerPort: 10080") && infra.contains("targetPort: 10080"),
        "{infra}"
    );
    assert!(
        infra.contains("port: 19003"),
        "the readiness probe: {infra}"
    );

    // Standalone: the declared port, and the first Gateway slot's readiness port.
    let xds = run(
        &["translate", "--standalone", "-f", "INPUT", "-o", "xds"],
        GATEWAY_ON_80,
    );
    assert_eq!(listener_ports(&xds), [80, 19103]);
    // ... and standalone's statuses: its Envoys serve on this host, reported as 127.0.0.1.
    let address = |standalone: bool| {
        let mut args = vec!["translate", "-f", "INPUT", "-o", "json"];
        if standalone {
            args.push("--standalone");
        }
        let out = run(&args, GATEWAY_ON_80);
        let statuses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        statuses["gateways"][0]["addresses"].clone()
    };
    assert_eq!(
        address(true),
        serde_json::json!([{"type": "IPAddress", "value": "127.0.0.1"}])
    );
    assert_eq!(
        address(false),
        serde_json::Value::Null,
        "a cluster's comes from its Service"
    );
    // Standalone provisions no Kubernetes objects: asking for them is an error, not a guess.
    let infra = run(
        &["translate", "--standalone", "-f", "INPUT", "-o", "infra"],
        GATEWAY_ON_80,
    );
    assert!(!infra.status.success());
    assert!(String::from_utf8_lossy(&infra.stderr).contains("-o infra is the controller's"));
}
