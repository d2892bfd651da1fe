//! CRDs on the real API server: Ferrogate's EnvoyProxy installs from the chart and rejects
//! invalid objects there; a Gateway API CRD installed after the controller started is picked
//! up without a restart.

mod support;

use std::time::Duration;

use support::{Cluster, condition_is};

fn envoy_proxy(spec: &str) -> String {
    format!(
        "apiVersion: gateway.ferrogate.dev/v1alpha1\nkind: EnvoyProxy\nmetadata: {{name: p, namespace: ferrogate-system}}\nspec:\n{spec}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envoyproxy_crd_rejects_invalid_objects_on_the_server() {
    let cluster = Cluster::start().await;
    cluster
        .try_apply(&envoy_proxy(
            "  provider: {type: Kubernetes, kubernetes: {envoyDeployment: {replicas: 3}}}",
        ))
        .expect("a valid EnvoyProxy");
    // Access logs with Envoy Gateway's fields: the CEL rules compile and accept a valid setting.
    cluster
        .try_apply(&envoy_proxy("  telemetry: {accessLog: {settings: [{format: {type: Text, text: \"%RESPONSE_CODE%\"}, sinks: [{type: File, file: {path: /dev/stdout}}]}]}}"))
        .expect("a valid access log setting");
    for (spec, expected) in [
        (
            "  provider: {type: Kubernetes, kubernetes: {envoyDeployment: {replicas: -1}}}",
            "replicas",
        ),
        ("  provider: {type: Docker}", "Unsupported value"),
        (
            "  provider: {kubernetes: {envoyService: {type: Ingress}}}",
            "Unsupported value",
        ),
        (
            "  provider: {kubernetes: {envoyService: {externalTrafficPolicy: Sometimes}}}",
            "Unsupported value",
        ),
        (
            "  provider: {kubernetes: {envoyDeployment: {name: Not_A_Name}}}",
            "should match",
        ),
        (
            "  provider: {kubernetes: {envoyPDB: {minAvailable: 1, maxUnavailable: 1}}}",
            "only one of minAvailable and maxUnavailable",
        ),
        (
            "  logging: {level: {nonsense: debug}}",
            "unknown Envoy logger component",
        ),
        ("  logging: {level: {default: loud}}", "Unsupported value"),
        ("  concurrency: 0", "concurrency"),
        ("  replicaz: 2", "field not declared in schema"),
        (
            "  telemetry: {accessLog: {settings: [{format: {type: Text}, sinks: [{type: File, file: {path: /dev/stdout}}]}]}}",
            "text field needs to be set",
        ),
        (
            "  telemetry: {accessLog: {settings: [{format: {type: JSON, json: {a: b}}, sinks: [{type: OpenTelemetry}]}]}}",
            "Unsupported value",
        ),
        (
            "  telemetry: {accessLog: {settings: [{sinks: [{type: File}]}]}}",
            "file field needs to be set",
        ),
    ] {
        let err = cluster
            .try_apply(&envoy_proxy(spec))
            .expect_err(spec)
            .to_string();
        assert!(
            err.contains(expected),
            "{spec}: expected {expected:?} in {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_installed_after_start_is_picked_up() {
    let cluster = Cluster::start().await;
    let crds = ferrogate_cluster::tools::gateway_api_crds("experimental").unwrap();
    let tcp_crd = crds.join("gateway.networking.k8s.io_tcproutes.yaml");
    cluster.kubectl(&[
        "delete",
        "crd",
        "tcproutes.gateway.networking.k8s.io",
        "--wait=true",
    ]);
    let _controller = cluster.controller("replica-a");
    cluster.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: apps}\nspec: {ports: [{port: 9000}]}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: tcp, namespace: apps}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{name: tcp, port: 9000, protocol: TCP}]\n");
    cluster
        .wait_for("Gateway accepted", "gateway", Some("apps"), "tcp", |g| {
            condition_is(g, "/status/conditions", "Accepted", "True")
        })
        .await;

    cluster.kubectl(&["apply", "--server-side", "-f", tcp_crd.to_str().unwrap()]);
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/tcproutes.gateway.networking.k8s.io",
        "--timeout=60s",
    ]);
    cluster.apply("apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {name: late, namespace: apps}\nspec:\n  parentRefs: [{name: tcp}]\n  rules: [{backendRefs: [{name: echo, port: 9000}]}]\n");
    // API discovery runs again every minute.
    let route =
        ferrogate_cluster::wait::until("the TCPRoute's status", Duration::from_secs(120), || {
            let r = cluster.get("tcproute", Some("apps"), "late");
            async move {
                match r {
                    Some(r)
                        if r["status"]["parents"]
                            .as_array()
                            .is_some_and(|p| !p.is_empty()) =>
                    {
                        Ok(r)
                    }
                    other => Err(format!("{:?}", other.map(|r| r["status"].clone()))),
                }
            }
        })
        .await
        .unwrap();
    assert!(
        condition_is(
            &route["status"]["parents"][0],
            "/conditions",
            "Accepted",
            "True"
        ),
        "{}",
        route["status"]
    );
}
