//! HostInfra against a real Envoy (`FERROGATE_ENVOY`, else `<repo>/.tools/bin/envoy` from
//! `scripts/install-envoy.sh`). These tests fail, never skip, when Envoy is missing.
//! No xDS server runs, so Envoy stays PRE_INITIALIZING: the admin interface answers, but
//! listeners (the static stats one included) are only bound once initialization is done
//! (after the xDS initial fetch, or its 15 s timeouts), so the tests probe admin.

mod common;

use std::time::Duration;

use common::{alive, envoy, free_base, http_status, kill9, spec, wait_for, wait_serving};
use ferrogate_infra_manager::HostInfra;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervises_one_envoy() {
    let work = tempfile::tempdir().unwrap();
    let host = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    let base = free_base();
    let a = spec("a", base, 0, base - 1);
    let key = a.key();

    // (1) apply one spec: it runs and serves stats and admin.
    host.apply(vec![a.clone()]).await.unwrap();
    let pid = host.pids()[&key];
    wait_serving(&a).await;
    assert!(work.path().join("test/a/bootstrap.json").exists());
    assert!(work.path().join("test/a/envoy.log").exists());
    assert_eq!(host.restarts()[&key], 0);

    // (2) kill -9: restarted with a new pid.
    kill9(pid);
    wait_for("a restart", || {
        host.pids().get(&key).is_some_and(|p| *p != pid)
    })
    .await;
    let restarted = host.pids()[&key];
    assert_eq!(host.restarts()[&key], 1);
    wait_serving(&a).await;

    // (3) same spec again: same pid.
    host.apply(vec![a.clone()]).await.unwrap();
    assert_eq!(host.pids()[&key], restarted);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(host.pids()[&key], restarted);

    // (4) empty: the process is gone.
    host.apply(vec![]).await.unwrap();
    assert!(host.pids().is_empty());
    assert!(
        !alive(restarted),
        "Envoy {restarted} still runs after being removed"
    );
    assert!(http_status(a.admin_port, "/server_info").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_change_restarts_only_that_envoy() {
    let work = tempfile::tempdir().unwrap();
    let host = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    let base = free_base();
    let (a, b) = (spec("a", base, 0, base - 1), spec("b", base, 1, base - 1));
    host.apply(vec![a.clone(), b.clone()]).await.unwrap();
    wait_serving(&a).await;
    wait_serving(&b).await; // two Envoys share the host
    let before = host.pids();

    // Only b's bootstrap changes (another xDS port).
    let b2 = spec("b", base, 1, base - 2);
    assert_ne!(b.bootstrap_hash, b2.bootstrap_hash);
    host.apply(vec![a.clone(), b2.clone()]).await.unwrap();
    let after = host.pids();
    assert_eq!(after[&a.key()], before[&a.key()]);
    assert_ne!(after[&b.key()], before[&b.key()]);
    assert!(!alive(before[&b.key()]));
    assert_eq!(
        host.restarts()[&b.key()],
        0,
        "a bootstrap change is not a crash restart"
    );
    wait_serving(&b2).await;
    let written = std::fs::read_to_string(work.path().join("test/b/bootstrap.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&written).unwrap(),
        b2.bootstrap
    );

    host.shutdown().await;
    assert!(host.pids().is_empty());
    for pid in after.values() {
        assert!(!alive(*pid), "Envoy {pid} still runs after shutdown");
    }
}

#[tokio::test]
async fn missing_binary_is_an_error_and_duplicates_are_rejected() {
    let work = tempfile::tempdir().unwrap();
    let host = HostInfra::new(
        work.path().join("no-such-envoy"),
        work.path().to_path_buf(),
        "info".into(),
    );
    let base = free_base();
    let a = spec("a", base, 0, base - 1);
    let error = host.apply(vec![a.clone()]).await.unwrap_err();
    assert!(error.to_string().contains("cannot start Envoy"), "{error}");
    assert!(host.pids().is_empty());
    let error = host.apply(vec![a.clone(), a]).await.unwrap_err();
    assert!(error.to_string().contains("more than once"), "{error}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_supervisor_adopts_a_running_envoy() {
    let work = tempfile::tempdir().unwrap();
    let base = free_base();
    let (a, b) = (spec("a", base, 0, base - 1), spec("b", base, 1, base - 1));

    // A first supervisor starts both, then goes away without stopping them (a crash).
    let first = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    first.apply(vec![a.clone(), b.clone()]).await.unwrap();
    wait_serving(&a).await;
    wait_serving(&b).await;
    let before = first.pids();
    first.detach().await;
    for pid in before.values() {
        assert!(alive(*pid), "Envoy {pid} did not outlive its supervisor");
    }
    assert!(work.path().join("test/a/envoy.state").exists());

    // A second one adopts a (same hash: same pid, still serving) and replaces b (new hash).
    let second = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    // It can tell which ports the survivors use, so a restarted control plane renders the
    // same bootstraps for them.
    let recorded = second.recorded_admin_ports();
    assert_eq!(recorded.get(&a.gateway), Some(&a.admin_port));
    assert_eq!(recorded.get(&b.gateway), Some(&b.admin_port));
    let b2 = spec("b", base, 1, base - 2);
    second.apply(vec![a.clone(), b2.clone()]).await.unwrap();
    let adopted = second.pids();
    assert_eq!(adopted[&a.key()], before[&a.key()], "a was not adopted");
    assert_ne!(adopted[&b.key()], before[&b.key()]);
    assert!(!alive(before[&b.key()]), "b's old Envoy still runs");
    wait_serving(&a).await;
    wait_serving(&b2).await;
    assert_eq!(second.restarts()[&a.key()], 0);

    // The adopted process stays supervised: a kill -9 is noticed and it is restarted.
    kill9(adopted[&a.key()]);
    wait_for("the adopted Envoy's restart", || {
        second
            .pids()
            .get(&a.key())
            .is_some_and(|p| *p != adopted[&a.key()])
    })
    .await;
    assert_eq!(second.restarts()[&a.key()], 1);
    wait_serving(&a).await;
    let now = second.pids();

    // A third supervisor adopts the restarted one, and its shutdown stops both processes.
    second.detach().await;
    let third = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    third.apply(vec![a.clone(), b2.clone()]).await.unwrap();
    assert_eq!(third.pids(), now);
    third.shutdown().await;
    for pid in now.values() {
        assert!(
            !alive(*pid),
            "adopted Envoy {pid} still runs after shutdown"
        );
    }
    assert!(!work.path().join("test/a/envoy.state").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_record_is_not_adopted() {
    let work = tempfile::tempdir().unwrap();
    let base = free_base();
    let a = spec("a", base, 0, base - 1);
    // A record naming a process that is not an Envoy (this test process) is ignored.
    std::fs::create_dir_all(work.path().join("test/a")).unwrap();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let record = serde_json::json!({
        "pid": std::process::id(),
        "start_time": start,
        "bootstrap_hash": a.bootstrap_hash,
        "envoy": envoy().to_str().unwrap(),
    });
    std::fs::write(work.path().join("test/a/envoy.state"), record.to_string()).unwrap();
    let host = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    host.apply(vec![a.clone()]).await.unwrap();
    assert_ne!(host.pids()[&a.key()], std::process::id());
    wait_serving(&a).await;
    host.shutdown().await;
}
