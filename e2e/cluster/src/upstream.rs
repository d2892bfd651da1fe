//! Reading the upstream conformance suite's results: the `go test -v` lines of its top-level
//! tests (`--- PASS: TestConformance/<ShortName>`) and the ConformanceReport it writes.
//!
//! The floor of `make upstream-conformance` counts passed tests from the test output, which
//! exists even when the suite stops before writing its report.

use std::collections::BTreeMap;

use serde_json::Value;

/// The outcome of each top-level conformance test that ran, by name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub passed: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
}

/// Collects `--- PASS|FAIL|SKIP: TestConformance/<name>` lines (subtests of a test, which
/// have a further `/`, are not tests of the suite).
pub fn outcomes(output: &str) -> Outcomes {
    let mut out = Outcomes::default();
    for line in output.lines() {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix("--- ") else {
            continue;
        };
        let Some((verdict, rest)) = rest.split_once(": TestConformance/") else {
            continue;
        };
        let name = rest.split_whitespace().next().unwrap_or_default();
        if name.is_empty() || name.contains('/') {
            continue;
        }
        match verdict {
            "PASS" => out.passed.push(name.to_string()),
            "FAIL" => out.failed.push(name.to_string()),
            "SKIP" => out.skipped.push(name.to_string()),
            _ => {}
        }
    }
    out
}

/// Per profile and support level (`core`, `extended`): result and passed/failed/skipped, as
/// the ConformanceReport states them.
pub type ProfileSummary = BTreeMap<String, BTreeMap<String, (String, u64, u64, u64)>>;

/// Reads the profiles of a ConformanceReport (YAML).
pub fn report_summary(report: &str) -> anyhow::Result<ProfileSummary> {
    let report: Value = yaml_serde::from_str(report)?;
    let mut out = ProfileSummary::new();
    for profile in report["profiles"].as_array().into_iter().flatten() {
        let name = profile["name"].as_str().unwrap_or("?").to_string();
        for level in ["core", "extended"] {
            let part = &profile[level];
            if part.is_null() {
                continue;
            }
            let stat = |k: &str| part["statistics"][k].as_u64().unwrap_or(0);
            out.entry(name.clone()).or_default().insert(
                level.to_string(),
                (
                    part["result"].as_str().unwrap_or("?").to_string(),
                    stat("Passed"),
                    stat("Failed"),
                    stat("Skipped"),
                ),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_top_level_tests_count() {
        let output = "=== RUN   TestConformance/HTTPRouteSimpleSameNamespace\n\
            \x20   --- PASS: TestConformance/HTTPRouteSimpleSameNamespace (3.01s)\n\
            \x20       --- PASS: TestConformance/HTTPRouteSimpleSameNamespace/0_request (0.1s)\n\
            \x20   --- FAIL: TestConformance/GatewayStaticAddresses (60.00s)\n\
            \x20   --- SKIP: TestConformance/MeshBasic (0.00s)\n\
            --- FAIL: TestConformance (900.1s)\n";
        let got = outcomes(output);
        assert_eq!(got.passed, ["HTTPRouteSimpleSameNamespace"]);
        assert_eq!(got.failed, ["GatewayStaticAddresses"]);
        assert_eq!(got.skipped, ["MeshBasic"]);
    }

    #[test]
    fn report_profiles_are_summarized() {
        let report = "profiles:\n- name: GATEWAY-HTTP\n  core:\n    result: success\n    statistics: {Passed: 33, Failed: 0, Skipped: 0}\n  extended:\n    result: partial\n    statistics: {Passed: 20, Failed: 2, Skipped: 0}\n";
        let got = report_summary(report).unwrap();
        assert_eq!(
            got["GATEWAY-HTTP"]["core"],
            ("success".to_string(), 33, 0, 0)
        );
        assert_eq!(got["GATEWAY-HTTP"]["extended"].2, 2);
    }
}
