//! allowedRoutes.namespaces: which namespaces may attach routes to a listener.

use std::collections::BTreeMap;

use ferrogate_api::gateway::{
    GatewayListenersAllowedRoutesNamespacesFrom as From,
    GatewayListenersAllowedRoutesNamespacesSelector as Selector,
};
use ferrogate_store::Snapshot;

/// A listener's namespace policy, resolved against the snapshot's Namespaces.
#[derive(Clone, Debug)]
pub(crate) enum NamespacePolicy {
    /// Only the Gateway's namespace (the default).
    Same,
    /// Any namespace.
    All,
    /// Namespaces whose labels match. `None`: `from: Selector` without a selector, which
    /// the CRD's validation forbids but a file (or an API server without that rule) can
    /// hold; it admits no namespace rather than widening access to all of them.
    Selector(Option<Selector>),
}

impl NamespacePolicy {
    pub(crate) fn new(from: Option<&From>, selector: Option<&Selector>) -> Self {
        match from {
            Some(From::All) => Self::All,
            Some(From::Selector) => Self::Selector(selector.cloned()),
            Some(From::Same) | None => Self::Same,
        }
    }

    /// Checks a selector the way the API server would; an invalid one selects nothing.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let Self::Selector(selector) = self else {
            return Ok(());
        };
        let Some(selector) = selector else {
            return Err("The allowedRoutes.namespaces.selector field must be specified when allowedRoutes.namespaces.from is set to \"Selector\".".into());
        };
        for e in selector.match_expressions.iter().flatten() {
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(format!(
                        "The allowedRoutes.namespaces.selector could not be parsed: values set must be non-empty for {}",
                        e.operator
                    ));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err("The allowedRoutes.namespaces.selector could not be parsed: values set must be empty for exists and does not exist".into());
                }
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => {
                    return Err(format!(
                        "The allowedRoutes.namespaces.selector could not be parsed: unknown operator {other}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether a route in `route_ns` may attach to a listener of a Gateway in `gateway_ns`.
    pub(crate) fn allows(&self, snapshot: &Snapshot, gateway_ns: &str, route_ns: &str) -> bool {
        match self {
            Self::Same => gateway_ns == route_ns,
            Self::All => true,
            Self::Selector(None) => false,
            Self::Selector(Some(selector)) => {
                let labels = snapshot
                    .namespaces
                    .get("", route_ns)
                    .and_then(|ns| ns.metadata.labels.clone())
                    .unwrap_or_default();
                selector_matches(selector, &labels)
            }
        }
    }
}

pub(crate) fn selector_matches(selector: &Selector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false, // an unknown operator selects nothing
        }
    });
    labels_ok && expressions_ok
}
