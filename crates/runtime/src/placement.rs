//! Standalone Gateways that get no port block. The host's port range holds a bounded
//! number of slots (`HostPortPlan::max_slots`); a Gateway past that runs no Envoy and gets
//! no xDS snapshot, and its status says so (`Programmed: False`, reason `NoResources`, the
//! Gateway API's reason for "not enough resources to program it") instead of the control
//! plane stopping and taking every running Envoy with it.

use std::collections::BTreeSet;

use ferrogate_infra_render::HostPortPlan;
use ferrogate_ir::GatewayKey;
use ferrogate_status::{Condition, StatusSet};

/// Gateway API reason for `Programmed: False` when resources are lacking.
pub(crate) const REASON: &str = "NoResources";

/// Sets `Programmed: False` (reason [`REASON`]) on the Gateways in `unplaced`, and on
/// their listeners, keeping each condition's observed generation.
pub(crate) fn mark_unplaced(
    statuses: &mut StatusSet,
    unplaced: &BTreeSet<GatewayKey>,
    plan: &HostPortPlan,
) {
    if unplaced.is_empty() {
        return;
    }
    let message = format!(
        "no free port block for this Gateway's Envoy: --envoy-base-port {} with {} ports per Gateway has room for {} Gateways below port 65535, and they are taken; delete a Gateway or lower --envoy-base-port",
        plan.base,
        plan.stride,
        plan.max_slots()
    );
    for gateway in &mut statuses.gateways {
        let key = GatewayKey::new(&gateway.namespace, &gateway.name);
        if !unplaced.contains(&key) {
            continue;
        }
        set_not_programmed(&mut gateway.conditions, &message);
        for listener in &mut gateway.listeners {
            set_not_programmed(&mut listener.conditions, &message);
        }
    }
}

fn set_not_programmed(conditions: &mut Vec<Condition>, message: &str) {
    let generation = conditions.first().and_then(|c| c.observed_generation);
    let condition =
        Condition::not("Programmed", REASON, message.to_string()).at_generation(generation);
    match conditions.iter_mut().find(|c| c.type_ == "Programmed") {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}
