//! An upstream-style `ConformanceReport`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use super::{Outcome, ScenarioResult};

const PROFILES: &[&str] = &[
    "GATEWAY-HTTP",
    "GATEWAY-GRPC",
    "GATEWAY-TLS",
    "GATEWAY-TCP",
    "GATEWAY-UDP",
];

/// Writes the report YAML.
pub fn write_report(
    path: &Path,
    results: &[ScenarioResult],
    unsupported: &[String],
    gateway_api_version: &str,
) -> anyhow::Result<()> {
    let mut features: BTreeSet<String> = BTreeSet::new();
    for r in results {
        features.extend(r.meta.features.iter().cloned());
    }
    let supported: Vec<&String> = features
        .iter()
        .filter(|f| !unsupported.contains(f))
        .collect();
    let mut profiles = Vec::new();
    for profile in PROFILES {
        let mut stats: BTreeMap<&str, (u32, u32, u32, Vec<String>, Vec<String>)> = BTreeMap::new();
        let mut any = false;
        for r in results {
            let Some((_, support)) = r.meta.profiles.iter().find(|(p, _)| p == profile) else {
                continue;
            };
            any = true;
            let level = if support == "extended" {
                "extended"
            } else {
                "core"
            };
            let e = stats.entry(level).or_default();
            match &r.outcome {
                Outcome::Pass => e.0 += 1,
                Outcome::Fail(_) => {
                    e.1 += 1;
                    e.3.push(r.name.clone());
                }
                Outcome::Skip(_) => {
                    e.2 += 1;
                    e.4.push(r.name.clone());
                }
            }
        }
        if !any {
            continue;
        }
        let section = |level: &str| -> Value {
            let (p, f, s, failed, skipped) = stats.get(level).cloned().unwrap_or_default();
            let result = if f > 0 {
                "failure"
            } else if s > 0 || p == 0 {
                "partial"
            } else {
                "success"
            };
            let mut v =
                json!({"result": result, "statistics": {"Passed": p, "Failed": f, "Skipped": s}});
            if !failed.is_empty() {
                v["failedTests"] = json!(failed);
            }
            if !skipped.is_empty() {
                v["skippedTests"] = json!(skipped);
            }
            if level == "extended" {
                let profile_features: BTreeSet<&String> = results
                    .iter()
                    .filter(|r| {
                        r.meta
                            .profiles
                            .iter()
                            .any(|(p, sup)| p == profile && sup == "extended")
                    })
                    .flat_map(|r| r.meta.features.iter())
                    .collect();
                v["supportedFeatures"] = json!(
                    profile_features
                        .iter()
                        .filter(|f| !unsupported.contains(f))
                        .collect::<Vec<_>>()
                );
                v["unsupportedFeatures"] = json!(
                    profile_features
                        .iter()
                        .filter(|f| unsupported.contains(f))
                        .collect::<Vec<_>>()
                );
            }
            v
        };
        profiles.push(
            json!({"name": profile, "core": section("core"), "extended": section("extended")}),
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let report = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ConformanceReport",
        "date": super::world::rfc3339(now),
        "implementation": {"organization": "ferrogate", "project": "ferrogate", "url": "", "version": env!("CARGO_PKG_VERSION"), "contact": []},
        "gatewayAPIVersion": gateway_api_version,
        "gatewayAPIChannel": "experimental",
        "mode": "standalone",
        "profiles": profiles,
        "succeededProvisionalTests": results.iter().filter(|r| r.meta.provisional && r.outcome == Outcome::Pass).map(|r| r.name.clone()).collect::<Vec<_>>(),
        "supportedFeatures": supported,
        "unsupportedFeatures": unsupported,
    });
    std::fs::write(path, yaml_serde::to_string(&report)?)?;
    Ok(())
}
