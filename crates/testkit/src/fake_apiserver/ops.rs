//! The verbs' semantics on top of the store: create, update (PUT and the result of every patch),
//! server-side apply, delete with finalizers and owner/namespace cascade.
//!
//! Rules kept from the real API server:
//! - create sets `uid`, `creationTimestamp`, `resourceVersion` (one global counter) and
//!   `generation: 1`; through the API, `status` is dropped for kinds with a status subresource;
//! - an update that changes nothing is not a write (no new resourceVersion, no watch event);
//! - `generation` increments when anything outside `metadata` and `status` changes;
//! - main-resource writes keep `status` of kinds with a status subresource, `/status` writes
//!   change only `status`;
//! - a write whose object carries a `metadata.resourceVersion` different from the stored one
//!   fails with 409 Conflict;
//! - delete of an object with finalizers only sets `deletionTimestamp`; the update removing the
//!   last finalizer deletes it. Deleting removes (background propagation, recursively) every
//!   object whose `ownerReferences` name its uid, and everything inside a deleted Namespace.

use super::errors::ApiError;
use super::patch;
use super::registry::ResourceDef;
use super::store::{ObjKey, Store, obj_key};
use serde_json::{Map, Value, json};

/// Which part of the object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sub {
    /// The main resource: `status` is kept for kinds with a status subresource.
    Main,
    /// The `/status` subresource: only `status` changes.
    Status,
    /// Everything (direct test helpers).
    All,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DeleteOpts {
    pub precondition_rv: Option<String>,
    pub precondition_uid: Option<String>,
    pub orphan: bool,
    pub dry_run: bool,
}

fn resource_name(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        def.plural.to_string()
    } else {
        format!("{}.{}", def.plural, def.group)
    }
}

/// The object as served at `def`'s version.
pub(crate) fn present(def: &ResourceDef, obj: &Value) -> Value {
    let mut obj = obj.clone();
    obj["apiVersion"] = json!(def.api_version());
    obj["kind"] = json!(def.kind);
    obj
}

/// The `meta.k8s.io/v1` `PartialObjectMetadata` view of an object (metadata-only clients).
pub(crate) fn partial_metadata(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

/// RFC 3339 UTC timestamp, seconds precision.
pub(crate) fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"].as_object_mut().expect("metadata object")
}

/// Everything but metadata and status (what `generation` tracks).
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    o
}

fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

fn check_rv(def: &ResourceDef, name: &str, sent: &Value, stored: &Value) -> Result<(), ApiError> {
    match meta_str(sent, "resourceVersion") {
        Some(rv) if !rv.is_empty() && Some(rv) != meta_str(stored, "resourceVersion") => {
            Err(ApiError::conflict(
                &resource_name(def),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ))
        }
        _ => Ok(()),
    }
}

/// Creates `obj` in namespace `ns` ("" for cluster-scoped kinds).
pub(crate) fn create(
    store: &mut Store,
    def: &ResourceDef,
    ns: &str,
    obj: Value,
    keep_status: bool,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let mut obj = obj;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if let Some(body_ns) = meta_str(&obj, "namespace")
        && def.namespaced
        && !body_ns.is_empty()
        && body_ns != ns
    {
        return Err(ApiError::bad_request(format!(
            "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
        )));
    }
    let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
    if name.is_empty() {
        let Some(prefix) = meta_str(&obj, "generateName").filter(|p| !p.is_empty()) else {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("{} is invalid: metadata.name: Required value", def.kind),
            ));
        };
        name = format!("{prefix}{:05x}", store.current_rv() + 1);
    }
    let key = obj_key(def, ns, &name);
    if store.get(&key).is_some() {
        return Err(ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", resource_name(def)),
        ));
    }
    if def.status && !keep_status {
        obj.as_object_mut().expect("object").remove("status");
    }
    if def.kind == "Namespace" && def.group.is_empty() && obj.pointer("/status/phase").is_none() {
        obj["status"] = json!({"phase": "Active"});
    }
    let uid = store.next_uid();
    let rv = if dry_run {
        store.current_rv()
    } else {
        store.next_rv()
    };
    let meta = meta_mut(&mut obj);
    meta.insert("name".into(), json!(name));
    if def.namespaced {
        meta.insert("namespace".into(), json!(ns));
    } else {
        meta.remove("namespace");
    }
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    meta.insert("generation".into(), json!(1));
    meta.remove("managedFields");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    let obj = present(def, &obj);
    if !dry_run {
        store.put(key, obj.clone(), rv);
    }
    Ok(obj)
}

/// Replaces the stored object with `new_obj` (a PUT body or the result of a patch), keeping what
/// `sub` does not allow to change. `check_rv`: 409 when `new_obj` carries a different resourceVersion.
#[allow(clippy::too_many_arguments)]
pub(crate) fn update(
    store: &mut Store,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    new_obj: Value,
    sub: Sub,
    check: bool,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let key = obj_key(def, ns, name);
    let old = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&resource_name(def), name))?;
    if !new_obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if check {
        check_rv(def, name, &new_obj, &old)?;
    }
    if let Some(n) = meta_str(&new_obj, "name")
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let mut result = match sub {
        Sub::Status => {
            let mut r = old.clone();
            match new_obj.get("status") {
                Some(s) => r["status"] = s.clone(),
                None => {
                    r.as_object_mut().expect("object").remove("status");
                }
            }
            r
        }
        Sub::Main | Sub::All => {
            let mut r = new_obj;
            if sub == Sub::Main && def.status {
                let m = r.as_object_mut().expect("object");
                match old.get("status") {
                    Some(s) => m.insert("status".into(), s.clone()),
                    None => m.remove("status"),
                };
            }
            r
        }
    };
    let old_meta = old.get("metadata").cloned().unwrap_or_default();
    {
        let meta = meta_mut(&mut result);
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old_meta.get(k) {
                Some(v) => meta.insert(k.into(), v.clone()),
                None => meta.remove(k),
            };
        }
        meta.remove("managedFields");
    }
    let result = present(def, &result);
    if result == old {
        return Ok(old);
    }
    let mut result = result;
    if spec_part(&result) != spec_part(&old) {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta_mut(&mut result).insert("generation".into(), json!(generation));
    }
    if dry_run {
        return Ok(result);
    }
    let rv = store.next_rv();
    meta_mut(&mut result).insert("resourceVersion".into(), json!(rv.to_string()));
    if result.pointer("/metadata/deletionTimestamp").is_some() && !has_finalizers(&result) {
        store.put(key.clone(), result.clone(), rv);
        remove_now(store, &key, false);
        return Ok(result);
    }
    store.put(key, result.clone(), rv);
    Ok(result)
}

/// Applies a JSON merge patch / JSON patch (`json_patch`) to the stored object.
#[allow(clippy::too_many_arguments)]
pub(crate) fn patch(
    store: &mut Store,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    body: &Value,
    json_patch: bool,
    sub: Sub,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let key = obj_key(def, ns, name);
    let mut obj = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&resource_name(def), name))?;
    if json_patch {
        patch::json_patch(&mut obj, body).map_err(|e| ApiError::new(422, "Invalid", e))?;
    } else {
        if !body.is_object() {
            return Err(ApiError::bad_request("a merge patch must be a JSON object"));
        }
        patch::merge_patch(&mut obj, body);
    }
    update(store, def, ns, name, obj, sub, true, dry_run)
}

/// Server-side apply (see `patch.rs` for the approximation).
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    store: &mut Store,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    config: Value,
    manager: &str,
    sub: Sub,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "an apply configuration must be an object",
        ));
    }
    if let Some(n) = meta_str(&config, "name")
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let key = obj_key(def, ns, name);
    let live = store.get(&key).cloned();
    if let Some(live) = &live {
        check_rv(def, name, &config, live)?;
    }
    let mut effective = config;
    {
        let meta = meta_mut(&mut effective);
        for k in [
            "resourceVersion",
            "managedFields",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(k);
        }
        meta.insert("name".into(), json!(name));
        if def.namespaced {
            meta.insert("namespace".into(), json!(ns));
        }
    }
    let status_sub = sub == Sub::Status;
    if status_sub {
        effective = json!({"metadata": {"name": name}, "status": effective.get("status").cloned().unwrap_or(json!({}))});
    } else if def.status {
        effective.as_object_mut().expect("object").remove("status");
    }
    let result = match live {
        None if status_sub => return Err(ApiError::not_found(&resource_name(def), name)),
        None => create(
            store,
            def,
            ns,
            patch::apply(None, None, &effective),
            false,
            dry_run,
        )?,
        Some(live) => {
            let last = store.last_applied(&key, manager, status_sub).cloned();
            let merged = patch::apply(Some(&live), last.as_ref(), &effective);
            update(store, def, ns, name, merged, sub, false, dry_run)?
        }
    };
    if !dry_run && store.get(&key).is_some() {
        store.set_last_applied(key, manager, status_sub, effective);
    }
    Ok(result)
}

/// Deletes (or, with finalizers, marks for deletion) one object. Returns the object and whether
/// it is gone now.
pub(crate) fn delete(
    store: &mut Store,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> Result<(Value, bool), ApiError> {
    let key = obj_key(def, ns, name);
    let obj = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&resource_name(def), name))?;
    if let Some(rv) = &opts.precondition_rv
        && Some(rv.as_str()) != meta_str(&obj, "resourceVersion")
    {
        return Err(ApiError::conflict(
            &resource_name(def),
            name,
            "the ResourceVersion in the precondition does not match the ResourceVersion in record",
        ));
    }
    if let Some(uid) = &opts.precondition_uid
        && Some(uid.as_str()) != meta_str(&obj, "uid")
    {
        return Err(ApiError::conflict(
            &resource_name(def),
            name,
            "the UID in the precondition does not match the UID in record",
        ));
    }
    if opts.dry_run {
        let gone = !has_finalizers(&obj);
        return Ok((obj, gone));
    }
    if has_finalizers(&obj) {
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok((obj, false));
        }
        let mut marked = obj;
        let rv = store.next_rv();
        let meta = meta_mut(&mut marked);
        meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        store.put(key, marked.clone(), rv);
        return Ok((marked, false));
    }
    let final_obj = remove_now(store, &key, opts.orphan);
    Ok((final_obj, true))
}

/// Removes a stored object (DELETED event with a new resourceVersion) and cascades.
fn remove_now(store: &mut Store, key: &ObjKey, orphan: bool) -> Value {
    let Some(mut obj) = store.get(key).cloned() else {
        return Value::Null;
    };
    let rv = store.next_rv();
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
    store.remove(key, obj.clone(), rv);
    if orphan {
        return obj;
    }
    let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
    let mut doomed = store.dependents(&uid);
    if key.0.is_empty() && key.1 == "namespaces" {
        doomed.extend(store.in_namespace(&key.3));
    }
    for dep in doomed {
        let Some(def) = store.registry.by_resource(&dep.0, &dep.1).cloned() else {
            continue;
        };
        let _ = delete(store, &def, &dep.2, &dep.3, &DeleteOpts::default());
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
