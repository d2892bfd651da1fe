//! HostInfra with several replicas of one Gateway, against a real Envoy (see `host.rs` for
//! where it comes from; these tests fail, never skip, when it is missing). The serving
//! specs carry a static listener instead of xDS, so each Envoy binds it as soon as it
//! starts and the tests can send traffic without an xDS server.

mod common;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::{
    alive, envoy, free_base, get, http_status, kill9, replica_spec, serving_replica, wait_for,
    wait_serving,
};
use ferrogate_infra_manager::{HostInfra, HostProcessKey, HostProcessSpec};

/// Waits until fresh connections to `port` have been answered by every replica in `want`
/// (the kernel spreads them over the processes that share the port).
async fn answered_by(port: u16, want: &[&str]) {
    let mut seen = BTreeSet::new();
    wait_for("answers from every replica", || {
        if let Ok(body) = get(port) {
            seen.insert(body);
        }
        want.iter().all(|w| seen.contains(*w))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_listener_and_a_killed_one_is_restarted_while_the_other_serves() {
    let work = tempfile::tempdir().unwrap();
    let host = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    let base = free_base();
    let listener = base + 15; // outside slot 0's block, inside the range free_base checked
    let (r0, r1) = (
        serving_replica("gw", base, 0, listener),
        serving_replica("gw", base, 1, listener),
    );
    let (k0, k1) = (r0.key(), r1.key());

    // Two processes, each with its own admin port, both answering on the one listener port.
    host.apply(vec![r0.clone(), r1.clone()]).await.unwrap();
    wait_serving(&r0).await;
    wait_serving(&r1).await;
    let pids = host.pids();
    assert_eq!(pids.len(), 2);
    assert_ne!(pids[&k0], pids[&k1]);
    assert!(work.path().join("test/gw/envoy.state").exists());
    assert!(work.path().join("test/gw/envoy-1.state").exists());
    assert!(work.path().join("test/gw/bootstrap-1.json").exists());
    answered_by(listener, &["replica 0", "replica 1"]).await;

    // kill -9 replica 0 and keep opening fresh connections until it is back: replica 1
    // answers all along, so no connection is refused.
    kill9(pids[&k0]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut served, mut refused, mut other_failures) = (0, 0, Vec::new());
    loop {
        // No pause between requests: the restart takes a few hundred milliseconds.
        match get(listener) {
            Ok(_) => served += 1,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => refused += 1,
            Err(e) => other_failures.push(e.to_string()),
        }
        let back = host.pids().get(&k0).is_some_and(|p| *p != pids[&k0])
            && http_status(r0.admin_port, "/server_info") == Some(200);
        if back {
            break;
        }
        assert!(Instant::now() < deadline, "replica 0 was not restarted");
        tokio::task::yield_now().await;
    }
    eprintln!(
        "during the restart: {served} answered, {refused} refused, other failures {other_failures:?}"
    );
    assert_eq!(refused, 0, "a connection was refused while replica 1 ran");
    assert!(served > 0, "nothing answered while replica 0 was down");
    assert!(alive(pids[&k1]));
    assert_eq!(host.pids()[&k1], pids[&k1], "replica 1 was not touched");
    assert_eq!(host.restarts()[&k0], 1);
    assert_eq!(host.restarts()[&k1], 0);
    answered_by(listener, &["replica 0", "replica 1"]).await;
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_stops_or_starts_only_the_replicas_above_the_smaller_count() {
    let work = tempfile::tempdir().unwrap();
    let host = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    let base = free_base();
    let listener = base + 15;
    let specs: Vec<HostProcessSpec> = (0..3)
        .map(|r| serving_replica("gw", base, r, listener))
        .collect();
    let key = |r: u32| specs[r as usize].key();

    host.apply(specs.clone()).await.unwrap();
    for spec in &specs {
        wait_serving(spec).await;
    }
    let three = host.pids();
    assert_eq!(three.len(), 3);

    // 3 -> 1: replicas 2 and 1 stop, replica 0 keeps its pid and keeps answering.
    host.apply(specs[..1].to_vec()).await.unwrap();
    let one = host.pids();
    assert_eq!(one.keys().cloned().collect::<Vec<_>>(), [key(0)]);
    assert_eq!(one[&key(0)], three[&key(0)]);
    for r in [1, 2] {
        assert!(!alive(three[&key(r)]), "replica {r} still runs");
        let state = format!("test/gw/envoy-{r}.state");
        assert!(!work.path().join(state).exists());
    }
    assert_eq!(get(listener).unwrap(), "replica 0");

    // 1 -> 2: replica 1 starts, replica 0 keeps its pid.
    host.apply(specs[..2].to_vec()).await.unwrap();
    let two = host.pids();
    assert_eq!(two.len(), 2);
    assert_eq!(two[&key(0)], three[&key(0)], "replica 0 was restarted");
    assert_eq!(host.restarts()[&key(0)], 0);
    wait_serving(&specs[1]).await;
    answered_by(listener, &["replica 0", "replica 1"]).await;

    host.shutdown().await;
    for pid in two.values() {
        assert!(!alive(*pid), "Envoy {pid} still runs after shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_supervisor_adopts_each_replica_and_stops_replicas_no_longer_wanted() {
    let work = tempfile::tempdir().unwrap();
    let base = free_base();
    let specs: Vec<HostProcessSpec> = (0..3)
        .map(|r| replica_spec("gw", base, r, base - 1))
        .collect();

    // A first supervisor runs three replicas, then goes away without stopping them.
    let first = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    first.apply(specs.clone()).await.unwrap();
    for spec in &specs {
        wait_serving(spec).await;
    }
    let before = first.pids();
    first.detach().await;

    // The next one wants two: it adopts replicas 0 and 1 (same pids) and stops replica 2,
    // which no one else would ever stop.
    let second = HostInfra::new(envoy(), work.path().to_path_buf(), "warning".into());
    assert_eq!(
        second.recorded_admin_ports().get(&specs[0].gateway),
        Some(&specs[0].admin_port),
        "the slot is recognised by replica 0's admin port"
    );
    second.apply(specs[..2].to_vec()).await.unwrap();
    let after = second.pids();
    let key = |r: u32| HostProcessKey::new(specs[0].gateway.clone(), r);
    assert_eq!(after.len(), 2);
    assert_eq!(after[&key(0)], before[&key(0)], "replica 0 was not adopted");
    assert_eq!(after[&key(1)], before[&key(1)], "replica 1 was not adopted");
    assert!(!alive(before[&key(2)]), "the unwanted replica 2 still runs");
    assert!(!work.path().join("test/gw/envoy-2.state").exists());

    // An adopted replica is supervised on its own: kill -9 restarts only it.
    kill9(after[&key(1)]);
    wait_for("replica 1's restart", || {
        second
            .pids()
            .get(&key(1))
            .is_some_and(|p| *p != after[&key(1)])
    })
    .await;
    wait_serving(&specs[1]).await;
    assert_eq!(second.pids()[&key(0)], after[&key(0)]);
    assert_eq!(second.restarts()[&key(0)], 0);
    assert_eq!(second.restarts()[&key(1)], 1);
    let now = second.pids();
    second.shutdown().await;
    for pid in now.values() {
        assert!(!alive(*pid), "Envoy {pid} still runs after shutdown");
    }
}
