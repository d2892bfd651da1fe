//! GatewayClass: which classes are ours, and their `Accepted` condition.

use std::collections::{BTreeMap, BTreeSet};

use ferrogate_api::envoyproxy::EnvoyProxySpec;

use ferrogate_api::features::SUPPORTED_FEATURES;

/// Claimed only where requested addresses are judged (see `Options::static_addresses_judged`).
const STATIC_ADDRESSES: &str = "GatewayStaticAddresses";
use ferrogate_status::{Condition, GatewayClassStatus, SupportedFeature};
use ferrogate_store::Snapshot;

use crate::Options;
use crate::conditions::{reasons, types};

/// Classes we own, and their statuses.
pub(crate) struct Classes {
    /// Names of our classes that are accepted (their Gateways get translated).
    pub accepted: BTreeSet<String>,
    /// EnvoyProxy parameters of each accepted class (defaults when it references none).
    pub parameters: BTreeMap<String, EnvoyProxySpec>,
    /// Status of every class we own.
    pub statuses: Vec<GatewayClassStatus>,
}

pub(crate) fn translate(snapshot: &Snapshot, options: &Options) -> Classes {
    let mut classes = Classes {
        accepted: BTreeSet::new(),
        parameters: BTreeMap::new(),
        statuses: Vec::new(),
    };
    for (key, class) in snapshot.gateway_classes.in_order() {
        if class.spec.controller_name != options.controller_name {
            continue; // another controller's class: not ours to judge
        }
        let generation = class.metadata.generation;
        let reference = class.spec.parameters_ref.as_ref().map(|p| {
            (
                p.group.as_str(),
                p.kind.as_str(),
                p.name.as_str(),
                p.namespace.as_deref(),
            )
        });
        let mut supported_features = Vec::new();
        let accepted = match crate::parameters::for_class(snapshot, &key.name, reference) {
            Ok(parameters) => {
                classes.accepted.insert(key.name.clone());
                classes.parameters.insert(key.name.clone(), parameters);
                supported_features = SUPPORTED_FEATURES
                    .iter()
                    .filter(|f| options.static_addresses_judged || **f != STATIC_ADDRESSES)
                    .map(|f| SupportedFeature {
                        name: (*f).to_string(),
                    })
                    .collect();
                Condition::ok(
                    types::ACCEPTED,
                    reasons::ACCEPTED,
                    "GatewayClass is accepted",
                )
            }
            Err(problem) => problem.condition(),
        };
        classes.statuses.push(GatewayClassStatus {
            name: key.name.clone(),
            conditions: vec![accepted.at_generation(generation)],
            supported_features,
        });
    }
    classes
}
