//! Open enums: the Gateway API reserves the right to add values to many enums (filter
//! types, path modifier types, redirect schemes, match types, methods, ...) and says an
//! implementation must not crash on values it does not know, but report them with
//! `UnsupportedValue`. The generated types (`ferrogate-gateway-types`) decode those fields
//! as closed Rust enums, so an unknown value would fail the whole object and it would vanish
//! without a status.
//!
//! This pass decodes leniently instead: when decoding fails on an unknown variant, the
//! value is replaced by a known one and recorded (path and raw value), and decoding is
//! retried. The record travels with the object (see [`UNSUPPORTED_VALUES_ANNOTATION`]) so
//! the translator can judge the part that holds it. The same loop turns numbers and
//! booleans into strings where the type wants a string, as Envoy Gateway's loader does
//! (YAML writes `value: 1` or `value: true` for a header value that the schema types as
//! a string).

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde_json::Value;

use ferrogate_api::k8s::ObjectMeta;

/// Annotation that carries the unsupported values of an object from the store to the
/// translator. Ferrogate sets it on the decoded object only; one in the input is removed,
/// so a user cannot forge it.
pub const UNSUPPORTED_VALUES_ANNOTATION: &str = "gateway.ferrogate.dev/unsupported-values";

/// An enum value the compiled types do not know, or a field they no longer have (see
/// [`REMOVED_RULE_FIELDS`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnsupportedValue {
    /// Where, as `spec.rules[1].filters[0].type`.
    pub path: String,
    /// The value as written.
    pub value: String,
}

impl UnsupportedValue {
    /// The index under `list` (e.g. `spec.rules`) this value sits in, if it sits in one.
    pub fn index_in(&self, list: &str) -> Option<usize> {
        let rest = self.path.strip_prefix(list)?.strip_prefix('[')?;
        rest.split(']').next()?.parse().ok()
    }

    /// Whether the path continues with `suffix` after the `index`-th item of `list`
    /// (e.g. `spec.rules`, 1, `.backendRefs[`).
    pub fn is_under(&self, list: &str, index: usize, suffix: &str) -> bool {
        self.path
            .strip_prefix(&format!("{list}[{index}]"))
            .is_some_and(|rest| rest.starts_with(suffix))
    }

    /// `path: unsupported value "raw"`, for condition messages.
    pub fn describe(&self) -> String {
        match removed_field(&self.path) {
            Some((_, _, _, release)) => format!(
                "{}: unsupported field (removed in Gateway API {release})",
                self.path
            ),
            None => format!("{}: unsupported value {:?}", self.path, self.value),
        }
    }
}

/// The unsupported values recorded on an object's metadata (empty for almost all objects).
pub fn unsupported_values(meta: &ObjectMeta) -> Vec<UnsupportedValue> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(UNSUPPORTED_VALUES_ANNOTATION))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// The most repairs one object gets; a real object has a handful at most, and the bound
/// keeps a pathological one from looping.
const MAX_REPAIRS: usize = 256;

/// Decodes `value` as `T`, substituting unknown enum values (recorded in the result) and
/// stringifying scalars where a string is expected. Fails with the first error no repair
/// can fix.
pub(crate) fn decode<T: DeserializeOwned>(
    mut value: Value,
) -> Result<(T, Vec<UnsupportedValue>), serde_json::Error> {
    let mut unsupported = take_removed_fields(&mut value);
    for _ in 0..MAX_REPAIRS {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(decoded) => return Ok((decoded, unsupported)),
            Err(e) => e,
        };
        let path = error.path().clone();
        let inner = error.into_inner();
        let Some(slot) = locate(&mut value, &path) else {
            return Err(inner);
        };
        match repair(slot, &inner.to_string()) {
            Some(Repair::Substituted(raw)) => unsupported.push(UnsupportedValue {
                path: dotted(&path),
                value: raw,
            }),
            Some(Repair::Stringified) => {}
            None => return Err(inner),
        }
    }
    Err(serde::de::Error::custom("too many unsupported values"))
}

/// Fields of a route rule that a Gateway API release removed from the schema, by the kinds
/// that had them. An input written for an older release can still set one (a file, or a
/// cluster whose CRDs are older than the types; a cluster with the new CRDs prunes it): the
/// types have no place for it and serde would drop it silently, as if it worked. So it is
/// taken out and recorded like an unknown enum value, and the translator judges the rule
/// that holds it.
const REMOVED_RULE_FIELDS: &[(&[&str], &str, &str, &str)] = &[
    // GEP-1619: Envoy-like data planes could not expire idle sessions.
    (
        &["HTTPRoute", "GRPCRoute"],
        "sessionPersistence",
        "idleTimeout",
        "v1.6",
    ),
];

/// The [`REMOVED_RULE_FIELDS`] entry a recorded path names, if any.
fn removed_field(
    path: &str,
) -> Option<&'static (
    &'static [&'static str],
    &'static str,
    &'static str,
    &'static str,
)> {
    REMOVED_RULE_FIELDS
        .iter()
        .find(|(_, parent, field, _)| path.ends_with(&format!(".{parent}.{field}")))
}

/// Takes the [`REMOVED_RULE_FIELDS`] out of `value`'s rules and records them.
fn take_removed_fields(value: &mut Value) -> Vec<UnsupportedValue> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut found = Vec::new();
    let Some(rules) = value
        .pointer_mut("/spec/rules")
        .and_then(Value::as_array_mut)
    else {
        return found;
    };
    for (kinds, parent, field, _) in REMOVED_RULE_FIELDS {
        if !kinds.contains(&kind.as_str()) {
            continue;
        }
        for (index, rule) in rules.iter_mut().enumerate() {
            let Some(raw) = rule
                .get_mut(*parent)
                .and_then(Value::as_object_mut)
                .and_then(|p| p.remove(*field))
            else {
                continue;
            };
            found.push(UnsupportedValue {
                path: format!("spec.rules[{index}].{parent}.{field}"),
                value: match raw {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
            });
        }
    }
    found
}

enum Repair {
    /// An unknown variant replaced by a known one; carries the raw value.
    Substituted(String),
    /// A number or boolean turned into its string form.
    Stringified,
}

/// Fixes the value at the error's location, if the error is one this pass fixes.
fn repair(slot: &mut Value, message: &str) -> Option<Repair> {
    if let Some(known) = message
        .strip_prefix("unknown variant `")
        .and_then(first_expected)
    {
        let raw = match &*slot {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        *slot = Value::String(known);
        return Some(Repair::Substituted(raw));
    }
    if message.ends_with("expected a string") {
        let text = match slot {
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        *slot = Value::String(text);
        return Some(Repair::Stringified);
    }
    None
}

/// The first variant serde lists in "unknown variant `x`, expected `A`" / "`A` or `B`" /
/// "one of `A`, `B`, ...".
fn first_expected(rest: &str) -> Option<String> {
    let (_, expected) = rest.split_once(", expected ")?;
    let start = expected.find('`')? + 1;
    let len = expected[start..].find('`')?;
    Some(expected[start..start + len].to_string())
}

/// The value at a decode error's path. The path ends at the field holding the bad value.
fn locate<'v>(value: &'v mut Value, path: &serde_path_to_error::Path) -> Option<&'v mut Value> {
    use serde_path_to_error::Segment;
    let mut here = value;
    for segment in path.iter() {
        here = match segment {
            Segment::Seq { index } => here.get_mut(*index)?,
            Segment::Map { key } => here.get_mut(key.as_str())?,
            // Enum and unknown segments do not move in the JSON tree.
            Segment::Enum { .. } | Segment::Unknown => here,
        };
    }
    Some(here)
}

/// `spec.rules[1].filters[0].type` from a decode path.
fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// Writes the record onto the decoded object's annotations (and removes a forged one).
pub(crate) fn record(meta: &mut ObjectMeta, unsupported: &[UnsupportedValue]) {
    if unsupported.is_empty() {
        if let Some(a) = meta.annotations.as_mut() {
            a.remove(UNSUPPORTED_VALUES_ANNOTATION);
        }
        return;
    }
    let text = serde_json::to_string(unsupported).unwrap_or_default();
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(UNSUPPORTED_VALUES_ANNOTATION.into(), text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogate_api::gateway::{HttpRoute, HttpRouteRulesFiltersType};

    fn route(filter_type: &str, header_value: Value) -> Value {
        serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {"rules": [
                {"matches": [{"headers": [{"name": "x", "value": header_value}]}]},
                {"filters": [{"type": filter_type}]}
            ]}
        })
    }

    #[test]
    fn an_unknown_filter_type_is_recorded_with_its_path_and_replaced_by_a_known_one() {
        let (decoded, unsupported) =
            decode::<HttpRoute>(route("FutureFilter", "v".into())).unwrap();
        assert_eq!(
            unsupported,
            vec![UnsupportedValue {
                path: "spec.rules[1].filters[0].type".into(),
                value: "FutureFilter".into()
            }]
        );
        assert_eq!(unsupported[0].index_in("spec.rules"), Some(1));
        assert!(unsupported[0].is_under("spec.rules", 1, ".filters["));
        let rule = &decoded.spec.rules.as_ref().unwrap()[1];
        assert_eq!(
            rule.filters.as_ref().unwrap()[0].r#type,
            HttpRouteRulesFiltersType::RequestHeaderModifier
        );
    }

    #[test]
    fn numbers_and_booleans_become_strings_where_the_schema_says_string() {
        for (raw, text) in [
            (serde_json::json!(42), "42"),
            (serde_json::json!(true), "true"),
        ] {
            let (decoded, unsupported) =
                decode::<HttpRoute>(route("RequestHeaderModifier", raw)).unwrap();
            assert!(unsupported.is_empty());
            let rule = &decoded.spec.rules.as_ref().unwrap()[0];
            assert_eq!(
                rule.matches.as_ref().unwrap()[0].headers.as_ref().unwrap()[0].value,
                text
            );
        }
    }

    #[test]
    fn a_removed_field_is_taken_out_and_recorded_for_the_kinds_that_had_it() {
        for kind in ["HTTPRoute", "GRPCRoute"] {
            let mut value = route("RequestHeaderModifier", "v".into());
            value["kind"] = kind.into();
            value["spec"]["rules"][1]["sessionPersistence"] =
                serde_json::json!({"sessionName": "s", "idleTimeout": "5m"});
            let removed = take_removed_fields(&mut value);
            assert_eq!(
                removed,
                vec![UnsupportedValue {
                    path: "spec.rules[1].sessionPersistence.idleTimeout".into(),
                    value: "5m".into()
                }]
            );
            assert_eq!(
                value["spec"]["rules"][1]["sessionPersistence"],
                serde_json::json!({"sessionName": "s"})
            );
        }
        let (_, unsupported) = decode::<HttpRoute>({
            let mut value = route("RequestHeaderModifier", "v".into());
            value["spec"]["rules"][0]["sessionPersistence"] =
                serde_json::json!({"idleTimeout": "1h"});
            value
        })
        .unwrap();
        assert_eq!(unsupported.len(), 1);
        let mut tcp = serde_json::json!({"kind": "TCPRoute", "spec": {"rules": [
            {"sessionPersistence": {"idleTimeout": "5m"}}
        ]}});
        assert!(take_removed_fields(&mut tcp).is_empty());
    }

    #[test]
    fn other_schema_errors_still_fail() {
        let mut value = route("RequestHeaderModifier", "v".into());
        value["spec"]["rules"] = serde_json::json!("not a list");
        assert!(decode::<HttpRoute>(value).is_err());
    }
}
