//! The delaying API proxy (`ferrogate_cluster::api_delay`) against the real kube-apiserver:
//! a client whose kubeconfig points at it keeps its identity (the admin's token passes
//! through), every request takes at least the delay, and a watch opened through it delivers
//! each event as it happens, since only the start of a request is held.

use std::time::{Duration, Instant};

use ferrogate_cluster::api_delay::ApiDelayProxy;
use ferrogate_cluster::control_plane::client_from_kubeconfig;
use ferrogate_cluster::{ControlPlane, ControlPlaneOptions};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

const DELAY: Duration = Duration::from_millis(500);

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_through_the_proxy_are_delayed_and_watches_stream() {
    let plane = ControlPlane::start(ControlPlaneOptions {
        controller_manager: false,
        keep_dir: false,
    })
    .await
    .expect("control plane");
    let proxy = ApiDelayProxy::start(&plane.server(), &plane.ca_pem(), DELAY)
        .await
        .expect("the proxy starts");
    let through = plane.dir().join("admin-through-proxy.kubeconfig");
    proxy
        .kubeconfig_through(plane.kubeconfig(), &through)
        .unwrap();
    let slow = client_from_kubeconfig(&through).await.unwrap();
    let direct = plane.client().await.unwrap();

    // Every request waits the delay, and the admin's token reaches the server unchanged
    // (listing namespaces needs it).
    let namespaces: Api<Namespace> = Api::all(slow.clone());
    for _ in 0..3 {
        let t0 = Instant::now();
        let list = namespaces.list(&ListParams::default()).await.unwrap();
        assert!(
            list.items
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some("default")),
            "the real server's namespaces come back"
        );
        assert!(t0.elapsed() >= DELAY, "a list took only {:?}", t0.elapsed());
    }
    assert_eq!(proxy.counts().requests, 3);
    assert_eq!(proxy.counts().writes, 0);

    // A watch through the proxy: once it is open, events arrive as the direct client makes
    // them, well inside the delay.
    let slow_maps: Api<ConfigMap> = Api::namespaced(slow, "default");
    let direct_maps: Api<ConfigMap> = Api::namespaced(direct, "default");
    let version = slow_maps
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = slow_maps
        .watch(&WatchParams::default().timeout(60), &version)
        .await
        .unwrap()
        .boxed();
    assert_eq!(proxy.counts().watches, 1);
    // The watch call returned with the response's head, after the delay: it is open.
    for name in ["first", "second"] {
        let t0 = Instant::now();
        direct_maps
            .create(&PostParams::default(), &config_map(name))
            .await
            .unwrap();
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap_or_else(|_| panic!("no event for {name} within 10 s"))
            .expect("the watch stays open")
            .unwrap();
        let WatchEvent::Added(added) = event else {
            panic!("expected ADDED {name}, got {event:?}");
        };
        assert_eq!(added.metadata.name.as_deref(), Some(name));
        assert!(
            t0.elapsed() < DELAY,
            "the event for {name} took {:?}: events must not wait for the delay",
            t0.elapsed()
        );
    }
    assert_eq!(proxy.counts().requests, 5, "{:?}", proxy.counts());
}
