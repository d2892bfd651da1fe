//! The benchmark's figures as `ferrogate_e2e::bench::Record`s (the names the standalone bench
//! uses for the same figures), merged into a records file such as docs/benchmarks.json.

use std::path::Path;

use ferrogate_e2e::bench::report::{read_json, write_json};
use ferrogate_e2e::bench::{Record, percentile};

use crate::api_delay::ProxyCounts;

/// What one controller run measured.
#[derive(Clone, Debug)]
pub struct Session {
    /// The record scenario (`controller`, `controller, API delayed 500 ms`).
    pub scenario: String,
    /// Milliseconds from creating a route until the first of 3 consecutive 200s.
    pub adds: Vec<f64>,
    /// Milliseconds from deleting it until the first of 3 consecutive 404s.
    pub removes: Vec<f64>,
    /// The controller's CPU (user + system) per edit, in milliseconds.
    pub cpu_per_edit_ms: f64,
    /// Milliseconds from creating a route until its Accepted condition could be read, once
    /// the controller's first status pass is done.
    pub status_accepted_ms: f64,
    /// Milliseconds from the controller's start until its first status pass was done.
    pub status_first_pass_ms: f64,
    /// Requests the controller made through the delaying proxy (delayed run only).
    pub delayed: Option<ProxyCounts>,
}

impl Session {
    fn p(&self, of: &[f64], p: f64) -> f64 {
        let mut sorted = of.to_vec();
        sorted.sort_by(f64::total_cmp);
        percentile(&sorted, p)
    }

    pub fn add_p(&self, p: f64) -> f64 {
        self.p(&self.adds, p)
    }

    pub fn remove_p(&self, p: f64) -> f64 {
        self.p(&self.removes, p)
    }
}

/// The records of both runs, the delayed one carrying the ratios to the undelayed one.
pub fn build(routes: usize, run: Option<&str>, direct: &Session, delayed: &Session) -> Vec<Record> {
    let record = |scenario: &str, name: &str, value: f64, unit: &str| Record {
        name: name.into(),
        routes,
        value,
        unit: unit.into(),
        scenario: Some(scenario.into()),
        implementation: Some("ferrogate".into()),
        run: run.map(str::to_string),
    };
    let mut out = Vec::new();
    for s in [direct, delayed] {
        let sc = s.scenario.as_str();
        out.push(record(
            sc,
            "convergence_samples",
            s.adds.len() as f64,
            "count",
        ));
        out.push(record(sc, "convergence_p50_ms", s.add_p(50.0), "ms"));
        out.push(record(sc, "convergence_p99_ms", s.add_p(99.0), "ms"));
        out.push(record(sc, "convergence_max_ms", s.add_p(100.0), "ms"));
        out.push(record(sc, "route_removal_p50_ms", s.remove_p(50.0), "ms"));
        out.push(record(sc, "route_removal_p99_ms", s.remove_p(99.0), "ms"));
        out.push(record(sc, "cp_cpu_per_edit_ms", s.cpu_per_edit_ms, "ms"));
        out.push(record(
            sc,
            "route_status_accepted_ms",
            s.status_accepted_ms,
            "ms",
        ));
        out.push(record(
            sc,
            "status_first_pass_ms",
            s.status_first_pass_ms,
            "ms",
        ));
        if let Some(counts) = s.delayed {
            out.push(record(
                sc,
                "api_requests_delayed",
                counts.requests as f64,
                "count",
            ));
            out.push(record(
                sc,
                "api_writes_delayed",
                counts.writes as f64,
                "count",
            ));
        }
    }
    let sc = delayed.scenario.as_str();
    out.push(record(
        sc,
        "convergence_p50_ratio_delayed_vs_undelayed",
        delayed.add_p(50.0) / direct.add_p(50.0),
        "x",
    ));
    out.push(record(
        sc,
        "convergence_p99_ratio_delayed_vs_undelayed",
        delayed.add_p(99.0) / direct.add_p(99.0),
        "x",
    ));
    out.push(record(
        sc,
        "route_removal_p99_ratio_delayed_vs_undelayed",
        delayed.remove_p(99.0) / direct.remove_p(99.0),
        "x",
    ));
    out
}

/// Replaces, in the records file at `path` (created when missing), every record of the
/// scenarios in `new` by `new`; other records are kept in their order.
pub fn merge_into(path: &Path, new: &[Record]) -> anyhow::Result<()> {
    let mut records = if path.exists() {
        read_json(path).map_err(|e| anyhow::anyhow!("records file {}: {e:#}", path.display()))?
    } else {
        Vec::new()
    };
    records.retain(|r| !new.iter().any(|n| n.scenario == r.scenario));
    records.extend_from_slice(new);
    write_json(path, &records).map_err(|e| anyhow::anyhow!("writing {}: {e:#}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(scenario: &str, adds: &[f64], delayed: Option<ProxyCounts>) -> Session {
        Session {
            scenario: scenario.into(),
            adds: adds.to_vec(),
            removes: adds.to_vec(),
            cpu_per_edit_ms: 1.0,
            status_accepted_ms: 10.0,
            status_first_pass_ms: 100.0,
            delayed,
        }
    }

    #[test]
    fn ratios_compare_the_delayed_run_with_the_direct_one() {
        let direct = session("controller", &[10.0, 20.0, 40.0], None);
        let delayed = session("slow", &[15.0, 30.0, 60.0], Some(ProxyCounts::default()));
        let records = build(100, None, &direct, &delayed);
        let get = |name: &str, scenario: &str| {
            records
                .iter()
                .find(|r| r.name == name && r.scenario.as_deref() == Some(scenario))
                .map(|r| r.value)
        };
        assert_eq!(get("convergence_p50_ms", "controller"), Some(20.0));
        assert_eq!(get("convergence_p99_ms", "slow"), Some(60.0));
        assert_eq!(
            get("convergence_p99_ratio_delayed_vs_undelayed", "slow"),
            Some(1.5)
        );
        assert_eq!(get("api_requests_delayed", "controller"), None);
        assert_eq!(get("status_first_pass_ms", "controller"), Some(100.0));
        assert_eq!(get("api_requests_delayed", "slow"), Some(0.0));
        assert!(records.iter().all(|r| r.routes == 100));
    }

    #[test]
    fn merging_replaces_only_the_scenarios_measured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.json");
        let old = |scenario: &str, value: f64| Record {
            name: "convergence_p50_ms".into(),
            routes: 100,
            value,
            unit: "ms".into(),
            scenario: Some(scenario.into()),
            implementation: None,
            run: None,
        };
        write_json(&path, &[old("scale-up", 1.0), old("controller", 2.0)]).unwrap();
        merge_into(&path, &[old("controller", 3.0)]).unwrap();
        let values: Vec<(Option<String>, f64)> = read_json(&path)
            .unwrap()
            .into_iter()
            .map(|r| (r.scenario, r.value))
            .collect();
        assert_eq!(
            values,
            [
                (Some("scale-up".into()), 1.0),
                (Some("controller".into()), 3.0)
            ]
        );
    }
}
