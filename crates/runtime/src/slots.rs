//! Stable per-Gateway slots for standalone mode: several Envoys share one host, so each
//! Gateway's Envoy gets its own admin/stats/readiness ports from its slot. A Gateway keeps
//! its slot while it exists; freed slots are reused.

use std::collections::BTreeMap;

use ferrogate_ir::GatewayKey;

/// Slot assignments.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    assigned: BTreeMap<GatewayKey, u32>,
}

impl Slots {
    /// Assigns slots to exactly `gateways` (dropping the others) and returns them.
    pub(crate) fn assign<'a>(&mut self, gateways: impl Iterator<Item = &'a GatewayKey>) -> BTreeMap<GatewayKey, u32> {
        let wanted: Vec<&GatewayKey> = gateways.collect();
        self.assigned.retain(|k, _| wanted.contains(&k));
        for key in wanted {
            if !self.assigned.contains_key(key) {
                let used: Vec<u32> = self.assigned.values().copied().collect();
                let free = (0..).find(|s| !used.contains(s)).expect("slots are unbounded");
                self.assigned.insert(key.clone(), free);
            }
        }
        self.assigned.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_keeps_its_slot_and_freed_slots_are_reused() {
        let (a, b, c) = (GatewayKey::new("n", "a"), GatewayKey::new("n", "b"), GatewayKey::new("n", "c"));
        let mut slots = Slots::default();
        assert_eq!(slots.assign([&a, &b].into_iter())[&b], 1);
        let after = slots.assign([&b, &c].into_iter());
        assert_eq!(after[&b], 1);
        assert_eq!(after[&c], 0);
    }
}
