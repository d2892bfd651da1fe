//! Drift detection: does the live object still contain what was applied? The API server
//! adds defaults and status, so equality is too strict; containment is what SSA
//! guarantees for the fields a manager owns.

use serde_json::Value;

/// Whether every field of `want` is in `live` with the same value. Maps: key by key,
/// recursively. Lists: same length, element by element (the API server may add defaults
/// inside elements, e.g. a container's `terminationMessagePath`). Numbers compare by
/// value; `null` in `want` matches a missing field.
pub fn is_subset(want: &Value, live: &Value) -> bool {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().all(|(k, v)| match l.get(k) {
            Some(lv) => is_subset(v, lv),
            None => {
                v.is_null()
                    || v.as_object().is_some_and(|m| m.is_empty())
                    || v.as_array().is_some_and(|a| a.is_empty())
            }
        }),
        (Value::Array(w), Value::Array(l)) => {
            w.len() == l.len() && w.iter().zip(l).all(|(a, b)| is_subset(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_added_by_the_server_are_not_drift() {
        let want = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "envoy"}]}}}});
        let live = json!({"spec": {"replicas": 2, "revisionHistoryLimit": 10, "template": {"spec": {"containers": [{"name": "envoy", "terminationMessagePath": "/dev/termination-log"}]}}}, "status": {}});
        assert!(is_subset(&want, &live));
    }

    #[test]
    fn a_changed_or_removed_field_is_drift() {
        let want = json!({"spec": {"replicas": 2}, "metadata": {"annotations": {"a": "1"}}});
        assert!(!is_subset(
            &want,
            &json!({"spec": {"replicas": 5}, "metadata": {"annotations": {"a": "1"}}})
        ));
        assert!(!is_subset(
            &want,
            &json!({"spec": {"replicas": 2}, "metadata": {"annotations": {}}})
        ));
        assert!(!is_subset(
            &json!({"ports": [1, 2]}),
            &json!({"ports": [1]})
        ));
    }
}
