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
    /// Slots a previous run used (after a crash: the Envoys it left running are adopted only
    /// if their ports, and so their bootstraps, stay the same). Used before the first assign.
    pub(crate) fn seeded(previous: BTreeMap<GatewayKey, u32>) -> Self {
        let mut assigned = BTreeMap::new();
        let mut used = std::collections::BTreeSet::new();
        for (key, slot) in previous {
            if used.insert(slot) {
                assigned.insert(key, slot);
            }
        }
        Self { assigned }
    }

    /// Assigns slots to exactly `gateways` (dropping the others) and returns them.
    pub(crate) fn assign<'a>(
        &mut self,
        gateways: impl Iterator<Item = &'a GatewayKey>,
    ) -> BTreeMap<GatewayKey, u32> {
        let wanted: Vec<&GatewayKey> = gateways.collect();
        self.assigned.retain(|k, _| wanted.contains(&k));
        for key in wanted {
            if !self.assigned.contains_key(key) {
                let used: Vec<u32> = self.assigned.values().copied().collect();
                let free = (0..)
                    .find(|s| !used.contains(s))
                    .expect("slots are unbounded");
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
        let (a, b, c) = (
            GatewayKey::new("n", "a"),
            GatewayKey::new("n", "b"),
            GatewayKey::new("n", "c"),
        );
        let mut slots = Slots::default();
        assert_eq!(slots.assign([&a, &b].into_iter())[&b], 1);
        let after = slots.assign([&b, &c].into_iter());
        assert_eq!(after[&b], 1);
        assert_eq!(after[&c], 0);
    }

    #[test]
    fn seeded_slots_survive_the_first_assignment() {
        let (a, b, c) = (
            GatewayKey::new("n", "a"),
            GatewayKey::new("n", "b"),
            GatewayKey::new("n", "c"),
        );
        let mut slots = Slots::seeded(BTreeMap::from([(b.clone(), 2), (c.clone(), 2)]));
        let assigned = slots.assign([&a, &b, &c].into_iter());
        assert_eq!(assigned[&b], 2, "kept from the previous run");
        assert_eq!(assigned[&a], 0);
        assert_eq!(
            assigned[&c], 1,
            "a clashing record is not trusted; c gets a free slot"
        );
    }
}
