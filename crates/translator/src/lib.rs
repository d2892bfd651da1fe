//! ferrogate-translator: the Gateway API semantics. A pure function from a store snapshot
//! to, per Gateway, the route graph (IR) and the infra IR, plus the status of every object
//! it judged.
//!
//! Owns: which GatewayClasses are ours, listener validation, hostname intersection,
//! allowedRoutes, ReferenceGrant checks, route precedence, filters, weights, backend
//! resolution to endpoints, and every status condition and reason.
//!
//! Must not: do I/O, read clocks or use randomness. The same snapshot and options give
//! byte-identical output. Problems in the input are never `Err`: they become status
//! conditions, and the broken part is left out of the IR (quarantined) so the rest of its
//! Gateway keeps serving.
#![forbid(unsafe_code)]

mod backend;
mod backend_tls;
mod certificates;
mod conditions;
mod frontend_tls;
mod gateway;
mod gatewayclass;
mod hostname;
mod ir_build;
mod listener;
mod namespaces;
mod options;
mod precedence;
mod refs;
mod routes;

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrogate_ir::{GatewayIr, GatewayKey, InfraIr};
use ferrogate_status::StatusSet;
use ferrogate_store::Snapshot;

pub use options::Options;

/// What one translation produces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// Route graph of every accepted Gateway of our classes.
    pub gateways: BTreeMap<GatewayKey, Arc<GatewayIr>>,
    /// Infrastructure of every accepted Gateway of our classes.
    pub infra: BTreeMap<GatewayKey, InfraIr>,
    /// Statuses of every object judged.
    pub statuses: StatusSet,
}

/// Translates a whole snapshot.
pub fn translate(snapshot: &Snapshot, options: &Options) -> Translation {
    let classes = gatewayclass::translate(snapshot, options);
    let mut gateways = gateway::collect(snapshot, &classes);
    let mut routes = routes::translate(snapshot, &mut gateways);
    let policy_statuses = backend_tls::apply(snapshot, &mut routes, &gateways);

    let mut translation = Translation::default();
    translation.statuses.gateway_classes = classes.statuses;
    for gw in &gateways {
        // A rejected Gateway, or one that cannot get the address it asks for, is not
        // programmed at all: its IR is not even built.
        let addressable = !options.unusable_addresses.contains_key(&gw.key);
        if addressable && gw.rejected.is_none() {
            let (ir, infra) = ir_build::build(gw, &routes, options);
            translation.gateways.insert(gw.key.clone(), Arc::new(ir));
            translation.infra.insert(gw.key.clone(), infra);
        }
        translation.statuses.gateways.push(gw.status(options));
        translation.statuses.listener_sets.extend(gw.listener_set_statuses());
    }
    translation.statuses.routes = routes.statuses;
    translation.statuses.backend_tls_policies = policy_statuses;
    translation
}
