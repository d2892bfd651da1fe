//! Standalone status output: one YAML file per object under the status directory
//! (`gatewayclasses/<name>.yaml`, `gateways/<ns>/<name>.yaml`, `httproutes/<ns>/<name>.yaml`, ...),
//! written only when the content changed, with `lastTransitionTime` kept until a condition
//! flips. Files of objects that no longer have a status are removed, and so, at the first
//! write, are the files a previous run left for objects deleted while it was down (they
//! would otherwise keep saying `Accepted` about objects that no longer exist).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use ferrogate_status::{
    Condition, ConditionStatus, GatewayClassStatus, GatewayStatus, ListenerSetStatus, PolicyStatus,
    RouteStatus, StatusSet,
};
use serde::Serialize;

/// Writes status files and remembers what it wrote.
#[derive(Debug)]
pub struct StatusFileWriter {
    dir: PathBuf,
    /// Per file (relative path): the status last written and its conditions' transition times.
    written: BTreeMap<String, Written>,
    /// Each route status written, by its address, with the last write whose status set had
    /// it (see `Written::seen`). A translation hands back an unchanged route as the same
    /// `Arc`, and `written` holds that `Arc`, so the address cannot be reused while it is
    /// here: at 10 000 routes this spares formatting and sorting 10 000 paths per write to
    /// find the one route that changed.
    route_files: HashMap<usize, u64>,
    /// Counts writes; a file seen last by an earlier write is no longer wanted.
    generation: u64,
    /// Whether files of a previous run have been swept (done at the first write, when the
    /// complete set of statuses is known).
    swept: bool,
}

/// Top-level directories this writer owns under the status directory; only files in
/// them are ever swept, so nothing else a user keeps there is touched.
const KIND_DIRS: &[&str] = &[
    "gatewayclasses",
    "gateways",
    "listenersets",
    "httproutes",
    "grpcroutes",
    "tlsroutes",
    "tcproutes",
    "udproutes",
    "backendtlspolicies",
];

/// What was last written to one file.
#[derive(Debug)]
struct Written {
    /// The status, before timestamps: an unchanged status is skipped by comparing typed
    /// values, without serializing it (most statuses are unchanged by any one edit).
    status: Owned,
    /// Where each condition written was and the `lastTransitionTime` it got.
    times: Box<[Stamped]>,
    /// The last write ([`StatusFileWriter::generation`]) whose status set had this file,
    /// unless it was a route found by address: that is marked in `route_files` instead,
    /// so finding it costs a hash of its address and no search among the paths.
    seen: u64,
}

/// What identifies one written condition for its `lastTransitionTime`: its location in the
/// status and its type (hashed together, see [`condition_id`]) and its status. Only these
/// are kept (not the whole condition with its reason and message), and the time text is
/// shared by every condition stamped in the same write: at 10000 routes these records were
/// ~7 MiB of the settled heap, and with the location and type as strings still two
/// allocations a condition.
#[derive(Debug)]
struct Stamped {
    id: u64,
    status: ConditionStatus,
    time: Arc<str>,
}

/// A condition's location and type, hashed. Two conditions of one status (a few dozen at
/// most) sharing a hash would at worst carry one's transition time over to the other.
fn condition_id(location: &str, type_: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    (location, type_).hash(&mut hasher);
    hasher.finish()
}

/// One status, by kind. Boxed but for routes (already behind an `Arc`), so that an entry
/// of `written` is a pointer wide: most entries are routes, and inline the enum took a
/// Gateway's size.
#[derive(Debug, PartialEq)]
enum Owned {
    Class(Box<GatewayClassStatus>),
    Gateway(Box<GatewayStatus>),
    ListenerSet(Box<ListenerSetStatus>),
    /// Shared with the translation's status set: nothing is copied, and an unchanged route
    /// (the same `Arc`, handed back by an incremental translation) costs a pointer compare.
    Route(Arc<RouteStatus>),
    Policy(Box<PolicyStatus>),
}

/// A status of the set being written, borrowed.
#[derive(Clone, Copy)]
enum Borrowed<'a> {
    Class(&'a GatewayClassStatus),
    Gateway(&'a GatewayStatus),
    ListenerSet(&'a ListenerSetStatus),
    Route(&'a Arc<RouteStatus>),
    Policy(&'a PolicyStatus),
}

impl Borrowed<'_> {
    fn same_as(self, owned: &Owned) -> bool {
        match (self, owned) {
            (Borrowed::Class(a), Owned::Class(b)) => *a == **b,
            (Borrowed::Gateway(a), Owned::Gateway(b)) => *a == **b,
            (Borrowed::ListenerSet(a), Owned::ListenerSet(b)) => *a == **b,
            (Borrowed::Route(a), Owned::Route(b)) => Arc::ptr_eq(a, b) || a == b,
            (Borrowed::Policy(a), Owned::Policy(b)) => *a == **b,
            _ => false,
        }
    }

    fn owned(self) -> Owned {
        match self {
            Borrowed::Class(a) => Owned::Class(Box::new(a.clone())),
            Borrowed::Gateway(a) => Owned::Gateway(Box::new(a.clone())),
            Borrowed::ListenerSet(a) => Owned::ListenerSet(Box::new(a.clone())),
            Borrowed::Route(a) => Owned::Route(Arc::clone(a)),
            Borrowed::Policy(a) => Owned::Policy(Box::new(a.clone())),
        }
    }

    fn to_value(self) -> serde_json::Value {
        match self {
            Borrowed::Class(a) => to_value(a),
            Borrowed::Gateway(a) => to_value(a),
            Borrowed::ListenerSet(a) => to_value(a),
            Borrowed::Route(a) => to_value(&**a),
            Borrowed::Policy(a) => to_value(a),
        }
    }
}

impl StatusFileWriter {
    /// A writer into `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            written: BTreeMap::new(),
            route_files: HashMap::new(),
            generation: 0,
            swept: false,
        }
    }

    /// Writes every changed status; returns the relative paths written or removed.
    pub fn write(&mut self, statuses: &StatusSet) -> io::Result<Vec<String>> {
        let mut desired: BTreeMap<String, Borrowed<'_>> = BTreeMap::new();
        for s in &statuses.gateway_classes {
            desired.insert(
                format!("gatewayclasses/{}", status_file_name(&s.name)),
                Borrowed::Class(s),
            );
        }
        for s in &statuses.gateways {
            desired.insert(
                format!("gateways/{}/{}", s.namespace, status_file_name(&s.name)),
                Borrowed::Gateway(s),
            );
        }
        for s in &statuses.listener_sets {
            desired.insert(
                format!("listenersets/{}/{}", s.namespace, status_file_name(&s.name)),
                Borrowed::ListenerSet(s),
            );
        }
        self.generation += 1;
        let generation = self.generation;
        // Written entries this write found wanted: when that is all of them, none is stale,
        // and the walk over every written file (a tenth of a one-route edit's CPU at 100 000
        // routes) is skipped. Each entry is reached through one status at most (by address,
        // or by path below), so nothing is counted twice.
        let mut found = 0usize;
        for s in &statuses.routes {
            if let Some(seen) = self.route_files.get_mut(&route_address(s)) {
                if *seen != generation {
                    found += 1;
                }
                *seen = generation;
                continue;
            }
            let kind = s.kind.to_ascii_lowercase();
            desired.insert(
                format!("{kind}s/{}/{}", s.namespace, status_file_name(&s.name)),
                Borrowed::Route(s),
            );
        }
        for s in &statuses.backend_tls_policies {
            desired.insert(
                format!(
                    "backendtlspolicies/{}/{}",
                    s.namespace,
                    status_file_name(&s.name)
                ),
                Borrowed::Policy(s),
            );
        }

        let mut now = None;
        let mut changed = Vec::new();
        let mut failures = Vec::new();
        for (rel, status) in &desired {
            let previous = self.written.get_mut(rel);
            if let Some(previous) = previous {
                // Wanted still, also when writing it fails below: a file that cannot be
                // rewritten is not a file to remove.
                if previous.seen != generation {
                    found += 1;
                }
                previous.seen = generation;
                if status.same_as(&previous.status) {
                    // An equal route status in a new `Arc` (a translation that attached
                    // every route again): keep the new one, so that the next writes find
                    // it by address again.
                    if let (Borrowed::Route(route), Owned::Route(old)) =
                        (status, &mut previous.status)
                        && !Arc::ptr_eq(route, old)
                    {
                        self.route_files.remove(&route_address(old));
                        self.route_files.insert(route_address(route), generation);
                        *old = Arc::clone(route);
                    }
                    continue;
                }
            }
            let previous = self.written.get(rel);
            let now: &Arc<str> = now.get_or_insert_with(|| {
                Arc::from(humantime::format_rfc3339_seconds(SystemTime::now()).to_string())
            });
            let mut value = status.to_value();
            let mut times = Vec::new();
            stamp(
                &mut value,
                "",
                previous.map_or(&[][..], |w| &w.times),
                now,
                &mut times,
            );
            let times = times.into_boxed_slice();
            let text = yaml_serde::to_string(&value).map_err(io::Error::other)?;
            // One file that cannot be written must not stop the others.
            if let Err(e) = write_atomically(&self.dir.join(rel), &text) {
                failures.push(format!("{rel}: {e}"));
                continue;
            }
            changed.push(rel.clone());
            if let Borrowed::Route(route) = status {
                self.route_files.insert(route_address(route), generation);
            }
            let replaced = self.written.insert(
                rel.clone(),
                Written {
                    status: status.owned(),
                    times,
                    seen: generation,
                },
            );
            match replaced {
                Some(Written {
                    status: Owned::Route(old),
                    ..
                }) => {
                    self.route_files.remove(&route_address(&old));
                }
                Some(_) => {}
                None => found += 1,
            }
        }
        let stale: Vec<String> = if found == self.written.len() {
            Vec::new()
        } else {
            self.written
                .iter()
                .filter(|(_, w)| !self.seen_now(w))
                .map(|(rel, _)| rel.clone())
                .collect()
        };
        for rel in stale {
            if let Some(Written {
                status: Owned::Route(old),
                ..
            }) = self.written.remove(&rel)
            {
                self.route_files.remove(&route_address(&old));
            }
            match fs::remove_file(self.dir.join(&rel)) {
                Ok(()) => changed.push(rel),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        // A hash map keeps its table when entries go: after a scale-down, give it back.
        if self.route_files.capacity() > 4 * self.route_files.len().max(256) {
            self.route_files.shrink_to_fit();
        }
        if !self.swept {
            self.swept = true;
            for rel in self.files_on_disk() {
                let wanted = desired.contains_key(&rel)
                    || self.written.get(&rel).is_some_and(|w| self.seen_now(w));
                if !wanted {
                    match fs::remove_file(self.dir.join(&rel)) {
                        Ok(()) => changed.push(rel),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => failures.push(format!("{rel}: cannot remove stale file: {e}")),
                    }
                }
            }
        }
        if !failures.is_empty() {
            return Err(io::Error::other(format!(
                "{} of {} status files not written: {}",
                failures.len(),
                statuses.gateway_classes.len()
                    + statuses.gateways.len()
                    + statuses.listener_sets.len()
                    + statuses.routes.len()
                    + statuses.backend_tls_policies.len(),
                failures.join("; ")
            )));
        }
        Ok(changed)
    }

    /// Whether the status set of the current write had this file.
    fn seen_now(&self, written: &Written) -> bool {
        written.seen == self.generation
            || matches!(&written.status, Owned::Route(route)
                if self.route_files.get(&route_address(route)) == Some(&self.generation))
    }

    /// Relative paths of the status files under [`KIND_DIRS`] (and half-written `.tmp`
    /// files of a run that stopped mid-write).
    fn files_on_disk(&self) -> Vec<String> {
        let mut out = Vec::new();
        for kind in KIND_DIRS {
            let mut stack = vec![PathBuf::from(kind)];
            while let Some(rel) = stack.pop() {
                let Ok(entries) = fs::read_dir(self.dir.join(&rel)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let child = rel.join(entry.file_name());
                    match entry.file_type() {
                        Ok(t) if t.is_dir() => stack.push(child),
                        Ok(t) if t.is_file() => {
                            let name = child.to_string_lossy().into_owned();
                            if name.ends_with(".yaml") || name.ends_with(".tmp") {
                                out.push(name);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// The status directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The address of a route status, which names it while the writer holds it.
fn route_address(status: &Arc<RouteStatus>) -> usize {
    Arc::as_ptr(status) as usize
}

/// Writes then renames, so a reader never sees half a file.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

/// A file name for an object name: Kubernetes names go up to 253 characters, file names to
/// 255 bytes, so long names are cut and suffixed with a hash of the whole name.
pub fn status_file_name(name: &str) -> String {
    if name.len() <= 200 {
        return format!("{name}.yaml");
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{hash:016x}.yaml", &name[..180])
}

fn to_value(status: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(status).expect("status types always serialize")
}

/// Adds `lastTransitionTime` to every condition under `value`: the previous time when the
/// condition (found by its location and type) kept its status, `now` otherwise.
fn stamp(
    value: &mut serde_json::Value,
    location: &str,
    previous: &[Stamped],
    now: &Arc<str>,
    out: &mut Vec<Stamped>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "conditions" {
                    for condition in child.as_array_mut().into_iter().flatten() {
                        let Ok(parsed) = serde_json::from_value::<Condition>(condition.clone())
                        else {
                            continue;
                        };
                        let id = condition_id(location, &parsed.type_);
                        let time = previous
                            .iter()
                            .find(|p| p.id == id && p.status == parsed.status)
                            .map_or_else(|| now.clone(), |p| p.time.clone());
                        condition["lastTransitionTime"] = time.to_string().into();
                        out.push(Stamped {
                            id,
                            status: parsed.status,
                            time,
                        });
                    }
                } else {
                    stamp(child, &format!("{location}/{key}"), previous, now, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                stamp(child, &format!("{location}/{i}"), previous, now, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use ferrogate_status::{Condition, GatewayClassStatus};

    use super::*;

    fn set(reason: &'static str) -> StatusSet {
        StatusSet {
            gateway_classes: vec![GatewayClassStatus {
                name: "c".into(),
                conditions: vec![Condition::ok("Accepted", reason, "m")],
                supported_features: vec![],
            }],
            ..StatusSet::default()
        }
    }

    #[test]
    fn writes_only_changes_and_removes_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = StatusFileWriter::new(dir.path());
        assert_eq!(
            writer.write(&set("Accepted")).unwrap(),
            ["gatewayclasses/c.yaml"]
        );
        assert!(writer.write(&set("Accepted")).unwrap().is_empty());
        let text = fs::read_to_string(dir.path().join("gatewayclasses/c.yaml")).unwrap();
        assert!(text.contains("lastTransitionTime"), "{text}");
        assert_eq!(
            writer.write(&StatusSet::default()).unwrap(),
            ["gatewayclasses/c.yaml"]
        );
        assert!(!dir.path().join("gatewayclasses/c.yaml").exists());
    }

    #[test]
    fn files_left_by_a_previous_run_for_deleted_objects_are_removed_at_the_first_write() {
        let dir = tempfile::tempdir().unwrap();
        // What a previous run wrote: class c (still there) and a route deleted while down.
        let mut before = StatusFileWriter::new(dir.path());
        before.write(&set("Accepted")).unwrap();
        let stale = dir.path().join("httproutes/apps/gone.yaml");
        fs::create_dir_all(stale.parent().unwrap()).unwrap();
        fs::write(&stale, "conditions: [{type: Accepted, status: 'True'}]\n").unwrap();
        fs::write(dir.path().join("gateways.tmp"), "not ours").unwrap();
        fs::write(dir.path().join("notes.yaml"), "not ours either").unwrap();

        let mut after = StatusFileWriter::new(dir.path());
        let changed = after.write(&set("Accepted")).unwrap();
        assert!(
            changed.contains(&"httproutes/apps/gone.yaml".to_string()),
            "{changed:?}"
        );
        assert!(
            !stale.exists(),
            "a status of a deleted object survived the restart"
        );
        assert!(dir.path().join("gatewayclasses/c.yaml").exists());
        assert!(
            dir.path().join("notes.yaml").exists() && dir.path().join("gateways.tmp").exists(),
            "only our kind directories are swept"
        );
        // Later writes do not sweep again: a file someone adds is not ours to judge.
        fs::write(&stale, "x").unwrap();
        assert!(after.write(&set("Accepted")).unwrap().is_empty());
    }

    fn route(name: &str, reason: &'static str) -> Arc<RouteStatus> {
        Arc::new(RouteStatus {
            kind: "HTTPRoute".into(),
            namespace: "apps".into(),
            name: name.into(),
            parents: vec![ferrogate_status::RouteParentStatus {
                parent_ref: ferrogate_status::ParentRef {
                    name: "gw".into(),
                    ..Default::default()
                }
                .into(),
                conditions: [Condition::ok("Accepted", reason, "m")].into(),
            }],
        })
    }

    #[test]
    fn a_route_handed_back_unchanged_is_kept_and_a_changed_or_removed_one_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = StatusFileWriter::new(dir.path());
        let (a, b) = (route("a", "Accepted"), route("b", "Accepted"));
        let with = |routes: Vec<Arc<RouteStatus>>| StatusSet {
            routes: routes.into(),
            ..set("Accepted")
        };
        let first = writer.write(&with(vec![a.clone(), b.clone()])).unwrap();
        assert_eq!(first.len(), 3, "{first:?}");
        // The same Arcs: nothing to write, and both files are still wanted.
        assert!(
            writer
                .write(&with(vec![a.clone(), b.clone()]))
                .unwrap()
                .is_empty()
        );
        assert!(dir.path().join("httproutes/apps/a.yaml").exists());
        // A new Arc with equal content is not a change either, and is kept from then on
        // (the writer lets go of the one it replaces).
        let a_again = route("a", "Accepted");
        assert!(
            writer
                .write(&with(vec![a_again.clone(), b.clone()]))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            Arc::strong_count(&a),
            1,
            "the replaced status is still held"
        );
        let a = a_again;
        // b changes, then goes; a (handed back by address again) stays untouched.
        let b2 = route("b", "Changed");
        assert_eq!(
            writer.write(&with(vec![a.clone(), b2.clone()])).unwrap(),
            ["httproutes/apps/b.yaml"]
        );
        let text = fs::read_to_string(dir.path().join("httproutes/apps/b.yaml")).unwrap();
        assert!(text.contains("Changed"), "{text}");
        assert_eq!(
            writer.write(&with(vec![a.clone()])).unwrap(),
            ["httproutes/apps/b.yaml"]
        );
        assert!(!dir.path().join("httproutes/apps/b.yaml").exists());
        // The old b is no longer anyone's: coming back, b is written afresh.
        drop(b);
        assert_eq!(
            writer.write(&with(vec![a.clone(), b2])).unwrap(),
            ["httproutes/apps/b.yaml"]
        );
        assert_eq!(
            writer.write(&with(vec![])).unwrap(),
            ["httproutes/apps/a.yaml", "httproutes/apps/b.yaml"]
        );
    }
}
