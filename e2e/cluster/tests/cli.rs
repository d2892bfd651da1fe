//! What an operator sees of a real API server: `ferrogate status` with the kubeconfig a user
//! would have (the statuses the controller wrote, as a table), and the Events the controller
//! records as the chart's ServiceAccount when a status changes.

mod support;

use std::process::Command;

use support::{Cluster, condition_is};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrogate_status_shows_the_cluster_statuses() {
    let cluster = Cluster::start().await;
    let _controller = cluster.controller("replica-a");
    cluster.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: web, namespace: apps}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{name: http, port: 8080, protocol: HTTP}]\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: echo, namespace: apps}\nspec:\n  parentRefs: [{name: web}]\n  rules: [{backendRefs: [{name: missing, port: 80}]}]\n",
    );
    cluster
        .wait_for("Gateway accepted", "gateway", Some("apps"), "web", |g| {
            condition_is(g, "/status/conditions", "Accepted", "True")
        })
        .await;
    cluster
        .wait_for(
            "route parent status",
            "httproute",
            Some("apps"),
            "echo",
            |r| {
                r["status"]["parents"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            },
        )
        .await;

    let out = Command::new(ferrogate_cluster::tools::ferrogate_bin().unwrap())
        .arg("status")
        .env("KUBECONFIG", cluster.plane.kubeconfig())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}\n{table}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |prefix: &str, name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains(name))
            .map(str::to_string)
    };
    assert!(
        row("GatewayClass", "ferrogate").is_some_and(|r| r.contains("Accepted=True")),
        "{table}"
    );
    assert!(
        row("Gateway", "apps/web").is_some_and(|r| r.contains("Accepted=True")),
        "{table}"
    );
    let route = row("HTTPRoute", "apps/echo").unwrap_or_else(|| panic!("no route row:\n{table}"));
    assert!(
        route.contains("parent apps/web") && route.contains("ResolvedRefs=False(BackendNotFound)"),
        "{table}"
    );

    // The missing backend appears: the route's ResolvedRefs flips, and an Event says so.
    cluster.apply("apiVersion: v1\nkind: Service\nmetadata: {name: missing, namespace: apps}\nspec: {ports: [{port: 80}]}\n");
    let event = ferrogate_cluster::wait::until(
        "the ResolvedRefs Event",
        std::time::Duration::from_secs(60),
        || {
            let events =
                cluster.kubectl(&["get", "events.events.k8s.io", "-n", "apps", "-o", "json"]);
            async move {
                let events: serde_json::Value =
                    serde_json::from_str(&events).map_err(|e| e.to_string())?;
                events["items"]
                    .as_array()
                    .and_then(|items| {
                        items
                            .iter()
                            .find(|e| {
                                e["reason"] == "ResolvedRefs" && e["regarding"]["name"] == "echo"
                            })
                            .cloned()
                    })
                    .ok_or_else(|| format!("no ResolvedRefs Event yet: {events}"))
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(event["regarding"]["kind"], "HTTPRoute");
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["reportingController"], "ferrogate");
    assert!(
        event["regarding"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{event}"
    );
}
