//! Helpers shared by the test files of this crate (each includes it with `mod common;`).

// Each test file is its own crate and uses only some of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// This crate's `testdata` directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Every `testdata/kubernetes-*<suffix>` file (e.g. `.in.yaml`, `.out.yaml`), sorted.
pub fn kubernetes_files(suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("kubernetes-") && name.ends_with(suffix)
        })
        .collect();
    files.sort();
    files
}

/// `FERROGATE_ENVOY`, else `<repo>/.tools/bin/envoy`; fails (never skips) when missing.
pub fn envoy() -> PathBuf {
    let path = std::env::var_os("FERROGATE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/envoy"));
    assert!(
        path.exists(),
        "no Envoy binary at {}: run scripts/install-envoy.sh (or set FERROGATE_ENVOY)",
        path.display()
    );
    path
}
