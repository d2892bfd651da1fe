//! Writes the translator's statuses to the status subresources.
//!
//! Only real changes are written: what was last written is remembered with the uid of the
//! object it went to, and an object is looked at only when its desired status differs from
//! that, or the object is a newer one of the same name (deleted and created again, maybe
//! between two writes that saw neither the delete nor the gap); the write is skipped when
//! the cluster already holds it (after a restart or a leadership change, nothing is
//! rewritten). Every write is a merge patch carrying the resourceVersion it was computed
//! from, so a concurrent change (another controller writing its route parents) gives a 409,
//! and the write is recomputed from a fresh read, with backoff.
//!
//! Where the cluster's status is read from: an object we have not written to since the last
//! [`StatusWriter::forget`] is compared with the status the watchers last saw
//! ([`LiveStatuses`]), so the first pass after a leadership change costs no request for an
//! object already right, and a write to one that is not goes out as a PATCH at the watched
//! resourceVersion without a GET first (a stale one gives a 409, then a GET). An object we
//! wrote ourselves is read with a GET, as the watch may not have delivered our write yet and
//! would then show an older status. The requests of one pass run [`CONCURRENT_WRITES`] at a
//! time, so one slow answer does not hold the others.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferrogate_status::{RouteStatus, StatusSet};
use ferrogate_store::{Kind, ObjectKey, ObjectRef, Snapshot};
use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;

use crate::discovery::Discovered;
use crate::live_status::{Live, LiveStatuses};
use crate::status_patch::{
    Ours, Target, desired, in_sync, merged, patch_body, route_target, same_ignoring_times,
};

/// Retries of one object's write after conflicts.
const MAX_ATTEMPTS: u32 = 6;

/// Status requests (GET or PATCH of one object) in flight at once during one pass.
pub const CONCURRENT_WRITES: usize = 12;

/// What one [`StatusWriter::write`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusWriteReport {
    /// Status subresources patched.
    pub written: usize,
    /// 409 answers (each retried).
    pub conflicts: usize,
    /// Objects whose write failed for another reason (retried on the next write).
    pub failed: usize,
}

/// What was last written to one object.
#[derive(Clone, Debug, PartialEq)]
struct Written {
    /// The uid of the object it went to (`None` if the server gave none).
    uid: Option<String>,
    ours: Ours,
    /// For a route: the translator's status it was made from. A translation hands an
    /// unchanged route the same `Arc` back, and then nothing of it is computed again.
    route: Option<Arc<RouteStatus>>,
}

/// The status writer. Holds what it wrote last.
pub struct StatusWriter {
    client: Client,
    resources: BTreeMap<Kind, ApiResource>,
    controller_name: String,
    last: BTreeMap<Target, Written>,
    /// The object of each route status in `last`, by the status's address (which cannot be
    /// reused while `last` holds the `Arc`): at 10 000 routes, building and comparing every
    /// route's JSON to find the one that changed was most of a write's CPU.
    route_targets: HashMap<usize, Target>,
    /// The set written last when every write succeeded: the same set again (the pipeline
    /// reuses its output for an unchanged input) costs nothing.
    last_set: Option<Arc<StatusSet>>,
    /// The statuses the watchers last saw.
    live: LiveStatuses,
    /// Objects patched (or whose write failed) since the last [`Self::forget`]: for these the
    /// watchers may not have delivered our write yet, so [`Self::live`] is not trusted.
    patched: HashSet<Target>,
}

/// One object a pass has to look at.
struct Pending {
    target: Target,
    ours: Ours,
    route: Option<Arc<RouteStatus>>,
    /// What the watchers last saw of it, when that can be written over directly.
    live: Option<Live>,
}

impl StatusWriter {
    /// A writer for the kinds `discovered` found served. `live` is what the watchers see
    /// ([`crate::run_reflectors`] fills it); an empty one only costs a GET per object looked
    /// at.
    pub fn new(
        client: Client,
        discovered: &[Discovered],
        controller_name: impl Into<String>,
        live: LiveStatuses,
    ) -> Self {
        let resources = discovered
            .iter()
            .filter_map(|d| d.resource.clone().map(|r| (d.watched.kind, r)))
            .collect();
        Self {
            client,
            resources,
            controller_name: controller_name.into(),
            last: BTreeMap::new(),
            route_targets: HashMap::new(),
            last_set: None,
            live,
            patched: HashSet::new(),
        }
    }

    /// Uses the resources of a new discovery (the cluster's CRDs changed).
    pub fn set_served(&mut self, discovered: &[Discovered]) {
        self.resources = discovered
            .iter()
            .filter_map(|d| d.resource.clone().map(|r| (d.watched.kind, r)))
            .collect();
    }

    /// The apiVersion (`group/version`) the cluster serves for `kind_name` (`"TCPRoute"`).
    pub fn served_api_version(&self, kind_name: &str) -> Option<&str> {
        self.resources
            .values()
            .find(|r| r.kind == kind_name)
            .map(|r| r.api_version.as_str())
    }

    /// Forgets what was written (after leadership moved: another replica may have written).
    pub fn forget(&mut self) {
        self.last.clear();
        self.route_targets.clear();
        self.last_set = None;
        self.patched.clear();
    }

    /// Writes every status of `set` that changed. Shared lists we wrote to before and no
    /// longer have entries for (a route detached from our Gateways) get our entries removed.
    /// `snapshot` is the input `set` was computed from: it tells which object (uid) each
    /// status is for.
    pub async fn write(&mut self, set: &Arc<StatusSet>, snapshot: &Snapshot) -> StatusWriteReport {
        if self
            .last_set
            .as_ref()
            .is_some_and(|last| Arc::ptr_eq(last, set))
        {
            return StatusWriteReport::default();
        }
        // Routes handed back as the `Arc` written last, to the same object (uid), are
        // kept as they are.
        let mut next_last = BTreeMap::new();
        let mut unchanged = HashSet::new();
        for route in &set.routes {
            let address = route_address(route);
            let Some(target) = self.route_targets.get(&address) else {
                continue;
            };
            let uid = snapshot.uid(&object_ref(target));
            if self
                .last
                .get(target)
                .is_some_and(|w| w.uid.as_deref() == uid)
                && let Some((target, written)) = self.last.remove_entry(target)
            {
                next_last.insert(target, written);
                unchanged.insert(address);
            }
        }
        let kept = |route: &Arc<RouteStatus>| unchanged.contains(&route_address(route));
        let mut want = desired(set, &self.controller_name, &kept);
        // The statuses the others are made from, remembered with what is written.
        let mut sources: BTreeMap<Target, Arc<RouteStatus>> = set
            .routes
            .iter()
            .filter(|route| !kept(route))
            .filter_map(|route| Some((route_target(route)?, Arc::clone(route))))
            .collect();
        for (target, written) in &self.last {
            if let Ours::Shared { field, .. } = &written.ours {
                want.entry(target.clone()).or_insert(Ours::Shared {
                    field,
                    entries: Vec::new(),
                });
            }
        }
        let mut report = StatusWriteReport::default();
        let mut pending = Vec::new();
        for (target, ours) in want {
            let uid = snapshot.uid(&object_ref(&target));
            let route = sources.remove(&target);
            if let Some(mut written) = self.last.remove(&target)
                && written.ours == ours
                && written.uid.as_deref() == uid
            {
                written.route = route;
                next_last.insert(target, written);
                continue;
            }
            // What the watchers saw of this very object (same uid), unless we wrote to it.
            let live = (!self.patched.contains(&target))
                .then(|| self.live.get(&target))
                .flatten()
                .filter(|live| live.uid.as_deref() == uid);
            if let Some(live) = &live
                && in_sync(live.status().as_ref(), &ours, &self.controller_name)
            {
                remember(&mut next_last, target, ours, live.uid.clone(), route);
                continue;
            }
            pending.push(Pending {
                target,
                ours,
                route,
                live,
            });
        }
        let this = &*self;
        let done: Vec<_> = futures::stream::iter(pending)
            .map(|p| async move {
                let mut one = StatusWriteReport::default();
                let result = this
                    .write_one(&p.target, &p.ours, p.live.clone(), &mut one)
                    .await;
                (p, result, one)
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let mut failed = HashSet::new();
        for (p, result, one) in done {
            report.written += one.written;
            report.conflicts += one.conflicts;
            // A failed write may still have reached the object (a timeout after the PATCH
            // went out): not trusted either.
            if one.written > 0 || result.is_err() {
                self.patched.insert(p.target.clone());
            }
            match result {
                Ok(Some(uid)) => remember(&mut next_last, p.target, p.ours, uid, p.route),
                Ok(None) => {} // the object is gone
                Err(e) => {
                    report.failed += 1;
                    failed.insert(p.target.clone());
                    let target = &p.target;
                    tracing::warn!(kind = target.kind.as_str(), namespace = %target.namespace, name = %target.name, error = %e, "status write failed");
                }
            }
        }
        self.last = next_last;
        // Objects no longer written to (deleted, or no status of ours any more) leave the
        // set, so route churn does not grow it; a failed write stays (tried again next).
        let last = &self.last;
        self.patched
            .retain(|t| last.contains_key(t) || failed.contains(t));
        self.route_targets = self
            .last
            .iter()
            .filter_map(|(target, w)| Some((route_address(w.route.as_ref()?), target.clone())))
            .collect();
        self.last_set = (report.failed == 0).then(|| set.clone());
        report
    }

    /// Returns the uid of the object written to (`Some(None)` if the server gave none), or
    /// `None` when the object does not exist (any more). With `live` (what the watchers saw),
    /// the first attempt patches over it without a GET; a 409 (it was stale) falls back to
    /// reading the object.
    async fn write_one(
        &self,
        target: &Target,
        ours: &Ours,
        live: Option<Live>,
        report: &mut StatusWriteReport,
    ) -> Result<Option<Option<String>>, kube::Error> {
        let Some(resource) = self.resources.get(&target.kind) else {
            return Ok(None);
        };
        let api: Api<DynamicObject> = if target.namespace.is_empty() {
            Api::all_with(self.client.clone(), resource)
        } else {
            Api::namespaced_with(self.client.clone(), &target.namespace, resource)
        };
        let mut attempt = 0;
        let mut watched = live.filter(|l| l.resource_version.is_some());
        loop {
            let from_watch = watched.is_some();
            let (uid, resource_version, live_status) = match watched.take() {
                Some(l) => {
                    let status = l.status();
                    (l.uid, l.resource_version, status)
                }
                None => {
                    let Some(mut live) = api.get_opt(&target.name).await? else {
                        return Ok(None);
                    };
                    let status = live.data.get_mut("status").map(serde_json::Value::take);
                    (live.metadata.uid, live.metadata.resource_version, status)
                }
            };
            let live_status = live_status.as_ref();
            let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let next = merged(live_status, ours, &self.controller_name, &now);
            if same_ignoring_times(live_status, &next) {
                return Ok(Some(uid));
            }
            let body = patch_body(live_status, &next, ours, resource_version.as_deref());
            match api
                .patch_status(&target.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(_) => {
                    report.written += 1;
                    return Ok(Some(uid));
                }
                // The watched object was stale: read it, at once (not a race with a writer).
                Err(kube::Error::Api(e)) if from_watch && e.code == 409 => {
                    report.conflicts += 1;
                    attempt += 1;
                }
                Err(kube::Error::Api(e)) if from_watch && e.code == 404 => return Ok(None),
                Err(kube::Error::Api(e)) if e.code == 409 && attempt + 1 < MAX_ATTEMPTS => {
                    report.conflicts += 1;
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                }
                Err(e) => {
                    if matches!(&e, kube::Error::Api(s) if s.code == 409) {
                        report.conflicts += 1;
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// Remembers a write (or a status found already right) in `last`. Cleared shared entries
/// are not remembered: nothing of ours is there.
fn remember(
    last: &mut BTreeMap<Target, Written>,
    target: Target,
    ours: Ours,
    uid: Option<String>,
    route: Option<Arc<RouteStatus>>,
) {
    if !matches!(&ours, Ours::Shared { entries, .. } if entries.is_empty()) {
        last.insert(target, Written { uid, ours, route });
    }
}

/// The address of a route status, which names it while `last` holds it.
fn route_address(route: &Arc<RouteStatus>) -> usize {
    Arc::as_ptr(route) as usize
}

fn object_ref(target: &Target) -> ObjectRef {
    ObjectRef {
        kind: target.kind,
        key: ObjectKey::new(target.namespace.clone(), target.name.clone()),
    }
}
