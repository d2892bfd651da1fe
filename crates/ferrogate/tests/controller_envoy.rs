//! End to end in controller mode: the controller runs against the in-memory Kubernetes API
//! server, and a real Envoy runs from exactly what the controller provisioned for the
//! Gateway — the bootstrap in its ConfigMap and the client certificate in its `<name>-xds`
//! Secret — and gets its configuration over mutual-TLS xDS, then serves real HTTP to an
//! echo backend named by an EndpointSlice.
//!
//! The only edits to the provisioned bootstrap stand in for the pod's environment: the xDS
//! Service's DNS name resolves to 127.0.0.1 here (the server certificate is still checked
//! against that name), the Secret's mount path is a temporary directory, and the admin and
//! stats ports are free ports so parallel tests do not collide.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrogate_e2e::testing::{Proc, envoy_path, free_port};
use ferrogate_runtime::{ControllerConfig, run_controller_with};
use ferrogate_testkit::fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn world(api: &FakeApiServer, listener_port: u16, echo_port: u16) {
    for ns in ["ferrogate-system", "apps"] {
        api.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    api.create(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "ferrogate"},
        "spec": {"controllerName": "gateway.ferrogate.dev/gatewayclass-controller"},
    }));
    api.create(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"gatewayClassName": "ferrogate", "listeners": [{"name": "http", "port": listener_port, "protocol": "HTTP"}]},
    }));
    api.create(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": "apps"},
        "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": echo_port, "protocol": "TCP"}]},
    }));
    api.create(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "echo-1", "namespace": "apps", "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": echo_port, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
    }));
    api.create(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "echo", "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "web"}], "rules": [{"backendRefs": [{"name": "echo", "port": 8080}]}]},
    }));
}

/// The provisioned bootstrap, adapted to this host (see the module comment).
fn host_bootstrap(config_map: &Value, secret_dir: &Path, xds_port: u16, admin_port: u16, stats_port: u16) -> Value {
    let text = config_map["data"]["bootstrap.json"].as_str().expect("bootstrap in the ConfigMap");
    let text = text.replace("/etc/ferrogate/xds", secret_dir.to_str().unwrap());
    let mut bootstrap: Value = serde_json::from_str(&text).unwrap();
    for cluster in bootstrap["static_resources"]["clusters"].as_array_mut().unwrap() {
        if cluster["name"] == "xds_cluster" {
            cluster["type"] = "STATIC".into();
            cluster.as_object_mut().unwrap().remove("dns_lookup_family");
            let address = &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
            address["address"] = "127.0.0.1".into();
            address["port_value"] = xds_port.into();
        }
        if cluster["name"] == "admin_local" {
            cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = admin_port.into();
        }
    }
    bootstrap["admin"]["address"]["socket_address"]["port_value"] = admin_port.into();
    bootstrap["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = stats_port.into();
    bootstrap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_runs_from_the_provisioned_bootstrap_and_certificate() {
    let echo = ferrogate_e2e::echo::spawn_for_test("echo-controller", "apps", "echo").await;
    let listener_port = free_port();
    let api = FakeApiServer::start().await;
    world(&api, listener_port, echo.port());

    let tls = tempfile::tempdir().unwrap();
    ferrogate_runtime::certgen_files(tls.path(), &ferrogate_runtime::pki::xds_service_dns_names("ferrogate", "ferrogate-system")).unwrap();
    let xds_port = free_port();
    let mut config = ControllerConfig::new("ferrogate-system", "replica-a");
    config.xds_addr = ([127, 0, 0, 1], xds_port).into();
    config.metrics_addr = "127.0.0.1:0".parse().unwrap();
    config.health_addr = "127.0.0.1:0".parse().unwrap();
    config.xds_tls_dir = Some(tls.path().to_path_buf());
    config.debounce = Duration::from_millis(20);
    let cancel = CancellationToken::new();
    let controller = tokio::spawn(run_controller_with(api.client(), config, cancel.clone()));

    api.wait_for("the Gateway's ConfigMap and xDS Secret", WAIT, |a| {
        a.get("v1", "ConfigMap", Some("apps"), "web-ferrogate").is_some() && a.get("v1", "Secret", Some("apps"), "web-ferrogate-xds").is_some()
    })
    .await;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(api.get("v1", "Secret", Some("apps"), "web-ferrogate-xds").unwrap()).unwrap();
    let secret_dir = tempfile::tempdir().unwrap();
    for (key, bytes) in secret.data.unwrap() {
        std::fs::write(secret_dir.path().join(key), bytes.0).unwrap();
    }
    let config_map = api.get("v1", "ConfigMap", Some("apps"), "web-ferrogate").unwrap();
    let bootstrap = host_bootstrap(&config_map, secret_dir.path(), xds_port, free_port(), free_port());
    let bootstrap_path = secret_dir.path().join("bootstrap.json");
    std::fs::write(&bootstrap_path, serde_json::to_vec(&bootstrap).unwrap()).unwrap();

    let _envoy = Proc(
        Command::new(envoy_path())
            .args(["-c", bootstrap_path.to_str().unwrap(), "--disable-hot-restart", "-l", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    // Traffic through the Envoy, configured only by the controller over mTLS xDS.
    let target: std::net::SocketAddr = ([127, 0, 0, 1], listener_port).into();
    let started = Instant::now();
    let answer = loop {
        if let Ok(r) = ferrogate_e2e::client::get(target, "web.example", "/hello", &[]).await
            && r.status == 200
        {
            break r;
        }
        assert!(started.elapsed() < WAIT, "Envoy never served the route");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let body = answer.json().unwrap();
    assert_eq!(body["pod"], "echo-controller", "answered by the echo backend: {body}");
    assert_eq!(body["path"], "/hello");

    cancel.cancel();
    controller.await.unwrap().unwrap();
}
