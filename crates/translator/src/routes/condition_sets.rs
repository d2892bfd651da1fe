//! One shared list per distinct set of a route parent's conditions.
//!
//! Nearly every route of a translation says the same about each parent (`Accepted` and
//! `ResolvedRefs` true, at the same generation), and every route's status is kept between
//! translations. Sharing the list keeps one copy of those two or three conditions (96 bytes
//! each) instead of one per route.

use std::collections::HashSet;
use std::sync::Arc;

use ferrogate_status::Condition;
use foldhash::fast::RandomState;

/// The condition lists handed out during one translation.
#[derive(Default)]
pub(crate) struct ConditionSets(HashSet<Arc<[Condition]>, RandomState>);

impl ConditionSets {
    /// The shared list equal to `conditions`.
    pub(crate) fn share(&mut self, conditions: Vec<Condition>) -> Arc<[Condition]> {
        if let Some(shared) = self.0.get(conditions.as_slice()) {
            return Arc::clone(shared);
        }
        let shared: Arc<[Condition]> = conditions.into();
        self.0.insert(Arc::clone(&shared));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_lists_share_one_allocation_and_different_ones_do_not() {
        let accepted = || Condition::ok("Accepted", "Accepted", "Route is accepted");
        let mut sets = ConditionSets::default();
        let a = sets.share(vec![accepted().at_generation(Some(1))]);
        let b = sets.share(vec![accepted().at_generation(Some(1))]);
        let c = sets.share(vec![accepted().at_generation(Some(2))]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c[0].observed_generation, Some(2));
    }
}
