//! Gateways of our classes: their listeners and Gateway-level status.

use std::sync::Arc;

use ferrogate_api::gateway::Gateway;
use ferrogate_ir::GatewayKey;
use ferrogate_status::{Condition, GatewayAddress, GatewayStatus};
use ferrogate_store::Snapshot;

use crate::Options;
use crate::conditions::{reasons, types};
use crate::gatewayclass::Classes;
use crate::listener::{ListenerCtx, mark_conflicts};

/// A Gateway being translated.
pub(crate) struct GatewayCtx {
    pub key: GatewayKey,
    pub gateway: Arc<Gateway>,
    pub listeners: Vec<ListenerCtx>,
}

/// Every Gateway of an accepted class of ours, in input order, with listeners judged.
pub(crate) fn collect(snapshot: &Snapshot, _options: &Options, classes: &Classes) -> Vec<GatewayCtx> {
    let mut out = Vec::new();
    for (key, gateway) in snapshot.gateways.in_order() {
        if !classes.accepted.contains(&gateway.spec.gateway_class_name) {
            continue;
        }
        let mut listeners: Vec<ListenerCtx> = gateway.spec.listeners.iter().map(ListenerCtx::new).collect();
        mark_conflicts(&mut listeners);
        out.push(GatewayCtx {
            key: GatewayKey::new(key.namespace.clone(), key.name.clone()),
            gateway: gateway.clone(),
            listeners,
        });
    }
    out
}

impl GatewayCtx {
    /// The address the Gateway's Envoy binds.
    pub(crate) fn bind_address<'a>(&self, options: &'a Options) -> &'a str {
        options.assigned_addresses.get(&self.key).map_or(options.default_bind_address.as_str(), |a| a.as_str())
    }

    pub(crate) fn status(&self, options: &Options) -> GatewayStatus {
        let generation = self.gateway.metadata.generation;
        let any_ready = self.listeners.iter().any(ListenerCtx::is_ready);
        let all_ready = self.listeners.iter().all(ListenerCtx::is_ready);
        let accepted = if all_ready {
            Condition::ok(types::ACCEPTED, reasons::ACCEPTED, "The Gateway has been scheduled by Ferrogate")
        } else {
            // Still accepted: valid listeners keep serving while invalid ones are reported.
            Condition::ok(types::ACCEPTED, reasons::LISTENERS_NOT_VALID, "Some listeners are not valid, see listener conditions")
        };
        let programmed = if any_ready {
            Condition::ok(types::PROGRAMMED, reasons::PROGRAMMED, "Configuration sent to the data plane")
        } else {
            Condition::not(types::PROGRAMMED, reasons::INVALID, "No listener is valid")
        };
        let address = options.assigned_addresses.get(&self.key).or(options.default_status_address.as_ref());
        GatewayStatus {
            namespace: self.key.namespace.clone(),
            name: self.key.name.clone(),
            conditions: vec![accepted.at_generation(generation), programmed.at_generation(generation)],
            attached_listener_sets: None,
            addresses: address
                .map(|a| vec![GatewayAddress { type_: "IPAddress".into(), value: a.clone() }])
                .unwrap_or_default(),
            listeners: self.listeners.iter().map(|l| l.status(generation)).collect(),
        }
    }
}
