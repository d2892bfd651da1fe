//! ferrogate-testkit (dev only): the golden-file harness shared by the pure crates' tests.
//!
//! Owns: running a function over every `testdata/<case>.in.yaml`, comparing its output with
//! `<case>.out.<ext>`, regenerating outputs with `UPDATE_GOLDEN=1` and flagging stale outputs.
//!
//! Must not: be a dependency of anything but tests.
#![forbid(unsafe_code)]

pub mod fake_apiserver;
pub mod worlds;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The Envoy binary for tests that run one: `FERROGATE_ENVOY`, else the repository's
/// `.tools/bin/envoy` (`make envoy`). Panics when it is missing: such tests must fail, never
/// skip.
pub fn envoy_path() -> PathBuf {
    let path = std::env::var_os("FERROGATE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/envoy"));
    assert!(
        path.exists(),
        "no Envoy binary at {}: run `make envoy` (or set FERROGATE_ENVOY)",
        path.display()
    );
    path
}

/// Runs `render` over every `*.in.yaml` in `dir` and compares with `*.out.<out_ext>`.
/// With `UPDATE_GOLDEN=1` the outputs are rewritten and stale ones deleted. Panics with a
/// diff of every mismatch otherwise.
pub fn check_golden(dir: &Path, out_ext: &str, render: impl Fn(&str, &str) -> String) {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = String::new();
    let mut cases = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in &entries {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(case) = file.strip_suffix(".in.yaml") else {
            continue;
        };
        cases.push(case.to_string());
        let input = fs::read_to_string(path).unwrap();
        let actual = render(&input, case);
        let out_path = dir.join(format!("{case}.out.{out_ext}"));
        if update {
            fs::write(&out_path, &actual).unwrap();
            continue;
        }
        match fs::read_to_string(&out_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => {
                let diff = similar::TextDiff::from_lines(&expected, &actual);
                let _ = writeln!(
                    failures,
                    "--- {case}: output differs (UPDATE_GOLDEN=1 to accept)\n{}",
                    diff.unified_diff().context_radius(3)
                );
            }
            Err(_) => {
                let _ = writeln!(
                    failures,
                    "--- {case}: missing {} (run with UPDATE_GOLDEN=1)",
                    out_path.display()
                );
            }
        }
    }
    for path in &entries {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(case) = file.strip_suffix(&format!(".out.{out_ext}"))
            && !cases.iter().any(|c| c == case)
        {
            if update {
                fs::remove_file(path).unwrap();
            } else {
                let _ = writeln!(failures, "--- stale output {file}: it has no input");
            }
        }
    }
    assert!(!cases.is_empty(), "no *.in.yaml cases in {}", dir.display());
    assert!(failures.is_empty(), "{failures}");
}
