//! LoadBalancer Services served by the project's node, as MetalLB and kube-proxy would serve
//! them: the Service the controller provisions for a Gateway gets an address from the node's
//! pool in its status, the controller copies it into the Gateway's `status.addresses`, and
//! `curl` to that address on the listener port goes through the node's forwarder to an Envoy
//! Pod and on to the backend. A Gateway asking for an address (`spec.addresses`, which the
//! controller turns into `metallb.io/loadBalancerIPs`) gets exactly that one. The node also
//! plays kube-proxy for ClusterIPs (from the host and from inside Pods) and NodePorts.

mod support;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use ferrogate_cluster::ControllerOptions;
use ferrogate_cluster::node::{Node, NodeOptions, PoolSpec};
use serde_json::Value;
use support::{Cluster, condition_is};

fn world(echo: std::net::SocketAddr, static_ip: Ipv4Addr) -> String {
    let echo_yaml = support::echo_backend_yaml("lb", echo);
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: lb}}
---
apiVersion: gateway.ferrogate.dev/v1alpha1
kind: EnvoyProxy
metadata: {{name: one, namespace: lb}}
spec:
  provider:
    type: Kubernetes
    kubernetes:
      envoyDeployment: {{replicas: 1}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web, namespace: lb}}
spec:
  gatewayClassName: ferrogate
  infrastructure:
    parametersRef: {{group: gateway.ferrogate.dev, kind: EnvoyProxy, name: one}}
  listeners:
  - {{name: http, port: 80, protocol: HTTP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: pinned, namespace: lb}}
spec:
  gatewayClassName: ferrogate
  infrastructure:
    parametersRef: {{group: gateway.ferrogate.dev, kind: EnvoyProxy, name: one}}
  addresses:
  - {{type: IPAddress, value: "{static_ip}"}}
  listeners:
  - {{name: http, port: 8080, protocol: HTTP}}
---
{echo_yaml}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: echo, namespace: lb}}
spec:
  parentRefs: [{{name: web}}, {{name: pinned}}]
  hostnames: [web.example]
  rules:
  - backendRefs: [{{name: echo, port: 8080}}]
"#
    )
}

/// `curl` of `url` with `Host: web.example` until it answers 200; returns the body.
async fn curl_200(url: &str) -> Value {
    curl_200_in(None, url).await
}

/// [`curl_200`] from inside network namespace `netns` (a Pod's) when given.
async fn curl_200_in(netns: Option<&str>, url: &str) -> Value {
    ferrogate_cluster::wait::until(
        &format!("curl {url} answers 200 (network namespace {netns:?})"),
        Duration::from_secs(60),
        || {
            let mut command = match netns {
                Some(netns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", netns, "curl"]);
                    c
                }
                None => Command::new("curl"),
            };
            let out = command
                .args([
                    "-sS",
                    "--max-time",
                    "5",
                    "-H",
                    "Host: web.example",
                    "-w",
                    "\n%{http_code}",
                    url,
                ])
                .output()
                .expect("curl (Debian package curl)");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            async move {
                let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
                if code == "200" {
                    serde_json::from_str::<Value>(body).map_err(|e| e.to_string())
                } else {
                    Err(format!("status {code:?} {err}"))
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

fn status_address(gateway: &Value) -> Option<Ipv4Addr> {
    gateway["status"]["addresses"][0]["value"]
        .as_str()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_get_pool_addresses_and_curl_reaches_the_backend_through_them() {
    let cluster = Cluster::start().await;
    let node = Node::start(
        cluster.plane.client().await.unwrap(),
        NodeOptions {
            host_aliases: vec!["ferrogate.ferrogate-system.svc".into()],
            load_balancer_pool: Some(PoolSpec::NodeSubnet),
            ..NodeOptions::new("node-lb")
        },
    )
    .await
    .expect("the node starts");
    let pool = node.load_balancer_pool().expect("a pool");
    let mut options = ControllerOptions::new("replica-a");
    options.xds_ip = node.host_ip().into();
    let controller = cluster.controller_with(&options);
    let echo =
        ferrogate_e2e::echo::spawn_for_test_on(node.host_ip().into(), "echo-pod", "lb", "echo")
            .await;
    let static_ip = Ipv4Addr::from(u32::from(pool.first) + 20);
    cluster.apply(&world(echo, static_ip));

    let programmed = |g: &Value| {
        condition_is(g, "/status/conditions", "Programmed", "True") && status_address(g).is_some()
    };
    let web = cluster
        .wait_for(
            "Gateway web Programmed with an address",
            "gateway",
            Some("lb"),
            "web",
            programmed,
        )
        .await;
    let address = status_address(&web).unwrap();
    assert!(pool.contains(address), "{address} from the pool {pool:?}");
    assert_eq!(web["status"]["addresses"][0]["type"], "IPAddress");
    let service = cluster
        .get("service", Some("lb"), "web-ferrogate")
        .expect("the Gateway's Service");
    assert_eq!(
        service["status"]["loadBalancer"]["ingress"][0]["ip"],
        address.to_string()
    );

    let body = curl_200(&format!("http://{address}/hello")).await;
    assert_eq!(body["pod"], "echo-pod", "answered by the backend: {body}");
    assert_eq!(body["path"], "/hello", "{body}");

    // As kube-proxy: the Gateway's Service answers on its NodePort at the node's address, and
    // on its ClusterIP, from the host and from inside a Pod.
    let node_port = service["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("a LoadBalancer Service has a nodePort");
    let body = curl_200(&format!("http://{}:{node_port}/node-port", node.host_ip())).await;
    assert_eq!(body["path"], "/node-port", "{body}");
    let cluster_ip: Ipv4Addr = service["spec"]["clusterIP"]
        .as_str()
        .and_then(|ip| ip.parse().ok())
        .expect("a ClusterIP");
    let range = cluster.plane.service_cidr();
    let prefix = range.trim_end_matches("0/24");
    assert!(
        cluster_ip.to_string().starts_with(prefix),
        "{cluster_ip} in this cluster's own range {range}"
    );
    let body = curl_200(&format!("http://{cluster_ip}/cluster-ip")).await;
    assert_eq!(body["pod"], "echo-pod", "{body}");
    let pod_netns = node.namespaces().expect("ip netns list");
    let envoy_pod = pod_netns
        .first()
        .expect("the Envoy Pod's network namespace");
    let body = curl_200_in(Some(envoy_pod), &format!("http://{cluster_ip}/from-a-pod")).await;
    assert_eq!(body["path"], "/from-a-pod", "{body}");
    // A plain ClusterIP Service (the backend's) is forwarded to its EndpointSlice's endpoint.
    let echo_service = cluster
        .get("service", Some("lb"), "echo")
        .expect("the backend's Service");
    let echo_ip = echo_service["spec"]["clusterIP"]
        .as_str()
        .expect("a ClusterIP");
    let body = curl_200_in(
        Some(envoy_pod),
        &format!("http://{echo_ip}:8080/echo-direct"),
    )
    .await;
    assert_eq!(body["pod"], "echo-pod", "{body}");

    // The address a Gateway asks for is the one it gets, on its own listener port.
    let pinned = cluster
        .wait_for(
            "Gateway pinned Programmed with its address",
            "gateway",
            Some("lb"),
            "pinned",
            programmed,
        )
        .await;
    assert_eq!(status_address(&pinned), Some(static_ip));
    let body = curl_200(&format!("http://{static_ip}:8080/pinned")).await;
    assert_eq!(body["pod"], "echo-pod", "{body}");

    // Deleting the Gateway removes its Service, and the node takes the address off the host.
    cluster.kubectl(&["delete", "gateway", "pinned", "-n", "lb"]);
    ferrogate_cluster::wait::until(
        "the pinned address leaves the host",
        Duration::from_secs(60),
        || {
            let out = ferrogate_cluster::node::network::ip(&["-o", "-4", "addr", "show"])
                .unwrap_or_default();
            let present = out.contains(&format!(" {static_ip}/32 "));
            async move {
                if present {
                    Err("still there".to_string())
                } else {
                    Ok(())
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", controller.log_tail(20)));
    drop(node);
}
