//! Every golden Kubernetes object (and the EnvoyProxy CRD) validates against the OpenAPI
//! schemas of Kubernetes 1.35 with `kubernetes-validate --strict`, through
//! `scripts/validate-manifests.py`, which installs the validator into `.tools/pyenv` when
//! missing. Never skipped: without Python or the package index the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The EnvoyProxy specs of the golden inputs, as EnvoyProxy objects (multi-document YAML).
fn envoy_proxy_objects() -> String {
    let inputs = common::kubernetes_files(".in.yaml");
    let mut docs = Vec::new();
    for input in inputs {
        let case: serde_json::Value =
            yaml_serde::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
        let stem = input
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".in.yaml", "");
        for (key, suffix) in [("envoyProxy", "class"), ("gatewayEnvoyProxy", "gateway")] {
            if let Some(spec) = case.get(key) {
                let object = serde_json::json!({
                    "apiVersion": "gateway.ferrogate.dev/v1alpha1",
                    "kind": "EnvoyProxy",
                    "metadata": { "name": format!("{}-{suffix}", &stem["kubernetes-".len()..]), "namespace": "default" },
                    "spec": spec,
                });
                docs.push(yaml_serde::to_string(&object).unwrap());
            }
        }
    }
    assert!(!docs.is_empty());
    docs.join("---\n")
}

#[test]
fn rendered_objects_validate_against_kubernetes_schemas() {
    let testdata = common::testdata();
    let mut files = common::kubernetes_files(".out.yaml");
    assert!(
        !files.is_empty(),
        "no golden outputs in {}",
        testdata.display()
    );

    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let crd = tmp.join("envoyproxy-crd.yaml");
    std::fs::write(&crd, ferrogate_api::envoyproxy::crd_yaml()).unwrap();
    files.push(crd);
    // The EnvoyProxy specs of the golden inputs, as written there, as EnvoyProxy objects
    // checked against the CRD.
    let params = tmp.join("envoyproxy-objects.yaml");
    std::fs::write(&params, envoy_proxy_objects()).unwrap();
    files.push(params);

    let started = Instant::now();
    let output = Command::new("python3")
        .arg(repo_root().join("scripts/validate-manifests.py"))
        .args(["-k", "1.35.0"])
        .args(&files)
        .output()
        .expect("run python3 scripts/validate-manifests.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "{stdout}{stderr}validate-manifests took {:.2}s in all",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "invalid Kubernetes objects (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
    assert!(stdout.contains("schema 1.35"), "{stdout}");
}

/// The validator is not a rubber stamp: an unknown field, an unknown apiVersion and names
/// the API server would refuse all fail.
#[test]
fn validator_rejects_invalid_objects() {
    let bad = Path::new(env!("CARGO_TARGET_TMPDIR")).join("invalid-objects.yaml");
    std::fs::write(
        &bad,
        r#"apiVersion: v1
kind: Service
metadata: { name: 1bad.name }
spec:
  bogusField: 1
  ports: [{ port: 80, name: http }]
---
apiVersion: apps/v1beta9
kind: Deployment
metadata: { name: d }
"#,
    )
    .unwrap();
    let output = Command::new("python3")
        .arg(repo_root().join("scripts/validate-manifests.py"))
        .arg(&bad)
        .output()
        .expect("run python3 scripts/validate-manifests.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for needle in [
        "bogusField",
        "DNS-1035",
        "Couldn't find schema",
        "2 invalid",
    ] {
        assert!(stdout.contains(needle), "{needle} not reported:\n{stdout}");
    }
}
