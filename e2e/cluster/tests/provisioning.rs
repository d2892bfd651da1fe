//! The seed walkthrough on a real API server: the chart installed, `ferrogate controller` as
//! the chart's ServiceAccount (so the chart's ClusterRole is what the server enforces), a
//! GatewayClass whose EnvoyProxy asks for two replicas, Gateways with a MetalLB address, and
//! the project's node running the Envoy Pods for real (so Ready means Envoy got its config).

mod support;

use ferrogate_cluster::ControllerOptions;
use ferrogate_cluster::node::{Node, NodeOptions};
use support::{CONTROLLER_NAME, Cluster, condition_is};

const GATEWAYS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: apps}
spec:
  gatewayClassName: ferrogate
  infrastructure:
    annotations: {metallb.io/loadBalancerIPs: 192.168.50.150}
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: pinned, namespace: apps}
spec:
  gatewayClassName: ferrogate
  addresses:
  - {type: IPAddress, value: 192.168.50.151}
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
---
apiVersion: gateway.ferrogate.dev/v1alpha1
kind: EnvoyProxy
metadata: {name: scaled, namespace: apps}
spec:
  provider:
    type: Kubernetes
    kubernetes:
      envoyHpa: {minReplicas: 2, maxReplicas: 5}
      envoyPDB: {maxUnavailable: 1}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: scaled, namespace: apps}
spec:
  gatewayClassName: ferrogate
  infrastructure:
    parametersRef: {group: gateway.ferrogate.dev, kind: EnvoyProxy, name: scaled}
  listeners:
  - {name: http, port: 80, protocol: HTTP}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_is_provisioned_programmed_and_garbage_collected() {
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
    let _controller = cluster.controller_with(&options);

    let class = cluster
        .wait_for(
            "GatewayClass Accepted",
            "gatewayclass",
            None,
            "ferrogate",
            |c| condition_is(c, "/status/conditions", "Accepted", "True"),
        )
        .await;
    assert_eq!(class["spec"]["controllerName"], CONTROLLER_NAME);

    cluster.apply(GATEWAYS);
    // Everything the controller provisions, owned by the Gateway.
    let deployment = cluster
        .wait_for(
            "Deployment",
            "deployment",
            Some("apps"),
            "web-ferrogate",
            |_| true,
        )
        .await;
    assert_eq!(
        deployment["spec"]["replicas"], 2,
        "replicas from the class's EnvoyProxy"
    );
    for (resource, name) in [
        ("serviceaccount", "web-ferrogate"),
        ("configmap", "web-ferrogate"),
        ("secret", "web-ferrogate-xds"),
        ("service", "web-ferrogate"),
        ("deployment", "web-ferrogate"),
    ] {
        let o = cluster
            .wait_for(resource, resource, Some("apps"), name, |_| true)
            .await;
        let owner = &o["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["name"].as_str()),
            (Some("Gateway"), Some("web")),
            "{resource} {name} owned by the Gateway"
        );
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"], "ferrogate",
            "{resource}"
        );
    }
    let service = cluster
        .get("service", Some("apps"), "web-ferrogate")
        .unwrap();
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    assert_eq!(
        service["metadata"]["annotations"]["metallb.io/loadBalancerIPs"],
        "192.168.50.150"
    );
    let pinned = cluster
        .wait_for(
            "Service of the pinned Gateway",
            "service",
            Some("apps"),
            "pinned-ferrogate",
            |_| true,
        )
        .await;
    assert_eq!(
        pinned["metadata"]["annotations"]["metallb.io/loadBalancerIPs"], "192.168.50.151",
        "spec.addresses become MetalLB's annotation"
    );

    // HPA and PDB when the Gateway's own EnvoyProxy asks for them.
    let hpa = cluster
        .wait_for("HPA", "hpa", Some("apps"), "scaled-ferrogate", |_| true)
        .await;
    assert_eq!(
        (
            hpa["spec"]["minReplicas"].as_i64(),
            hpa["spec"]["maxReplicas"].as_i64()
        ),
        (Some(2), Some(5))
    );
    assert_eq!(hpa["metadata"]["ownerReferences"][0]["name"], "scaled");
    let pdb = cluster
        .wait_for("PDB", "pdb", Some("apps"), "scaled-ferrogate", |_| true)
        .await;
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);

    // The controller-manager makes the ReplicaSet and the two Pods from our Deployment.
    let pods = support::wait::pods(
        &cluster,
        "apps",
        "gateway.networking.k8s.io/gateway-name=web",
        2,
    )
    .await;
    assert_eq!(pods, 2);

    // Not programmed before the Service has an address.
    cluster
        .wait_for(
            "Gateway AddressNotAssigned",
            "gateway",
            Some("apps"),
            "web",
            |g| {
                support::reason(g, "/status/conditions", "Programmed") == "False/AddressNotAssigned"
            },
        )
        .await;
    // MetalLB's part: the Service gets its ingress address.
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
    // The node runs the Pods; they turn Ready once Envoy has its config, so the Deployment
    // becomes available.
    cluster
        .wait_for(
            "Deployment available",
            "deployment",
            Some("apps"),
            "web-ferrogate",
            |d| d["status"]["availableReplicas"] == 2,
        )
        .await;
    let gateway = cluster
        .wait_for("Gateway Programmed", "gateway", Some("apps"), "web", |g| {
            condition_is(g, "/status/conditions", "Programmed", "True")
        })
        .await;
    assert_eq!(gateway["status"]["addresses"][0]["value"], "192.168.50.150");
    let programmed = support::condition(&gateway, "/status/conditions", "Programmed").unwrap();
    assert_eq!(
        programmed["observedGeneration"],
        gateway["metadata"]["generation"]
    );

    // What a user sees: upstream's printer columns fed by our status.
    let table = cluster.kubectl(&["get", "gateway", "web", "-n", "apps"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..4],
        &["web", "ferrogate", "192.168.50.150", "True"],
        "kubectl get gateway:\n{table}"
    );

    // Deleting the Gateway garbage-collects everything it owned.
    cluster.kubectl(&["delete", "gateway", "web", "-n", "apps", "--wait=true"]);
    for (resource, name) in [
        ("deployment", "web-ferrogate"),
        ("service", "web-ferrogate"),
        ("configmap", "web-ferrogate"),
        ("serviceaccount", "web-ferrogate"),
        ("secret", "web-ferrogate-xds"),
    ] {
        cluster.wait_gone(resource, Some("apps"), name).await;
    }
    // The ReplicaSet goes too, and its Pods: the node stops their Envoys and confirms.
    support::wait::pods(
        &cluster,
        "apps",
        "gateway.networking.k8s.io/gateway-name=web",
        0,
    )
    .await;
    assert!(
        cluster
            .list("replicasets", "apps")
            .iter()
            .all(|rs| rs["metadata"]["name"]
                .as_str()
                .is_some_and(|n| !n.starts_with("web-ferrogate"))),
        "the ReplicaSet was collected"
    );
    drop(node);
}
