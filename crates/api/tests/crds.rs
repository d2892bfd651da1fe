//! The CRD file the Helm chart ships (`charts/ferrogate/crds/ferrogate.yaml`, also what
//! `ferrogate crds` prints), generated from the Rust types and compared with the checked-in
//! file (`UPDATE_GOLDEN=1` rewrites it; `make manifests` does).
//!
//! Only Ferrogate's own `EnvoyProxy`: the chart ships no Gateway API CRDs. Users install
//! upstream's release (see docs/quickstart.md), and the in-cluster tests install upstream's
//! CRDs from the `sigs.k8s.io/gateway-api` Go module.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compares `content` with the file, or rewrites it under `UPDATE_GOLDEN=1`.
fn check(relative: &str, content: &str) -> Option<String> {
    let path = repo_root().join(relative);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(old) if old == content => None,
        _ => Some(format!("{relative} is stale: run `make manifests`")),
    }
}

#[test]
fn chart_crd_is_generated_from_the_types() {
    let envoyproxy = format!(
        "# Ferrogate's EnvoyProxy CRD, generated from the Rust types (`ferrogate crds`,\n\
         # crates/api/tests/crds.rs, `make manifests`). Do not edit.\n---\n{}",
        ferrogate_api::envoyproxy::crd_yaml()
    );
    if let Some(problem) = check("charts/ferrogate/crds/ferrogate.yaml", &envoyproxy) {
        panic!("{problem}");
    }
}

#[test]
fn no_gateway_api_crd_is_shipped() {
    for dir in ["charts/ferrogate/crds", "manifests/crds"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            assert!(
                !text.contains("group: gateway.networking.k8s.io"),
                "{dir} ships a Gateway API CRD; users install upstream's"
            );
        }
    }
}
