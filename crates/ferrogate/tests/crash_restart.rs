//! End to end: `kill -9` of `ferrogate standalone` leaves its Envoys serving their last
//! config; the restarted control plane adopts them (same pids, no restart, no empty config)
//! and keeps configuring them. Two Gateways, added one after the other, so the second run's
//! fresh port assignment would differ from the first run's: the recorded ports must win.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ferrogate_e2e::testing::{self, Proc, StandalonePorts, free_block, free_port, pod};

const HOST: &str = "www.example.com";

fn other_gateway(port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: aaa-other\n  namespace: default\nspec:\n  gatewayClassName: ferrogate\n  listeners:\n    - name: http\n      protocol: HTTP\n      port: {port}\n"
    )
}

/// Pids of the Envoys whose command line names a bootstrap under `work`.
fn envoy_pids(work: &Path) -> Vec<u32> {
    let needle = work.to_string_lossy().to_string();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmdline = String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).ok()?)
                .replace('\0', " ");
            (cmdline.contains("envoy")
                && cmdline.contains(&needle)
                && !cmdline.contains("standalone"))
            .then_some(pid)
        })
        .collect();
    pids.sort();
    pids
}

/// Replaces a config file at once (written aside, then renamed in).
fn put(config: &Path, name: &str, text: &str) {
    let aside = config.with_file_name(format!("{name}.tmp"));
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, config.join(name)).unwrap();
}

fn spawn_ferrogate(dir: &Path, ports: &StandalonePorts) -> Proc {
    Proc(
        testing::standalone_command(env!("CARGO_BIN_EXE_ferrogate"), dir, ports)
            .spawn()
            .unwrap(),
    )
}

/// Waits until `path` is answered 200 by the echo pod `want`.
async fn serves(gateway: SocketAddr, path: &str, want: &str, what: &str) {
    let (r, _) =
        testing::eventually_response(gateway, HOST, path, &[], Duration::from_secs(30), |r| {
            r.status == 200 && pod(r) == want
        })
        .await;
    assert_eq!((r.status, pod(&r).as_str()), (200, want), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_control_plane_is_replaced_without_restarting_envoy() {
    let v1 = ferrogate_e2e::echo::spawn_for_test("echo-v1-crash", "default", "echo-v1").await;
    let v2 = ferrogate_e2e::echo::spawn_for_test("echo-v2-crash", "default", "echo-v2").await;
    let dir = tempfile::tempdir().unwrap();
    let (gateway_port, other_port) = (free_port(), free_port());
    testing::write_files(
        &dir.path().join("config"),
        testing::quickstart(gateway_port, v1, v2),
    );
    let ports = StandalonePorts {
        xds: free_port(),
        metrics: free_port(),
        health: free_port(),
        envoy_base: free_block(23000, 20),
    };
    let gateway = SocketAddr::from(([127, 0, 0, 1], gateway_port));
    let work = dir.path().join("work");

    // First run: the quickstart Gateway, then a second Gateway that sorts before it.
    let mut first = spawn_ferrogate(dir.path(), &ports);
    serves(gateway, "/", "echo-v1-crash", "first run").await;
    put(
        &dir.path().join("config"),
        "other.yaml",
        &other_gateway(other_port),
    );
    testing::eventually("two Envoys", Duration::from_secs(30), || async {
        (envoy_pids(&work).len() == 2).then_some(())
    })
    .await;
    let before = envoy_pids(&work);

    // kill -9: the Envoys keep serving their last config.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert_eq!(
        envoy_pids(&work),
        before,
        "the Envoys outlive the control plane"
    );
    serves(gateway, "/v2", "echo-v2-crash", "without a control plane").await;

    // Restart: same Envoys adopted (not replaced), and configured by the new control plane.
    let _second = spawn_ferrogate(dir.path(), &ports);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        envoy_pids(&work),
        before,
        "the restarted control plane replaced an Envoy"
    );
    let route = std::fs::read_to_string(dir.path().join("config/routes.yaml"))
        .unwrap()
        .replace("/v2", "/after-restart");
    put(&dir.path().join("config"), "routes.yaml", &route);
    serves(
        gateway,
        "/after-restart",
        "echo-v2-crash",
        "a route added after the restart",
    )
    .await;
    assert_eq!(envoy_pids(&work), before, "still the same Envoys");
}

/// Process records (`envoy*.state`) under `work/<ns>/<name>/`.
fn state_files(work: &Path) -> Vec<std::path::PathBuf> {
    let dirs = |p: &Path| {
        std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect::<Vec<_>>()
    };
    dirs(work)
        .iter()
        .flat_map(|ns| dirs(ns))
        .flat_map(|gw| dirs(&gw))
        .filter(|f| {
            f.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("envoy") && n.to_string_lossy().ends_with(".state")
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoys_of_gateways_deleted_while_the_control_plane_was_down_are_stopped_at_its_restart() {
    let v1 = ferrogate_e2e::echo::spawn_for_test("echo-v1-orphan", "default", "echo-v1").await;
    let v2 = ferrogate_e2e::echo::spawn_for_test("echo-v2-orphan", "default", "echo-v2").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let (gateway_port, other_port) = (free_port(), free_port());
    testing::write_files(&config, testing::quickstart(gateway_port, v1, v2));
    put(&config, "other.yaml", &other_gateway(other_port));
    let ports = StandalonePorts {
        xds: free_port(),
        metrics: free_port(),
        health: free_port(),
        envoy_base: free_block(24000, 20),
    }; // clear of the other test's block (same process id)
    let gateway = SocketAddr::from(([127, 0, 0, 1], gateway_port));
    let work = dir.path().join("work");

    let mut first = spawn_ferrogate(dir.path(), &ports);
    serves(gateway, "/", "echo-v1-orphan", "first run").await;
    testing::eventually("two Envoys", Duration::from_secs(30), || async {
        (envoy_pids(&work).len() == 2).then_some(())
    })
    .await;
    let before = envoy_pids(&work);
    first.0.kill().unwrap();
    first.0.wait().unwrap();

    // The other Gateway is deleted while no control plane runs: the next one stops its Envoy
    // (and removes its record) and adopts the quickstart Gateway's.
    std::fs::remove_file(config.join("other.yaml")).unwrap();
    let mut second = spawn_ferrogate(dir.path(), &ports);
    let record = work.join("default/aaa-other/envoy.state");
    testing::eventually(
        "the deleted Gateway's Envoy stopped",
        Duration::from_secs(30),
        || async { (envoy_pids(&work).len() == 1 && !record.exists()).then_some(()) },
    )
    .await;
    let after = envoy_pids(&work);
    assert!(
        before.contains(&after[0]),
        "the remaining Envoy {after:?} was not adopted from {before:?}"
    );
    assert!(work.join("default/quickstart/envoy.state").exists());
    serves(gateway, "/v2", "echo-v2-orphan", "the adopted Envoy").await;
    second.0.kill().unwrap();
    second.0.wait().unwrap();

    // Every file is deleted while no control plane runs: an empty directory, the same as the
    // initial empty snapshot, still counts as the first read, and no Envoy is left.
    for file in std::fs::read_dir(&config).unwrap().flatten() {
        std::fs::remove_file(file.path()).unwrap();
    }
    let _third = spawn_ferrogate(dir.path(), &ports);
    testing::eventually(
        "no Envoy and no record",
        Duration::from_secs(30),
        || async { (envoy_pids(&work).is_empty() && state_files(&work).is_empty()).then_some(()) },
    )
    .await;
}
