//! Golden bootstraps (regenerate with `UPDATE_GOLDEN=1`) and their validation by a real
//! Envoy (`envoy --mode validate`).

use std::path::PathBuf;
use std::process::Command;

use ferrogate_infra_render::{HostPortPlan, bootstrap_hash, render_host_replica};
use ferrogate_ir::{GatewayKey, InfraIr};

mod common;
use common::envoy;

fn testdata(name: &str) -> PathBuf {
    common::testdata().join(name)
}

/// (file, delta xDS, replica). Replica 0's files predate replicas and change only on
/// purpose: running Envoys see a new bootstrap hash and restart (issue 17 changed the stats
/// listener so it cannot reach the admin API, which is worth one restart).
fn variants() -> [(&'static str, bool, u32); 3] {
    [
        ("bootstrap-sotw.json", false, 0),
        ("bootstrap-delta.json", true, 0),
        ("bootstrap-delta-replica-1.json", true, 1),
    ]
}

/// Rebuilds `v` with object keys inserted in sorted order, so the pretty form is the same
/// whether or not serde_json's `preserve_order` feature is unified in.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let entries: std::collections::BTreeMap<String, serde_json::Value> =
                map.into_iter().collect();
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

fn render(delta: bool, replica: u32) -> serde_json::Value {
    let infra = InfraIr {
        gateway: GatewayKey::new("default", "eg"),
        gateway_class: "ferrogate".into(),
        ..InfraIr::default()
    };
    render_host_replica(
        &infra.gateway,
        0,
        replica,
        &HostPortPlan::default(),
        ("127.0.0.1", 18000),
        delta,
        None,
    )
    .expect("slot 0 of the default plan fits")
    .bootstrap
}

#[test]
fn golden_bootstraps() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (file, delta, replica) in variants() {
        let path = testdata(file);
        let actual = serde_json::to_string_pretty(&sorted(render(delta, replica))).unwrap() + "\n";
        if update {
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
                path.display()
            )
        });
        assert!(
            expected == actual,
            "{file} differs from the rendered bootstrap; rerun with UPDATE_GOLDEN=1 and review the diff\n{actual}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&expected).unwrap();
        assert_eq!(
            bootstrap_hash(&parsed),
            bootstrap_hash(&render(delta, replica))
        );
    }
}

#[test]
fn envoy_validates_golden_bootstraps() {
    let envoy = envoy();
    for (file, _, _) in variants() {
        let output = Command::new(&envoy)
            .args([
                "--mode",
                "validate",
                "--disable-hot-restart",
                "-l",
                "warning",
                "-c",
            ])
            .arg(testdata(file))
            .output()
            .expect("run envoy --mode validate");
        assert!(
            output.status.success(),
            "envoy rejected {file}:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
