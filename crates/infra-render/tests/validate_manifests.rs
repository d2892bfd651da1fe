//! Every golden Kubernetes object (and the EnvoyProxy CRD) validates against the OpenAPI
//! schemas of Kubernetes 1.35 with `kubernetes-validate --strict`, through
//! `scripts/validate-manifests.py`, which installs the validator into `.tools/pyenv` when
//! missing. Never skipped: without Python or the package index the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn rendered_objects_validate_against_kubernetes_schemas() {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&testdata)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("kubernetes-") && name.ends_with(".out.yaml")
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no golden outputs in {}",
        testdata.display()
    );

    let crd = Path::new(env!("CARGO_TARGET_TMPDIR")).join("envoyproxy-crd.yaml");
    std::fs::write(&crd, ferrogate_api::envoyproxy::crd_yaml()).unwrap();
    files.push(crd);

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
