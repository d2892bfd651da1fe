//! HostInfra against a real Envoy (`FERROGATE_ENVOY`, else `<repo>/.tools/bin/envoy` from
//! `scripts/install-envoy.sh`). These tests fail, never skip, when Envoy is missing.
//! No xDS server runs, so Envoy stays PRE_INITIALIZING: the admin interface answers, but
//! listeners (the static stats one included) are only bound once initialization is done
//! (after the xDS initial fetch, or its 15 s timeouts), so the tests probe admin.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferrogate_infra_manager::HostInfra;
use ferrogate_infra_render::{HostPortPlan, HostProcessSpec, render_host_process};
use ferrogate_ir::{GatewayKey, InfraIr};

fn envoy() -> PathBuf {
    let path = std::env::var_os("FERROGATE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/envoy"));
    assert!(
        path.exists(),
        "no Envoy binary at {}: run scripts/install-envoy.sh (or set FERROGATE_ENVOY)",
        path.display()
    );
    path
}

/// Port plans far from the defaults, one per test, so tests run in parallel with each
/// other and with a standalone ferrogate on the same host.
/// A base port with 25 free ports from `base - 5`, below the ephemeral range (fixed ports
/// in it collide with other tests' outgoing connections); distinct for every call.
fn free_base() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = 20_000 + ((std::process::id() as u16 % 300 + n * 7) % 300) * 40;
        if (base - 5..base + 20).all(|p| {
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
                && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
        }) {
            return base;
        }
    }
}

fn spec(name: &str, base: u16, slot: u32, xds_port: u16) -> HostProcessSpec {
    let infra = InfraIr {
        gateway: GatewayKey::new("test", name),
        gateway_class: "ferrogate".into(),
        ..InfraIr::default()
    };
    render_host_process(
        &infra,
        slot,
        &HostPortPlan { base, stride: 10 },
        ("127.0.0.1", xds_port),
        false,
    )
}

/// Status code of `GET path` on 127.0.0.1:port, if anything answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_serving(spec: &HostProcessSpec) {
    let admin = spec.admin_port;
    wait_for("Envoy's admin /server_info", || {
        http_status(admin, "/server_info") == Some(200)
    })
    .await;
    assert_eq!(http_status(admin, "/stats/prometheus"), Some(200));
}

fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervises_one_envoy() {
    let work = tempfile::tempdir().unwrap();
    let host = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    let base = free_base();
    let a = spec("a", base, 0, base - 1);
    let key = a.gateway.clone();

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
    assert_eq!(after[&a.gateway], before[&a.gateway]);
    assert_ne!(after[&b.gateway], before[&b.gateway]);
    assert!(!alive(before[&b.gateway]));
    assert_eq!(
        host.restarts()[&b.gateway],
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
    assert_eq!(adopted[&a.gateway], before[&a.gateway], "a was not adopted");
    assert_ne!(adopted[&b.gateway], before[&b.gateway]);
    assert!(!alive(before[&b.gateway]), "b's old Envoy still runs");
    wait_serving(&a).await;
    wait_serving(&b2).await;
    assert_eq!(second.restarts()[&a.gateway], 0);

    // The adopted process stays supervised: a kill -9 is noticed and it is restarted.
    kill9(adopted[&a.gateway]);
    wait_for("the adopted Envoy's restart", || {
        second
            .pids()
            .get(&a.gateway)
            .is_some_and(|p| *p != adopted[&a.gateway])
    })
    .await;
    assert_eq!(second.restarts()[&a.gateway], 1);
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
    assert_ne!(host.pids()[&a.gateway], std::process::id());
    wait_serving(&a).await;
    host.shutdown().await;
}
