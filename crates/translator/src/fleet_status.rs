//! The part of a Gateway's status that follows its provisioned Envoy fleet in a cluster
//! (`Options::provisioned`): whether `Programmed` waits for an address or an available
//! replica, and `status.addresses`. Nothing else of a translation depends on the fleet, so
//! when only the fleet changed (a Deployment became available, a Service got its address) the
//! runtime refreshes the last statuses with [`refresh_fleet_status`] instead of translating
//! every route again.

use ferrogate_ir::GatewayKey;
use ferrogate_status::{Condition, GatewayAddress, GatewayStatus, StatusSet};

use crate::conditions::{reasons, types};
use crate::{Options, Provisioned};

/// The fleet-dependent facts of one Gateway: its Envoy fleet as observed, and the static
/// addresses the controller assigned it from the load balancer's pools.
pub(crate) struct Fleet<'a> {
    observed: Provisioned,
    assigned: &'a [String],
}

/// The fleet of `key` when the options describe a cluster (`None` in standalone mode).
pub(crate) fn fleet_of<'a>(options: &'a Options, key: &GatewayKey) -> Option<Fleet<'a>> {
    let observed = options
        .provisioned
        .as_ref()?
        .get(key)
        .cloned()
        .unwrap_or_default();
    let assigned = options
        .static_addresses
        .get(key)
        .map_or(&[][..], Vec::as_slice);
    Some(Fleet { observed, assigned })
}

/// `Programmed` of an accepted Gateway with a usable address: what its fleet allows.
pub(crate) fn fleet_programmed(fleet: Option<&Fleet>) -> Condition {
    let Some(fleet) = fleet else {
        return programmed_ok();
    };
    let missing: Vec<&str> = fleet
        .assigned
        .iter()
        .filter(|a| !fleet.observed.addresses.contains(a))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        // Assigned by us from the pools, not yet held by the Service: the load balancer has
        // not caught up (not AddressNotAssigned: the address is the Gateway's).
        Condition::not(
            types::PROGRAMMED,
            reasons::PENDING,
            format!(
                "Waiting for the load balancer to give the Gateway's Service {}",
                missing.join(", ")
            ),
        )
    } else if fleet.observed.addresses.is_empty() {
        Condition::not(
            types::PROGRAMMED,
            reasons::ADDRESS_NOT_ASSIGNED,
            "Waiting for the Gateway's Service to get an address",
        )
    } else if !fleet.observed.available {
        Condition::not(
            types::PROGRAMMED,
            reasons::PENDING,
            "Waiting for an available Envoy replica",
        )
    } else {
        programmed_ok()
    }
}

fn programmed_ok() -> Condition {
    Condition::ok(
        types::PROGRAMMED,
        reasons::PROGRAMMED,
        "Configuration sent to the data plane",
    )
}

/// `status.addresses` of a Gateway with a fleet: the static addresses assigned to it (they
/// are its addresses as soon as they are judged usable, as a Service's `externalIPs` would
/// be; none when its requested addresses are not usable after all), then whatever else its
/// Service reports.
pub(crate) fn fleet_addresses(fleet: &Fleet, addresses_unusable: bool) -> Vec<GatewayAddress> {
    let assigned = if addresses_unusable {
        &[][..]
    } else {
        fleet.assigned
    };
    let mut out: Vec<&String> = assigned.iter().collect();
    for a in &fleet.observed.addresses {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out.into_iter().map(|a| gateway_address(a)).collect()
}

/// A status address: `IPAddress` when it parses as one, else `Hostname` (cloud load
/// balancers report names).
pub(crate) fn gateway_address(value: &str) -> GatewayAddress {
    let type_ = if value.parse::<std::net::IpAddr>().is_ok() {
        "IPAddress"
    } else {
        "Hostname"
    };
    GatewayAddress {
        type_: type_.into(),
        value: value.to_string(),
    }
}

/// Rewrites the fleet-dependent part of every Gateway status in `statuses` (translated with
/// the same snapshot and options that differ at most in `provisioned`) as a translation with
/// `options` would give it. Gateways whose `Programmed` is decided by something else (not
/// accepted, an unusable address) keep it.
pub fn refresh_fleet_status(statuses: &mut StatusSet, options: &Options) {
    for status in &mut statuses.gateways {
        refresh_one(status, options);
    }
}

fn refresh_one(status: &mut GatewayStatus, options: &Options) {
    let key = GatewayKey::new(status.namespace.clone(), status.name.clone());
    let Some(fleet) = fleet_of(options, &key) else {
        return;
    };
    let Some(programmed) = status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == types::PROGRAMMED)
    else {
        status.addresses = fleet_addresses(&fleet, false);
        return;
    };
    // As the translation decided (`AddressNotUsable` is never the fleet's to change).
    let unusable = programmed.reason == reasons::ADDRESS_NOT_USABLE;
    status.addresses = fleet_addresses(&fleet, unusable);
    let follows_fleet = [
        reasons::ADDRESS_NOT_ASSIGNED,
        reasons::PENDING,
        reasons::PROGRAMMED,
    ]
    .contains(&&*programmed.reason);
    if follows_fleet {
        let generation = programmed.observed_generation;
        *programmed = fleet_programmed(Some(&fleet)).at_generation(generation);
    }
}
