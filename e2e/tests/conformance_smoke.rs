//! Smoke test of the conformance runner: replays a few simple core scenarios of the shared
//! conformance data set against `ferrogate standalone`, a real Envoy and echo backends.
//!
//! Needs:
//! - the data set: `CONFORMANCE_DIR`, default `<repo>/../shared/conformance`;
//! - `target/debug/ferrogate` built beforehand (`cargo build --bin ferrogate`): this test
//!   builds only the e2e crate's binaries, so it uses the ferrogate binary found there;
//! - Envoy: `FERROGATE_ENVOY`, default `<repo>/.tools/bin/envoy` (`make` installs it).
//!
//! The echo backend is this crate's `ferrogate-echo` binary.

use std::path::PathBuf;
use std::time::Duration;

use ferrogate_e2e::conformance::{Outcome, RunnerConfig, run_named};

const SCENARIOS: &[&str] = &[
    "HTTPRouteSimpleSameNamespace",
    "HTTPRouteHeaderMatching",
    "HTTPRouteWeight",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_core_scenarios_pass() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = std::env::var_os("CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/conformance"));
    assert!(
        data.join("scenarios").is_dir(),
        "conformance data set not found at {} (set CONFORMANCE_DIR to the folder holding SCHEMA.md and scenarios/)",
        data.display()
    );
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
        "Envoy not found at {} (set FERROGATE_ENVOY or run `make`)",
        envoy.display()
    );

    let mut config =
        RunnerConfig::new(data, ferrogate, env!("CARGO_BIN_EXE_ferrogate-echo"), envoy);
    config.jobs = 2;
    config.status_timeout_cap = Some(Duration::from_secs(60));
    config.scenario_timeout = Duration::from_secs(180);
    // Away from the ports other tests and the conformance binary's default use.
    config.port_base = 25000;
    config.address_index_base = 5000;
    let names: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    let results = run_named(&config, &names, |r| eprintln!("{}", r.line()))
        .await
        .expect("running the scenarios");
    assert_eq!(results.len(), SCENARIOS.len());
    for r in &results {
        assert_eq!(r.outcome, Outcome::Pass, "{}", r.line());
    }
}
