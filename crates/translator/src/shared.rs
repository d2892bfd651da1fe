//! One shared copy per distinct value, for what every route keeps and most routes have alike.
//!
//! A translation converts thousands of routes whose parentRefs (the Gateway they name) and
//! status conditions (`Accepted` and `ResolvedRefs` true, at the same generation) are equal,
//! and keeps each route's conversion and status. Handing out one `Arc` per distinct value
//! keeps one copy instead of one per route (a `ParentRef` is 128 bytes, a condition 96).
//! The set lives as long as one translation; kept routes keep their `Arc`s.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use foldhash::fast::RandomState;

/// The values handed out so far.
pub(crate) struct Shared<T: ?Sized>(HashSet<Arc<T>, RandomState>);

impl<T: ?Sized> Default for Shared<T> {
    fn default() -> Self {
        Self(HashSet::default())
    }
}

impl<T: ?Sized + Eq + Hash> Shared<T> {
    /// The shared value equal to `value` (`value` itself, shared, when it is the first).
    pub(crate) fn share<V: Borrow<T> + Into<Arc<T>>>(&mut self, value: V) -> Arc<T> {
        if let Some(shared) = self.0.get(value.borrow()) {
            return Arc::clone(shared);
        }
        let shared: Arc<T> = value.into();
        self.0.insert(Arc::clone(&shared));
        shared
    }
}

#[cfg(test)]
mod tests {
    use ferrogate_status::{Condition, ParentRef};

    use super::*;

    #[test]
    fn equal_condition_lists_share_one_allocation_and_different_ones_do_not() {
        let accepted = || Condition::ok("Accepted", "Accepted", "Route is accepted");
        let mut lists = Shared::<[Condition]>::default();
        let a = lists.share(vec![accepted().at_generation(Some(1))]);
        let b = lists.share(vec![accepted().at_generation(Some(1))]);
        let c = lists.share(vec![accepted().at_generation(Some(2))]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c[0].observed_generation, Some(2));
    }

    #[test]
    fn equal_parent_refs_share_one_allocation() {
        let parent = |section: Option<&str>| ParentRef {
            name: "gw".into(),
            section_name: section.map(Into::into),
            ..Default::default()
        };
        let mut parents = Shared::<ParentRef>::default();
        let a = parents.share(parent(None));
        let b = parents.share(parent(None));
        let c = parents.share(parent(Some("http")));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.section_name.as_deref(), Some("http"));
    }
}
