//! Stable per-Gateway slots for standalone mode: several Envoys share one host, so each
//! Gateway's Envoy gets its own admin/stats/readiness ports from its slot. A Gateway keeps
//! its slot while it exists; freed slots are reused.
//!
//! Slots are bounded by the port range (`HostPortPlan::max_slots`). When there are more
//! Gateways than slots, the ones that already have a slot keep it and the others, in key
//! order (so the outcome does not depend on the order events arrived in), get the free
//! slots until none is left; the rest are not placed, and the caller reports them.

use std::collections::{BTreeMap, BTreeSet};

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

    /// Assigns slots below `capacity` to `gateways` (dropping the Gateways not named) and
    /// returns them; a Gateway missing from the result could not be placed.
    pub(crate) fn assign<'a>(
        &mut self,
        gateways: impl Iterator<Item = &'a GatewayKey>,
        capacity: u32,
    ) -> BTreeMap<GatewayKey, u32> {
        let mut wanted: Vec<&GatewayKey> = gateways.collect();
        wanted.sort();
        let wanted_set: BTreeSet<&GatewayKey> = wanted.iter().copied().collect();
        self.assigned
            .retain(|k, slot| wanted_set.contains(k) && *slot < capacity);
        let mut used: BTreeSet<u32> = self.assigned.values().copied().collect();
        let mut free = (0..capacity)
            .filter(|s| !used.contains(s))
            .collect::<Vec<_>>()
            .into_iter();
        for key in wanted {
            if self.assigned.contains_key(key) {
                continue;
            }
            let Some(slot) = free.next() else { break };
            used.insert(slot);
            self.assigned.insert(key.clone(), slot);
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
        assert_eq!(slots.assign([&a, &b].into_iter(), 10)[&b], 1);
        let after = slots.assign([&b, &c].into_iter(), 10);
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
        let assigned = slots.assign([&a, &b, &c].into_iter(), 10);
        assert_eq!(assigned[&b], 2, "kept from the previous run");
        assert_eq!(assigned[&a], 0);
        assert_eq!(
            assigned[&c], 1,
            "a clashing record is not trusted; c gets a free slot"
        );
    }

    #[test]
    fn gateways_beyond_the_capacity_are_not_placed_and_placed_ones_keep_their_slot() {
        let keys: Vec<GatewayKey> = (0..5)
            .map(|i| GatewayKey::new("n", &format!("g{i}")))
            .collect();
        let mut slots = Slots::default();
        let placed = slots.assign(keys[2..].iter(), 2);
        assert_eq!(placed.len(), 2);
        assert_eq!((placed[&keys[2]], placed[&keys[3]]), (0, 1));
        // Earlier keys arriving later do not push out the placed ones.
        let placed = slots.assign(keys.iter().rev(), 2);
        assert_eq!(placed.len(), 2);
        assert!(!placed.contains_key(&keys[0]) && !placed.contains_key(&keys[4]));
        // A freed slot goes to the first unplaced Gateway in key order.
        let placed = slots.assign(keys.iter().filter(|k| **k != keys[3]), 2);
        assert_eq!(placed[&keys[0]], 1);
        // Nothing fits in a plan with no room at all; nothing panics either.
        assert!(Slots::default().assign(keys.iter(), 0).is_empty());
    }
}
