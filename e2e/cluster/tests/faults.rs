//! A real Envoy configured by the controller over mutual-TLS xDS from what it provisioned,
//! real HTTP through it, and the control plane's own faults: kube-apiserver killed and
//! restarted, etcd killed and restarted. Watches resume, later changes arrive, xDS keeps
//! serving the last configuration meanwhile (to a running Envoy and to one that connects
//! during the outage), and nothing is written twice.

mod support;

use std::time::Duration;

use ferrogate_e2e::testing::free_port;
use support::{Cluster, envoy, http_200, metric};

fn world(listener_port: u16, echo: std::net::SocketAddr) -> String {
    let echo_yaml = support::echo_backend_yaml("apps", echo);
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: apps}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web, namespace: apps}}
spec:
  gatewayClassName: ferrogate
  listeners:
  - {{name: http, port: {listener_port}, protocol: HTTP}}
---
{echo_yaml}"#
    )
}

fn route(name: &str, prefix: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: apps}}\nspec:\n  parentRefs: [{{name: web}}]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]\n    backendRefs: [{{name: echo, port: 8080}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_keeps_serving_through_apiserver_and_etcd_restarts() {
    let host = ferrogate_cluster::tools::host_ip().unwrap();
    let echo = ferrogate_e2e::echo::spawn_for_test_on(host, "echo-pod", "apps", "echo").await;
    let mut cluster = Cluster::start().await;
    let controller = cluster.controller("replica-a");
    let listener_port = free_port();
    cluster.apply(&world(listener_port, echo));
    cluster.apply(&route("first", "/first"));
    cluster
        .wait_for(
            "the Gateway's xDS Secret",
            "secret",
            Some("apps"),
            "web-ferrogate-xds",
            |_| true,
        )
        .await;
    cluster
        .wait_for(
            "the Gateway's bootstrap",
            "configmap",
            Some("apps"),
            "web-ferrogate",
            |_| true,
        )
        .await;
    let provisioned = envoy::Provisioned::read(&cluster, "apps", "web");
    let first_envoy = provisioned.start(controller.xds_port);
    let body = http_200(listener_port, "web.example", "/first").await;
    assert_eq!(
        body["pod"], "echo-pod",
        "answered by the echo backend through Envoy: {body}"
    );

    // kube-apiserver down: Envoy keeps serving, and an Envoy that connects now still gets the
    // last configuration from the controller.
    cluster.plane.kill_apiserver();
    tokio::time::sleep(Duration::from_secs(2)).await;
    http_200(listener_port, "web.example", "/first").await;
    drop(first_envoy);
    let _envoy = provisioned.start(controller.xds_port);
    let body = http_200(listener_port, "web.example", "/first").await;
    assert_eq!(
        body["pod"], "echo-pod",
        "an Envoy started during the outage got its config"
    );
    cluster.plane.start_apiserver().unwrap();
    cluster
        .plane
        .wait_ready(Duration::from_secs(60))
        .await
        .unwrap();
    // Watches resumed: a change made after the restart arrives.
    cluster.apply(&route("second", "/second"));
    http_200(listener_port, "web.example", "/second").await;

    // etcd down and back: the API server recovers, the watches too.
    cluster.plane.kill_etcd();
    tokio::time::sleep(Duration::from_secs(2)).await;
    http_200(listener_port, "web.example", "/second").await;
    cluster.plane.start_etcd().unwrap();
    cluster
        .plane
        .wait_ready(Duration::from_secs(60))
        .await
        .unwrap();
    cluster.apply(&route("third", "/third"));
    http_200(listener_port, "web.example", "/third").await;

    // Nothing lost: every route has exactly one status entry of ours, Accepted.
    for name in ["first", "second", "third"] {
        let r = cluster
            .wait_for("route Accepted", "httproute", Some("apps"), name, |r| {
                r["status"]["parents"].as_array().is_some_and(|p| {
                    p.len() == 1 && support::condition_is(&p[0], "/conditions", "Accepted", "True")
                })
            })
            .await;
        assert_eq!(
            r["status"]["parents"][0]["controllerName"],
            support::CONTROLLER_NAME
        );
    }
    // Nothing written twice: once settled, no status write happens without a change.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = metric(controller.metrics_port, "ferrogate_status_writes_total").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        metric(controller.metrics_port, "ferrogate_status_writes_total").await,
        writes,
        "no status write without a change"
    );
}
