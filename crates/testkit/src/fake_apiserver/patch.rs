//! Patch formats: JSON merge patch (RFC 7386, also used for strategic merge patch), JSON patch
//! (RFC 6902) and an approximation of server-side apply.
//!
//! # Server-side apply approximation
//!
//! Real SSA tracks ownership of every field in `metadata.managedFields`. The fake instead
//! remembers, per object, field manager and subresource (main or `status`), the last
//! configuration that manager applied. An apply then:
//!
//! 1. creates the object from the configuration if it does not exist;
//! 2. otherwise removes from the live object every field the manager applied last time but no
//!    longer applies (recursively through maps), and
//! 3. deep-merges the new configuration into the live object: maps merge key by key, every other
//!    value (scalars and **lists**) is replaced as a whole.
//!
//! Differences from real SSA: lists are always atomic (real SSA merges lists marked
//! `x-kubernetes-list-type: map`/`set`, e.g. `containers` by `name` or `conditions` by `type`,
//! entry by entry, so two managers can own different entries); there are no ownership conflicts
//! (every apply behaves as if `force=true`), and a field removed from a manager's configuration
//! is deleted even if another manager also set it. Changes by other clients (merge patches, JSON
//! patches, updates) simply change the object; the manager's next apply restores its fields.
//! `metadata.managedFields` is not kept.
//!
//! Strategic merge patches are applied as JSON merge patches: lists are replaced, not merged by
//! their patch merge key, and `$patch`/`$setElementOrder` directives are not understood.

use serde_json::{Map, Value};

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("object");
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    if path.is_empty() {
        return Err("the root cannot be the target of this operation".into());
    }
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok((parent.to_string(), unescape(last)))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| format!("invalid index {last:?}"))?
            };
            if idx > a.len() {
                return Err(format!("index {idx} out of bounds"));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("path {parent:?} does not exist")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(&parent) {
        Some(Value::Object(m)) => m
            .remove(&last)
            .ok_or_else(|| format!("path {path:?} does not exist")),
        Some(Value::Array(a)) => {
            let idx: usize = last
                .parse()
                .map_err(|_| format!("invalid index {last:?}"))?;
            if idx >= a.len() {
                return Err(format!("index {idx} out of bounds"));
            }
            Ok(a.remove(idx))
        }
        _ => Err(format!("path {path:?} does not exist")),
    }
}

/// RFC 6902 JSON patch (`add`, `remove`, `replace`, `move`, `copy`, `test`).
pub(crate) fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch must be an array")?;
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or("operation without \"op\"")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("operation without \"path\"")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("{kind} without \"value\""))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{kind} without \"from\""))
        };
        match kind {
            "add" => add(doc, path, value()?)?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                if path.is_empty() {
                    *doc = value()?;
                } else {
                    remove(doc, path)?;
                    add(doc, path, value()?)?;
                }
            }
            "move" => {
                let v = remove(doc, from()?)?;
                add(doc, path, v)?;
            }
            "copy" => {
                let v = doc
                    .pointer(from()?)
                    .cloned()
                    .ok_or("copy: \"from\" does not exist")?;
                add(doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(format!("test failed at {path:?}"));
                }
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

/// Removes from `live` the fields present in `last` but absent from `next` (maps recursively).
fn remove_dropped(live: &mut Value, last: &Value, next: &Value) {
    let (Value::Object(live), Value::Object(last)) = (live, last) else {
        return;
    };
    for (k, last_v) in last {
        match next.get(k) {
            None => {
                live.remove(k);
            }
            Some(next_v) => {
                if let Some(live_v) = live.get_mut(k) {
                    remove_dropped(live_v, last_v, next_v);
                }
            }
        }
    }
}

/// Deep merge: maps merge recursively, everything else (including lists) replaces.
pub(crate) fn deep_merge(target: &mut Value, src: &Value) {
    match (target, src) {
        (Value::Object(t), Value::Object(s)) => {
            for (k, v) in s {
                match t.get_mut(k) {
                    Some(tv) if tv.is_object() && v.is_object() => deep_merge(tv, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, s) => *t = s.clone(),
    }
}

/// Server-side apply of `config` by a manager whose previous configuration was `last` (see the
/// module comment). Returns the new object.
pub(crate) fn apply(live: Option<&Value>, last: Option<&Value>, config: &Value) -> Value {
    let mut obj = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(last) = last {
        remove_dropped(&mut obj, last, config);
    }
    deep_merge(&mut obj, config);
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn json_patch_ops() {
        let mut doc = json!({"a": {"b": [1, 2]}, "x/y": 1});
        json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/a/b/-", "value": 3},
                {"op": "add", "path": "/a/b/0", "value": 0},
                {"op": "replace", "path": "/x~1y", "value": 2},
                {"op": "test", "path": "/x~1y", "value": 2},
                {"op": "remove", "path": "/a/b/1"},
                {"op": "copy", "from": "/x~1y", "path": "/c"},
                {"op": "move", "from": "/c", "path": "/d"},
            ]),
        )
        .unwrap();
        assert_eq!(doc, json!({"a": {"b": [0, 2, 3]}, "x/y": 2, "d": 2}));
        assert!(json_patch(&mut doc, &json!([{"op": "test", "path": "/d", "value": 3}])).is_err());
        assert!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }

    #[test]
    fn apply_removes_dropped_and_keeps_others() {
        let last = json!({"spec": {"a": 1, "b": 2}, "metadata": {"labels": {"x": "1"}}});
        let live = json!({"spec": {"a": 5, "b": 2, "other": 3}, "metadata": {"labels": {"x": "1", "y": "2"}}});
        let next = json!({"spec": {"a": 1}, "metadata": {"labels": {}}});
        let out = apply(Some(&live), Some(&last), &next);
        assert_eq!(
            out,
            json!({"spec": {"a": 1, "other": 3}, "metadata": {"labels": {"y": "2"}}})
        );
    }
}
