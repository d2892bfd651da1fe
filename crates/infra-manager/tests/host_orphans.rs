//! A restarted HostInfra stops the Envoys of Gateways deleted while no control plane ran,
//! against a real Envoy (see `host.rs` for where it comes from; this test fails, never
//! skips, when it is missing).

mod common;

use std::path::Path;
use std::process::{Child, Command};

use common::{alive, envoy, free_base, replica_spec, wait_serving};
use ferrogate_infra_manager::{HostInfra, HostProcessKey, HostProcessSpec};

/// Field 22 of `/proc/<pid>/stat`: what a record holds to tell a reused pid apart.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A record naming `pid`, as the host manager writes it, in `<work>/<ns>/<name>/<file>`.
fn fake_record(
    work: &Path,
    gateway: &str,
    file: &str,
    pid: u32,
    start_time: u64,
) -> std::path::PathBuf {
    let dir = work.join("test").join(gateway);
    std::fs::create_dir_all(&dir).unwrap();
    let record = serde_json::json!({
        "pid": pid,
        "start_time": start_time,
        "bootstrap_hash": "h",
        "envoy": envoy().to_str().unwrap(),
    });
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    path
}

/// Kills the `sleep` on drop, whatever the test did.
struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_supervisor_stops_the_envoys_of_gateways_no_longer_wanted() {
    let work = tempfile::tempdir().unwrap();
    let (base_a, base_b) = (free_base(), free_base());
    let a = replica_spec("a", base_a, 0, base_a - 1);
    let b: Vec<HostProcessSpec> = (0..2)
        .map(|r| replica_spec("b", base_b, r, base_b - 1))
        .collect();

    // A first supervisor runs Gateway a and two replicas of b, then goes away without
    // stopping them, as a kill -9 of the control plane would.
    let first = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    let mut all = vec![a.clone()];
    all.extend(b.iter().cloned());
    first.apply(all.clone()).await.unwrap();
    for spec in &all {
        wait_serving(spec).await;
    }
    let before = first.pids();
    first.detach().await;
    let key = |spec: &HostProcessSpec| HostProcessKey::new(spec.gateway.clone(), spec.replica);
    for spec in &b {
        assert!(alive(before[&key(spec)]), "detach stopped {}", spec.gateway);
    }

    // Records naming a process that is not the recorded Envoy: one with the wrong start
    // time (a reused pid), one with the right start time but another command line.
    let sleeper = Sleeper(Command::new("sleep").arg("30").spawn().unwrap());
    let other = sleeper.0.id();
    let reused = fake_record(
        work.path(),
        "gone",
        "envoy.state",
        other,
        start_time(other) + 1,
    );
    let not_envoy = fake_record(
        work.path(),
        "other",
        "envoy-1.state",
        other,
        start_time(other),
    );
    // Not a record: left alone.
    let stray = work.path().join("test/other/envoy-01.state");
    std::fs::write(&stray, b"{}").unwrap();

    // The next supervisor is told only about a: it adopts a's Envoy and stops b's.
    let second = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    second.apply(vec![a.clone()]).await.unwrap();
    let after = second.pids();
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[&key(&a)],
        before[&key(&a)],
        "a's Envoy was not adopted"
    );
    assert!(work.path().join("test/a/envoy.state").exists());
    for spec in &b {
        let pid = before[&key(spec)];
        assert!(
            !alive(pid),
            "b's replica {} (pid {pid}) still runs",
            spec.replica
        );
    }
    assert!(!work.path().join("test/b/envoy.state").exists());
    assert!(!work.path().join("test/b/envoy-1.state").exists());
    assert!(!reused.exists(), "a record of a reused pid was kept");
    assert!(
        !not_envoy.exists(),
        "a record of a pid running something else was kept"
    );
    assert!(
        alive(other),
        "a process that is not the recorded Envoy was signalled"
    );
    assert!(stray.exists(), "a file that is no record was removed");

    // Only the first apply looks: a record appearing later is not this supervisor's concern.
    let later = fake_record(
        work.path(),
        "later",
        "envoy.state",
        other,
        start_time(other) + 1,
    );
    second.apply(vec![a.clone()]).await.unwrap();
    assert!(later.exists());
    assert_eq!(second.pids()[&key(&a)], before[&key(&a)]);

    second.shutdown().await;
    assert!(
        !alive(before[&key(&a)]),
        "a's Envoy still runs after shutdown"
    );
    assert!(alive(other));
    drop(sleeper);
}
