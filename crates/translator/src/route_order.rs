//! The order of one virtual host's route entries, kept between builds of its Gateway.
//!
//! Sorting every entry of a virtual host by precedence is the costliest step of a rebuild
//! after a one-route edit (2000 entries a host at 10 000 routes, most of them tied down to
//! `namespace/name`). An entry's position depends only on its own conversion (see
//! `precedence`), and a conversion never changes once made, so the last build's order with
//! the removed entries taken out is still sorted: only the new entries need a place, found
//! by binary search. When many entries are new, one sort is cheaper, and it is the same
//! order, because `precedence::compare` is a total order over the entries of one host.
//!
//! Each kept entry holds its conversion, so an address in an entry's identity cannot be
//! reused by another conversion while the order exists.
//!
//! Most hosts are untouched by a one-route edit: the same entries arrive in the same order.
//! Such a host keeps the IR routes of its last build ([`RouteOrders::unchanged`]), found by
//! comparing the entries' identities in arrival order, without hashing or sorting anything.

use std::collections::HashMap;
use std::sync::Arc;

use ferrogate_ir::HttpRoute;
use foldhash::fast::RandomState;

use crate::precedence::{self, EntryKey};
use crate::routes::{ConvertedRoute, ConvertedRule};

/// One match of one rule of a converted route: the route, the rule's position in its
/// `rules` and the match's position in the rule's `matches`.
#[derive(Clone)]
pub(crate) struct Entry {
    pub route: Arc<ConvertedRoute>,
    pub rule: usize,
    pub m: usize,
    /// Its IR route on this host's port, once built (none while a backend of the rule is
    /// blocked: that IR route is made again at every build).
    pub ir: Option<Arc<HttpRoute>>,
}

/// Who an entry is: (conversion address, rule position, match position).
pub(crate) type EntryId = (usize, usize, usize);

/// The identity of match `m` of rule position `rule` of `route`.
pub(crate) fn entry_id(route: &Arc<ConvertedRoute>, rule: usize, m: usize) -> EntryId {
    (Arc::as_ptr(route) as usize, rule, m)
}

/// Where a host's routes go: (first listener index of the group, port, host).
pub(crate) type HostId = (usize, u16, String);

impl Entry {
    fn id(&self) -> EntryId {
        entry_id(&self.route, self.rule, self.m)
    }

    pub(crate) fn rule(&self) -> &ConvertedRule {
        &self.route.rules[self.rule]
    }

    fn key(&self) -> EntryKey<'_> {
        let rule = self.rule();
        EntryKey {
            matcher: &rule.matches[self.m],
            created: &self.route.created,
            kind: self.route.kind,
            namespace: &self.route.namespace,
            name: &self.route.name,
            rule: rule.index,
            match_index: self.m,
        }
    }
}

/// When more than one entry in this many is new, one sort beats a binary insert each.
const INSERT_RATIO: usize = 8;

/// Two generations, like the IR route memo: hosts a build used move to `now`, the rest
/// are dropped when it finishes.
#[derive(Default)]
pub(crate) struct RouteOrders {
    last: HashMap<HostId, Kept, RandomState>,
    now: HashMap<HostId, Kept, RandomState>,
}

/// A host's IR routes from the last build and the backends they send to.
pub(crate) type KeptHost = (Vec<Arc<HttpRoute>>, Arc<[String]>);

/// What one host keeps between builds.
#[derive(Default)]
struct Kept {
    /// Its entries in precedence order, each once, with their IR routes once built.
    order: Vec<Entry>,
    /// Its entries' identities as they arrived at the build that made `order`
    /// (duplicates included).
    arrived: Vec<EntryId>,
    /// The backends its IR routes send to (see [`RouteOrders::keep_backends`]).
    backends: Arc<[String]>,
}

impl RouteOrders {
    /// The IR routes of `host` from the last build and the backends they send to, when its
    /// entries arrive as they did then (`arrived`: their identities in arrival order) and
    /// every one carries its IR route (none was blocked); the host is kept for the next
    /// build too.
    pub(crate) fn unchanged(
        &mut self,
        host: &HostId,
        arrived: impl ExactSizeIterator<Item = EntryId>,
    ) -> Option<KeptHost> {
        let kept = self.last.get(host)?;
        if kept.arrived.len() != arrived.len() || !kept.arrived.iter().copied().eq(arrived) {
            return None;
        }
        let mut routes = Vec::with_capacity(kept.order.len());
        for entry in &kept.order {
            routes.push(Arc::clone(entry.ir.as_ref()?));
        }
        let kept = self.last.remove(host)?;
        let backends = Arc::clone(&kept.backends);
        self.now.insert(host.clone(), kept);
        Some((routes, backends))
    }

    /// `entries` (duplicates allowed: a route can reach a host through two parentRefs) in
    /// precedence order, each once; `arrived` are their identities as they arrived, for
    /// [`Self::unchanged`] at the next build.
    pub(crate) fn sorted(
        &mut self,
        host: HostId,
        entries: Vec<Entry>,
        arrived: Vec<EntryId>,
    ) -> &mut [Entry] {
        // Each entry wanted now, and whether the last order has it.
        let mut wanted: HashMap<EntryId, bool, RandomState> =
            HashMap::with_capacity_and_hasher(entries.len(), RandomState::default());
        let fresh: Vec<Entry> = entries
            .into_iter()
            .filter(|e| wanted.insert(e.id(), false).is_none())
            .collect();
        let order = match self.last.remove(&host) {
            Some(previous) => update(previous.order, fresh, &mut wanted),
            None => sort(fresh),
        };
        let kept = Kept {
            order,
            arrived,
            backends: Arc::default(),
        };
        &mut self.now.entry(host).insert_entry(kept).into_mut().order
    }

    /// Records the backends the IR routes of `host`, just made from its [`Self::sorted`]
    /// order, send to: a host kept unchanged at a later build hands them back with its
    /// routes, so the Gateway's backends are gathered per host instead of per route.
    pub(crate) fn keep_backends(&mut self, host: &HostId, backends: Arc<[String]>) {
        if let Some(kept) = self.now.get_mut(host) {
            kept.backends = backends;
        }
    }

    /// Ends a build: orders it did not use are dropped.
    pub(crate) fn finish(&mut self) {
        self.last = std::mem::take(&mut self.now);
    }
}

fn sort(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| precedence::compare(&a.key(), &b.key()));
    entries
}

/// The previous order without the entries that are gone, with the new ones inserted.
fn update(
    previous: Vec<Entry>,
    fresh: Vec<Entry>,
    wanted: &mut HashMap<EntryId, bool, RandomState>,
) -> Vec<Entry> {
    let mut kept: Vec<Entry> = previous
        .into_iter()
        .filter(|e| match wanted.get_mut(&e.id()) {
            Some(had) => {
                *had = true;
                true
            }
            None => false,
        })
        .collect();
    let added: Vec<Entry> = fresh.into_iter().filter(|e| !wanted[&e.id()]).collect();
    if added.len() * INSERT_RATIO > kept.len() {
        kept.extend(added);
        return sort(kept);
    }
    for entry in added {
        let at = kept.partition_point(|e| {
            precedence::compare(&e.key(), &entry.key()) == std::cmp::Ordering::Less
        });
        kept.insert(at, entry);
    }
    kept
}
