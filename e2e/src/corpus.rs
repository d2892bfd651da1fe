//! The translator-cases corpus runner: translates every `<case>.in.yaml` of a folder and
//! compares the statuses with `<case>.expected.yaml` by the corpus README's rules
//! (conditions by type with equal status and reason; attachedRoutes, attachedListenerSets
//! and supportedKinds equal; empty `parents`/`ancestors` and `noStatus` mean "write no
//! status"; extra condition types are not judged).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use ferrogate_api::CONTROLLER_NAME;
use ferrogate_status::{Condition, ConditionStatus, ListenerStatus, ParentRef, StatusSet};
use ferrogate_store::{Snapshot, load_documents};
use ferrogate_translator::{Options, translate};
use serde_json::Value;

/// The controller name the corpus inputs use; replaced by ours before translating.
pub const CORPUS_CONTROLLER: &str = "gateway.envoyproxy.io/gatewayclass-controller";

/// Result of one case.
#[derive(Debug)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Checks made.
    pub checks: usize,
    /// One line per failed check.
    pub failures: Vec<String>,
}

/// Runs one case.
pub fn run_case(dir: &Path, name: &str) -> anyhow::Result<CaseResult> {
    let input = std::fs::read_to_string(dir.join(format!("{name}.in.yaml")))?
        .replace(CORPUS_CONTROLLER, CONTROLLER_NAME);
    let expected_text = std::fs::read_to_string(dir.join(format!("{name}.expected.yaml")))?;
    let expected: Value =
        yaml_serde::from_str(&expected_text).with_context(|| format!("{name}.expected.yaml"))?;
    let (objects, _problems) = load_documents(name, &input);
    let snapshot: Snapshot = objects.into_iter().collect();
    let actual = translate(&snapshot, &Options::default()).statuses;
    let mut judge = Judge {
        checks: 0,
        failures: Vec::new(),
    };
    judge.compare(&expected, &actual);
    Ok(CaseResult {
        name: name.to_string(),
        checks: judge.checks,
        failures: judge.failures,
    })
}

/// Every case name of a folder, sorted.
pub fn case_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("corpus folder {}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".in.yaml")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

struct Judge {
    checks: usize,
    failures: Vec<String>,
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn status_str(s: ConditionStatus) -> &'static str {
    match s {
        ConditionStatus::True => "True",
        ConditionStatus::False => "False",
        ConditionStatus::Unknown => "Unknown",
    }
}

impl Judge {
    fn fail(&mut self, message: String) {
        self.failures.push(message);
    }

    fn compare(&mut self, expected: &Value, actual: &StatusSet) {
        for class in list(expected, "gatewayClasses") {
            let name = text(class, "name");
            let found = actual
                .gateway_classes
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.conditions.as_slice());
            self.conditions(&format!("GatewayClass {name}"), class, found);
        }
        for gw in list(expected, "gateways") {
            let (ns, name) = (text(gw, "namespace"), text(gw, "name"));
            let what = format!("Gateway {ns}/{name}");
            let found = actual
                .gateways
                .iter()
                .find(|g| g.namespace == ns && g.name == name);
            if gw.get("noStatus").and_then(Value::as_bool) == Some(true) {
                self.checks += 1;
                if found.is_some() {
                    self.fail(format!("{what}: expected no status, got one"));
                }
                continue;
            }
            self.conditions(&what, gw, found.map(|g| g.conditions.as_slice()));
            if let Some(n) = gw.get("attachedListenerSets").and_then(Value::as_i64) {
                self.checks += 1;
                let got = found.and_then(|g| g.attached_listener_sets);
                if got != Some(n as i32) {
                    self.fail(format!(
                        "{what}: attachedListenerSets expected {n}, got {got:?}"
                    ));
                }
            }
            if let Some(addresses) = gw.get("addresses").and_then(Value::as_array) {
                self.checks += 1;
                let mut want: Vec<String> = addresses
                    .iter()
                    .map(|a| format!("{}={}", text(a, "type"), text(a, "value")))
                    .collect();
                let mut got: Vec<String> = found
                    .map(|g| {
                        g.addresses
                            .iter()
                            .map(|a| format!("{}={}", a.type_, a.value))
                            .collect()
                    })
                    .unwrap_or_default();
                want.sort();
                got.sort();
                if want != got {
                    self.fail(format!("{what}: addresses expected {want:?}, got {got:?}"));
                }
            }
            self.listeners(&what, gw, found.map(|g| g.listeners.as_slice()));
        }
        for ls in list(expected, "listenerSets") {
            let (ns, name) = (text(ls, "namespace"), text(ls, "name"));
            let what = format!("ListenerSet {ns}/{name}");
            let found = actual
                .listener_sets
                .iter()
                .find(|l| l.namespace == ns && l.name == name);
            self.conditions(&what, ls, found.map(|l| l.conditions.as_slice()));
            self.listeners(&what, ls, found.map(|l| l.listeners.as_slice()));
        }
        for route in list(expected, "routes") {
            let (kind, ns, name) = (
                text(route, "kind"),
                text(route, "namespace"),
                text(route, "name"),
            );
            let what = format!("{kind} {ns}/{name}");
            let found = actual
                .routes
                .iter()
                .find(|r| r.kind == kind && r.namespace == ns && r.name == name);
            let parents = list(route, "parents");
            if parents.is_empty() {
                self.checks += 1;
                if found.is_some_and(|r| !r.parents.is_empty()) {
                    self.fail(format!(
                        "{what}: expected no parent status, got {}",
                        found.unwrap().parents.len()
                    ));
                }
                continue;
            }
            for parent in parents {
                let want = normalize(parent.get("parentRef").unwrap_or(&Value::Null), ns);
                let got = found.and_then(|r| {
                    r.parents
                        .iter()
                        .find(|p| normalize_ref(&p.parent_ref, ns) == want)
                });
                self.conditions(
                    &format!("{what} parent {want}"),
                    parent,
                    got.map(|p| &p.conditions[..]),
                );
            }
        }
        for policy in list(expected, "backendTLSPolicies") {
            let (ns, name) = (text(policy, "namespace"), text(policy, "name"));
            let what = format!("BackendTLSPolicy {ns}/{name}");
            let found = actual
                .backend_tls_policies
                .iter()
                .find(|p| p.namespace == ns && p.name == name);
            let ancestors = list(policy, "ancestors");
            if ancestors.is_empty() {
                self.checks += 1;
                if found.is_some_and(|p| !p.ancestors.is_empty()) {
                    self.fail(format!("{what}: expected no ancestor status"));
                }
                continue;
            }
            for ancestor in ancestors {
                let want = normalize(ancestor.get("ancestorRef").unwrap_or(&Value::Null), ns);
                let got = found.and_then(|p| {
                    p.ancestors
                        .iter()
                        .find(|a| normalize_ref(&a.ancestor_ref, ns) == want)
                });
                self.conditions(
                    &format!("{what} ancestor {want}"),
                    ancestor,
                    got.map(|a| a.conditions.as_slice()),
                );
            }
        }
    }

    fn listeners(&mut self, what: &str, expected: &Value, actual: Option<&[ListenerStatus]>) {
        for l in list(expected, "listeners") {
            let name = text(l, "name");
            let what = format!("{what} listener {name}");
            let found = actual.and_then(|ls| ls.iter().find(|x| x.name == name));
            self.checks += 2;
            let want_routes = l.get("attachedRoutes").and_then(Value::as_i64).unwrap_or(0) as i32;
            let got_routes = found.map(|f| f.attached_routes);
            if got_routes != Some(want_routes) {
                self.fail(format!(
                    "{what}: attachedRoutes expected {want_routes}, got {got_routes:?}"
                ));
            }
            let mut want_kinds: Vec<String> = list(l, "supportedKinds")
                .iter()
                .map(|k| format!("{}/{}", text(k, "group"), text(k, "kind")))
                .collect();
            let mut got_kinds: Vec<String> = found
                .map(|f| {
                    f.supported_kinds
                        .iter()
                        .map(|k| format!("{}/{}", k.group, k.kind))
                        .collect()
                })
                .unwrap_or_default();
            want_kinds.sort();
            got_kinds.sort();
            if want_kinds != got_kinds {
                self.fail(format!(
                    "{what}: supportedKinds expected {want_kinds:?}, got {got_kinds:?}"
                ));
            }
            self.conditions(&what, l, found.map(|f| f.conditions.as_slice()));
        }
    }

    fn conditions(&mut self, what: &str, expected: &Value, actual: Option<&[Condition]>) {
        for c in list(expected, "conditions") {
            self.checks += 1;
            let (type_, status, reason) = (text(c, "type"), text(c, "status"), text(c, "reason"));
            match actual.and_then(|cs| cs.iter().find(|x| x.type_ == type_)) {
                None if actual.is_none() => self.fail(format!(
                    "{what}: missing (expected {type_}={status}/{reason})"
                )),
                None => self.fail(format!(
                    "{what}: condition {type_} missing (expected {status}/{reason})"
                )),
                Some(got) if status_str(got.status) != status || got.reason != reason => {
                    self.fail(format!(
                        "{what}: {type_} expected {status}/{reason}, got {}/{} ({})",
                        status_str(got.status),
                        got.reason,
                        got.message
                    ))
                }
                Some(_) => {}
            }
        }
    }
}

fn normalize(v: &Value, default_ns: &str) -> String {
    let port = v
        .get("port")
        .and_then(Value::as_i64)
        .map(|p| p.to_string())
        .unwrap_or_default();
    format!(
        "{}/{}/{}/{}#{}:{}",
        v.get("group")
            .and_then(Value::as_str)
            .unwrap_or(ferrogate_api::GATEWAY_GROUP),
        v.get("kind").and_then(Value::as_str).unwrap_or("Gateway"),
        v.get("namespace")
            .and_then(Value::as_str)
            .unwrap_or(default_ns),
        text(v, "name"),
        text(v, "sectionName"),
        port
    )
}

fn normalize_ref(r: &ParentRef, default_ns: &str) -> String {
    normalize(&serde_json::to_value(r).unwrap_or(Value::Null), default_ns)
}

/// Loads the deliberate-deviation list: case name -> the spec text that justifies it.
pub fn deviations(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let text = std::fs::read_to_string(path)?;
    let map: BTreeMap<String, String> =
        yaml_serde::from_str(&text).with_context(|| path.display().to_string())?;
    Ok(map)
}

/// Formats one result line.
pub fn describe(result: &CaseResult, limit: usize) -> String {
    let mut out = String::new();
    if result.failures.is_empty() {
        let _ = write!(out, "PASS {} ({} checks)", result.name, result.checks);
    } else {
        let _ = write!(
            out,
            "FAIL {} ({}/{} checks failed)",
            result.name,
            result.failures.len(),
            result.checks
        );
        for f in result.failures.iter().take(limit) {
            let _ = write!(out, "\n    {f}");
        }
    }
    out
}
