//! Watch streams: newline-separated `{"type": ..., "object": ...}` JSON events.
//!
//! - `resourceVersion` absent, "" or "0": ADDED for every current object, then changes from now.
//! - `resourceVersion` N: the changes after N replayed from the event log, then live changes; when
//!   the log no longer reaches back to N (it is bounded, see the builder's `event_log_capacity`)
//!   the stream is one `ERROR` event with a 410 Status, as a real API server answers "too old
//!   resource version" (kube's watcher then re-lists).
//! - `sendInitialEvents=true` (streaming lists): ADDED for current objects, then a BOOKMARK with
//!   the `k8s.io/initial-events-end` annotation.
//! - `allowWatchBookmarks=true`: a BOOKMARK every bookmark interval.
//! - `timeoutSeconds`: the stream ends cleanly when it elapses (default 30 minutes).
//! - Label/field selectors filter events; a MODIFIED object that starts or stops matching is
//!   sent as ADDED or DELETED.

use super::Shared;
use super::errors::ApiError;
use super::ops::{partial_metadata, present};
use super::registry::ResourceDef;
use super::selectors::Selector;
use super::store::{Event, EventType};
use bytes::Bytes;
use futures::Stream;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::time::{Duration, Instant};

pub(crate) struct WatchRequest {
    pub def: ResourceDef,
    pub namespace: Option<String>,
    pub labels: Selector,
    pub fields: Selector,
    pub resource_version: Option<String>,
    pub timeout: Duration,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub metadata_only: bool,
}

struct State {
    shared: Arc<Shared>,
    req: WatchRequest,
    cursor: u64,
    pending: VecDeque<Bytes>,
    rx: tokio::sync::watch::Receiver<u64>,
    deadline: Instant,
    next_bookmark: Instant,
    done: bool,
}

impl WatchRequest {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    fn render(&self, obj: &Value) -> Value {
        let obj = present(&self.def, obj);
        if self.metadata_only {
            partial_metadata(&obj)
        } else {
            obj
        }
    }

    fn line(&self, kind: &str, obj: &Value) -> Bytes {
        let mut s = serde_json::to_string(&json!({"type": kind, "object": self.render(obj)}))
            .expect("json");
        s.push('\n');
        Bytes::from(s)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"apiVersion": self.def.api_version(), "kind": self.def.kind, "metadata": meta});
        let mut s =
            serde_json::to_string(&json!({"type": "BOOKMARK", "object": obj})).expect("json");
        s.push('\n');
        Bytes::from(s)
    }

    /// The line(s) a logged event becomes for this watch.
    fn convert(&self, e: &Event) -> Option<Bytes> {
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != e.namespace)
        {
            return None;
        }
        let now = self.matches(&e.object);
        let kind = match e.kind {
            EventType::Modified => {
                let before = e.prev.as_ref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
            other if now => other.as_str(),
            _ => return None,
        };
        Some(self.line(kind, &e.object))
    }
}

fn error_line(err: &ApiError) -> Bytes {
    let mut s =
        serde_json::to_string(&json!({"type": "ERROR", "object": err.to_status()})).expect("json");
    s.push('\n');
    Bytes::from(s)
}

/// Starts a watch; `Err` for a malformed resourceVersion.
pub(crate) fn watch(
    shared: Arc<Shared>,
    req: WatchRequest,
) -> Result<impl Stream<Item = Bytes> + Send + 'static, ApiError> {
    let now = Instant::now();
    let bookmark_interval = shared.bookmark_interval;
    let (cursor, pending, rx) = {
        let store = shared.store.lock().expect("store lock");
        let rx = store.subscribe();
        let mut pending = VecDeque::new();
        let from_now = matches!(req.resource_version.as_deref(), None | Some("") | Some("0"));
        let cursor = if from_now || req.send_initial_events {
            for obj in store.list(&req.def, req.namespace.as_deref()) {
                if req.matches(obj) {
                    pending.push_back(req.line("ADDED", obj));
                }
            }
            if req.send_initial_events {
                pending.push_back(req.bookmark(store.current_rv(), true));
            }
            store.current_rv()
        } else {
            let rv = req.resource_version.as_deref().unwrap_or_default();
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?
        };
        (cursor, pending, rx)
    };
    let deadline = now + req.timeout;
    let state = State {
        shared,
        req,
        cursor,
        pending,
        rx,
        deadline,
        next_bookmark: now + bookmark_interval,
        done: false,
    };
    Ok(futures::stream::unfold(state, step))
}

async fn step(mut st: State) -> Option<(Bytes, State)> {
    loop {
        if let Some(line) = st.pending.pop_front() {
            return Some((line, st));
        }
        if st.done {
            return None;
        }
        {
            let store = st.shared.store.lock().expect("store lock");
            match store.events_since(st.cursor, st.req.def.group, st.req.def.plural) {
                None => {
                    st.pending.push_back(error_line(&ApiError::gone(format!(
                        "too old resource version: {} ({})",
                        st.cursor,
                        store.current_rv()
                    ))));
                    st.done = true;
                }
                Some(events) => {
                    for e in &events {
                        if let Some(line) = st.req.convert(e) {
                            st.pending.push_back(line);
                        }
                    }
                    // Every change of this resource up to now is in `events`.
                    st.cursor = st.cursor.max(store.current_rv());
                }
            }
            st.rx.borrow_and_update();
        }
        if !st.pending.is_empty() || st.done {
            continue;
        }
        tokio::select! {
            changed = st.rx.changed() => {
                if changed.is_err() {
                    st.done = true;
                }
            }
            () = tokio::time::sleep_until(st.deadline) => st.done = true,
            () = tokio::time::sleep_until(st.next_bookmark), if st.req.bookmarks => {
                st.next_bookmark = Instant::now() + st.shared.bookmark_interval;
                let line = st.req.bookmark(st.cursor, false);
                st.pending.push_back(line);
            }
        }
    }
}
