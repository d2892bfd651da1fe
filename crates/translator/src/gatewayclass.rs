//! GatewayClass: which classes are ours, and their `Accepted` condition.

use std::collections::BTreeSet;

use ferrogate_status::{Condition, GatewayClassStatus};
use ferrogate_store::Snapshot;

use crate::Options;
use crate::conditions::{reasons, types};

/// Classes we own, and their statuses.
pub(crate) struct Classes {
    /// Names of our classes that are accepted (their Gateways get translated).
    pub accepted: BTreeSet<String>,
    /// Status of every class we own.
    pub statuses: Vec<GatewayClassStatus>,
}

pub(crate) fn translate(snapshot: &Snapshot, options: &Options) -> Classes {
    let mut classes = Classes { accepted: BTreeSet::new(), statuses: Vec::new() };
    for (key, class) in snapshot.gateway_classes.in_order() {
        if class.spec.controller_name != options.controller_name {
            continue; // another controller's class: not ours to judge
        }
        let generation = class.metadata.generation;
        let accepted = match &class.spec.parameters_ref {
            None => Condition::ok(types::ACCEPTED, reasons::ACCEPTED, "GatewayClass is accepted"),
            // EnvoyProxy parameters are not read yet: say so rather than ignore them.
            Some(p) => Condition::not(
                types::ACCEPTED,
                reasons::INVALID_PARAMETERS,
                format!("parametersRef {}/{} {} is not supported", p.group, p.kind, p.name),
            ),
        };
        if accepted.status == ferrogate_status::ConditionStatus::True {
            classes.accepted.insert(key.name.clone());
        }
        classes.statuses.push(GatewayClassStatus {
            name: key.name.clone(),
            conditions: vec![accepted.at_generation(generation)],
        });
    }
    classes
}
