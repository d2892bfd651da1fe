//! What the node puts into a Pod, read back through the Pod itself: an Envoy Pod (the image
//! the node can run) whose own static config serves the files of a projected volume
//! (ServiceAccount token, the `kube-root-ca.crt` ConfigMap, a downwardAPI label) and a body
//! made from `$(POD_IP)` and `$(POD_NAME)` (env fieldRefs expanded in args), and turns Ready
//! through a tcpSocket probe.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use ferrogate_cluster::node::{Node, NodeOptions};
use ferrogate_cluster::{ControlPlane, ControlPlaneOptions};
use serde_json::{Value, json};

fn route(path: &str, body: Value) -> Value {
    json!({"match": {"path": path}, "direct_response": {"status": 200, "body": body}})
}

fn envoy_config() -> Value {
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}},
        "static_resources": {"listeners": [{
            "name": "files",
            "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "files",
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                    "route_config": {"virtual_hosts": [{"name": "files", "domains": ["*"], "routes": [
                        route("/token", json!({"filename": "/var/run/secrets/projected/token"})),
                        route("/ca", json!({"filename": "/var/run/secrets/projected/ca.crt"})),
                        route("/label", json!({"filename": "/var/run/secrets/projected/app"})),
                        route("/env", json!({"inline_string": "$(POD_IP) $(POD_NAME) $(POD_NAMESPACE)"})),
                    ]}]},
                },
            }]}],
        }]},
    })
}

fn pod() -> Value {
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "files", "namespace": "default", "labels": {"app": "files-app"}},
        "spec": {
            "containers": [{
                "name": "envoy",
                "image": "envoyproxy/envoy:v1.40.0",
                "args": ["--config-yaml", envoy_config().to_string(), "--disable-hot-restart", "-l", "warning"],
                "env": [field("POD_IP", "status.podIP"), field("POD_NAME", "metadata.name"), field("POD_NAMESPACE", "metadata.namespace")],
                "ports": [{"name": "files", "containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": "files"}, "periodSeconds": 1},
                "volumeMounts": [{"name": "projected", "mountPath": "/var/run/secrets/projected", "readOnly": true}],
            }],
            "volumes": [{"name": "projected", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600, "audience": "files-test"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}}]}},
            ]}}],
        },
    })
}

async fn get(target: SocketAddr, path: &str) -> String {
    let r = ferrogate_e2e::client::get(target, "files", path, &[])
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:#}"));
    assert_eq!(r.status, 200, "GET {path}");
    String::from_utf8(r.body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_sees_its_projected_volume_and_downward_api_env() {
    let plane = ControlPlane::start(ControlPlaneOptions::default())
        .await
        .unwrap();
    let node = Node::start(plane.client().await.unwrap(), NodeOptions::new("node-v"))
        .await
        .unwrap();
    // The controller-manager publishes the root CA ConfigMap and makes the default ServiceAccount.
    ferrogate_cluster::wait::until(
        "ServiceAccount and root CA ConfigMap",
        Duration::from_secs(60),
        || {
            let ok = plane
                .kubectl_output(&["get", "serviceaccount", "default"])
                .is_ok()
                && plane
                    .kubectl_output(&["get", "configmap", "kube-root-ca.crt"])
                    .is_ok();
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("missing".to_string())
                }
            }
        },
    )
    .await
    .unwrap();
    ferrogate_cluster::kubectl::run(
        &plane.binaries().kubectl,
        plane.kubeconfig(),
        &["apply", "-f", "-"],
        Some(&pod().to_string()),
    )
    .unwrap();

    let ready = ferrogate_cluster::wait::until(
        "Pod Ready through its tcpSocket probe",
        Duration::from_secs(60),
        || {
            let out = plane
                .kubectl_output(&["get", "pod", "files", "-o", "json"])
                .unwrap_or_default();
            async move {
                let pod: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
                let ready = pod["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                if ready {
                    Ok(pod)
                } else {
                    Err(pod["status"].to_string())
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let ip = ready["status"]["podIP"].as_str().unwrap().to_string();
    let target = SocketAddr::new(ip.parse().unwrap(), 8080);

    assert_eq!(
        get(target, "/env").await,
        format!("{ip} files default"),
        "fieldRef env expanded in args"
    );
    assert_eq!(
        get(target, "/label").await,
        "files-app",
        "downwardAPI label"
    );
    assert_eq!(
        get(target, "/ca").await,
        plane.ca_pem(),
        "the root CA ConfigMap, projected"
    );
    // The token is the ServiceAccount's, for the audience asked, bound to this Pod.
    let token = get(target, "/token").await;
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], json!(["files-test"]));
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "files");
    drop(node);
}
