//! The status writer against the fake API server: which requests a pass sends.

use std::sync::Arc;
use std::time::Duration;

use ferrogate_status::{Condition, ParentRef, RouteParentStatus, RouteStatus, StatusSet};
use ferrogate_store::{Snapshot, load_object};
use ferrogate_testkit::fake_apiserver::FakeApiServer;
use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

use crate::live_status::{LiveReflector, LiveStatuses};
use crate::status_writer::CONCURRENT_WRITES;
use crate::{StatusWriter, discover};

const ME: &str = "gateway.ferrogate.dev/gatewayclass-controller";
const V1: &str = "gateway.networking.k8s.io/v1";
const OTHER: &str = "example.com/other";

fn route_object(name: &str) -> Value {
    json!({
        "apiVersion": V1, "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "gw"}]},
    })
}

fn route_status(name: &str, reason: &'static str) -> Arc<RouteStatus> {
    Arc::new(RouteStatus {
        kind: "HTTPRoute".into(),
        namespace: "apps".into(),
        name: name.into(),
        parents: vec![RouteParentStatus {
            parent_ref: ParentRef {
                name: "gw".into(),
                ..Default::default()
            }
            .into(),
            conditions: [Condition::ok("Accepted", reason, "m")].into(),
        }],
    })
}

fn statuses(names: &[&str], reason: &'static str) -> Arc<StatusSet> {
    Arc::new(StatusSet {
        routes: names.iter().map(|n| route_status(n, reason)).collect(),
        ..Default::default()
    })
}

struct World {
    api: FakeApiServer,
    live: LiveStatuses,
    reflector: LiveReflector,
    writer: StatusWriter,
}

impl World {
    /// Another controller writes its parent entry into route `name`'s status; returns it.
    fn other_controller_writes(&self, name: &str) -> Value {
        let theirs =
            json!({"parentRef": {"name": "theirs"}, "controllerName": OTHER, "conditions": []});
        self.api.set_status(
            V1,
            "HTTPRoute",
            Some("apps"),
            name,
            json!({"parents": [theirs.clone()]}),
        );
        theirs
    }

    async fn start(names: &[&str]) -> Self {
        let api = FakeApiServer::start().await;
        for name in names {
            api.create(route_object(name));
        }
        let discovered = discover(&api.client()).await.expect("discovery");
        let live = LiveStatuses::default();
        let writer = StatusWriter::new(api.client(), &discovered, ME, live.clone());
        Self {
            reflector: LiveReflector::new(live.clone()),
            api,
            live,
            writer,
        }
    }

    fn route(&self, name: &str) -> Value {
        self.api
            .get(V1, "HTTPRoute", Some("apps"), name)
            .expect("route")
    }

    /// The store's snapshot of the routes, as the reflectors would publish it.
    fn snapshot(&self, names: &[&str]) -> Snapshot {
        names
            .iter()
            .map(|n| load_object(self.route(n)).expect("route loads"))
            .collect()
    }

    /// Delivers the current objects to the watch cache, as a watch event would.
    fn watch_sees(&mut self, names: &[&str]) {
        for name in names {
            let object: DynamicObject = serde_json::from_value(self.route(name)).unwrap();
            self.reflector
                .handle(ferrogate_store::Kind::HttpRoute, &Event::Apply(object));
        }
    }

    fn status_requests(&self) -> Vec<(String, String)> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| !r.is_watch() && r.path.contains("httproutes"))
            .map(|r| (r.method, r.path))
            .collect()
    }
}

#[tokio::test]
async fn after_a_leadership_change_statuses_the_watch_shows_right_cost_no_request() {
    let names = ["a", "b", "c"];
    let mut world = World::start(&names).await;
    let set = statuses(&names, "Accepted");
    let snapshot = world.snapshot(&names);
    let report = world.writer.write(&set, &snapshot).await;
    assert_eq!(report.written, 3);

    world.watch_sees(&names);
    assert_eq!(world.live.len(), 3);
    world.writer.forget();
    world.api.clear_requests();
    let report = world.writer.write(&set, &snapshot).await;
    assert_eq!(report, Default::default());
    assert_eq!(world.status_requests(), Vec::<(String, String)>::new());

    // Remembered: the next pass with a changed route looks at that route only.
    let changed = Arc::new(StatusSet {
        routes: vec![
            route_status("a", "Accepted"),
            route_status("b", "Other"),
            route_status("c", "Accepted"),
        ]
        .into(),
        ..Default::default()
    });
    let report = world.writer.write(&changed, &snapshot).await;
    assert_eq!(report.written, 1);
    let requests = world.status_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        requests[0].0, "PATCH",
        "at the watched version, no GET first"
    );
    assert_eq!(
        world.route("b")["status"]["parents"][0]["conditions"][0]["reason"],
        "Other"
    );
}

#[tokio::test]
async fn a_stale_watched_version_is_read_again_and_other_controllers_entries_stay() {
    let mut world = World::start(&["a"]).await;
    world.watch_sees(&["a"]); // no status yet, at the creation's resourceVersion
    // Another controller writes its parent after the watch saw the route.
    let theirs = world.other_controller_writes("a");
    let snapshot = world.snapshot(&["a"]);
    let report = world
        .writer
        .write(&statuses(&["a"], "Accepted"), &snapshot)
        .await;
    assert_eq!(report.written, 1);
    assert_eq!(report.conflicts, 1, "the watched resourceVersion was stale");
    let methods: Vec<String> = world.status_requests().into_iter().map(|r| r.0).collect();
    assert_eq!(methods, ["PATCH", "GET", "PATCH"]);
    let parents = world.route("a")["status"]["parents"].clone();
    assert_eq!(parents[0], theirs, "the other controller's entry is kept");
    assert_eq!(parents[1]["controllerName"], ME);
}

#[tokio::test]
async fn a_route_we_wrote_is_read_before_a_write_whatever_the_watch_shows() {
    let mut world = World::start(&["a"]).await;
    let theirs = world.other_controller_writes("a");
    let snapshot = world.snapshot(&["a"]);
    world.watch_sees(&["a"]); // before our write: the watch has not delivered it yet
    world
        .writer
        .write(&statuses(&["a"], "Accepted"), &snapshot)
        .await;
    // Back to what the (lagging) watch shows: no entry of ours. Not skipped.
    world.api.clear_requests();
    let report = world
        .writer
        .write(&Arc::new(StatusSet::default()), &snapshot)
        .await;
    assert_eq!(report.written, 1, "our entry is removed");
    let methods: Vec<String> = world.status_requests().into_iter().map(|r| r.0).collect();
    assert_eq!(methods, ["GET", "PATCH"]);
    assert_eq!(world.route("a")["status"]["parents"], json!([theirs]));
}

#[tokio::test]
async fn the_writes_of_one_pass_are_in_flight_together_a_bounded_number_at_once() {
    let names: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut world = World::start(&names).await;
    world.watch_sees(&names);
    let snapshot = world.snapshot(&names);
    let set = statuses(&names, "Accepted");
    world.api.hold_writes(true);
    let World {
        api, mut writer, ..
    } = world;
    let pass = tokio::spawn(async move { writer.write(&set, &snapshot).await });
    let patches = |api: &FakeApiServer| {
        api.requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    };
    api.wait_for("writes in flight together", Duration::from_secs(10), |a| {
        patches(a) == CONCURRENT_WRITES
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(patches(&api), CONCURRENT_WRITES, "no more than the bound");
    api.hold_writes(false);
    let report = pass.await.unwrap();
    assert_eq!(report.written, 40);
    assert_eq!(report.failed, 0);
    for name in &names {
        let route = api.get(V1, "HTTPRoute", Some("apps"), name).unwrap();
        assert_eq!(route["status"]["parents"][0]["controllerName"], ME);
    }
    let gets = api
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && !r.is_watch() && r.path.contains("httproutes"))
        .count();
    assert_eq!(gets, 0, "the watch had every route at its current version");
}
