//! `ferrogate status` against a real API server, with the kubeconfig a user would have: the
//! statuses the controller wrote, as a table.

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
    cluster.wait_for("Gateway accepted", "gateway", Some("apps"), "web", |g| condition_is(g, "/status/conditions", "Accepted", "True")).await;
    cluster
        .wait_for("route parent status", "httproute", Some("apps"), "echo", |r| r["status"]["parents"].as_array().is_some_and(|p| !p.is_empty()))
        .await;

    let out = Command::new(ferrogate_cluster::tools::ferrogate_bin().unwrap())
        .arg("status")
        .env("KUBECONFIG", cluster.plane.kubeconfig())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}\n{table}", String::from_utf8_lossy(&out.stderr));
    let row = |prefix: &str, name: &str| table.lines().find(|l| l.starts_with(prefix) && l.contains(name)).map(str::to_string);
    assert!(row("GatewayClass", "ferrogate").is_some_and(|r| r.contains("Accepted=True")), "{table}");
    assert!(row("Gateway", "apps/web").is_some_and(|r| r.contains("Accepted=True")), "{table}");
    let route = row("HTTPRoute", "apps/echo").unwrap_or_else(|| panic!("no route row:\n{table}"));
    assert!(route.contains("parent apps/web") && route.contains("ResolvedRefs=False(BackendNotFound)"), "{table}");
}
