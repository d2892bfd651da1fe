//! What a Gateway's builds keep of its IR routes.
//!
//! An IR route is made from one match of one rule of a converted route, the listener's port
//! (a redirect without a port keeps it) and which of the rule's backends the Gateway must
//! not reach. Between builds, each virtual host's kept order (`route_order`) carries the IR
//! routes of its entries, so a Gateway rebuilt after a one-route edit copies no string of
//! the others. Within one build, a route that reaches several hosts on one port (several
//! hostnames) gets one IR route, shared by those hosts: that is `IrRoutes`, emptied when the
//! build ends. An entry's key holds a conversion's address; the build's entries hold their
//! conversions, so no other conversion can take that address while the map is filled.

use std::collections::HashMap;
use std::sync::Arc;

use ferrogate_ir::HttpRoute;
use foldhash::fast::RandomState;

use crate::route_order::RouteOrders;
use crate::routes::{ConvertedRoute, ConvertedRule};

/// (conversion address, rule index, match index, listener port).
type EntryId = (usize, usize, usize, u16);

/// See the module docs.
#[derive(Default)]
pub(crate) struct IrRouteMemo {
    pub(crate) routes: IrRoutes,
    /// Each virtual host's order of entries.
    pub(crate) orders: RouteOrders,
}

/// The IR routes made during one build, for the hosts that share them.
#[derive(Default)]
pub(crate) struct IrRoutes {
    built: HashMap<EntryId, Arc<HttpRoute>, RandomState>,
}

impl IrRouteMemo {
    /// Ends a build.
    pub(crate) fn finish(&mut self) {
        self.routes.built = HashMap::default();
        self.orders.finish();
    }
}

impl IrRoutes {
    /// The IR route of match `m` of `rule` of `route` on `port`, made by `build` unless this
    /// build made it already. Only for a rule none of whose backends is blocked (the IR
    /// route then depends on nothing else).
    pub(crate) fn get_or_build(
        &mut self,
        route: &Arc<ConvertedRoute>,
        rule: &ConvertedRule,
        m: usize,
        port: u16,
        build: impl FnOnce() -> HttpRoute,
    ) -> Arc<HttpRoute> {
        let id = (Arc::as_ptr(route) as usize, rule.index, m, port);
        Arc::clone(self.built.entry(id).or_insert_with(|| Arc::new(build())))
    }
}
