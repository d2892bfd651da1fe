//! Smoke run of the benchmark harness (issue 7): 10 routes, 5 convergence samples, endpoint
//! propagation, xDS counters, against `ferrogate standalone`, a real Envoy and echo backends.
//!
//! Needs `target/debug/ferrogate` (built by the workspace build; `cargo build --bin ferrogate`)
//! and Envoy (`FERROGATE_ENVOY`, default `<repo>/.tools/bin/envoy`; `make envoy`).

use std::path::PathBuf;

use ferrogate_e2e::bench::{BenchConfig, Record, run};

fn value(records: &[Record], name: &str) -> f64 {
    records
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no record {name} in {records:#?}"))
        .value
}

/// The first port of 500 free ones between 12000 and 20000 (the fleet pass starts at base +
/// 400). The harness binds fixed ports from its base; the default smoke base (33000) lies in
/// Linux's ephemeral range, where other tests' outgoing connections can hold a port the
/// harness then fails to bind.
fn free_ports_below_ephemeral() -> u16 {
    (12_000..20_000)
        .step_by(500)
        .find(|base| {
            (*base..base + 500).all(|p| {
                std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
                    && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
            })
        })
        .expect("no 500 free ports between 12000 and 20000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_produces_sane_records() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let ferrogate = repo.join("target/debug/ferrogate");
    assert!(
        ferrogate.exists(),
        "{} is missing: run `cargo build --bin ferrogate` first",
        ferrogate.display()
    );
    let envoy = std::env::var_os("FERROGATE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".tools/bin/envoy"));
    assert!(
        envoy.exists(),
        "Envoy not found at {} (set FERROGATE_ENVOY or run `make envoy`)",
        envoy.display()
    );
    let mut cfg = BenchConfig::smoke(
        ferrogate,
        PathBuf::from(env!("CARGO_BIN_EXE_ferrogate-echo")),
        envoy,
    );
    cfg.log = false;
    cfg.port_base = free_ports_below_ephemeral();
    let started = std::time::Instant::now();
    let mut records = Vec::new();
    run(&cfg, &mut records).await.expect("smoke run");
    eprintln!("smoke run took {:?}", started.elapsed());
    let scenario_starts =
        |r: &Record, prefix: &str| r.scenario.as_deref().is_some_and(|s| s.starts_with(prefix));
    let (fleet, records): (Vec<Record>, Vec<Record>) = records
        .into_iter()
        .partition(|r| scenario_starts(r, "fleet"));
    let (in_process, standalone): (Vec<&Record>, Vec<&Record>) = records
        .iter()
        .partition(|r| scenario_starts(r, "in-process"));
    for r in &standalone {
        assert!(r.value.is_finite(), "{r:?}");
        assert_eq!(r.routes, 10, "{r:?}");
    }
    // The in-process pass (3 Gateways x 10 routes): a one-route edit changes one Gateway.
    let in_process_value = |name: &str| {
        in_process
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no {name} in {in_process:?}"))
            .value
    };
    assert!(in_process.iter().all(|r| r.routes == 30), "{in_process:?}");
    assert_eq!(
        in_process_value("in_process_gateways_changed_per_edit"),
        1.0
    );
    for name in [
        "in_process_translate_full_p50_ms",
        "in_process_translate_edit_p50_ms",
        "in_process_xds_edit_ms",
    ] {
        assert!(in_process_value(name) > 0.0, "{name}");
    }
    assert_eq!(value(&records, "convergence_samples"), 5.0);
    for name in [
        "convergence_p50_ms",
        "convergence_p99_ms",
        "endpoint_propagation_p99_ms",
        "cp_rss_peak_mib",
        "cp_rss_settled_mib",
        "envoy_rss_mib",
        "translate_full_ms",
        "xds_bytes_per_route_edit",
    ] {
        let v = value(&records, name);
        assert!(v > 0.0, "{name} = {v}");
    }
    assert!(value(&records, "convergence_p50_ms") <= value(&records, "convergence_p99_ms"));
    assert!(value(&records, "convergence_p99_ms") < 60_000.0);
    assert!(value(&records, "cp_rss_settled_mib") < 4096.0);
    assert_eq!(
        value(&records, "failed_requests"),
        0.0,
        "requests failed while endpoints changed"
    );
    // The fleet pass (2 Gateways x 10 routes, 3 xDS streams each: an Envoy and 2 simulated
    // proxies): edits on one Gateway reach no other, every simulated proxy sees the
    // endpoint changes.
    assert!(
        fleet.iter().all(|r| r.routes == 20 && r.value.is_finite()),
        "{fleet:#?}"
    );
    assert_eq!(value(&fleet, "envoy_processes"), 2.0);
    assert_eq!(value(&fleet, "eds_simulated_streams"), 4.0);
    assert_eq!(value(&fleet, "eds_changes"), 4.0);
    assert_eq!(value(&fleet, "convergence_samples"), 2.0);
    assert_eq!(
        value(&fleet, "xds_responses_to_other_gateways_per_edit"),
        0.0
    );
    assert_eq!(value(&fleet, "xds_nacks_counted"), 1.0);
    for name in [
        "convergence_p99_ms",
        "eds_last_ack_p99_ms",
        "cp_rss_settled_mib",
    ] {
        assert!(value(&fleet, name) > 0.0, "{name}");
    }
    assert!(value(&fleet, "eds_first_ack_p50_ms") <= value(&fleet, "eds_last_ack_p99_ms"));
}
