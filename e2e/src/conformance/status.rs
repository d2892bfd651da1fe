//! Status steps: polling the status files `ferrogate standalone` writes.

use super::util::u64_or;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::CONTROLLER_NAME;
use super::util::{poll, split_ref, str_list};
use super::world::World;

const GROUP: &str = "gateway.networking.k8s.io";
const POLL: Duration = Duration::from_millis(100);

fn budget(world: &World, secs: u64) -> Duration {
    let d = Duration::from_secs(secs);
    world.config.status_timeout_cap.map_or(d, |cap| d.min(cap))
}

fn status_rel(kind: &str, ns: &str, name: &str) -> PathBuf {
    let lower = kind.to_ascii_lowercase();
    let dir = match lower.as_str() {
        "gatewayclass" => "gatewayclasses".to_string(),
        "backendtlspolicy" => "backendtlspolicies".to_string(),
        _ => format!("{lower}s"),
    };
    let file = ferrogate_provider_file::status_file_name(name);
    if ns.is_empty() {
        PathBuf::from(dir).join(file)
    } else {
        PathBuf::from(dir).join(ns).join(file)
    }
}

/// The status file of an object, parsed; `None` when there is none.
pub fn read_status(world: &World, kind: &str, ns: &str, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(world.status_dir.join(status_rel(kind, ns, name))).ok()?;
    yaml_serde::from_str(&text).ok()
}

fn need_status(world: &World, kind: &str, ns: &str, name: &str) -> Result<Value, String> {
    read_status(world, kind, ns, name)
        .ok_or_else(|| format!("no status for {kind} {}", display_ref(ns, name)))
}

fn display_ref(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

fn conds(v: &Value) -> &[Value] {
    v.get("conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn describe(conds: &[Value]) -> String {
    let items: Vec<String> = conds
        .iter()
        .map(|c| {
            format!(
                "{}={}/{}",
                c.get("type").and_then(Value::as_str).unwrap_or("?"),
                c.get("status").and_then(Value::as_str).unwrap_or("?"),
                c.get("reason").and_then(Value::as_str).unwrap_or("?")
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn cond_matches(c: &Value, exp: &Value) -> bool {
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    field(c, "type") == field(exp, "type")
        && field(exp, "status").is_none_or(|s| field(c, "status").as_deref() == Some(&s))
        && field(exp, "reason").is_none_or(|r| field(c, "reason").as_deref() == Some(&r))
}

fn has_cond(conds: &[Value], exp: &Value) -> Result<(), String> {
    if conds.iter().any(|c| cond_matches(c, exp)) {
        Ok(())
    } else {
        Err(format!(
            "want {} got {}",
            describe(std::slice::from_ref(exp)),
            describe(conds)
        ))
    }
}

fn at_generation(conds: &[Value], generation: Option<i64>, what: &str) -> Result<(), String> {
    let Some(g) = generation else { return Ok(()) };
    for c in conds {
        let observed = c.get("observedGeneration").and_then(Value::as_i64);
        if observed != Some(g) {
            return Err(format!(
                "{what}: condition {} has observedGeneration {:?}, want {g}",
                c.get("type").and_then(Value::as_str).unwrap_or("?"),
                observed
            ));
        }
    }
    Ok(())
}

fn listeners(v: &Value) -> &[Value] {
    v.get("listeners")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn parents(v: &Value) -> &[Value] {
    v.get("parents")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn controller_ok(entry: &Value) -> bool {
    // Status files may omit controllerName (they only hold our parents); when present it must be ours.
    entry
        .get("controllerName")
        .and_then(Value::as_str)
        .is_none_or(|c| c == CONTROLLER_NAME)
}

/// Gateway-level checks read "at the current generation".
fn gateway_at_gen(world: &World, ns: &str, name: &str) -> Result<Value, String> {
    let st = need_status(world, "Gateway", ns, name)?;
    at_generation(
        conds(&st),
        world.generation("Gateway", ns, name),
        &format!("Gateway {ns}/{name}"),
    )?;
    Ok(st)
}

fn listener_check(actual: &[Value], expected: &[Value], what: &str) -> Result<(), String> {
    if actual.len() != expected.len() {
        return Err(format!(
            "{what}: {} listener statuses, want {}",
            actual.len(),
            expected.len()
        ));
    }
    for exp in expected {
        let name = s(exp, "name");
        let l = actual
            .iter()
            .find(|l| s(l, "name") == name)
            .ok_or_else(|| format!("{what}: no listener status {name}"))?;
        if let Some(kinds) = exp.get("supported_kinds").and_then(Value::as_array) {
            let got = l
                .get("supportedKinds")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if kinds.is_empty() && !got.is_empty() {
                return Err(format!(
                    "{what}: listener {name} supportedKinds {got:?}, want empty"
                ));
            }
            for k in kinds {
                let found = got.iter().any(|g| {
                    s(g, "kind") == s(k, "kind")
                        && g.get("group").and_then(Value::as_str).unwrap_or(GROUP) == s(k, "group")
                });
                if !found {
                    return Err(format!(
                        "{what}: listener {name} supportedKinds lacks {}",
                        s(k, "kind")
                    ));
                }
            }
        }
        if let Some(n) = exp.get("attached_routes").and_then(Value::as_i64) {
            let got = l.get("attachedRoutes").and_then(Value::as_i64).unwrap_or(0);
            if got != n {
                return Err(format!(
                    "{what}: listener {name} attachedRoutes {got}, want {n}"
                ));
            }
        }
        for c in exp
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            has_cond(conds(l), c).map_err(|e| format!("{what}: listener {name}: {e}"))?;
        }
    }
    Ok(())
}

/// Checks the status `listeners` of `st` against the step's expected `listeners`.
fn expected_listeners_check(st: &Value, step: &Value, what: &str) -> Result<(), String> {
    listener_check(
        listeners(st),
        step.get("listeners")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]),
        what,
    )
}

/// Checks that every listener named in the step's `listeners` has a status entry in `st`
/// carrying each of the step's `conditions`.
fn listener_conditions_check(st: &Value, step: &Value, what: &str) -> Result<(), String> {
    for l in str_list(step.get("listeners")) {
        let ls = listeners(st)
            .iter()
            .find(|x| s(x, "name") == l)
            .ok_or_else(|| format!("{what}: no listener status {l}"))?;
        for c in step
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            has_cond(conds(ls), c).map_err(|e| format!("{what}: listener {l}: {e}"))?;
        }
    }
    Ok(())
}

fn route_parent_matches(entry: &Value, name: &str, ns: &str, route_ns: &str) -> bool {
    let pr = entry.get("parentRef").cloned().unwrap_or(Value::Null);
    s(&pr, "name") == name
        && pr
            .get("namespace")
            .and_then(Value::as_str)
            .map_or(route_ns == ns, |n| n == ns)
}

/// Executes a status step.
pub async fn status_step(world: &World, step: &Value) -> Result<(), String> {
    let kind = s(step, "step");
    match kind {
        "namespaces_ready" => {
            let namespaces = str_list(step.get("namespaces"));
            let gateways: Vec<(String, String)> = world
                .objects_of("Gateway")
                .filter(|(k, v)| {
                    namespaces.contains(&k.1)
                        && v.pointer("/metadata/annotations/gateway-api~1skip-this-for-readiness")
                            .and_then(Value::as_str)
                            != Some("true")
                })
                .map(|(k, _)| (k.1.clone(), k.2.clone()))
                .collect();
            poll(budget(world, 300), POLL, || async {
                for (ns, name) in &gateways {
                    let st = gateway_at_gen(world, ns, name)?;
                    for t in ["Accepted", "Programmed"] {
                        has_cond(
                            conds(&st),
                            &serde_json::json!({"type": t, "status": "True"}),
                        )
                        .map_err(|e| format!("Gateway {ns}/{name}: {e}"))?;
                    }
                }
                Ok(())
            })
            .await
        }
        "routes_accepted" => {
            let parent = step.get("parent").cloned().unwrap_or(Value::Null);
            let parent_kind = s(&parent, "kind").to_string();
            let (pns, pname) = split_ref(s(&parent, "ref"));
            let route_kind = s(step, "route_kind").to_string();
            let routes: Vec<String> = step
                .get("routes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            let require_address = step
                .get("require_address")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let check_listeners = step
                .get("check_parent_listeners")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            poll(budget(world, 180), POLL, || async {
                if require_address {
                    let (gns, gname) = if parent_kind == "ListenerSet" { listener_set_gateway(world, &pns, &pname) } else { (pns.clone(), pname.clone()) };
                    let st = gateway_at_gen(world, &gns, &gname)?;
                    let ok = st.get("addresses").and_then(Value::as_array).is_some_and(|a| a.iter().any(|x| !s(x, "type").is_empty()));
                    if !ok {
                        return Err(format!("Gateway {gns}/{gname} has no typed status address"));
                    }
                }
                for r in &routes {
                    let (rns, rname) = split_ref(r);
                    let st = need_status(world, &route_kind, &rns, &rname)?;
                    let ok = parents(&st).iter().any(|e| {
                        let pr = e.get("parentRef").cloned().unwrap_or(Value::Null);
                        s(&pr, "group") == GROUP
                            && s(&pr, "kind") == parent_kind
                            && route_parent_matches(e, &pname, &pns, &rns)
                            && controller_ok(e)
                            && conds(e).iter().any(|c| cond_matches(c, &serde_json::json!({"type": "Accepted", "status": "True", "reason": "Accepted"})))
                    });
                    if !ok {
                        return Err(format!("{route_kind} {r}: no accepted parent {parent_kind} {pns}/{pname}; parents: {}", describe_parents(&st)));
                    }
                }
                if check_listeners {
                    let st = need_status(world, &parent_kind, &pns, &pname)?;
                    for l in listeners(&st) {
                        for t in ["ResolvedRefs", "Accepted", "Programmed"] {
                            has_cond(conds(l), &serde_json::json!({"type": t, "status": "True"}))
                                .map_err(|e| format!("{parent_kind} {pns}/{pname} listener {}: {e}", s(l, "name")))?;
                        }
                    }
                }
                Ok(())
            })
            .await
        }
        "route_condition" => {
            let route_kind = s(step, "route_kind");
            let (rns, rname) = split_ref(s(step, "route"));
            let (pns, pname) = split_ref(s(step, "parent"));
            let condition = step.get("condition").cloned().unwrap_or(Value::Null);
            let generation = world.generation(route_kind, &rns, &rname);
            poll(budget(world, 60), POLL, || async {
                let st = need_status(world, route_kind, &rns, &rname)?;
                for e in parents(&st) {
                    at_generation(conds(e), generation, &format!("{route_kind} {rns}/{rname}"))?;
                }
                let entry = parents(&st).iter().find(|e| {
                    route_parent_matches(e, &pname, &pns, &rns)
                        && conds(e).iter().any(|c| cond_matches(c, &condition))
                });
                match entry {
                    Some(_) => Ok(()),
                    None => Err(format!(
                        "{route_kind} {rns}/{rname} parent {pns}/{pname}: want {}; parents: {}",
                        describe(std::slice::from_ref(&condition)),
                        describe_parents(&st)
                    )),
                }
            })
            .await
        }
        "route_parents" => {
            let route_kind = s(step, "route_kind");
            let (rns, rname) = split_ref(s(step, "route"));
            let ns_required = step
                .get("namespace_required")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let expected = step
                .get("parents")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            poll(budget(world, 60), POLL, || async {
                let st = need_status(world, route_kind, &rns, &rname)?;
                for exp in &expected {
                    let epr = exp.get("parent_ref").cloned().unwrap_or(Value::Null);
                    let found = parents(&st).iter().any(|e| {
                        let pr = e.get("parentRef").cloned().unwrap_or(Value::Null);
                        let ns_ok = match pr.get("namespace").and_then(Value::as_str) {
                            Some(n) => n == s(&epr, "namespace"),
                            None => !ns_required || epr.get("namespace").is_none(),
                        };
                        pr.get("group").and_then(Value::as_str)
                            == epr.get("group").and_then(Value::as_str).or(Some(GROUP))
                            && pr.get("kind").and_then(Value::as_str)
                                == epr.get("kind").and_then(Value::as_str).or(Some("Gateway"))
                            && s(&pr, "name") == s(&epr, "name")
                            && ns_ok
                            && exp
                                .get("controller_name")
                                .and_then(Value::as_str)
                                .is_none_or(|c| {
                                    e.get("controllerName")
                                        .and_then(Value::as_str)
                                        .is_none_or(|a| a == c)
                                })
                            && exp
                                .get("conditions")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .all(|c| conds(e).iter().any(|a| cond_matches(a, c)))
                    });
                    if !found {
                        return Err(format!(
                            "{route_kind} {rns}/{rname}: no parent entry like {epr}; parents: {}",
                            describe_parents(&st)
                        ));
                    }
                }
                Ok(())
            })
            .await
        }
        "route_no_accepted_parents" => {
            let route_kind = s(step, "route_kind");
            let (rns, rname) = split_ref(s(step, "route"));
            let generation = world.generation(route_kind, &rns, &rname);
            let mut empty_reads = 0;
            let deadline = std::time::Instant::now() + budget(world, 60);
            let mut last = String::new();
            loop {
                let st = read_status(world, route_kind, &rns, &rname).unwrap_or(Value::Null);
                let ps = parents(&st);
                if ps.is_empty() {
                    empty_reads += 1;
                    if empty_reads >= 2 {
                        return Ok(());
                    }
                } else {
                    empty_reads = 0;
                    if ps.len() == 1
                        && at_generation(conds(&ps[0]), generation, "").is_ok()
                        && conds(&ps[0])
                            .iter()
                            .any(|c| s(c, "type") == "Accepted" && s(c, "status") == "False")
                    {
                        return Ok(());
                    }
                    last = describe_parents(&st);
                }
                if std::time::Instant::now() >= deadline {
                    return Err(format!(
                        "{route_kind} {rns}/{rname} still has parents {last}"
                    ));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        "route_latest_conditions" => {
            let route_kind = s(step, "route_kind");
            let (rns, rname) = split_ref(s(step, "route"));
            let generation = world.generation(route_kind, &rns, &rname);
            poll(budget(world, 60), POLL, || async {
                let st = need_status(world, route_kind, &rns, &rname)?;
                if parents(&st).is_empty() {
                    return Err("no parent statuses".into());
                }
                for e in parents(&st) {
                    at_generation(conds(e), generation, &format!("{route_kind} {rns}/{rname}"))?;
                }
                Ok(())
            })
            .await
        }
        "gateway_condition"
        | "gateway_latest_conditions"
        | "gateway_address"
        | "gateway_listeners"
        | "gateway_listener_conditions"
        | "gateway_zero_routes"
        | "gateway_attached_listener_sets" => {
            let (ns, name) = split_ref(s(step, "gateway"));
            let b = if matches!(
                kind,
                "gateway_condition" | "gateway_latest_conditions" | "gateway_address"
            ) {
                180
            } else {
                60
            };
            poll(budget(world, b), POLL, || async {
                let st = gateway_at_gen(world, &ns, &name)?;
                let what = format!("Gateway {ns}/{name}");
                match kind {
                    "gateway_condition" => {
                        has_cond(conds(&st), step.get("condition").unwrap_or(&Value::Null))
                            .map_err(|e| format!("{what}: {e}"))
                    }
                    "gateway_latest_conditions" => {
                        if conds(&st).is_empty() {
                            Err(format!("{what}: no conditions"))
                        } else {
                            Ok(())
                        }
                    }
                    "gateway_address" => {
                        let ok = st
                            .get("addresses")
                            .and_then(Value::as_array)
                            .is_some_and(|a| a.iter().any(|x| !s(x, "type").is_empty()));
                        if ok {
                            Ok(())
                        } else {
                            Err(format!("{what}: no typed status address"))
                        }
                    }
                    "gateway_listeners" => expected_listeners_check(&st, step, &what),
                    "gateway_listener_conditions" => listener_conditions_check(&st, step, &what),
                    "gateway_zero_routes" => {
                        let ls = listeners(&st);
                        if ls.is_empty()
                            || (ls.len() == 1
                                && ls[0]
                                    .get("attachedRoutes")
                                    .and_then(Value::as_i64)
                                    .unwrap_or(0)
                                    == 0)
                        {
                            Ok(())
                        } else {
                            Err(format!(
                                "{what}: {} listeners, attachedRoutes {:?}",
                                ls.len(),
                                ls.iter()
                                    .map(|l| l.get("attachedRoutes").cloned())
                                    .collect::<Vec<_>>()
                            ))
                        }
                    }
                    _ => {
                        let want = step.get("count").and_then(Value::as_i64).unwrap_or(0);
                        let got = st
                            .get("attachedListenerSets")
                            .and_then(Value::as_i64)
                            .unwrap_or(0);
                        if got == want {
                            Ok(())
                        } else {
                            Err(format!("{what}: attachedListenerSets {got}, want {want}"))
                        }
                    }
                }
            })
            .await
        }
        "gateway_status_addresses" => {
            let (ns, name) = split_ref(s(step, "gateway"));
            let exp = step.get("expect").cloned().unwrap_or(Value::Null);
            let count = u64_or(&exp, "count", 0) as usize;
            poll(budget(world, 180), POLL, || async {
                let st = need_status(world, "Gateway", &ns, &name)?;
                let addrs = st
                    .get("addresses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let values: Vec<&str> = addrs.iter().map(|a| s(a, "value")).collect();
                if addrs.len() != count {
                    return Err(format!(
                        "Gateway {ns}/{name}: {} status addresses {values:?}, want {count}",
                        addrs.len()
                    ));
                }
                for c in exp
                    .get("contains")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !values.contains(&c) {
                        return Err(format!("status addresses {values:?} lack {c}"));
                    }
                }
                for c in exp
                    .get("excludes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if values.contains(&c) {
                        return Err(format!("status addresses {values:?} contain {c}"));
                    }
                }
                if exp
                    .get("usable_address_type_matches_spec")
                    .and_then(Value::as_bool)
                    == Some(true)
                    && let Some((t, v)) = &world.usable_address
                {
                    let got = addrs
                        .iter()
                        .find(|a| s(a, "value") == v)
                        .map(|a| s(a, "type").to_string());
                    if got.as_deref().is_some_and(|g| g != t) {
                        return Err(format!("usable address {v} has type {got:?}, want {t}"));
                    }
                }
                Ok(())
            })
            .await
        }
        "gatewayclass_condition" | "gatewayclass_latest_conditions" => {
            let name = s(step, "gateway_class").to_string();
            let generation = world.generation("GatewayClass", "", &name);
            poll(budget(world, 180), POLL, || async {
                let st = need_status(world, "GatewayClass", "", &name)?;
                at_generation(conds(&st), generation, &format!("GatewayClass {name}"))?;
                if kind == "gatewayclass_condition" {
                    has_cond(conds(&st), step.get("condition").unwrap_or(&Value::Null))
                        .map_err(|e| format!("GatewayClass {name}: {e}"))
                } else if conds(&st).is_empty() {
                    Err("no conditions".into())
                } else {
                    Ok(())
                }
            })
            .await
        }
        "listener_set_condition"
        | "listener_set_listener_conditions"
        | "listener_set_listeners" => {
            let (ns, name) = split_ref(s(step, "listener_set"));
            let generation = world.generation("ListenerSet", &ns, &name);
            let b = if kind == "listener_set_condition" {
                180
            } else {
                60
            };
            poll(budget(world, b), POLL, || async {
                let st = need_status(world, "ListenerSet", &ns, &name)?;
                let what = format!("ListenerSet {ns}/{name}");
                at_generation(conds(&st), generation, &what)?;
                match kind {
                    "listener_set_condition" => {
                        has_cond(conds(&st), step.get("condition").unwrap_or(&Value::Null))
                            .map_err(|e| format!("{what}: {e}"))
                    }
                    "listener_set_listeners" => expected_listeners_check(&st, step, &what),
                    _ => listener_conditions_check(&st, step, &what),
                }
            })
            .await
        }
        "backend_tls_policy_condition" => {
            let (ns, name) = split_ref(s(step, "policy"));
            let (ans, aname) = split_ref(s(step, "ancestor"));
            let condition = step.get("condition").cloned().unwrap_or(Value::Null);
            let generation = world.generation("BackendTLSPolicy", &ns, &name);
            poll(budget(world, 60), POLL, || async {
                let st = need_status(world, "BackendTLSPolicy", &ns, &name)?;
                let ancestors = st
                    .get("ancestors")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for a in &ancestors {
                    at_generation(
                        conds(a),
                        generation,
                        &format!("BackendTLSPolicy {ns}/{name}"),
                    )?;
                }
                let entry = ancestors.iter().find(|a| {
                    let r = a.get("ancestorRef").cloned().unwrap_or(Value::Null);
                    s(&r, "name") == aname
                        && r.get("namespace")
                            .and_then(Value::as_str)
                            .map_or(ns == ans, |n| n == ans)
                });
                let entry = entry.ok_or_else(|| {
                    format!("BackendTLSPolicy {ns}/{name}: no ancestor {ans}/{aname}")
                })?;
                has_cond(conds(entry), &condition).map_err(|e| {
                    format!("BackendTLSPolicy {ns}/{name} ancestor {ans}/{aname}: {e}")
                })
            })
            .await
        }
        "policy_latest_conditions" => {
            let pkind = s(step, "kind");
            let (ns, name) = split_ref(s(step, "ref"));
            let generation = world.generation(pkind, &ns, &name);
            let check = || async {
                let st = need_status(world, pkind, &ns, &name)?;
                let ancestors = st
                    .get("ancestors")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if ancestors.is_empty() {
                    return Err(format!("{pkind} {ns}/{name}: no ancestors"));
                }
                for a in &ancestors {
                    at_generation(conds(a), generation, &format!("{pkind} {ns}/{name}"))?;
                }
                Ok(())
            };
            if step.get("immediate").and_then(Value::as_bool) == Some(true) {
                // Upstream reads once; give the control plane the moment a cluster would have had.
                poll(Duration::from_secs(2), POLL, check).await
            } else {
                poll(budget(world, 60), POLL, check).await
            }
        }
        other => Err(format!("step type {other} not implemented")),
    }
}

fn describe_parents(st: &Value) -> String {
    let items: Vec<String> = parents(st)
        .iter()
        .map(|e| {
            let pr = e.get("parentRef").cloned().unwrap_or(Value::Null);
            format!(
                "{}/{}{}: {}",
                s(&pr, "namespace"),
                s(&pr, "name"),
                pr.get("sectionName")
                    .and_then(Value::as_str)
                    .map(|x| format!("#{x}"))
                    .unwrap_or_default(),
                describe(conds(e))
            )
        })
        .collect();
    format!("[{}]", items.join("; "))
}

fn listener_set_gateway(world: &World, ns: &str, name: &str) -> (String, String) {
    let ls = world.object("ListenerSet", ns, name);
    let pr = ls
        .and_then(|l| l.pointer("/spec/parentRef"))
        .cloned()
        .unwrap_or(Value::Null);
    (
        pr.get("namespace")
            .and_then(Value::as_str)
            .unwrap_or(ns)
            .to_string(),
        s(&pr, "name").to_string(),
    )
}

/// The address to send traffic to for a Gateway: its first status address.
pub async fn gateway_address(world: &World, gateway: &str) -> Result<String, String> {
    let (ns, name) = split_ref(gateway);
    let mut found = String::new();
    poll(Duration::from_secs(30), POLL, || {
        let r = read_status(world, "Gateway", &ns, &name)
            .and_then(|st| {
                st.get("addresses")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .map(|a| s(a, "value").to_string())
            })
            .filter(|v| !v.is_empty());
        if let Some(v) = &r {
            found = v.clone();
        }
        async move {
            r.map(|_| ())
                .ok_or_else(|| format!("Gateway {gateway} has no status address"))
        }
    })
    .await?;
    if !world.pool && found == "0.0.0.0" {
        found = "127.0.0.1".into();
    }
    Ok(found)
}
