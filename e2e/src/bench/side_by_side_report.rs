//! The "Side by side" table of `docs/benchmarks.md`: Ferrogate and Envoy Gateway measured in
//! one run (records whose scenario starts with [`PREFIX`], all of one run id), their ratio
//! (peer / Ferrogate: above 1 means the peer needs more of it), and Envoy Gateway's published
//! figures in a separate, labelled column (other machines, other days, other shapes).

use std::fmt::Write as _;

use super::Record;
use super::implementation::Implementation;
use super::side_by_side::PREFIX;

/// (figure, record name, scenario after the prefix)
const FIGURES: &[(&str, &str, &str)] = &[
    (
        "control-plane RSS settled (MiB)",
        "cp_rss_settled_mib",
        "scale-up",
    ),
    (
        "control-plane RSS peak (MiB)",
        "cp_rss_peak_mib",
        "scale-up",
    ),
    (
        "control-plane CPU, bulk apply (s)",
        "cp_cpu_apply_s",
        "scale-up",
    ),
    (
        "control-plane CPU per one-route edit (ms)",
        "cp_cpu_per_edit_ms",
        "scale-up",
    ),
    (
        "time until the last of N routes answers (ms)",
        "scale_apply_ms",
        "scale-up",
    ),
    (
        "route convergence p50 (ms)",
        "convergence_p50_ms",
        "scale-up",
    ),
    (
        "route convergence p99 (ms)",
        "convergence_p99_ms",
        "scale-up",
    ),
    ("route removal p99 (ms)", "route_removal_p99_ms", "scale-up"),
    ("Envoy RSS (MiB)", "envoy_rss_mib", "scale-up"),
    (
        "endpoint propagation, add p50 (ms)",
        "endpoint_propagation_add_p50_ms",
        "endpoints",
    ),
    (
        "endpoint propagation p99, add and remove (ms)",
        "endpoint_propagation_p99_ms",
        "endpoints",
    ),
    (
        "failed requests while endpoints change",
        "failed_requests",
        "endpoints",
    ),
    (
        "failed requests: one-route edits under load, 8 s",
        "failed_requests",
        "route-edits",
    ),
    (
        "requests sent during those edits",
        "fault_requests",
        "route-edits",
    ),
    (
        "failed requests: 100 routes added and removed at once under load",
        "failed_requests",
        "routes-added",
    ),
    (
        "requests sent during those bulks",
        "fault_requests",
        "routes-added",
    ),
    (
        "time until the last of 100 added routes answers, p50 (ms)",
        "bulk_apply_p50_ms",
        "routes-added",
    ),
];

/// Envoy Gateway's published figure for a row, where one exists (its v1.9.0 benchmark: 1
/// Gateway, 5 hostnames, up to 1000 routes, on Kubernetes).
pub fn published(name: &str, routes: usize) -> &'static str {
    match (name, routes) {
        ("cp_rss_settled_mib", 10) => "≈130",
        ("cp_rss_peak_mib", 1000) => "≈256",
        ("envoy_rss_mib", 1000) => "≈104",
        _ => "",
    }
}

/// Peer / Ferrogate, as text: `–` when either is missing, `=` when both are 0, `÷0` when
/// only Ferrogate's is 0.
pub fn ratio(ferrogate: Option<f64>, peer: Option<f64>) -> String {
    match (ferrogate, peer) {
        (Some(f), Some(p)) if f == 0.0 && p == 0.0 => "=".into(),
        (Some(f), Some(_)) if f == 0.0 => "÷0".into(),
        (Some(f), Some(p)) if f.is_finite() && p.is_finite() => {
            let r = p / f;
            if r >= 10.0 {
                format!("{r:.0}")
            } else {
                format!("{r:.2}")
            }
        }
        _ => "–".into(),
    }
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

/// The run ids of the side-by-side records, newest first (ids start with a UTC timestamp).
/// A run appended with `--peers --merge` (e.g. a larger route count that takes hours on its
/// own) keeps the earlier runs; each gets its own table, never a mix.
pub fn runs(records: &[Record]) -> Vec<&str> {
    let mut ids: Vec<&str> = records
        .iter()
        .filter(|r| r.scenario.as_deref().is_some_and(|s| s.starts_with(PREFIX)))
        .filter_map(|r| r.run.as_deref())
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids
}

fn value(
    records: &[Record],
    run: &str,
    who: Option<Implementation>,
    name: &str,
    scenario: &str,
    routes: usize,
) -> Option<f64> {
    let scenario = format!("{PREFIX}{scenario}");
    records
        .iter()
        .find(|r| {
            r.run.as_deref() == Some(run)
                && r.name == name
                && r.routes == routes
                && r.scenario.as_deref() == Some(scenario.as_str())
                && r.implementation.as_deref() == who.map(Implementation::name)
        })
        .map(|r| r.value)
}

/// The table of run `run`. `run_line` is the `Run:` line of that run (its command and load
/// average at start and end), repeated above the table.
pub fn render(records: &[Record], run: &str, run_line: Option<&str>) -> String {
    let mut routes: Vec<usize> = records
        .iter()
        .filter(|r| r.run.as_deref() == Some(run) && r.name == "convergence_p50_ms")
        .map(|r| r.routes)
        .collect();
    routes.sort_unstable();
    routes.dedup();
    let mut out = String::new();
    let steps: Vec<String> = routes.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "### Side by side: Envoy Gateway measured in the same run ({} routes)\n",
        steps.join(", ")
    );
    let _ = writeln!(out, "Run id `{run}`.");
    if let Some(line) = run_line {
        let _ = writeln!(out, "{line}");
    }
    let load = |name: &str| {
        records
            .iter()
            .find(|r| r.run.as_deref() == Some(run) && r.name == name)
            .map(|r| r.value)
    };
    if let (Some(min), Some(mean), Some(max)) = (
        load("loadavg_1m_min"),
        load("loadavg_1m_mean"),
        load("loadavg_1m_max"),
    ) {
        let _ = writeln!(
            out,
            "1-minute load average during the run (sampled every 5 s): min {min:.2}, mean {mean:.2}, max {max:.2}."
        );
    }
    out.push_str(
        "\n| figure | routes | Ferrogate | Envoy Gateway | Envoy Gateway / Ferrogate | Envoy Gateway v1.9.0, published (other machine, Kubernetes) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (label, name, scenario) in FIGURES {
        for &n in &routes {
            let fg = value(
                records,
                run,
                Some(Implementation::Ferrogate),
                name,
                scenario,
                n,
            );
            let eg = value(
                records,
                run,
                Some(Implementation::EnvoyGateway),
                name,
                scenario,
                n,
            );
            if fg.is_none() && eg.is_none() {
                continue;
            }
            let _ = writeln!(
                out,
                "| {label} | {n} | {} | {} | {} | {} |",
                fmt(fg),
                fmt(eg),
                ratio(fg, eg),
                published(name, n)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        who: Option<&str>,
        run: &str,
        name: &str,
        scenario: &str,
        routes: usize,
        value: f64,
    ) -> Record {
        Record {
            name: name.into(),
            routes,
            value,
            unit: "x".into(),
            scenario: Some(format!("{PREFIX}{scenario}")),
            implementation: who.map(String::from),
            run: Some(run.into()),
        }
    }

    #[test]
    fn ratio_is_peer_over_ferrogate_with_zero_and_missing_cases() {
        assert_eq!(ratio(Some(20.0), Some(130.0)), "6.50");
        assert_eq!(ratio(Some(2.0), Some(300.0)), "150");
        assert_eq!(ratio(Some(0.0), Some(0.0)), "=");
        assert_eq!(ratio(Some(0.0), Some(12.0)), "÷0");
        assert_eq!(ratio(Some(3.0), None), "–");
        assert_eq!(ratio(None, Some(3.0)), "–");
    }

    #[test]
    fn table_sets_both_implementations_of_one_run_side_by_side() {
        let records = vec![
            rec(
                Some("ferrogate"),
                "r2",
                "convergence_p50_ms",
                "scale-up",
                10,
                15.0,
            ),
            rec(
                Some("envoy-gateway"),
                "r2",
                "convergence_p50_ms",
                "scale-up",
                10,
                300.0,
            ),
            rec(
                Some("ferrogate"),
                "r2",
                "cp_rss_peak_mib",
                "scale-up",
                1000,
                30.0,
            ),
            rec(
                Some("envoy-gateway"),
                "r2",
                "cp_rss_peak_mib",
                "scale-up",
                1000,
                240.0,
            ),
            rec(
                Some("ferrogate"),
                "r2",
                "convergence_p50_ms",
                "scale-up",
                1000,
                40.0,
            ),
            // An older run's peer figure must not be mixed in.
            rec(
                Some("envoy-gateway"),
                "r1",
                "convergence_p50_ms",
                "scale-up",
                1000,
                1.0,
            ),
            rec(None, "r2", "loadavg_1m_min", "machine", 1000, 1.5),
            rec(None, "r2", "loadavg_1m_mean", "machine", 1000, 2.25),
            rec(None, "r2", "loadavg_1m_max", "machine", 1000, 3.0),
        ];
        assert_eq!(runs(&records), vec!["r2", "r1"]);
        let text = render(
            &records,
            "r2",
            Some("Run: `ferrogate-bench --peers` took 1 s"),
        );
        assert!(text.contains("Run id `r2`."), "{text}");
        assert!(text.contains("Run: `ferrogate-bench --peers`"), "{text}");
        assert!(text.contains("min 1.50, mean 2.25, max 3.00"), "{text}");
        assert!(
            text.contains("| route convergence p50 (ms) | 10 | 15.0 | 300 | 20 |  |"),
            "{text}"
        );
        assert!(
            text.contains("| control-plane RSS peak (MiB) | 1000 | 30.0 | 240 | 8.00 | ≈256 |"),
            "{text}"
        );
        // The peer has no figure at 1000 in run r2: shown as missing, not taken from r1.
        assert!(
            text.contains("| route convergence p50 (ms) | 1000 | 40.0 | – | – |  |"),
            "{text}"
        );
        // Rows with neither value are left out.
        assert!(!text.contains("| Envoy RSS (MiB) |"), "{text}");
    }

    #[test]
    fn no_side_by_side_records_no_section() {
        let mut r = rec(
            Some("ferrogate"),
            "r1",
            "convergence_p50_ms",
            "scale-up",
            10,
            1.0,
        );
        r.scenario = Some("scale-up".into());
        assert!(runs(&[r]).is_empty());
    }
}
