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

mod access_log;
mod backend;
mod backend_tls;
mod certificates;
mod conditions;
mod fleet_status;
mod frontend_tls;
mod gateway;
mod gatewayclass;
mod hostname;
mod incremental;
mod ir_build;
mod ir_route_memo;
mod listener;
mod namespaces;
mod options;
mod parameters;
mod precedence;
pub mod re2_size;
mod refs;
mod route_cache;
mod route_edits;
mod route_order;
mod routes;
mod shared;

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrogate_ir::{GatewayIr, GatewayKey, InfraIr};
use ferrogate_status::StatusSet;
use ferrogate_store::Snapshot;

pub use fleet_status::refresh_fleet_status;
pub use incremental::Incremental;
pub use options::{Options, Provisioned};

/// What [`refresh_endpoints`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointRefresh {
    /// No backend's endpoints changed.
    Unchanged,
    /// The IR with every backend's endpoints as a full translation would give them now.
    Changed(GatewayIr),
    /// Only a full translation can tell (see [`refresh_endpoints`]).
    NeedsFullTranslation,
}

/// The EDS-only path: re-resolves the endpoints of every backend of `ir`, the IR a full
/// translation made before a change that touched nothing but EndpointSlices, against the
/// `snapshot` after that change. Everything else in the IR, and every status, is what the
/// full translation made (EndpointSlices feed nothing else, apart from the problem of slices
/// mixing address types, which is a status and so answers
/// [`EndpointRefresh::NeedsFullTranslation`]). Costs O(backends x EndpointSlices), nothing
/// per route.
pub fn refresh_endpoints(snapshot: &Snapshot, ir: &GatewayIr) -> EndpointRefresh {
    let mut next: Option<GatewayIr> = None;
    for (i, b) in ir.backends.iter().enumerate() {
        let Some(endpoints) = backend::endpoints_of(snapshot, b) else {
            return EndpointRefresh::NeedsFullTranslation;
        };
        if *endpoints != *b.endpoints {
            next.get_or_insert_with(|| ir.clone()).backends[i].endpoints = endpoints.into();
        }
    }
    next.map_or(EndpointRefresh::Unchanged, EndpointRefresh::Changed)
}

/// What one translation produces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// Route graph of every accepted Gateway of our classes.
    pub gateways: BTreeMap<GatewayKey, Arc<GatewayIr>>,
    /// Infrastructure of every accepted Gateway of our classes.
    pub infra: BTreeMap<GatewayKey, InfraIr>,
    /// Effective EnvoyProxy parameters of every Gateway in `infra`.
    pub parameters: BTreeMap<GatewayKey, ferrogate_api::envoyproxy::EnvoyProxySpec>,
    /// Statuses of every object judged.
    pub statuses: StatusSet,
}

/// Translates a whole snapshot. [`Incremental`] gives the same output for a sequence of
/// snapshots at the cost of what changed between them.
pub fn translate(snapshot: &Snapshot, options: &Options) -> Translation {
    translate_with(snapshot, options, None)
}

/// A translation that reuses what `kept` holds from the last one (already invalidated for
/// what changed since) and leaves there what the next one may reuse.
fn translate_with(
    snapshot: &Snapshot,
    options: &Options,
    mut kept: Option<&mut incremental::Kept>,
) -> Translation {
    let classes = gatewayclass::translate(snapshot, options);
    let mut gateways = gateway::collect(snapshot, &classes);
    let (mut routes, policy_statuses) = routes::translate(
        &backend::Resolver::new(snapshot),
        &mut gateways,
        kept.as_deref_mut().map(|k| &mut k.routes),
    );

    let mut translation = Translation::default();
    translation.statuses.gateway_classes = classes.statuses;
    let mut built = BTreeMap::new();
    let attached = routes.by_gateway();
    for gw in &gateways {
        let attached = attached.get(&gw.key).map_or(&[][..], Vec::as_slice);
        // A rejected Gateway, or one that cannot get the address it asks for, is not
        // programmed at all: its IR is not even built.
        let addressable = !options.unusable_addresses.contains_key(&gw.key);
        if addressable && gw.rejected.is_none() {
            let before = kept.as_deref_mut().and_then(|k| k.gateways.remove(&gw.key));
            let (ir, infra, memo) = match before {
                Some(b) if b.still_valid(&gw.key, attached, &routes) => (b.ir, b.infra, b.memo),
                before => {
                    let mut memo = before.map(|b| b.memo).unwrap_or_default();
                    let (ir, infra) = ir_build::build(gw, attached, &routes, options, &mut memo);
                    (Arc::new(ir), infra, memo)
                }
            };
            if kept.is_some() {
                built.insert(gw.key.clone(), (Arc::clone(&ir), infra.clone(), memo));
            }
            translation.gateways.insert(gw.key.clone(), ir);
            translation.infra.insert(gw.key.clone(), infra);
            translation
                .parameters
                .insert(gw.key.clone(), gw.parameters.clone());
        }
        translation.statuses.gateways.push(gw.status(options));
        translation
            .statuses
            .listener_sets
            .extend(gw.listener_set_statuses());
    }
    drop(attached);
    translation.statuses.routes = std::mem::take(&mut routes.statuses).into_iter().collect();
    translation.statuses.backend_tls_policies = policy_statuses;
    if let Some(kept) = kept {
        kept.settled = Some(route_edits::Settled {
            gateway_keys: gateways.iter().map(|g| g.key.clone()).collect(),
            counts: gateways
                .iter()
                .map(|g| g.listeners.iter().map(|l| l.attached_routes).collect())
                .collect(),
            routes: routes.ir_inputs(),
            translation: translation.clone(),
        });
        kept.gateways = incremental::keep(built, routes);
    }
    translation
}
