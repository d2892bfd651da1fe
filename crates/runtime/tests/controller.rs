//! The real controller (kube-rs client, watchers, server-side apply, status patches, leader
//! election) against the in-memory Kubernetes API server of `ferrogate-testkit`.

use std::time::Duration;

use ferrogate_runtime::{ControllerConfig, run_controller_with};
use ferrogate_testkit::fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);
const CONTROLLER: &str = "gateway.ferrogate.dev/gatewayclass-controller";

fn world(api: &FakeApiServer) {
    for ns in ["ferrogate-system", "apps"] {
        api.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    api.create(json!({
        "apiVersion": "gateway.ferrogate.dev/v1alpha1", "kind": "EnvoyProxy",
        "metadata": {"name": "two-replicas", "namespace": "ferrogate-system"},
        "spec": {"provider": {"type": "Kubernetes", "kubernetes": {"envoyDeployment": {"replicas": 2}}}},
    }));
    api.create(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "ferrogate"},
        "spec": {"controllerName": CONTROLLER,
                 "parametersRef": {"group": "gateway.ferrogate.dev", "kind": "EnvoyProxy", "name": "two-replicas", "namespace": "ferrogate-system"}},
    }));
    api.create(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"gatewayClassName": "ferrogate",
                 "infrastructure": {"annotations": {"metallb.io/loadBalancerIPs": "192.168.50.150"}},
                 "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }));
    api.create(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": "apps"},
        "spec": {"ports": [{"port": 8080, "protocol": "TCP"}], "selector": {"app": "echo"}},
    }));
    api.create(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "echo-1", "namespace": "apps", "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": "IPv4", "ports": [{"port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": true}}],
    }));
    api.create(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "echo", "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "web"}, {"name": "theirs", "namespace": "other"}],
                 "rules": [{"backendRefs": [{"name": "echo", "port": 8080}]}]},
        // Another implementation's entry, which must survive our writes.
        "status": {"parents": [{"parentRef": {"name": "theirs", "namespace": "other"}, "controllerName": "example.com/other",
                                "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}]},
    }));
}

/// A free port, fixed for the whole test: the xDS port is part of every Envoy bootstrap, so
/// a restart on another port would rightly re-provision.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(
    api: &FakeApiServer,
    tls_dir: &std::path::Path,
    identity: &str,
    xds_port: u16,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let config = test_config(tls_dir, identity, xds_port);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_controller_with(api.client(), config, cancel.clone()));
    (cancel, task)
}

/// A controller's settings for these tests: local ports, the test's TLS files, short timers.
fn test_config(tls_dir: &std::path::Path, identity: &str, xds_port: u16) -> ControllerConfig {
    let mut config = ControllerConfig::new("ferrogate-system", identity);
    config.xds_addr = ([127, 0, 0, 1], xds_port).into();
    config.metrics_addr = "127.0.0.1:0".parse().unwrap();
    config.health_addr = "127.0.0.1:0".parse().unwrap();
    config.xds_tls_dir = Some(tls_dir.to_path_buf());
    config.debounce = Duration::from_millis(20);
    config.rediscover_every = Duration::from_millis(200);
    config
}

fn condition<'a>(object: &'a Value, pointer: &str, type_: &str) -> Option<&'a Value> {
    object
        .pointer(pointer)?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn gateway(api: &FakeApiServer) -> Value {
    api.get(
        "gateway.networking.k8s.io/v1",
        "Gateway",
        Some("apps"),
        "web",
    )
    .unwrap()
}

fn programmed_reason(api: &FakeApiServer) -> Option<String> {
    condition(&gateway(api), "/status/conditions", "Programmed").map(|c| {
        format!(
            "{}/{}",
            c["status"].as_str().unwrap(),
            c["reason"].as_str().unwrap()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_programs_corrects_drift_and_cleans_up() {
    let api = FakeApiServer::start().await;
    world(&api);
    let tls = tempfile::tempdir().unwrap();
    ferrogate_runtime::certgen_files(tls.path(), &["ferrogate.ferrogate-system.svc".to_string()])
        .unwrap();
    let xds_port = free_port();
    let (cancel, task) = start(&api, tls.path(), "replica-a", xds_port);

    // Provisioning from the class's EnvoyProxy and the Gateway's infrastructure.
    api.wait_for("Deployment apps/web-ferrogate", WAIT, |a| {
        a.get("apps/v1", "Deployment", Some("apps"), "web-ferrogate")
            .is_some()
    })
    .await;
    let deployment = api
        .get("apps/v1", "Deployment", Some("apps"), "web-ferrogate")
        .unwrap();
    assert_eq!(
        deployment["spec"]["replicas"], 2,
        "replicas from the GatewayClass's EnvoyProxy"
    );
    assert_eq!(
        deployment["metadata"]["ownerReferences"][0]["kind"],
        "Gateway"
    );
    api.wait_for("Service apps/web-ferrogate", WAIT, |a| {
        a.get("v1", "Service", Some("apps"), "web-ferrogate")
            .is_some()
    })
    .await;
    let service = api
        .get("v1", "Service", Some("apps"), "web-ferrogate")
        .unwrap();
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    assert_eq!(
        service["metadata"]["annotations"]["metallb.io/loadBalancerIPs"],
        "192.168.50.150"
    );
    for (kind, name) in [
        ("ServiceAccount", "web-ferrogate"),
        ("ConfigMap", "web-ferrogate"),
        ("Secret", "web-ferrogate-xds"),
    ] {
        let o = api
            .get("v1", kind, Some("apps"), name)
            .unwrap_or_else(|| panic!("{kind} {name} missing"));
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"], "ferrogate",
            "{kind}"
        );
    }
    let secret = api
        .get("v1", "Secret", Some("apps"), "web-ferrogate-xds")
        .unwrap();
    assert!(
        secret["data"]["tls.crt"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "client certificate issued"
    );

    // Statuses: accepted, but not programmed until the Service has an address and a
    // replica is available.
    api.wait_for("GatewayClass accepted", WAIT, |a| {
        let class = a
            .get(
                "gateway.networking.k8s.io/v1",
                "GatewayClass",
                None,
                "ferrogate",
            )
            .unwrap();
        condition(&class, "/status/conditions", "Accepted").is_some_and(|c| c["status"] == "True")
    })
    .await;
    api.wait_for("Gateway AddressNotAssigned", WAIT, |a| {
        programmed_reason(a).as_deref() == Some("False/AddressNotAssigned")
    })
    .await;
    api.set_status(
        "v1",
        "Service",
        Some("apps"),
        "web-ferrogate",
        json!({"loadBalancer": {"ingress": [{"ip": "192.168.50.150"}]}}),
    );
    api.wait_for("Gateway Pending", WAIT, |a| {
        programmed_reason(a).as_deref() == Some("False/Pending")
    })
    .await;
    api.set_status(
        "apps/v1",
        "Deployment",
        Some("apps"),
        "web-ferrogate",
        json!({"availableReplicas": 2, "replicas": 2}),
    );
    api.wait_for("Gateway Programmed", WAIT, |a| {
        programmed_reason(a).as_deref() == Some("True/Programmed")
    })
    .await;
    let gw = gateway(&api);
    assert_eq!(
        gw["status"]["addresses"],
        json!([{"type": "IPAddress", "value": "192.168.50.150"}])
    );
    assert_eq!(
        condition(&gw, "/status/conditions", "Programmed").unwrap()["observedGeneration"],
        gw["metadata"]["generation"]
    );
    // The transitions since the first status are Events on the Gateway, with its uid.
    let gateway_events = |a: &FakeApiServer, reason: &str| {
        a.list("events.k8s.io/v1", "Event", Some("apps"))
            .into_iter()
            .filter(|e| {
                e["reason"] == reason
                    && e["regarding"]["kind"] == "Gateway"
                    && e["regarding"]["name"] == "web"
            })
            .collect::<Vec<_>>()
    };
    api.wait_for("Programmed and AddressAssigned Events", WAIT, |a| {
        !gateway_events(a, "Programmed").is_empty()
            && !gateway_events(a, "AddressAssigned").is_empty()
    })
    .await;
    let event = &gateway_events(&api, "Programmed")[0];
    assert_eq!(event["type"], "Normal");
    assert!(event["regarding"]["uid"].is_string(), "{event}");
    assert_eq!(event["regarding"]["uid"], gw["metadata"]["uid"]);
    assert_eq!(event["reportingController"], "ferrogate");

    // Route status: our parent entry added, the other controller's kept.
    api.wait_for("HTTPRoute parents", WAIT, |a| {
        let route = a
            .get(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                Some("apps"),
                "echo",
            )
            .unwrap();
        route["status"]["parents"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    })
    .await;
    let route = api
        .get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            Some("apps"),
            "echo",
        )
        .unwrap();
    let parents = route["status"]["parents"].as_array().unwrap();
    assert_eq!(parents[0]["controllerName"], "example.com/other");
    assert_eq!(
        parents[0]["conditions"][0]["lastTransitionTime"],
        "2020-01-01T00:00:00Z"
    );
    assert_eq!(parents[1]["controllerName"], CONTROLLER);
    assert_eq!(
        condition(&parents[1], "/conditions", "Accepted").unwrap()["status"],
        "True"
    );

    // The leader Lease is ours.
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("ferrogate-system"),
            "ferrogate-leader",
        )
        .expect("leader Lease");
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");

    // Drift: someone scales the Deployment by hand; the controller restores its replicas.
    let deployments: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        api.client(),
        "apps",
        &kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("apps", "v1", "Deployment"),
            "deployments",
        ),
    );
    deployments
        .patch(
            "web-ferrogate",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .unwrap();
    api.wait_for("drift corrected", WAIT, |a| {
        a.get("apps/v1", "Deployment", Some("apps"), "web-ferrogate")
            .unwrap()["spec"]["replicas"]
            == 2
    })
    .await;

    // Every object the controller created, as the API server holds it, is valid for
    // Kubernetes 1.35 (strict schema validation, the Secret included).
    validate_objects(&[
        api.get("v1", "ServiceAccount", Some("apps"), "web-ferrogate")
            .unwrap(),
        api.get("v1", "ConfigMap", Some("apps"), "web-ferrogate")
            .unwrap(),
        api.get("v1", "Secret", Some("apps"), "web-ferrogate-xds")
            .unwrap(),
        api.get("apps/v1", "Deployment", Some("apps"), "web-ferrogate")
            .unwrap(),
        api.get("v1", "Service", Some("apps"), "web-ferrogate")
            .unwrap(),
    ]);

    // A client certificate that is unreadable (or about to expire) is reissued, and the pods
    // roll (the certificate's hash is a pod-template annotation).
    let cert_hash = |a: &FakeApiServer| {
        a.get("apps/v1", "Deployment", Some("apps"), "web-ferrogate").unwrap()["spec"]["template"]["metadata"]["annotations"]["gateway.ferrogate.dev/xds-certificate-hash"].clone()
    };
    let hash_before = cert_hash(&api);
    assert!(
        hash_before.is_string(),
        "the Deployment carries the certificate hash"
    );
    let mut broken = api
        .get("v1", "Secret", Some("apps"), "web-ferrogate-xds")
        .unwrap();
    broken["data"]["tls.crt"] = "bm90IGEgY2VydGlmaWNhdGU=".into(); // "not a certificate"
    let secret_writes = |a: &FakeApiServer| {
        a.writes()
            .iter()
            .filter(|r| r.path.ends_with("/secrets/web-ferrogate-xds"))
            .count()
    };
    let secret_writes_before = secret_writes(&api);
    api.upsert(broken);
    api.wait_for("certificate reissued and pods rolled", WAIT, |a| {
        let secret = a
            .get("v1", "Secret", Some("apps"), "web-ferrogate-xds")
            .unwrap();
        secret["data"]["tls.crt"] != "bm90IGEgY2VydGlmaWNhdGU=" && cert_hash(a) != hash_before
    })
    .await;

    // The renders that still see the broken Secret (the watchers lag behind the apply) reuse
    // the new certificate: one issue, one roll.
    assert_eq!(
        secret_writes(&api) - secret_writes_before,
        1,
        "the certificate is reissued once"
    );

    // Everything the controller asked of the API server so far is allowed by the RBAC the
    // install manifests grant it.
    assert_rbac_allows(&api.requests());

    // Restart with everything in place: no object and no status is written again.
    cancel.cancel();
    task.await.unwrap().unwrap();
    let before: Vec<Value> = ["Deployment", "Service"]
        .iter()
        .map(|k| {
            api.get(
                if *k == "Deployment" { "apps/v1" } else { "v1" },
                k,
                Some("apps"),
                "web-ferrogate",
            )
            .unwrap()
        })
        .collect();
    api.clear_requests();
    let (cancel, task) = start(&api, tls.path(), "replica-a", xds_port);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes: Vec<_> = api
        .writes()
        .into_iter()
        .filter(|r| !r.path.contains("/leases"))
        .collect();
    assert!(writes.is_empty(), "a restart wrote: {writes:#?}");
    let after: Vec<Value> = ["Deployment", "Service"]
        .iter()
        .map(|k| {
            api.get(
                if *k == "Deployment" { "apps/v1" } else { "v1" },
                k,
                Some("apps"),
                "web-ferrogate",
            )
            .unwrap()
        })
        .collect();
    assert_eq!(before, after);

    // The Gateway moves to a class that is not ours: its objects go (the controller deletes
    // them; no garbage collection involved, the Gateway still exists).
    let mut gw = gateway(&api);
    gw["spec"]["gatewayClassName"] = "someone-else".into();
    api.upsert(gw);
    api.wait_for("objects deleted", WAIT, |a| {
        a.get("apps/v1", "Deployment", Some("apps"), "web-ferrogate")
            .is_none()
            && a.get("v1", "Service", Some("apps"), "web-ferrogate")
                .is_none()
            && a.get("v1", "Secret", Some("apps"), "web-ferrogate-xds")
                .is_none()
            && a.get("v1", "ConfigMap", Some("apps"), "web-ferrogate")
                .is_none()
    })
    .await;
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_crds_are_skipped_and_status_conflicts_are_retried() {
    // A cluster without the experimental route kinds and without ServiceImports.
    let api = FakeApiServer::builder()
        .without("gateway.networking.k8s.io/v1alpha2")
        .without("multicluster.x-k8s.io/v1alpha1")
        .start()
        .await;
    world(&api);
    api.conflict_next(2, "PATCH", true);
    let tls = tempfile::tempdir().unwrap();
    ferrogate_runtime::certgen_files(tls.path(), &["ferrogate.ferrogate-system.svc".to_string()])
        .unwrap();
    let (cancel, task) = start(&api, tls.path(), "replica-b", 0);
    api.wait_for("Gateway status written despite conflicts", WAIT, |a| {
        programmed_reason(a).is_some()
    })
    .await;
    api.wait_for("HTTPRoute parents", WAIT, |a| {
        let route = a
            .get(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                Some("apps"),
                "echo",
            )
            .unwrap();
        route["status"]["parents"]
            .as_array()
            .is_some_and(|p| p.len() == 2)
    })
    .await;
    assert!(
        !task.is_finished(),
        "the controller keeps running without the absent kinds"
    );

    // The TCPRoute CRD gets installed while the controller runs: rediscovery notices, the
    // watchers restart, and TCPRoutes are judged (this one names an HTTP listener).
    api.install("gateway.networking.k8s.io/v1alpha2");
    api.create(json!({
        "apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TCPRoute", "metadata": {"name": "db", "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "web"}], "rules": [{"backendRefs": [{"name": "echo", "port": 8080}]}]},
    }));
    api.wait_for("TCPRoute status from the restarted watchers", WAIT, |a| {
        let route = a
            .get(
                "gateway.networking.k8s.io/v1alpha2",
                "TCPRoute",
                Some("apps"),
                "db",
            )
            .unwrap();
        route["status"]["parents"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["controllerName"] == CONTROLLER))
    })
    .await;
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certgen_creates_secrets_once() {
    let api = FakeApiServer::start().await;
    let first =
        ferrogate_runtime::certgen_in_cluster(api.client(), "ferrogate-system", "ferrogate")
            .await
            .unwrap();
    assert!(first.created_ca && first.created_server);
    let ca = api
        .get("v1", "Secret", Some("ferrogate-system"), "ferrogate-xds-ca")
        .unwrap();
    let again =
        ferrogate_runtime::certgen_in_cluster(api.client(), "ferrogate-system", "ferrogate")
            .await
            .unwrap();
    assert!(!again.created_ca && !again.created_server);
    assert_eq!(
        api.get("v1", "Secret", Some("ferrogate-system"), "ferrogate-xds-ca")
            .unwrap()["data"],
        ca["data"],
        "the CA is never rotated by a re-run"
    );
    // A lost server Secret is reissued from the existing CA.
    api.delete(
        "v1",
        "Secret",
        Some("ferrogate-system"),
        "ferrogate-xds-server",
    );
    let third =
        ferrogate_runtime::certgen_in_cluster(api.client(), "ferrogate-system", "ferrogate")
            .await
            .unwrap();
    assert!(!third.created_ca && third.created_server);
    let server = api
        .get(
            "v1",
            "Secret",
            Some("ferrogate-system"),
            "ferrogate-xds-server",
        )
        .unwrap();
    assert_eq!(server["data"]["ca.crt"], ca["data"]["ca.crt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_a_successor_takes_over() {
    let api = FakeApiServer::start().await;
    world(&api);
    let tls = tempfile::tempdir().unwrap();
    ferrogate_runtime::certgen_files(tls.path(), &["ferrogate.ferrogate-system.svc".to_string()])
        .unwrap();
    let xds_port = free_port();
    let (cancel_a, task_a) = start(&api, tls.path(), "replica-a", xds_port);
    api.wait_for("replica-a leads", WAIT, |a| {
        a.get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("ferrogate-system"),
            "ferrogate-leader",
        )
        .is_some_and(|l| l["spec"]["holderIdentity"] == "replica-a")
    })
    .await;
    api.wait_for("Deployment", WAIT, |a| {
        a.get("apps/v1", "Deployment", Some("apps"), "web-ferrogate")
            .is_some()
    })
    .await;

    // A second replica (own xDS port) follows: it never writes anything but its Lease reads.
    let (cancel_b, task_b) = start(&api, tls.path(), "replica-b", free_port());
    tokio::time::sleep(Duration::from_secs(1)).await;
    api.clear_requests();
    let mut gw = gateway(&api);
    gw["metadata"]["annotations"] = json!({"touched": "yes"});
    api.upsert(gw); // a change both replicas see
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("ferrogate-system"),
            "ferrogate-leader",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");

    // The leader stops and releases the Lease; the follower takes over and corrects drift.
    cancel_a.cancel();
    task_a.await.unwrap().unwrap();
    api.wait_for("replica-b leads", WAIT, |a| {
        a.get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("ferrogate-system"),
            "ferrogate-leader",
        )
        .is_some_and(|l| l["spec"]["holderIdentity"] == "replica-b")
    })
    .await;
    let mut deployment = api
        .get("apps/v1", "Deployment", Some("apps"), "web-ferrogate")
        .unwrap();
    deployment["spec"]["replicas"] = 9.into();
    api.upsert(deployment);
    api.wait_for("drift corrected by the new leader", WAIT, |a| {
        a.get("apps/v1", "Deployment", Some("apps"), "web-ferrogate")
            .unwrap()["spec"]["replicas"]
            == 2
    })
    .await;
    cancel_b.cancel();
    task_b.await.unwrap().unwrap();
}

/// The rules of the controller's ClusterRole and leader-election Role in
/// `manifests/install.yaml` (rendered from the chart with default values).
fn controller_rules() -> Vec<Value> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/install.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut rules = Vec::new();
    for doc in text.split("\n---") {
        let Ok(value) = yaml_serde::from_str::<Value>(doc) else {
            continue;
        };
        let kind = value["kind"].as_str().unwrap_or_default();
        let name = value["metadata"]["name"].as_str().unwrap_or_default();
        if (kind == "ClusterRole" && name == "ferrogate")
            || (kind == "Role" && name == "ferrogate-leader-election")
        {
            rules.extend(value["rules"].as_array().cloned().unwrap_or_default());
        }
    }
    assert!(
        !rules.is_empty(),
        "no controller RBAC found in {}",
        path.display()
    );
    rules
}

/// (API group, resource[/subresource], verb) of a request; `None` for discovery.
fn rbac_request(
    r: &ferrogate_testkit::fake_apiserver::RequestRecord,
) -> Option<(String, String, &'static str)> {
    let segments: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let (group, mut rest) = match segments.first() {
        Some(&"api") => ("", &segments[2.min(segments.len())..]),
        Some(&"apis") => (
            segments.get(1).copied().unwrap_or_default(),
            &segments[3.min(segments.len())..],
        ),
        _ => return None,
    };
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        rest = &rest[2..];
    }
    let resource = *rest.first()?;
    let named = rest.len() >= 2;
    let resource = match rest.get(2) {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    let verb = match r.method.as_str() {
        "GET" if r.is_watch() => "watch",
        "GET" if named => "get",
        "GET" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => return None,
    };
    Some((group.to_string(), resource, verb))
}

fn assert_rbac_allows(requests: &[ferrogate_testkit::fake_apiserver::RequestRecord]) {
    let rules = controller_rules();
    let has = |list: &Value, item: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|v| v == item || v == "*"))
    };
    let mut checked = std::collections::BTreeSet::new();
    for r in requests {
        let Some((group, resource, verb)) = rbac_request(r) else {
            continue;
        };
        let allowed = rules.iter().any(|rule| {
            has(&rule["apiGroups"], &group)
                && has(&rule["resources"], &resource)
                && has(&rule["verbs"], verb)
        });
        assert!(
            allowed,
            "RBAC does not allow {verb} {group}/{resource} ({} {})",
            r.method, r.path
        );
        checked.insert((group, resource, verb));
    }
    assert!(
        checked.len() > 20,
        "too few distinct requests to say anything: {checked:?}"
    );
}

/// Runs `scripts/validate-manifests.py` (kubernetes-validate, strict, 1.35) on `objects`.
fn validate_objects(objects: &[Value]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("controller-provisioned.yaml");
    // What the controller applied: without what the API server adds (YAML would also read
    // an unquoted timestamp as a date, which the schema check refuses).
    let applied = objects.iter().map(|o| {
        let mut o = o.clone();
        let map = o.as_object_mut().unwrap();
        map.remove("status");
        let meta = map["metadata"].as_object_mut().unwrap();
        for server_field in [
            "creationTimestamp",
            "uid",
            "resourceVersion",
            "generation",
            "managedFields",
        ] {
            meta.remove(server_field);
        }
        o
    });
    let text: Vec<String> = applied
        .map(|o| yaml_serde::to_string(&o).unwrap())
        .collect();
    std::fs::write(&file, text.join("---\n")).unwrap();
    let output = std::process::Command::new("python3")
        .arg(root.join("scripts/validate-manifests.py"))
        .args(["-k", "1.35.0"])
        .arg(&file)
        .output()
        .expect("run python3 scripts/validate-manifests.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "invalid provisioned objects:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("5 object(s)"), "{stdout}");
}

/// `ferrogate_xds_snapshot_updates_total` summed over Gateways, scraped from `metrics`.
async fn snapshot_updates(metrics: std::net::SocketAddr) -> f64 {
    metric_sum(metrics, "ferrogate_xds_snapshot_updates_total{").await
}

/// The sum of the series whose line starts with `prefix`, scraped from `metrics`.
async fn metric_sum(metrics: std::net::SocketAddr, prefix: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(metrics).await else {
        return 0.0;
    };
    let _ = stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await;
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body).await;
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn route_on_path(name: &str, path: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name, "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "web"}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                            "backendRefs": [{"name": "echo", "port": 8080}]}]},
    })
}

fn accepted(api: &FakeApiServer, route: &str) -> bool {
    api.get(
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        Some("apps"),
        route,
    )
    .as_ref()
    .and_then(|r| condition(r, "/status/parents/0/conditions", "Accepted"))
    .is_some_and(|c| c["status"] == "True")
}

/// Status writes and infrastructure applies run beside the translate path: while the API
/// server holds every write, route changes still reach the xDS cache, one after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xds_pushes_do_not_wait_for_a_stalled_api_server() {
    let api = FakeApiServer::start().await;
    let controller = HoldableController::start(&api).await;

    api.hold_writes(true);
    for (i, name) in ["first", "second", "third"].into_iter().enumerate() {
        controller
            .after_a_push(&format!("change {i} ({name})"), || {
                api.create(route_on_path(name, &format!("/{name}")));
            })
            .await;
        assert!(
            !accepted(&api, name),
            "no status can have been written while writes are held"
        );
    }

    api.hold_writes(false);
    api.wait_for("the held statuses written", WAIT, |a| {
        ["first", "second", "third"]
            .into_iter()
            .all(|n| accepted(a, n))
    })
    .await;
    controller.stop().await;
}

/// A route deleted and created again under the same name while the status sink is busy is
/// a new object with an empty status, though the sink (latest wins) never saw it gone and
/// its desired status is what it wrote before: the writer must tell the objects apart.
#[tokio::test]
async fn a_route_created_again_under_its_old_name_gets_its_status() {
    let api = FakeApiServer::start().await;
    let controller = HoldableController::start(&api).await;
    api.create(route_on_path("again", "/again"));
    api.wait_for("the route accepted", WAIT, |a| accepted(a, "again"))
        .await;

    api.hold_writes(true);
    // A status the sink must write, held by the API server: the sink is busy from here.
    controller
        .after_a_push("a new route", || {
            api.create(route_on_path("busy", "/busy"));
        })
        .await;
    controller
        .after_a_push("the delete", || {
            assert!(api.delete(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                Some("apps"),
                "again"
            ));
        })
        .await;
    controller
        .after_a_push("the new object", || {
            api.create(route_on_path("again", "/again"));
        })
        .await;
    assert!(
        !accepted(&api, "again"),
        "the new object starts without a status"
    );

    api.hold_writes(false);
    api.wait_for("the new object's status", WAIT, |a| {
        accepted(a, "again") && accepted(a, "busy")
    })
    .await;
    controller.stop().await;
}

/// A status write that fails (every attempt of one round answered 409) is tried again by the
/// sink after a backoff, without waiting for another change in the cluster.
#[tokio::test]
async fn a_failed_status_write_is_tried_again_without_a_new_change() {
    let api = FakeApiServer::start().await;
    let controller = HoldableController::start(&api).await;
    // Nothing else in flight: after this change, only a retry can write what failed.
    controller.settle().await;
    // More conflicts than the writer's attempts for the two objects of the round (the
    // route and its Gateway, written concurrently, so they share the conflicts).
    api.conflict_next(12, "PATCH", true);
    api.create(route_on_path("stubborn", "/stubborn"));
    api.wait_for("both statuses of the change written", WAIT, |a| {
        let attached = a
            .get(
                "gateway.networking.k8s.io/v1",
                "Gateway",
                Some("apps"),
                "web",
            )
            .and_then(|g| g.pointer("/status/listeners/0/attachedRoutes").cloned());
        accepted(a, "stubborn") && attached == Some(json!(2))
    })
    .await;
    let retries = metric_sum(
        controller.metrics,
        "ferrogate_sink_retries_total{sink=\"status\"}",
    )
    .await;
    assert!(
        retries >= 1.0,
        "the round with the failed write was retried"
    );
    controller.stop().await;
}

/// Told the load balancer's pools, the controller answers a static address outside them
/// with `AddressNotUsable` at once (the Service would only stay pending), and a usable one
/// is assigned like any other.
#[tokio::test]
async fn a_static_address_outside_the_pools_is_not_usable() {
    let api = FakeApiServer::start().await;
    let controller = HoldableController::start_with(&api, |config| {
        config.static_address_pools =
            ferrogate_runtime::StaticAddressPools(vec!["10.245.0.0/24".parse().unwrap()]);
    })
    .await;
    let mut web = gateway(&api);
    web["spec"]["addresses"] = json!([{"type": "IPAddress", "value": "192.0.2.77"}]);
    api.upsert(web.clone());
    api.wait_for("AddressNotUsable", WAIT, |a| {
        programmed_reason(a).as_deref() == Some("False/AddressNotUsable")
    })
    .await;
    let status = gateway(&api);
    let programmed = condition(&status, "/status/conditions", "Programmed").unwrap();
    assert!(
        programmed["message"]
            .as_str()
            .unwrap()
            .contains("192.0.2.77 is outside the load balancer's address pools (10.245.0.0/24)"),
        "{programmed}"
    );
    let accepted = condition(&status, "/status/conditions", "Accepted").unwrap();
    assert_eq!(
        accepted["status"], "True",
        "an unusable address is not a spec error"
    );
    let class = api
        .get(
            "gateway.networking.k8s.io/v1",
            "GatewayClass",
            None,
            "ferrogate",
        )
        .unwrap();
    let features = class["status"]["supportedFeatures"].to_string();
    assert!(
        features.contains("\"GatewayStaticAddresses\""),
        "claimed once the pools are known: {features}"
    );

    // A usable address is the Gateway's at once (status.addresses); Programmed waits for
    // the load balancer, which this fake API server does not have.
    web["spec"]["addresses"] = json!([{"type": "IPAddress", "value": "10.245.0.9"}]);
    api.upsert(web);
    api.wait_for(
        "the static address in status, Programmed pending",
        WAIT,
        |a| {
            let status = gateway(a);
            status.pointer("/status/addresses/0/value") == Some(&json!("10.245.0.9"))
                && programmed_reason(a).as_deref() == Some("False/Pending")
        },
    )
    .await;
    let status = gateway(&api);
    let programmed = condition(&status, "/status/conditions", "Programmed").unwrap();
    assert_eq!(
        programmed["message"],
        "Waiting for the load balancer to give the Gateway's Service 10.245.0.9"
    );
    controller.stop().await;
}

/// A controller on the fake API server without leader election (lease renewals are writes
/// too, and these tests hold every write), its first route accepted.
struct HoldableController {
    metrics: std::net::SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _tls: tempfile::TempDir,
}

impl HoldableController {
    async fn start(api: &FakeApiServer) -> Self {
        Self::start_with(api, |_| {}).await
    }

    async fn start_with(
        api: &FakeApiServer,
        configure: impl FnOnce(&mut ControllerConfig),
    ) -> Self {
        world(api);
        let tls = tempfile::tempdir().unwrap();
        ferrogate_runtime::certgen_files(
            tls.path(),
            &["ferrogate.ferrogate-system.svc".to_string()],
        )
        .unwrap();
        let metrics: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut config = test_config(tls.path(), "replica-a", free_port());
        config.metrics_addr = metrics;
        config.leader_elect = false;
        configure(&mut config);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run_controller_with(api.client(), config, cancel.clone()));
        api.wait_for("the first route accepted", WAIT, |a| accepted(a, "echo"))
            .await;
        Self {
            metrics,
            cancel,
            task,
            _tls: tls,
        }
    }

    /// Runs `change` and waits until the xDS cache took a new snapshot after it.
    async fn after_a_push(&self, what: &str, change: impl FnOnce()) {
        let before = snapshot_updates(self.metrics).await;
        change();
        let deadline = tokio::time::Instant::now() + WAIT;
        while snapshot_updates(self.metrics).await <= before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} never reached the xDS cache while the API server held writes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the controller has stopped writing statuses and pushing snapshots (the
    /// start's provisioning and status rounds are over).
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = None;
        loop {
            let now = (
                metric_sum(self.metrics, "ferrogate_status_writes_total").await,
                snapshot_updates(self.metrics).await,
                metric_sum(self.metrics, "ferrogate_infra_apply_duration_seconds_count").await,
            );
            if last == Some(now) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "never settled");
            last = Some(now);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap().unwrap();
    }
}
