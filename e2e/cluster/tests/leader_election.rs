//! Leader election on a real Lease, as the chart's ServiceAccount: one leader among two
//! replicas; `kill -9` of the leader hands over within the Lease duration and the successor
//! carries on writing statuses and provisioning; a holder whose clock runs behind is not
//! deposed while it keeps renewing (expiry is judged by the observer's own clock).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Cluster, condition_is, metric};

const LEASE: &str = "ferrogate-leader";
const NS: &str = "ferrogate-system";

fn holder(cluster: &Cluster) -> Option<String> {
    cluster.get("lease", Some(NS), LEASE)?["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_string)
}

fn gateway(name: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: apps}}\nspec:\n  gatewayClassName: ferrogate\n  listeners:\n  - {{name: http, port: 80, protocol: HTTP}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_over_after_kill_9_and_carries_on() {
    let cluster = Cluster::start().await;
    cluster.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n");
    let mut a = cluster.controller("replica-a");
    cluster
        .wait_for("replica-a leads", "lease", Some(NS), LEASE, |l| {
            l["spec"]["holderIdentity"] == "replica-a"
        })
        .await;
    let b = cluster.controller("replica-b");
    cluster.apply(&gateway("before"));
    cluster
        .wait_for(
            "Deployment of the first Gateway",
            "deployment",
            Some("apps"),
            "before-ferrogate",
            |_| true,
        )
        .await;
    // The follower serves (ready) but does not lead.
    support::wait_metric(b.metrics_port, "ferrogate_translations_total", |v| v >= 1.0).await;
    assert_eq!(
        metric(b.metrics_port, "ferrogate_leader").await,
        0.0,
        "one leader"
    );
    assert_eq!(metric(a.metrics_port, "ferrogate_leader").await, 1.0);

    a.kill();
    let killed = Instant::now();
    cluster
        .wait_for("replica-b takes over", "lease", Some(NS), LEASE, |l| {
            l["spec"]["holderIdentity"] == "replica-b"
        })
        .await;
    let took = killed.elapsed();
    // 15 s Lease, renewed every 2 s: the successor waits out the Lease from its own last
    // observation of a renewal, then takes it on its next round.
    assert!(
        took < Duration::from_secs(15 + 2 + 3),
        "takeover after {took:?}"
    );
    eprintln!("takeover {took:?} after kill -9 of the leader");

    // The successor writes statuses and provisions.
    cluster.apply(&gateway("after"));
    cluster
        .wait_for(
            "Deployment of a Gateway made after the takeover",
            "deployment",
            Some("apps"),
            "after-ferrogate",
            |_| true,
        )
        .await;
    cluster
        .wait_for("its status", "gateway", Some("apps"), "after", |g| {
            condition_is(g, "/status/conditions", "Accepted", "True")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewing_holder_with_a_slow_clock_keeps_the_lease() {
    let cluster = Cluster::start().await;
    // Another replica holds the Lease and renews it every 2 s, but its clock is an hour
    // behind: its renewTime always looks an hour old.
    let skewed = |renew: time::OffsetDateTime| {
        // A MicroTime: exactly six fractional digits.
        let behind = renew - time::Duration::hours(1);
        let whole = behind
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let t = format!(
            "{}.{:06}Z",
            whole.trim_end_matches('Z'),
            behind.microsecond()
        );
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LEASE, "namespace": NS},
               "spec": {"holderIdentity": "skewed-holder", "leaseDurationSeconds": 15, "renewTime": t, "acquireTime": t}})
        .to_string()
    };
    cluster.apply(&skewed(time::OffsetDateTime::now_utc()));
    let c = cluster.controller("replica-c");
    support::wait_metric(c.metrics_port, "ferrogate_translations_total", |v| v >= 1.0).await;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.apply(&skewed(time::OffsetDateTime::now_utc()));
        assert_eq!(
            holder(&cluster).as_deref(),
            Some("skewed-holder"),
            "a renewing holder is not deposed because of its clock"
        );
        assert_eq!(metric(c.metrics_port, "ferrogate_leader").await, 0.0);
    }
    // The holder stops renewing: replica-c takes over once the Lease ran out by its own clock.
    let stopped = Instant::now();
    cluster
        .wait_for("replica-c takes over", "lease", Some(NS), LEASE, |l| {
            l["spec"]["holderIdentity"] == "replica-c"
        })
        .await;
    assert!(
        stopped.elapsed() >= Duration::from_secs(12),
        "not before the Lease duration: {:?}",
        stopped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_steps_down_before_its_lease_expires() {
    let mut cluster = Cluster::start().await;
    let c = cluster.controller("replica-d");
    cluster
        .wait_for("replica-d leads", "lease", Some(NS), LEASE, |l| {
            l["spec"]["holderIdentity"] == "replica-d"
        })
        .await;
    support::wait_metric(c.metrics_port, "ferrogate_leader", |v| v == 1.0).await;
    // The API server goes away: the leader cannot renew. It must stop acting as leader before
    // the 15 s Lease could expire for anyone else (renewal deadline 11 s).
    cluster.plane.kill_apiserver();
    let lost = Instant::now();
    support::wait_metric(c.metrics_port, "ferrogate_leader", |v| v == 0.0).await;
    let stepped_down = lost.elapsed();
    assert!(
        stepped_down < Duration::from_secs(15),
        "stepped down after {stepped_down:?}"
    );
    eprintln!("stepped down {stepped_down:?} after losing the API server");
    cluster.plane.start_apiserver().unwrap();
    cluster
        .plane
        .wait_ready(Duration::from_secs(60))
        .await
        .unwrap();
    support::wait_metric(c.metrics_port, "ferrogate_leader", |v| v == 1.0).await;
}
