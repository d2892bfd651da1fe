//! An in-memory Kubernetes API server for tests, good enough for the real kube-rs client
//! (`Api`, `watcher`/`reflector`, server-side apply, merge/JSON patches, status subresources,
//! label/field selectors, discovery) to work against it unchanged.
//!
//! ```ignore
//! let server = FakeApiServer::start().await;
//! let client = server.client();            // kube::Client, default namespace "default"
//! server.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}));
//! ```
//!
//! Files: `registry.rs` (served kinds, discovery documents), `store.rs` (objects,
//! resourceVersions, event log), `ops.rs` (verb semantics), `patch.rs` (merge/JSON patch and the
//! server-side apply approximation, documented there), `selectors.rs`, `watch.rs` (watch streams,
//! documented there), `http.rs` (routing and wire format), `errors.rs` (Status errors).
//!
//! Plain HTTP/1.1 on 127.0.0.1, JSON only, no authentication, no admission, no validation
//! against schemas, no `managedFields`, list pagination ignored (`limit`/`continue`: everything
//! is returned in one page).
//!
//! **What it is still for.** Everything a real cluster decides (schemas and CEL rules of
//! upstream's CRDs, RBAC, served versions, garbage collection, the controllers that make
//! ReplicaSets and Pods, server restarts, leader election on a real Lease, Envoy fed from the
//! provisioned objects) is tested against a real kube-apiserver, etcd and
//! kube-controller-manager in `e2e/cluster` (`make cluster-test`). This fake stays for fast
//! tests in `make test` that need to see or shape individual requests, which a real server
//! cannot do cheaply: `crates/runtime/tests/controller.rs` counts every write (a restart writes
//! nothing), checks each request against the chart's RBAC rules, injects 409 conflicts and
//! absent CRDs, and breaks a client-certificate Secret by hand. It validates nothing; a
//! behaviour that depends on validation belongs in `e2e/cluster`.

mod errors;
mod http;
mod ops;
mod patch;
mod registry;
mod selectors;
mod store;
mod watch;

use ops::{DeleteOpts, Sub};
use registry::{Registry, ResourceDef};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Store, obj_key};

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, ...
    pub method: String,
    /// The URL path, e.g. `/api/v1/namespaces/default/configmaps/a`.
    pub path: String,
    /// The raw (still percent-encoded) query string, "" when absent.
    pub query: String,
    pub content_type: Option<String>,
}

impl RequestRecord {
    /// POST, PUT, PATCH or DELETE.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// A `watch=true` (or `watch=1`) GET.
    pub fn is_watch(&self) -> bool {
        self.method == "GET"
            && self
                .query
                .split('&')
                .any(|p| p == "watch=true" || p == "watch=1")
    }
}

#[derive(Debug)]
struct ConflictRule {
    remaining: usize,
    method: String,
    status: bool,
}

/// State shared by the handle, the HTTP tasks and the watch streams.
pub(crate) struct Shared {
    store: Mutex<Store>,
    requests: Mutex<Vec<RequestRecord>>,
    conflicts: Mutex<Vec<ConflictRule>>,
    bookmark_interval: Duration,
    /// While true, every HTTP write waits (see [`FakeApiServer::hold_writes`]).
    pub(crate) writes_held: tokio::sync::watch::Sender<bool>,
}

struct Inner {
    shared: Arc<Shared>,
    url: String,
    task: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Handle to a running fake API server (cheap to clone; the server stops when the last handle
/// is dropped or the runtime shuts down).
#[derive(Clone)]
pub struct FakeApiServer {
    inner: Arc<Inner>,
}

/// Options for [`FakeApiServer`]; start with [`FakeApiServer::builder`].
#[derive(Clone, Debug)]
pub struct FakeApiServerBuilder {
    without: Vec<String>,
    event_log_capacity: usize,
    bookmark_interval: Duration,
}

impl Default for FakeApiServerBuilder {
    fn default() -> Self {
        FakeApiServerBuilder {
            without: Vec::new(),
            event_log_capacity: 10_000,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

impl FakeApiServerBuilder {
    /// Do not serve `group/version` (e.g. `"gateway.networking.k8s.io/v1alpha2"`; `"v1"` for the
    /// core group), as when a CRD is not installed: its paths and discovery answer 404.
    pub fn without(mut self, group_version: &str) -> Self {
        self.without.push(group_version.to_string());
        self
    }

    /// How many events the watch log keeps (default 10 000). A watch from a resourceVersion the
    /// log no longer reaches gets 410 Gone; make this small to test re-list paths.
    pub fn event_log_capacity(mut self, events: usize) -> Self {
        self.event_log_capacity = events;
        self
    }

    /// How often watches that allow bookmarks get a BOOKMARK (default 5 s).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Binds 127.0.0.1:0 and serves on a tokio task of the current runtime.
    pub async fn start(self) -> FakeApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(
                Registry::new(&self.without),
                self.event_log_capacity,
            )),
            requests: Mutex::new(Vec::new()),
            conflicts: Mutex::new(Vec::new()),
            bookmark_interval: self.bookmark_interval,
            writes_held: tokio::sync::watch::Sender::new(false),
        });
        let task = tokio::spawn(http::serve(listener, shared.clone())).abort_handle();
        FakeApiServer {
            inner: Arc::new(Inner {
                shared,
                url: format!("http://{addr}"),
                task,
            }),
        }
    }
}

fn namespace_of(def: &ResourceDef, obj: &Value) -> String {
    if !def.namespaced {
        return String::new();
    }
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
        .to_string()
}

impl FakeApiServer {
    /// A server with the full built-in registry.
    pub async fn start() -> FakeApiServer {
        Self::builder().start().await
    }

    pub fn builder() -> FakeApiServerBuilder {
        FakeApiServerBuilder::default()
    }

    /// Starts serving a `group/version` the builder left out, as when its CRD is installed
    /// while clients run (discovery and its paths answer from now on).
    pub fn install(&self, group_version: &str) {
        self.store().registry.install(group_version);
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    /// A `kube::Client` for this server (default namespace "default"). Must be called inside a
    /// tokio runtime.
    pub fn client(&self) -> kube::Client {
        let uri: hyper::Uri = self.url().parse().expect("server url");
        let config = kube::Config::new(uri);
        kube::Client::try_from(config).expect("kube client for the fake API server")
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.inner.shared.store.lock().expect("store lock")
    }

    fn def(store: &Store, api_version: &str, kind: &str) -> ResourceDef {
        store
            .registry
            .by_kind(api_version, kind)
            .cloned()
            .unwrap_or_else(|| panic!("FakeApiServer does not serve {api_version} {kind}"))
    }

    fn def_of(store: &Store, obj: &Value) -> ResourceDef {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .expect("object without apiVersion");
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .expect("object without kind");
        Self::def(store, api_version, kind)
    }

    /// Creates `obj` (with its `status`), as a POST would, without HTTP. Namespaced objects
    /// without a namespace go to "default". Panics if it exists.
    pub fn create(&self, obj: Value) -> Value {
        let mut store = self.store();
        let def = Self::def_of(&store, &obj);
        let ns = namespace_of(&def, &obj);
        ops::create(&mut store, &def, &ns, obj, true, false)
            .unwrap_or_else(|e| panic!("FakeApiServer::create: {}", e.message))
    }

    /// Creates `obj` or replaces everything but the identity (uid, creationTimestamp) of the
    /// existing object, including `status`.
    pub fn upsert(&self, obj: Value) -> Value {
        let mut store = self.store();
        let def = Self::def_of(&store, &obj);
        let ns = namespace_of(&def, &obj);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .expect("object without metadata.name")
            .to_string();
        let result = if store.get(&obj_key(&def, &ns, &name)).is_some() {
            ops::update(&mut store, &def, &ns, &name, obj, Sub::All, false, false)
        } else {
            ops::create(&mut store, &def, &ns, obj, true, false)
        };
        result.unwrap_or_else(|e| panic!("FakeApiServer::upsert: {}", e.message))
    }

    /// The stored object (with apiVersion/kind as asked).
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self.store();
        let def = Self::def(&store, api_version, kind);
        store
            .get(&obj_key(&def, namespace.unwrap_or_default(), name))
            .map(|o| ops::present(&def, o))
    }

    /// Objects of a kind, in one namespace or (None) all, ordered by namespace and name.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = self.store();
        let def = Self::def(&store, api_version, kind);
        store
            .list(&def, namespace)
            .into_iter()
            .map(|o| ops::present(&def, o))
            .collect()
    }

    /// Deletes like the API (finalizers respected, owner and namespace cascade). False if absent.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let mut store = self.store();
        let def = Self::def(&store, api_version, kind);
        ops::delete(
            &mut store,
            &def,
            namespace.unwrap_or_default(),
            name,
            &DeleteOpts::default(),
        )
        .is_ok()
    }

    /// Replaces `status` (as a PUT on `/status` would). Panics if the object does not exist.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) {
        let mut store = self.store();
        let def = Self::def(&store, api_version, kind);
        let body = serde_json::json!({"status": status});
        ops::update(
            &mut store,
            &def,
            namespace.unwrap_or_default(),
            name,
            body,
            Sub::Status,
            false,
            false,
        )
        .unwrap_or_else(|e| panic!("FakeApiServer::set_status: {}", e.message));
    }

    /// Makes the next `count` HTTP writes with `method` ("POST", "PUT", "PATCH", "DELETE" or "*"
    /// for any) on the main resource (`status_subresource == false`) or on `/status` (true)
    /// answer 409 Conflict without changing anything.
    pub fn conflict_next(&self, count: usize, method: &str, status_subresource: bool) {
        self.inner
            .shared
            .conflicts
            .lock()
            .expect("conflicts lock")
            .push(ConflictRule {
                remaining: count,
                method: method.to_ascii_uppercase(),
                status: status_subresource,
            });
    }

    /// While `hold` is true, every HTTP write (POST, PUT, PATCH, DELETE: status writes,
    /// applies, lease renewals) waits before it is handled, as behind a stalled API server;
    /// `false` lets the waiting ones through. Direct calls ([`create`](Self::create) and the
    /// like) are not held.
    pub fn hold_writes(&self, hold: bool) {
        self.inner.shared.writes_held.send_replace(hold);
    }

    /// Every request received since the start or the last [`clear_requests`](Self::clear_requests).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner
            .shared
            .requests
            .lock()
            .expect("requests lock")
            .clone()
    }

    /// The write requests (POST/PUT/PATCH/DELETE) among [`requests`](Self::requests).
    pub fn writes(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(RequestRecord::is_write)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.inner
            .shared
            .requests
            .lock()
            .expect("requests lock")
            .clear();
    }

    /// Polls `check` every 20 ms until it holds; panics with `what` after `timeout`.
    pub async fn wait_for<F: Fn(&FakeApiServer) -> bool>(
        &self,
        what: &str,
        timeout: Duration,
        check: F,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if check(self) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("FakeApiServer::wait_for timed out after {timeout:?}: {what}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
