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

#[allow(unused_imports)] // not every test binary that includes this module runs Envoy
pub use ferrogate_testkit::envoy_path as envoy;
