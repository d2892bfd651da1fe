//! `docs/benchmarks.json` (the records) and the tables of `docs/benchmarks.md`. The tables go
//! between `<!-- bench:begin -->` and `<!-- bench:end -->`; text outside the markers is kept.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use super::Record;
use super::side_by_side::PREFIX;
use super::side_by_side_report;

pub const BEGIN: &str = "<!-- bench:begin -->";
pub const END: &str = "<!-- bench:end -->";
/// Scenario of the controller-mode run whose API requests are all delayed 500 ms.
pub const DELAYED: &str = "controller, API delayed 500 ms";

pub fn write_json(path: &Path, records: &[Record]) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(records)? + "\n")?;
    Ok(())
}

pub fn read_json(path: &Path) -> anyhow::Result<Vec<Record>> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

fn get<'a>(records: &'a [Record], name: &str, routes: usize, scenario: &str) -> Option<&'a Record> {
    records
        .iter()
        .find(|r| r.name == name && r.routes == routes && r.scenario.as_deref() == Some(scenario))
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.is_nan() => "–".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// Route counts of a scenario, in the order first recorded.
fn steps(records: &[Record], scenario: &str) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    records
        .iter()
        .filter(|r| r.scenario.as_deref() == Some(scenario) && r.name == "convergence_p50_ms")
        .filter(|r| seen.insert(r.routes))
        .map(|r| r.routes)
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .apply_order(scenario)
}

trait ApplyOrder {
    fn apply_order(self, scenario: &str) -> Self;
}

impl ApplyOrder for Vec<usize> {
    /// Ascending, except the way down, which is listed as it was walked (descending).
    fn apply_order(mut self, scenario: &str) -> Self {
        if scenario == "scale-down" {
            self.reverse();
        }
        self
    }
}

fn table(out: &mut String, records: &[Record], scenarios: &[&str], cols: &[(&str, &str)]) {
    out.push_str("| scenario | routes |");
    for (_, title) in cols {
        let _ = write!(out, " {title} |");
    }
    out.push_str("\n| --- | ---: |");
    for _ in cols {
        out.push_str(" ---: |");
    }
    out.push('\n');
    for scenario in scenarios {
        for n in steps(records, scenario) {
            let _ = write!(out, "| {scenario} | {n} |");
            for (name, _) in cols {
                let _ = write!(
                    out,
                    " {} |",
                    fmt(get(records, name, n, scenario).map(|r| r.value))
                );
            }
            out.push('\n');
        }
    }
}

fn val(records: &[Record], name: &str, routes: usize, scenario: &str) -> Option<f64> {
    get(records, name, routes, scenario).map(|r| r.value)
}

/// A record of `scenario` whatever its route count (the controller-mode runs choose theirs).
fn val_any(records: &[Record], name: &str, scenario: &str) -> Option<f64> {
    records
        .iter()
        .find(|r| r.name == name && r.scenario.as_deref() == Some(scenario))
        .map(|r| r.value)
}

/// Ferrogate beside Envoy Gateway v1.9.0's published scale-test figures (quoted in issue 7)
/// and the targets.
fn headline(out: &mut String, records: &[Record]) {
    let up = "scale-up";
    let per_route = match (
        val(records, "cp_rss_settled_mib", 1000, up),
        val(records, "cp_rss_settled_mib", 10, up),
    ) {
        (Some(a), Some(b)) => Some((a - b) / 990.0),
        _ => None,
    };
    let envoy_down = val(records, "envoy_rss_mib", 10, "scale-down");
    let fleet = super::fleet::FleetSize {
        gateways: 100,
        routes_per_gateway: 1000,
        streams_per_gateway: 10,
    }
    .scenario();
    // O(1) per edit means the bytes of a one-route edit do not grow with the route count.
    let bytes_growth = match (
        val(records, "xds_bytes_per_route_edit", 10000, up),
        val(records, "xds_bytes_per_route_edit", 1000, up),
    ) {
        (Some(big), Some(small)) if small > 0.0 => Some(big / small),
        _ => None,
    };
    // (figure, Ferrogate value, Envoy Gateway figure, target, (threshold, lower is better))
    type Row<'a> = (String, Option<f64>, &'a str, &'a str, Option<(f64, bool)>);
    let rows: Vec<Row> = vec![
        ("control-plane RSS peak at 1000 routes (MiB)".into(), val(records, "cp_rss_peak_mib", 1000, up), "≈256", "≤ 32", Some((32.0, true))),
        ("control-plane RSS settled at 1000 routes (MiB)".into(), val(records, "cp_rss_settled_mib", 1000, up), "floor ≈130", "≤ 32", Some((32.0, true))),
        ("control-plane MiB per route (10 → 1000, settled)".into(), per_route, "≈0.13", "–", None),
        ("control-plane RSS settled at 10000 routes (MiB)".into(), val(records, "cp_rss_settled_mib", 10000, up), "–", "≤ 128", Some((128.0, true))),
        ("Envoy RSS at 1000 routes (MiB)".into(), val(records, "envoy_rss_mib", 1000, up), "≈104", "–", None),
        ("Envoy RSS back at 10 routes after scale-down (MiB)".into(), envoy_down, "never comes back down", "–", None),
        ("route convergence p99 at 1000 routes (ms)".into(), val(records, "convergence_p99_ms", 1000, up), "measured, not published", "≤ 150", Some((150.0, true))),
        ("route convergence p99 at 10000 routes (ms)".into(), val(records, "convergence_p99_ms", 10000, up), "–", "≤ 1000", Some((1000.0, true))),
        ("endpoint propagation p99 at 1000 routes (ms)".into(), val(records, "endpoint_propagation_p99_ms", 1000, "endpoints"), "users report 30–120 s", "≤ 100", Some((100.0, true))),
        ("xDS bytes for a one-route edit at 1000 routes, delta".into(), val(records, "xds_bytes_per_route_edit", 1000, up), "–", "O(1)", None),
        ("xDS bytes for a one-route edit at 10000 / 1000 routes, delta (1 = O(1))".into(), bytes_growth, "–", "≤ 1.5", Some((1.5, true))),
        ("xDS bytes for a one-route edit at 1000 routes, sotw".into(), val(records, "xds_bytes_per_route_edit", 1000, "sotw"), "–", "–", None),
        ("data-plane req/s ratio vs equivalent static config (1000 routes, median of rounds)".into(), val(records, "dataplane_rps_ratio", 1000, "dataplane"), "–", "≥ 0.95", Some((0.95, false))),
        ("data-plane Envoy CPU per request, equivalent static / Ferrogate (1000 routes)".into(), val(records, "dataplane_cpu_ratio", 1000, "dataplane"), "–", "≥ 0.95", Some((0.95, false))),
        ("data-plane Envoy instructions per request, equivalent static / Ferrogate (callgrind, noise-free)".into(), val(records, "dataplane_instructions_ratio", 1000, "dataplane"), "–", "≥ 0.95", Some((0.95, false))),
        ("data-plane Envoy instructions per request, minimal static / Ferrogate".into(), val(records, "dataplane_instructions_ratio_vs_minimal", 1000, "dataplane"), "–", "–", None),
        ("failed requests: 500 route edits under load".into(), val(records, "failed_requests", 1000, "route-edits"), "–", "0", Some((0.0, true))),
        ("failed requests: Gateways added and removed beside a busy one".into(), val(records, "failed_requests", 1000, "gateways-beside-busy"), "–", "0", Some((0.0, true))),
        ("failed requests: a config Envoy rejects (NACK)".into(), val(records, "failed_requests", 1000, "nack"), "–", "0", Some((0.0, true))),
        ("failed requests: kill -9 of the control plane".into(), val(records, "failed_requests", 1000, "kill9-control-plane"), "–", "0", Some((0.0, true))),
        ("failed requests: kill -9 of the only Envoy (1 replica)".into(), val(records, "failed_requests", 1000, "envoy-crash"), "–", "0", Some((0.0, true))),
        ("failed requests: kill -9 of one of 2 Envoy replicas (in flight on it)".into(), val(records, "failed_requests", 1000, "envoy-crash-2-replicas"), "–", "0", Some((0.0, true))),
        ("control-plane CPU per one-route edit at 10000 routes (ms, issue 15)".into(), val(records, "cp_cpu_per_edit_ms", 10000, up), "–", "≤ 20", Some((20.0, true))),
        ("route convergence p99 at 1000 routes (ms, issue 15)".into(), val(records, "convergence_p99_ms", 1000, up), "–", "≤ 20", Some((20.0, true))),
        ("route convergence p99 at 10000 routes (ms, issue 15)".into(), val(records, "convergence_p99_ms", 10000, up), "–", "≤ 50", Some((50.0, true))),
        ("control-plane RSS settled at 10000 routes (MiB, issue 15)".into(), val(records, "cp_rss_settled_mib", 10000, up), "–", "≤ 64", Some((64.0, true))),
        ("control-plane RSS peak at 10000 routes (MiB, issue 15)".into(), val(records, "cp_rss_peak_mib", 10000, up), "–", "≤ 96", Some((96.0, true))),
        ("control-plane RSS settled, 100 Gateways x 1000 routes, 1000 xDS streams (MiB)".into(), val(records, "cp_rss_settled_mib", 100_000, &fleet), "–", "≤ 512", Some((512.0, true))),
        ("route convergence p99 of a one-route edit, 100 Gateways x 1000 routes (ms)".into(), val(records, "convergence_p99_ms", 100_000, &fleet), "–", "≤ 50", Some((50.0, true))),
        ("xDS responses to the other 99 Gateways' streams per one-route edit (100 x 1000)".into(), val(records, "xds_responses_to_other_gateways_per_edit", 100_000, &fleet), "–", "0", Some((0.0, true))),
        ("EndpointSlice change used by all 100 Gateways: last ACK of 900 simulated streams, p99 (ms)".into(), val(records, "eds_last_ack_p99_ms", 100_000, &fleet), "–", "≤ 200", Some((200.0, true))),
        ("route convergence p99 in controller mode, every API request delayed 500 ms / undelayed".into(), val_any(records, "convergence_p99_ratio_delayed_vs_undelayed", DELAYED), "–", "≤ 1.1 (unchanged)", Some((1.1, true))),
        ("translation of a one-route edit, 100 Gateways x 1000 routes, in-process p50 (ms)".into(), val(records, "in_process_translate_edit_p50_ms", 100_000, "in-process, 100 Gateways x 1000 routes"), "–", "–", None),
        ("Gateways whose xDS a one-route edit changes, 100 Gateways x 1000 routes".into(), val(records, "in_process_gateways_changed_per_edit", 100_000, "in-process, 100 Gateways x 1000 routes"), "–", "1", Some((1.0, true))),
        ("data-plane req/s ratio vs minimal static config (routing only)".into(), val(records, "dataplane_rps_ratio_vs_minimal", 1000, "dataplane"), "–", "–", None),
        ("data-plane Envoy CPU per request, minimal static / Ferrogate".into(), val(records, "dataplane_cpu_ratio_vs_minimal", 1000, "dataplane"), "–", "–", None),
    ];
    out.push_str("### Beside Envoy Gateway\n\n| figure | Ferrogate | Envoy Gateway v1.9.0 | target | met |\n| --- | ---: | --- | --- | --- |\n");
    for (what, v, eg, target, check) in rows {
        let met = match (v, check) {
            (Some(v), Some((t, below))) if !v.is_nan() => {
                if (below && v <= t) || (!below && v >= t) {
                    "yes"
                } else {
                    "**no**"
                }
            }
            (None, _) => "not measured",
            _ => "",
        };
        let _ = writeln!(out, "| {what} | {} | {eg} | {target} | {met} |", fmt(v));
    }
}

/// The generated part of `docs/benchmarks.md`.
pub fn render_tables(records: &[Record], context: &str) -> String {
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push_str("\n\n_Generated by `ferrogate-bench` from `docs/benchmarks.json`; do not edit between the markers._\n\n");
    out.push_str(context.trim_end());
    out.push_str("\n\n");
    headline(&mut out, records);
    for run in side_by_side_report::runs(records) {
        let run_line = context.lines().find(|l| l.contains(&format!("`{run}`")));
        out.push('\n');
        out.push_str(&side_by_side_report::render(records, run, run_line));
    }
    out.push_str("\n### Scale: memory and CPU\n\n");
    let scen = ["scale-up", "scale-down", "sotw"];
    table(
        &mut out,
        records,
        &scen,
        &[
            ("cp_rss_peak_mib", "CP RSS peak MiB"),
            ("cp_rss_settled_mib", "CP RSS settled MiB"),
            ("cp_cpu_apply_s", "CP CPU s (bulk apply)"),
            ("cp_cpu_per_edit_ms", "CP CPU ms / edit"),
            ("envoy_rss_mib", "Envoy RSS MiB"),
        ],
    );
    out.push_str("\n### Scale: convergence and translation\n\n");
    table(
        &mut out,
        records,
        &scen,
        &[
            ("convergence_samples", "samples"),
            ("convergence_p50_ms", "conv. p50 ms"),
            ("convergence_p90_ms", "conv. p90 ms"),
            ("convergence_p99_ms", "conv. p99 ms"),
            ("route_removal_p99_ms", "removal p99 ms"),
            ("translate_full_ms", "translate ms"),
            ("envoy_rds_apply_ms", "Envoy RDS apply ms"),
            ("scale_apply_ms", "bulk apply ms"),
        ],
    );
    out.push_str("\n### xDS per one-route edit\n\n");
    table(
        &mut out,
        records,
        &scen,
        &[
            ("xds_bytes_per_route_edit", "bytes / edit"),
            ("xds_responses_per_route_edit_rds", "RDS resp."),
            ("xds_responses_per_route_edit_lds", "LDS resp."),
            ("xds_responses_per_route_edit_cds", "CDS resp."),
            ("xds_responses_per_route_edit_eds", "EDS resp."),
            ("translations_per_edit", "translations / edit"),
        ],
    );
    // Many Gateways in one control plane, and controller mode (issue 15).
    let mut wide: Vec<&str> = records
        .iter()
        .filter_map(|r| r.scenario.as_deref())
        .filter(|s| is_wide(s))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    wide.sort_by_key(|s| !s.starts_with("fleet"));
    if !wide.is_empty() {
        out.push_str("\n### Fleet and controller mode (issue 15)\n\n");
        table(
            &mut out,
            records,
            &wide,
            &[
                ("cp_rss_settled_mib", "CP RSS settled MiB"),
                ("convergence_p50_ms", "conv. p50 ms"),
                ("convergence_p99_ms", "conv. p99 ms"),
                ("route_removal_p99_ms", "removal p99 ms"),
                ("cp_cpu_per_edit_ms", "CP CPU ms / edit"),
                (
                    "xds_responses_to_other_gateways_per_edit",
                    "resp. to other Gateways / edit",
                ),
                ("eds_last_ack_p99_ms", "EDS last ACK p99 ms"),
                ("cp_cpu_per_endpoint_change_ms", "CP CPU ms / EDS change"),
                ("api_requests_delayed", "API requests delayed"),
            ],
        );
    }
    let rest: Vec<&Record> = records
        .iter()
        .filter(|r| {
            !matches!(
                r.scenario.as_deref(),
                Some("scale-up" | "scale-down" | "sotw")
            ) && !r
                .scenario
                .as_deref()
                .is_some_and(|s| s.starts_with(PREFIX) || is_wide(s))
        })
        .collect();
    if !rest.is_empty() {
        out.push_str("\n### Endpoints, data plane, faults\n\n| scenario | routes | name | value | unit |\n| --- | ---: | --- | ---: | --- |\n");
        for r in rest {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} |",
                r.scenario.as_deref().unwrap_or(""),
                r.routes,
                r.name,
                fmt(Some(r.value)),
                r.unit
            );
        }
    }
    out.push('\n');
    out.push_str(END);
    out.push('\n');
    out
}

/// Scenarios of the fleet pass and of controller mode, which get a table of their own.
fn is_wide(scenario: &str) -> bool {
    scenario.starts_with("fleet") || scenario.starts_with("controller")
}

/// Replaces the generated part of `path` (or creates the file with `preamble`).
pub fn write_markdown(
    path: &Path,
    records: &[Record],
    context: &str,
    preamble: &str,
) -> anyhow::Result<()> {
    let tables = render_tables(records, context);
    let text = match std::fs::read_to_string(path) {
        Ok(old) if old.contains(BEGIN) && old.contains(END) => {
            let (head, tail) = old.split_once(BEGIN).unwrap_or((&old, ""));
            let after = tail
                .split_once(END)
                .map(|(_, a)| a.trim_start_matches('\n'))
                .unwrap_or("");
            format!("{head}{tables}{after}")
        }
        _ => format!("{preamble}\n{tables}"),
    };
    std::fs::write(path, text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, scenario: &str, implementation: &str, run: Option<&str>) -> Record {
        Record {
            name: name.into(),
            routes: 1000,
            value: 1.0,
            unit: "count".into(),
            scenario: Some(scenario.into()),
            implementation: Some(implementation.into()),
            run: run.map(String::from),
        }
    }

    #[test]
    fn side_by_side_records_get_their_own_section_and_stay_out_of_the_fault_table() {
        let records = vec![
            rec("failed_requests", "nack", "ferrogate", None),
            rec(
                "failed_requests",
                "side-by-side/route-edits",
                "ferrogate",
                Some("R1-peers"),
            ),
            rec(
                "failed_requests",
                "side-by-side/route-edits",
                "envoy-gateway",
                Some("R1-peers"),
            ),
            rec(
                "convergence_p50_ms",
                "side-by-side/scale-up",
                "envoy-gateway",
                Some("R1-peers"),
            ),
        ];
        let context = "Run: `ferrogate-bench --merge` took 1 s.\n\nRun: `ferrogate-bench --peers` (side-by-side run `R1-peers`) took 2 s.\n\n";
        let text = render_tables(&records, context);
        let section = text
            .split_once("### Side by side")
            .expect("a side-by-side section")
            .1;
        assert!(section.contains("Run id `R1-peers`."), "{section}");
        assert!(
            section
                .contains("Run: `ferrogate-bench --peers` (side-by-side run `R1-peers`) took 2 s."),
            "{section}"
        );
        let faults = text
            .split_once("### Endpoints, data plane, faults")
            .expect("the fault table")
            .1;
        assert!(
            faults.contains("| nack | 1000 | `failed_requests` |"),
            "{faults}"
        );
        assert!(!faults.contains("side-by-side"), "{faults}");
    }

    #[test]
    fn each_side_by_side_run_gets_its_own_table_newest_first() {
        let records = vec![
            rec(
                "convergence_p50_ms",
                "side-by-side/scale-up",
                "ferrogate",
                Some("R1-peers"),
            ),
            rec(
                "convergence_p50_ms",
                "side-by-side/scale-up",
                "ferrogate",
                Some("R2-peers"),
            ),
        ];
        let context =
            "Run: a (side-by-side run `R1-peers`).\n\nRun: b (side-by-side run `R2-peers`).\n\n";
        let text = render_tables(&records, context);
        let (newer, older) = (
            text.find("Run id `R2-peers`.").expect("R2's table"),
            text.find("Run id `R1-peers`.").expect("R1's table"),
        );
        assert!(newer < older, "{text}");
        assert_eq!(text.matches("### Side by side").count(), 2, "{text}");
        assert!(text.contains("Run id `R1-peers`.\nRun: a"), "{text}");
    }
}
