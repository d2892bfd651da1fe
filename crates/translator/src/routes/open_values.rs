//! Enum values a route holds that the compiled types do not know (recorded by the store's
//! lenient decoding), and what each one invalidates. The Gateway API says such values must
//! not crash anything and must be reported with `UnsupportedValue`; which part is judged
//! follows where the value sits:
//! - inside a backendRef's filters: only that backendRef (see `backend_filters`);
//! - elsewhere inside a rule: that rule (the others still serve, `PartiallyInvalid`);
//! - outside the rules: the whole route (`Accepted: False`).
//!
//! The store records the same way a rule field that Gateway API removed but an older input
//! still sets (`sessionPersistence.idleTimeout`, gone in v1.6), and words it as such.

use ferrogate_api::k8s::ObjectMeta;
use ferrogate_store::{UnsupportedValue, unsupported_values};

use super::http_rules::unsupported;
use crate::conditions::Problem;

const RULES: &str = "spec.rules";

/// The unsupported values of one route.
pub(crate) struct OpenValues(Vec<UnsupportedValue>);

impl OpenValues {
    pub(crate) fn of(meta: &ObjectMeta) -> Self {
        Self(unsupported_values(meta))
    }

    /// A problem for the whole route: a value outside any rule.
    pub(crate) fn route_problem(&self) -> Option<Problem> {
        let outside: Vec<String> = self
            .0
            .iter()
            .filter(|v| v.index_in(RULES).is_none())
            .map(UnsupportedValue::describe)
            .collect();
        (!outside.is_empty()).then(|| unsupported(outside.join("; ")))
    }

    /// Fails when rule `rule` holds a value outside its backendRefs' filters.
    pub(crate) fn check_rule(&self, rule: usize) -> Result<(), Problem> {
        let found: Vec<String> = self
            .0
            .iter()
            .filter(|v| v.index_in(RULES) == Some(rule) && !in_backend_filters(v, rule))
            .map(UnsupportedValue::describe)
            .collect();
        if found.is_empty() {
            Ok(())
        } else {
            Err(unsupported(found.join("; ")))
        }
    }

    /// Values inside the filters of backendRef `backend` of rule `rule`.
    pub(crate) fn backend_filters(&self, rule: usize, backend: usize) -> Vec<UnsupportedValue> {
        let prefix = format!("{RULES}[{rule}].backendRefs[{backend}].filters");
        self.0
            .iter()
            .filter(|v| v.path.starts_with(&prefix))
            .cloned()
            .collect()
    }
}

fn in_backend_filters(v: &UnsupportedValue, rule: usize) -> bool {
    let prefix = format!("{RULES}[{rule}].backendRefs[");
    v.path
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split_once(']'))
        .is_some_and(|(_, rest)| rest.starts_with(".filters"))
}
