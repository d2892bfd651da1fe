//! The Envoy Pods the controller provisions, run for real by the project's node
//! (`ferrogate_cluster::node`): the Deployment's two Pods are bound to the node, each runs the
//! real Envoy with the Pod's own arguments, its bootstrap ConfigMap and xDS client Secret
//! mounted where the Pod spec says, in a network namespace with its own address; they dial the
//! xDS Service by name (the Pod's hosts file points it at the controller on the node's
//! bridge), turn Ready through their readiness probe (`/ready` on 19003, which only arrives
//! over xDS), and HTTP sent to each Pod's address reaches a backend through the route.
//! `kubectl logs` and `ferrogate config-dump` reach the Pods through the API server.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferrogate_cluster::ControllerOptions;
use ferrogate_cluster::node::{Node, NodeOptions};
use serde_json::Value;
use support::{Cluster, condition_is};

const SELECTOR: &str = "gateway.networking.k8s.io/gateway-name=web";
/// Envoy's container port for listener port 80 (ports below 1024 map to +10000).
const CONTAINER_PORT: u16 = 10080;

fn world(echo: SocketAddr) -> String {
    let echo_yaml = support::echo_backend_yaml("apps", echo);
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: apps}}
---
# Two replicas as the class's EnvoyProxy has them, and Envoy's info logs, so that the Pods'
# logs have something to read.
apiVersion: gateway.ferrogate.dev/v1alpha1
kind: EnvoyProxy
metadata: {{name: logged, namespace: apps}}
spec:
  logging: {{level: {{default: info}}}}
  provider:
    type: Kubernetes
    kubernetes:
      envoyDeployment: {{replicas: 2}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web, namespace: apps}}
spec:
  gatewayClassName: ferrogate
  infrastructure:
    parametersRef: {{group: gateway.ferrogate.dev, kind: EnvoyProxy, name: logged}}
  listeners:
  - {{name: http, port: 80, protocol: HTTP}}
---
{echo_yaml}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: echo, namespace: apps}}
spec:
  parentRefs: [{{name: web}}]
  hostnames: [web.example]
  rules:
  - backendRefs: [{{name: echo, port: 8080}}]
"#
    )
}

fn pods(cluster: &Cluster, namespace: &str, selector: &str) -> Vec<Value> {
    let out = cluster.kubectl(&["get", "pods", "-n", namespace, "-l", selector, "-o", "json"]);
    serde_json::from_str::<Value>(&out).unwrap()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn is_ready(pod: &Value) -> bool {
    condition_is(pod, "/status/conditions", "Ready", "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_envoy_pods_run_turn_ready_and_serve_traffic() {
    let cluster = Cluster::start().await;
    let node = Node::start(
        cluster.plane.client().await.unwrap(),
        NodeOptions {
            host_aliases: vec!["ferrogate.ferrogate-system.svc".into()],
            ..NodeOptions::new("node-a")
        },
    )
    .await
    .expect("the node starts");
    let mut options = ControllerOptions::new("replica-a");
    options.xds_ip = node.host_ip().into();
    let controller = cluster.controller_with(&options);
    let echo =
        ferrogate_e2e::echo::spawn_for_test_on(node.host_ip().into(), "echo-pod", "apps", "echo")
            .await;

    let registered = cluster
        .wait_for("Node Ready", "node", None, "node-a", |n| {
            condition_is(n, "/status/conditions", "Ready", "True")
        })
        .await;
    assert_eq!(
        registered["status"]["addresses"][0]["address"],
        node.host_ip().to_string()
    );

    cluster.apply(&world(echo));
    let created = Instant::now();
    support::wait::pods(&cluster, "apps", SELECTOR, 2).await;
    // Measured beside the Pods' Ready condition: Envoy itself answers `/ready` once xDS gave
    // it the readiness listener; the condition follows at the next probe (every 5 s).
    ferrogate_cluster::wait::until(
        "Envoy /ready on both Pod addresses",
        Duration::from_secs(60),
        || {
            let ips: Vec<std::net::IpAddr> = pods(&cluster, "apps", SELECTOR)
                .iter()
                .filter_map(|p| p["status"]["podIP"].as_str()?.parse().ok())
                .collect();
            async move {
                if ips.len() != 2 {
                    return Err(format!("{} Pod addresses", ips.len()));
                }
                for ip in ips {
                    match ferrogate_e2e::client::get(
                        SocketAddr::new(ip, 19003),
                        "ready",
                        "/ready",
                        &[],
                    )
                    .await
                    {
                        Ok(r) if r.status == 200 => {}
                        other => return Err(format!("{ip}: {:?}", other.map(|r| r.status))),
                    }
                }
                Ok(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\ncontroller:\n{}", controller.log_tail(30)));
    eprintln!(
        "Envoy answers /ready on both Pod addresses {:.1}s after the Gateway was applied",
        created.elapsed().as_secs_f64()
    );
    let ready =
        ferrogate_cluster::wait::until("both Envoy Pods Ready", Duration::from_secs(90), || {
            let pods = pods(&cluster, "apps", SELECTOR);
            let n = pods.iter().filter(|p| is_ready(p)).count();
            let last = pods
                .iter()
                .map(|p| p["status"].to_string())
                .collect::<Vec<_>>()
                .join("\n");
            async move {
                if n == 2 {
                    Ok(pods)
                } else {
                    Err(format!("{n} Ready:\n{last}"))
                }
            }
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e:#}\ncontroller:\n{}\nnode files: {}",
                controller.log_tail(30),
                node.dir().display()
            )
        });
    eprintln!(
        "two Envoy Pods Ready {:.1}s after the Gateway was applied",
        created.elapsed().as_secs_f64()
    );

    // What the node reported is what runs: bound to it, one address each on its bridge, the
    // Envoy container running.
    let mut addresses = Vec::new();
    for pod in &ready {
        assert_eq!(pod["spec"]["nodeName"], "node-a");
        assert_eq!(pod["status"]["phase"], "Running");
        let ip: std::net::Ipv4Addr = pod["status"]["podIP"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            ip.octets()[..3],
            node.host_ip().octets()[..3],
            "Pod address on the node's subnet"
        );
        let envoy = &pod["status"]["containerStatuses"][0];
        assert_eq!(
            (envoy["name"].as_str(), envoy["ready"].as_bool()),
            (Some("envoy"), Some(true))
        );
        assert!(
            envoy["state"]["running"]["startedAt"].is_string(),
            "{envoy}"
        );
        addresses.push(ip);
    }
    assert_ne!(addresses[0], addresses[1]);
    cluster
        .wait_for(
            "Deployment available",
            "deployment",
            Some("apps"),
            "web-ferrogate",
            |d| d["status"]["availableReplicas"] == 2,
        )
        .await;

    // MetalLB's part, then the Gateway is Programmed.
    cluster.kubectl(&[
        "patch",
        "service",
        "web-ferrogate",
        "-n",
        "apps",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.168.50.150"}]}}}"#,
    ]);
    cluster
        .wait_for("Gateway Programmed", "gateway", Some("apps"), "web", |g| {
            condition_is(g, "/status/conditions", "Programmed", "True")
        })
        .await;

    // Real HTTP to each Pod's own address and container port reaches the backend.
    for ip in &addresses {
        let target = SocketAddr::new((*ip).into(), CONTAINER_PORT);
        let body = ferrogate_cluster::wait::until(
            &format!("200 from {target}"),
            Duration::from_secs(30),
            || async move {
                match ferrogate_e2e::client::get(target, "web.example", "/hello", &[]).await {
                    Ok(r) if r.status == 200 => r.json().map_err(|e| e.to_string()),
                    Ok(r) => Err(format!("status {}", r.status)),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            body["pod"], "echo-pod",
            "answered by the echo backend through the Envoy Pod at {ip}: {body}"
        );
    }

    // The container's output is a file the node keeps, one timestamped CRI record per line
    // (Envoy logs its start at info and above only when asked; the file exists from the
    // start).
    let name = ready[0]["metadata"]["name"].as_str().unwrap();
    assert!(
        node.log("apps", name, "envoy")
            .await
            .is_some_and(|p| p.is_file()),
        "log file of {name}"
    );

    // And `kubectl logs` reads it through the API server and the node's log endpoint.
    let file = node.log_text("apps", name, "envoy").await.unwrap();
    let logs = cluster.kubectl(&["logs", "-n", "apps", name, "-c", "envoy"]);
    assert!(
        file.contains("starting main dispatch loop"),
        "Envoy's info log in the node's file:\n{file}"
    );
    assert_eq!(logs, file, "kubectl logs gives the container's output");
    let last = cluster.kubectl(&["logs", "-n", "apps", name, "--tail=1"]);
    assert_eq!(last.lines().count(), 1, "{last}");
    assert!(file.ends_with(&last), "--tail=1 is the last line: {last}");
    // `--timestamps` prefixes each line with its time, and `--since-time` keeps the lines
    // from then on (the API server sends it with seconds only, so the line's own second).
    let stamped = cluster.kubectl(&["logs", "-n", "apps", name, "--timestamps"]);
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), logs.lines().count(), "{stamped}");
    let (time, text) = lines[lines.len() - 1].split_once(' ').unwrap();
    assert!(logs.ends_with(&format!("{text}\n")), "{stamped}");
    let since = cluster.kubectl(&["logs", "-n", "apps", name, &format!("--since-time={time}")]);
    assert!(
        since.ends_with(&format!("{text}\n")),
        "--since-time={time}: {since}"
    );
    let future = cluster.kubectl(&[
        "logs",
        "-n",
        "apps",
        name,
        "--since-time=2999-01-01T00:00:00Z",
    ]);
    assert_eq!(future, "", "nothing is newer than the future");
    eprintln!("kubectl logs of {name}: {} bytes", logs.len());

    // `ferrogate config-dump` in the cluster: one Ready Pod's admin API, which listens on
    // 127.0.0.1 inside the Pod only, through a port-forward of the API server and the node.
    let ferrogate = ferrogate_cluster::tools::ferrogate_bin().unwrap();
    let dump = std::process::Command::new(&ferrogate)
        .args(["config-dump", "apps/web"])
        .env("KUBECONFIG", cluster.plane.kubeconfig())
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "config-dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump: Value = serde_json::from_slice(&dump.stdout).unwrap();
    let types: Vec<&str> = dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["@type"].as_str())
        .collect();
    assert!(
        types.iter().any(|t| t.ends_with("RoutesConfigDump")),
        "{types:?}"
    );
    assert!(
        dump.to_string().contains("\"web.example\""),
        "the route's hostname is in the running config"
    );
    let none = std::process::Command::new(&ferrogate)
        .args(["config-dump", "apps/no-such-gateway"])
        .env("KUBECONFIG", cluster.plane.kubeconfig())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        !none.status.success() && stderr.contains("no Ready Envoy Pod"),
        "{stderr}"
    );

    // An image the node cannot run fails its Pod with a reason that says so.
    cluster.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: other, namespace: apps}\nspec:\n  containers: [{name: web, image: 'nginx:1.27'}]\n");
    let other = cluster
        .wait_for(
            "Pod with an unknown image waiting",
            "pod",
            Some("apps"),
            "other",
            |p| p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull",
        )
        .await;
    let message = other["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("nginx:1.27"), "{message}");
    assert_eq!(other["status"]["phase"], "Pending");

    // Deleting the Gateway ends its Pods for real: the node stops them and confirms.
    cluster.kubectl(&["delete", "gateway", "web", "-n", "apps"]);
    support::wait::pods(&cluster, "apps", SELECTOR, 0).await;
    // One network namespace per Pod still on the node (`other`, and the chart's own controller
    // Pod, whose image the node cannot run either): the Envoy Pods' are gone.
    let on_node = cluster.kubectl(&[
        "get",
        "pods",
        "-A",
        "--field-selector=spec.nodeName=node-a",
        "-o",
        "name",
    ]);
    let namespaces = node.namespaces().unwrap();
    assert_eq!(
        namespaces.len(),
        on_node.lines().count(),
        "network namespaces {namespaces:?} for Pods:\n{on_node}"
    );
    assert!(!on_node.contains("web-ferrogate"), "{on_node}");

    // The node's heartbeat renews the Ready condition without moving its transition time.
    let ready_then = support::condition(&registered, "/status/conditions", "Ready")
        .unwrap()
        .clone();
    let renewed = cluster
        .wait_for("a heartbeat", "node", None, "node-a", |n| {
            support::condition(n, "/status/conditions", "Ready")
                .is_some_and(|c| c["lastHeartbeatTime"] != ready_then["lastHeartbeatTime"])
        })
        .await;
    let ready_now = support::condition(&renewed, "/status/conditions", "Ready").unwrap();
    assert_eq!(
        (&ready_now["status"], &ready_now["lastTransitionTime"]),
        (&ready_then["status"], &ready_then["lastTransitionTime"])
    );
    drop(node);
}
