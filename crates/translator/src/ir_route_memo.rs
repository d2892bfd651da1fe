//! IR routes kept between builds of one Gateway.
//!
//! An IR route is made from one match of one rule of a converted route, the listener's port
//! (a redirect without a port keeps it) and which of the rule's backends the Gateway must
//! not reach. A conversion is never changed once made (a changed route gets a new one), so
//! when none of the rule's backends is blocked, the IR route of (conversion, rule, match,
//! port) is the same at every build: a Gateway rebuilt after a one-route edit takes the
//! others from here, as shared pointers, instead of copying every string again.
//!
//! Two generations: what a build used moves to `now`; whatever the last build used and this
//! one did not is dropped when it finishes, so the memo holds one Gateway's routes at most.
//! Each entry keeps its conversion alive, so the address in its key cannot be reused by
//! another conversion while the entry exists.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::sync::Arc;

use ferrogate_ir::{HttpRoute, RouteAction};

use crate::route_order::RouteOrders;
use crate::routes::{ConvertedRoute, ConvertedRule};

/// (conversion address, rule index, match index, listener port).
type EntryId = (usize, usize, usize, u16);

struct Memoized {
    _conversion: Arc<ConvertedRoute>,
    route: Arc<HttpRoute>,
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct IrRouteMemo {
    pub(crate) routes: IrRoutes,
    /// Each virtual host's order of entries.
    pub(crate) orders: RouteOrders,
}

/// The IR routes of the last build and of this one.
#[derive(Default)]
pub(crate) struct IrRoutes {
    last: HashMap<EntryId, Memoized, RandomState>,
    now: HashMap<EntryId, Memoized, RandomState>,
}

impl IrRouteMemo {
    /// Ends a build: what it did not use is dropped.
    pub(crate) fn finish(&mut self) {
        let capacity = self.routes.now.len();
        self.routes.last = std::mem::replace(
            &mut self.routes.now,
            HashMap::with_capacity_and_hasher(capacity, RandomState::default()),
        );
        self.orders.finish();
    }
}

impl IrRoutes {
    /// The IR route of match `m` of `rule` of `route` on `port`, from the memo or made by
    /// `build`.
    pub(crate) fn get_or_build(
        &mut self,
        route: &Arc<ConvertedRoute>,
        rule: &ConvertedRule,
        m: usize,
        port: u16,
        blocked: &dyn Fn(&str) -> bool,
        build: impl FnOnce() -> HttpRoute,
    ) -> Arc<HttpRoute> {
        if blocks(rule, blocked) {
            return Arc::new(build());
        }
        let id = (Arc::as_ptr(route) as usize, rule.index, m, port);
        if let Some(kept) = self.now.get(&id) {
            return Arc::clone(&kept.route);
        }
        let kept = self.last.remove(&id).unwrap_or_else(|| Memoized {
            _conversion: Arc::clone(route),
            route: Arc::new(build()),
        });
        let out = Arc::clone(&kept.route);
        self.now.insert(id, kept);
        out
    }
}

/// Whether the Gateway must not reach one of the rule's backends (its IR route then answers
/// that share with 500, so it differs from the memoized one).
pub(crate) fn blocks(rule: &ConvertedRule, blocked: &dyn Fn(&str) -> bool) -> bool {
    match &rule.action {
        RouteAction::Forward(f) => {
            f.backends.iter().any(|b| blocked(&b.backend))
                || f.mirrors.iter().any(|b| blocked(&b.backend))
        }
        _ => false,
    }
}
