//! `EnvoyProxy` parameters: the GatewayClass `parametersRef` gives the base, the Gateway's
//! `spec.infrastructure.parametersRef` overrides it field by field
//! ([`ferrogate_api::envoyproxy::merge`]).
//!
//! Only Ferrogate's own kind (`gateway.ferrogate.dev/EnvoyProxy`) is a valid referent. A
//! GatewayClass whose reference is invalid is not accepted (`InvalidParameters`, as the
//! Gateway API asks). A Gateway whose reference is invalid says so in its `Accepted`
//! condition (`InvalidParameters`) but keeps serving with its class's parameters: a typo in
//! a reference must not tear down a running fleet.

use ferrogate_api::envoyproxy::{EnvoyProxySpec, merge};
use ferrogate_api::gateway::Gateway;
use ferrogate_store::Snapshot;

use crate::conditions::{Problem, reasons};

/// Group of the only parameters kind Ferrogate reads.
const GROUP: &str = "gateway.ferrogate.dev";
/// The only parameters kind Ferrogate reads.
const KIND: &str = "EnvoyProxy";

/// The parameters a GatewayClass references, or why they cannot be used (`Accepted:
/// False`, `InvalidParameters`).
pub(crate) fn for_class(
    snapshot: &Snapshot,
    class_name: &str,
    reference: Option<(&str, &str, &str, Option<&str>)>,
) -> Result<EnvoyProxySpec, Problem> {
    let Some((group, kind, name, namespace)) = reference else {
        return Ok(EnvoyProxySpec::default());
    };
    check_kind(group, kind)
        .and_then(|()| match namespace.filter(|n| !n.is_empty()) {
            Some(namespace) => lookup(snapshot, namespace, name),
            None => Err(format!(
                "GatewayClass {class_name}: parametersRef to {KIND} {name} needs a namespace ({KIND} is namespaced)"
            )),
        })
        .map_err(invalid_parameters)
}

/// The Gateway's effective parameters: its class's, overridden by its own reference. The
/// problem says why its own reference could not be used (the class's parameters apply then).
pub(crate) fn for_gateway(
    snapshot: &Snapshot,
    gateway: &Gateway,
    namespace: &str,
    class: &EnvoyProxySpec,
) -> (EnvoyProxySpec, Option<Problem>) {
    let Some(r) = gateway
        .spec
        .infrastructure
        .as_ref()
        .and_then(|i| i.parameters_ref.as_ref())
    else {
        return (class.clone(), None);
    };
    match check_kind(&r.group, &r.kind).and_then(|()| lookup(snapshot, namespace, &r.name)) {
        Ok(own) => (merge(class, &own), None),
        Err(why) => (
            class.clone(),
            Some(invalid_parameters(format!(
                "infrastructure.parametersRef: {why}; using the GatewayClass's parameters"
            ))),
        ),
    }
}

fn invalid_parameters(message: String) -> Problem {
    Problem::not_accepted(reasons::INVALID_PARAMETERS, message)
}

fn check_kind(group: &str, kind: &str) -> Result<(), String> {
    if group == GROUP && kind == KIND {
        Ok(())
    } else {
        let referent = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{group}/{kind}")
        };
        Err(format!(
            "{referent} is not a supported parameters kind (only {GROUP}/{KIND})"
        ))
    }
}

fn lookup(snapshot: &Snapshot, namespace: &str, name: &str) -> Result<EnvoyProxySpec, String> {
    let proxy = snapshot
        .envoy_proxies
        .get(namespace, name)
        .ok_or_else(|| format!("{KIND} {namespace}/{name} not found"))?;
    // Enum values the types do not know were substituted when it was read: malformed
    // parameters, never silently replaced ones.
    let values = ferrogate_store::unsupported_values(&proxy.metadata);
    if !values.is_empty() {
        let found: Vec<String> = values
            .iter()
            .map(ferrogate_store::UnsupportedValue::describe)
            .collect();
        return Err(format!("{KIND} {namespace}/{name}: {}", found.join("; ")));
    }
    Ok(proxy.spec.clone())
}
