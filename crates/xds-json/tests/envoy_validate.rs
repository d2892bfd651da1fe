//! Embeds converted resources in a static Envoy bootstrap and runs the real Envoy's
//! `--mode validate` on it.
//!
//! The Envoy binary is `$FERROGATE_ENVOY`, else `<repo>/.tools/bin/envoy`; when that is
//! missing, `<repo>/scripts/install-envoy.sh` installs it. With neither, the test fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::util::pack_any;
use ferrogate_xds_json::{any_payload_to_json, any_to_json, message_to_json};
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Envoy binary, installed once per test process if needed.
fn envoy() -> &'static Path {
    static ENVOY: OnceLock<PathBuf> = OnceLock::new();
    ENVOY.get_or_init(find_or_install_envoy)
}

fn find_or_install_envoy() -> PathBuf {
    if let Some(path) = std::env::var_os("FERROGATE_ENVOY") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "FERROGATE_ENVOY={} is not a file",
            path.display()
        );
        return path;
    }
    let root = repo_root();
    let binary = root.join(".tools/bin/envoy");
    if binary.is_file() {
        return binary;
    }
    let installer = root.join("scripts/install-envoy.sh");
    assert!(
        installer.is_file(),
        "no Envoy binary at {} and no scripts/install-envoy.sh to install one; \
         set FERROGATE_ENVOY to an Envoy binary",
        binary.display()
    );
    let status = Command::new("bash")
        .arg(&installer)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", installer.display()));
    assert!(status.success(), "{} failed: {status}", installer.display());
    assert!(
        binary.is_file(),
        "{} ran but {} is still missing",
        installer.display(),
        binary.display()
    );
    binary
}

fn bootstrap(listeners: Vec<Value>, clusters: Vec<Value>) -> Value {
    json!({
        "node": {"id": "ferrogate-xds-json-test", "cluster": "ferrogate"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": clusters}
    })
}

/// Runs `envoy --mode validate` on the bootstrap; returns whether it passed and its output
/// (with runs of spaces collapsed).
fn validate(config: &Value) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bootstrap.json");
    std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).expect("write bootstrap");
    let output = Command::new(envoy())
        .arg("--mode")
        .arg("validate")
        .arg("-c")
        .arg(&path)
        .arg("--log-level")
        .arg("warn")
        .output()
        .expect("run envoy");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Protobuf's error messages put random extra spaces between words; collapse them.
    let text = text
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (output.status.success(), text)
}

#[test]
fn envoy_accepts_converted_listener_and_cluster() {
    let config = bootstrap(
        vec![message_to_json(&common::listener()).unwrap()],
        vec![message_to_json(&common::cluster()).unwrap()],
    );
    let (ok, output) = validate(&config);
    assert!(
        ok,
        "envoy rejected the bootstrap:\n{output}\nconfig:\n{config:#}"
    );
}

#[test]
fn envoy_accepts_any_payloads() {
    // xDS resources as the translator holds them: packed in Any.
    let config = bootstrap(
        vec![any_payload_to_json(&pack_any(common::listener())).unwrap()],
        vec![any_payload_to_json(&pack_any(common::cluster())).unwrap()],
    );
    let (ok, output) = validate(&config);
    assert!(
        ok,
        "envoy rejected the bootstrap:\n{output}\nconfig:\n{config:#}"
    );
}

#[test]
fn envoy_rejects_type_key_outside_any_fields() {
    // Why any_payload_to_json exists: "@type" is only valid where the field is an Any.
    let config = bootstrap(
        vec![message_to_json(&common::listener()).unwrap()],
        vec![any_to_json(&pack_any(common::cluster())).unwrap()],
    );
    let (ok, output) = validate(&config);
    assert!(
        !ok,
        "envoy accepted \"@type\" on a static cluster:\n{output}"
    );
    assert!(output.contains("no such field: '@type'"), "{output}");
}

#[test]
fn envoy_rejects_an_invalid_conversion() {
    // An empty stat_prefix breaks HttpConnectionManager's validation rules: proves the
    // validate run really reads the converted typed_config.
    let mut listener = common::listener();
    let hcm = HttpConnectionManager {
        stat_prefix: String::new(),
        ..Default::default()
    };
    listener.filter_chains[0].filters[0].config_type = Some(ConfigType::TypedConfig(pack_any(hcm)));
    let config = bootstrap(
        vec![message_to_json(&listener).unwrap()],
        vec![message_to_json(&common::cluster()).unwrap()],
    );
    let (ok, output) = validate(&config);
    assert!(
        !ok,
        "envoy accepted an HttpConnectionManager without stat_prefix:\n{output}"
    );
    assert!(
        output.contains("StatPrefix") || output.contains("stat_prefix"),
        "{output}"
    );
}
