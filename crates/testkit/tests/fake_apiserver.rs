//! The fake API server through the real kube client.

use ferrogate_gateway_types::experimental::gateways::Gateway;
use ferrogate_testkit::fake_apiserver::FakeApiServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(3);

fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn api_code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn data(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

#[tokio::test]
async fn crud_through_kube_api() {
    let server = FakeApiServer::start().await;
    let client = server.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());

    let created = cms
        .create(&PostParams::default(), &cm("a", &[("k", "v")]))
        .await
        .unwrap();
    assert_eq!(created.namespace().as_deref(), Some("default"));
    assert!(created.uid().is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let rv1: u64 = created.resource_version().unwrap().parse().unwrap();
    assert_eq!(
        api_code(
            cms.create(&PostParams::default(), &cm("a", &[]))
                .await
                .unwrap_err()
        ),
        409
    );

    let got = cms.get("a").await.unwrap();
    assert_eq!(data(&got)["k"], "v");
    assert!(cms.get_opt("missing").await.unwrap().is_none());
    assert_eq!(api_code(cms.get("missing").await.unwrap_err()), 404);

    let mut changed = got.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    let rv2: u64 = replaced.resource_version().unwrap().parse().unwrap();
    assert!(rv2 > rv1);
    assert_eq!(replaced.uid(), created.uid());
    assert_eq!(replaced.metadata.generation, Some(2));

    let list = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());
    let all: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let meta = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(meta.items[0].name_any(), "a");
    assert_eq!(
        Api::<ConfigMap>::namespaced(client.clone(), "other")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        0
    );

    // The direct helpers see API writes and vice versa.
    assert_eq!(
        server.get("v1", "ConfigMap", Some("default"), "a").unwrap()["data"]["k"],
        "w"
    );
    server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"x": "y"}}));
    assert_eq!(data(&cms.get("b").await.unwrap())["x"], "y");

    assert!(
        cms.delete("a", &DeleteParams::default())
            .await
            .unwrap()
            .is_right()
    );
    assert_eq!(
        api_code(cms.delete("a", &DeleteParams::default()).await.unwrap_err()),
        404
    );
    assert!(
        server
            .get("v1", "ConfigMap", Some("default"), "a")
            .is_none()
    );
    assert_eq!(server.list("v1", "ConfigMap", None).len(), 1);
}

#[tokio::test]
async fn reflector_sees_helper_and_api_changes() {
    let server = FakeApiServer::start().await;
    server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pre", "namespace": "default"}}));
    let cms: Api<ConfigMap> = Api::all(server.client());
    let (reader, writer) = reflector::store();
    let stream = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(WAIT, reader.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reader.state().len(), 1);

    let get = |name: &str| reader.state().into_iter().find(|c| c.name_any() == name);
    // Helper add, modify, delete.
    server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h", "namespace": "ns1"}, "data": {"v": "1"}}));
    server
        .wait_for("reflector sees helper add", WAIT, |_| get("h").is_some())
        .await;
    server.upsert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h", "namespace": "ns1"}, "data": {"v": "2"}}));
    server
        .wait_for("reflector sees helper modify", WAIT, |_| {
            get("h").is_some_and(|c| data(&c)["v"] == "2")
        })
        .await;
    assert!(server.delete("v1", "ConfigMap", Some("ns1"), "h"));
    server
        .wait_for("reflector sees helper delete", WAIT, |_| get("h").is_none())
        .await;

    // API add, modify, delete.
    let ns2: Api<ConfigMap> = Api::namespaced(server.client(), "ns2");
    ns2.create(&PostParams::default(), &cm("a", &[("v", "1")]))
        .await
        .unwrap();
    server
        .wait_for("reflector sees API add", WAIT, |_| get("a").is_some())
        .await;
    ns2.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    server
        .wait_for("reflector sees API modify", WAIT, |_| {
            get("a").is_some_and(|c| data(&c)["v"] == "2")
        })
        .await;
    ns2.delete("a", &DeleteParams::default()).await.unwrap();
    server
        .wait_for("reflector sees API delete", WAIT, |_| get("a").is_none())
        .await;
    assert_eq!(reader.state().len(), 1);
    task.abort();
}

/// Single-threaded runtime: the helper writes below happen without the watch stream running in
/// between, so the short event log is compacted past the watcher's resourceVersion.
#[tokio::test(flavor = "current_thread")]
async fn watcher_relists_after_410() {
    let server = FakeApiServer::builder().event_log_capacity(2).start().await;
    server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}));
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let mut stream = watcher(cms, watcher::Config::default()).boxed();
    let mut next = async || {
        tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("watcher event in time")
            .expect("stream open")
    };
    assert!(matches!(next().await.unwrap(), watcher::Event::Init));
    assert!(matches!(
        next().await.unwrap(),
        watcher::Event::InitApply(_)
    ));
    assert!(matches!(next().await.unwrap(), watcher::Event::InitDone));
    for name in ["b", "c", "d", "e"] {
        server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}));
    }
    match next().await {
        Err(watcher::Error::WatchError(status)) => assert_eq!(status.code, 410),
        other => panic!("expected a 410 watch error, got {other:?}"),
    }
    assert!(matches!(next().await.unwrap(), watcher::Event::Init));
    let mut names = Vec::new();
    loop {
        match next().await.unwrap() {
            watcher::Event::InitApply(o) => names.push(o.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    // Watching again: a new object arrives as an Apply.
    server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f"}}));
    assert!(matches!(next().await.unwrap(), watcher::Event::Apply(o) if o.name_any() == "f"));
    let lists = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && !r.is_watch())
        .count();
    assert_eq!(lists, 2, "{:#?}", server.requests());
}

#[tokio::test]
async fn watch_from_old_version_and_timeout() {
    let server = FakeApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let rv0 = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    cms.create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    let wp = kube::api::WatchParams::default().timeout(1);
    let events: Vec<_> = cms
        .watch(&wp, &rv0)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let kinds: Vec<String> = events.iter().map(|e| format!("{e:?}")).collect();
    assert_eq!(kinds, ["Added event", "Modified event"]);
}

#[tokio::test]
async fn metadata_watcher_streaming_list_and_event_recorder() {
    let server = FakeApiServer::start().await;
    server.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1", "labels": {"a": "b"}}, "data": {"k": "dg=="}}));
    server.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2"}}));
    let secrets: Api<Secret> = Api::default_namespaced(server.client());
    let cfg = watcher::Config::default().labels("a=b");
    let meta: Api<kube::core::PartialObjectMeta<Secret>> = Api::default_namespaced(server.client());
    let events: Vec<_> = tokio::time::timeout(WAIT, watcher(meta, cfg).take(3).try_collect())
        .await
        .expect("metadata watcher")
        .unwrap();
    assert!(
        matches!(&events[1], watcher::Event::InitApply(m) if m.name_any() == "s1" && m.labels()["a"] == "b"),
        "{events:?}"
    );

    let cfg = watcher::Config::default().streaming_lists();
    let events: Vec<_> =
        tokio::time::timeout(WAIT, watcher(secrets.clone(), cfg).take(4).try_collect())
            .await
            .expect("streaming list")
            .unwrap();
    let names: Vec<String> = events
        .iter()
        .filter_map(|e| {
            if let watcher::Event::InitApply(s) = e {
                Some(s.name_any())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(names, ["s1", "s2"]);
    // Since kube 5 a streaming list starts with Init as a paged list does (kube 4 sent none).
    assert!(
        matches!(events[0], watcher::Event::Init) && matches!(events[3], watcher::Event::InitDone),
        "a streaming list is Init, InitApply..., InitDone: {events:?}"
    );

    let recorder = kube::runtime::events::Recorder::new(server.client(), "ferrogate".into());
    let s1 = secrets.get("s1").await.unwrap();
    let ev = kube::runtime::events::Event {
        type_: kube::runtime::events::EventType::Normal,
        reason: "Test".into(),
        note: None,
        action: "Testing".into(),
        secondary: None,
    };
    tokio::time::timeout(WAIT, recorder.publish(&ev, &s1.object_ref(&())))
        .await
        .expect("publish")
        .unwrap();
    tokio::time::timeout(WAIT, recorder.publish(&ev, &s1.object_ref(&())))
        .await
        .expect("publish again")
        .unwrap();
    assert_eq!(
        server
            .list("events.k8s.io/v1", "Event", Some("default"))
            .len(),
        1
    );
}

#[tokio::test]
async fn server_side_apply_and_drift() {
    let server = FakeApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let pp = PatchParams::apply("ferrogate").force();
    let apply = |d: &[(&str, &str)], labels: &[(&str, &str)]| {
        let mut c = cm("ssa", d);
        c.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        Patch::Apply(c)
    };
    let created = cms
        .patch(
            "ssa",
            &pp,
            &apply(&[("a", "1"), ("b", "2")], &[("l1", "x"), ("l2", "y")]),
        )
        .await
        .unwrap();
    assert_eq!(data(&created).len(), 2);
    assert_eq!(created.metadata.generation, Some(1));

    // Re-apply without b and l2: both are removed.
    let reapplied = cms
        .patch("ssa", &pp, &apply(&[("a", "1")], &[("l1", "x")]))
        .await
        .unwrap();
    assert_eq!(
        data(&reapplied),
        [("a".to_string(), "1".to_string())].into()
    );
    assert_eq!(reapplied.labels().len(), 1);

    // Drift by another client, then the manager's apply restores its field and keeps the other one.
    cms.patch(
        "ssa",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "drift", "other": "3"}})),
    )
    .await
    .unwrap();
    assert_eq!(data(&cms.get("ssa").await.unwrap())["a"], "drift");
    let restored = cms
        .patch("ssa", &pp, &apply(&[("a", "1")], &[("l1", "x")]))
        .await
        .unwrap();
    assert_eq!(data(&restored)["a"], "1");
    assert_eq!(data(&restored)["other"], "3");

    // An identical apply is not a write.
    let again = cms
        .patch("ssa", &pp, &apply(&[("a", "1")], &[("l1", "x")]))
        .await
        .unwrap();
    assert_eq!(again.resource_version(), restored.resource_version());

    // JSON patch, and fieldManager is required.
    // (kube's Patch::Json needs its json-patch feature; send the request by hand.)
    let body = serde_json::to_vec(&json!([{"op": "add", "path": "/data/j", "value": "p"}, {"op": "test", "path": "/data/a", "value": "1"}])).unwrap();
    let req = hyper::Request::patch("/api/v1/namespaces/default/configmaps/ssa")
        .header("content-type", "application/json-patch+json")
        .body(body)
        .unwrap();
    let patched: ConfigMap = server.client().request(req).await.unwrap();
    assert_eq!(data(&patched)["j"], "p");
    let err = cms
        .patch("ssa", &PatchParams::default(), &apply(&[], &[]))
        .await
        .unwrap_err();
    assert_eq!(api_code(err), 400);

    // Stale resourceVersion in a patch body -> 409.
    let err = cms
        .patch(
            "ssa",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"z": "1"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(err), 409);
}

#[tokio::test]
async fn status_subresource_isolation() {
    let server = FakeApiServer::start().await;
    let svcs: Api<Service> = Api::default_namespaced(server.client());
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
    }))
    .unwrap();
    let created = svcs.create(&PostParams::default(), &svc).await.unwrap();
    assert!(
        created.status.is_none(),
        "create ignores status of kinds with a status subresource"
    );

    let with_status = svcs.patch_status("s", &PatchParams::default(), &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}, "spec": {"type": "ClusterIP"}}))).await.unwrap();
    assert_eq!(
        with_status.metadata.generation,
        Some(1),
        "status changes do not bump generation"
    );
    assert_eq!(
        with_status.spec.as_ref().unwrap().type_.as_deref(),
        Some("LoadBalancer"),
        "/status does not change spec"
    );
    let ip = |s: &Service| {
        s.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .map(|i| i[0].ip.clone().unwrap())
    };
    assert_eq!(ip(&with_status).as_deref(), Some("10.0.0.1"));

    let mut put = with_status.clone();
    put.spec.as_mut().unwrap().type_ = Some("NodePort".into());
    put.status = None;
    let replaced = svcs
        .replace("s", &PostParams::default(), &put)
        .await
        .unwrap();
    assert_eq!(
        ip(&replaced).as_deref(),
        Some("10.0.0.1"),
        "PUT on the main resource keeps status"
    );
    assert_eq!(replaced.metadata.generation, Some(2));

    let mut put_status = replaced.clone();
    put_status.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    put_status.status.as_mut().unwrap().load_balancer = None;
    let replaced = svcs
        .replace_status("s", &PostParams::default(), &put_status)
        .await
        .unwrap();
    assert_eq!(ip(&replaced), None);
    assert_eq!(
        replaced.spec.as_ref().unwrap().type_.as_deref(),
        Some("NodePort")
    );

    // The helper sets status directly (and watches see it).
    server.set_status(
        "v1",
        "Service",
        Some("default"),
        "s",
        json!({"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}),
    );
    assert_eq!(
        ip(&svcs.get_status("s").await.unwrap()).as_deref(),
        Some("9.9.9.9")
    );

    // ConfigMaps have no status subresource.
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    cms.create(&PostParams::default(), &cm("c", &[]))
        .await
        .unwrap();
    assert_eq!(api_code(cms.get_status("c").await.unwrap_err()), 404);
}

#[tokio::test]
async fn conflicts() {
    let server = FakeApiServer::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let first = cms
        .create(&PostParams::default(), &cm("c", &[("v", "1")]))
        .await
        .unwrap();
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    assert_eq!(
        api_code(
            cms.replace("c", &PostParams::default(), &first)
                .await
                .unwrap_err()
        ),
        409,
        "stale resourceVersion"
    );

    let svcs: Api<Service> = Api::default_namespaced(server.client());
    svcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {}})).unwrap(),
    )
    .await
    .unwrap();
    server.conflict_next(1, "PATCH", true);
    let status_patch = Patch::Merge(json!({"status": {"loadBalancer": {}}}));
    // A main-resource patch does not consume the /status rule.
    svcs.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
    )
    .await
    .unwrap();
    assert_eq!(
        api_code(
            svcs.patch_status("s", &PatchParams::default(), &status_patch)
                .await
                .unwrap_err()
        ),
        409
    );
    svcs.patch_status("s", &PatchParams::default(), &status_patch)
        .await
        .unwrap();

    server.conflict_next(2, "*", false);
    assert_eq!(
        api_code(cms.delete("c", &DeleteParams::default()).await.unwrap_err()),
        409
    );
    assert_eq!(
        api_code(
            cms.create(&PostParams::default(), &cm("d", &[]))
                .await
                .unwrap_err()
        ),
        409
    );
    cms.delete("c", &DeleteParams::default()).await.unwrap();
}

#[tokio::test]
async fn label_and_field_selectors() {
    let server = FakeApiServer::start().await;
    for (name, labels) in [
        ("a", json!({"app": "x", "tier": "1"})),
        ("b", json!({"app": "y"})),
        ("c", json!({})),
    ] {
        server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}));
    }
    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    let names = async |lp: ListParams| {
        cms.list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(ListParams::default().labels("app=x")).await, ["a"]);
    assert_eq!(
        names(ListParams::default().labels("app==x,tier")).await,
        ["a"]
    );
    assert_eq!(
        names(ListParams::default().labels("app!=x")).await,
        ["b", "c"]
    );
    assert_eq!(names(ListParams::default().labels("app")).await, ["a", "b"]);
    assert_eq!(names(ListParams::default().labels("!app")).await, ["c"]);
    assert_eq!(
        names(ListParams::default().labels("app in (x,y)")).await,
        ["a", "b"]
    );
    assert_eq!(
        names(ListParams::default().fields("metadata.name=b")).await,
        ["b"]
    );
    assert_eq!(
        names(ListParams::default().fields("metadata.namespace=default,metadata.name!=b")).await,
        ["a", "c"]
    );
    assert_eq!(
        api_code(
            cms.list(&ListParams::default().labels("a in x"))
                .await
                .unwrap_err()
        ),
        400
    );
}

#[tokio::test]
async fn owner_cascade_and_finalizers() {
    let server = FakeApiServer::start().await;
    let owner = server
        .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}));
    let owner_ref = |o: &serde_json::Value, kind: &str| json!([{"apiVersion": "v1", "kind": kind, "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}]);
    let child = server.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "child", "ownerReferences": owner_ref(&owner, "ConfigMap")}}));
    server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "grandchild", "namespace": "default", "ownerReferences": owner_ref(&child, "Secret")}}));
    server.create(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated"}}),
    );

    let cms: Api<ConfigMap> = Api::default_namespaced(server.client());
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(server.client());
    assert!(secrets.get_opt("child").await.unwrap().is_none());
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(left, ["unrelated"]);

    // Finalizers: delete marks, removing the last finalizer deletes.
    server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fin", "finalizers": ["example.com/f"]}}));
    let marked = cms
        .delete("fin", &DeleteParams::default())
        .await
        .unwrap()
        .unwrap_left();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(
        cms.get("fin")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    cms.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("fin").await.unwrap().is_none());
}

#[tokio::test]
async fn discovery() {
    let server = FakeApiServer::builder()
        .without("gateway.networking.k8s.io/v1alpha2")
        .start()
        .await;
    let client: Client = server.client();
    let gw = client
        .list_api_group_resources("gateway.networking.k8s.io/v1")
        .await
        .unwrap();
    let names: Vec<&str> = gw.resources.iter().map(|r| r.name.as_str()).collect();
    assert!(
        names.contains(&"gateways")
            && names.contains(&"gateways/status")
            && names.contains(&"gatewayclasses"),
        "{names:?}"
    );
    assert!(
        !gw.resources
            .iter()
            .find(|r| r.name == "gatewayclasses")
            .unwrap()
            .namespaced
    );
    assert_eq!(
        api_code(
            client
                .list_api_group_resources("gateway.networking.k8s.io/v1alpha2")
                .await
                .unwrap_err()
        ),
        404
    );
    let core = client.list_core_api_resources("v1").await.unwrap();
    assert!(
        core.resources
            .iter()
            .any(|r| r.name == "configmaps" && r.kind == "ConfigMap")
    );
    assert_eq!(
        client.list_core_api_versions().await.unwrap().versions,
        ["v1"]
    );
    let groups = client.list_api_groups().await.unwrap();
    let gwg = groups
        .groups
        .iter()
        .find(|g| g.name == "gateway.networking.k8s.io")
        .unwrap();
    assert_eq!(gwg.preferred_version.as_ref().unwrap().version, "v1");
    assert!(!gwg.versions.iter().any(|v| v.version == "v1alpha2"));
    client.apiserver_version().await.unwrap();

    for discovery in [
        kube::Discovery::new(client.clone()).run().await.unwrap(),
        kube::Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        assert!(discovery.has_group("gateway.networking.k8s.io"));
        let gvk = kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway");
        let (ar, caps) = discovery.resolve_gvk(&gvk).unwrap();
        assert_eq!(ar.plural, "gateways");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        assert!(
            discovery
                .resolve_gvk(&kube::api::GroupVersionKind::gvk(
                    "gateway.networking.k8s.io",
                    "v1alpha2",
                    "TCPRoute"
                ))
                .is_none()
        );
        assert!(
            discovery
                .resolve_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Service"))
                .is_some()
        );
    }
    // The removed group/version's objects are not served either.
    let tcp = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1alpha2", "TCPRoute"),
        "tcproutes",
    );
    let api: Api<kube::api::DynamicObject> = Api::all_with(client, &tcp);
    assert_eq!(
        api_code(api.list(&ListParams::default()).await.unwrap_err()),
        404
    );
}

#[tokio::test]
async fn typed_gateway_round_trip_and_request_log() {
    let server = FakeApiServer::start().await;
    let gws: Api<Gateway> = Api::namespaced(server.client(), "infra");
    let gw: Gateway = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "ferrogate", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }))
    .unwrap();
    gws.create(&PostParams::default(), &gw).await.unwrap();
    server.clear_requests();
    let status = json!({"status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z", "observedGeneration": 1}]}});
    let patched = gws.patch_status("gw", &PatchParams::apply("ferrogate").force(), &Patch::Apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "status": status["status"]}))).await.unwrap();
    assert_eq!(
        patched.status.unwrap().conditions.unwrap()[0].type_,
        "Accepted"
    );
    let got = gws.get("gw").await.unwrap();
    assert_eq!(got.spec.listeners[0].port, 80);
    assert_eq!(got.metadata.generation, Some(1));
    assert_eq!(
        server
            .get(
                "gateway.networking.k8s.io/v1",
                "Gateway",
                Some("infra"),
                "gw"
            )
            .unwrap()["status"]["conditions"][0]["reason"],
        "Accepted"
    );

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "PATCH");
    assert_eq!(
        reqs[0].path,
        "/apis/gateway.networking.k8s.io/v1/namespaces/infra/gateways/gw/status"
    );
    assert_eq!(
        reqs[0].content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert!(reqs[0].query.contains("fieldManager=ferrogate"));
    assert_eq!(server.writes().len(), 1);
    server.clear_requests();
    gws.list(&ListParams::default()).await.unwrap();
    assert!(server.writes().is_empty());
}
