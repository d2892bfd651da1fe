//! Route configurations put together from routes encoded at an earlier translation.
//!
//! After a one-route edit, a Gateway's IR shares every unchanged route with its last IR (the
//! same `Arc<HttpRoute>`), and an Envoy route depends on nothing but its IR route, so its
//! bytes are the same as last time. Building and encoding 10 000 prost routes again was
//! most of the xDS translation of a one-route edit; now only the new routes are encoded,
//! and the configuration is the concatenation `canonical` defines, byte for byte what
//! encoding the whole configuration gives.
//!
//! Two generations: what a translation used moves to `now`; whatever the last one used and
//! this one did not is dropped when it finishes, so the memo holds one Gateway's routes at
//! most. Each entry keeps its IR route alive, so the address in its key cannot be reused by
//! another route while the entry exists.

use std::collections::HashMap;
use std::sync::Arc;

use ferrogate_ir::{HttpRoute, VirtualHost as IrVirtualHost};
use foldhash::fast::RandomState;
use prost::Message;

use crate::canonical::{self, ROUTES_TAG, VIRTUAL_HOSTS_TAG, nested};
use crate::route;

struct Encoded {
    _route: Arc<HttpRoute>,
    bytes: Box<[u8]>,
}

/// See the module docs. One per Gateway.
#[derive(Default)]
pub struct RouteEncodings {
    last: HashMap<usize, Encoded, RandomState>,
    now: HashMap<usize, Encoded, RandomState>,
}

impl RouteEncodings {
    /// The canonical encoding of the Envoy route of `r`.
    fn route(&mut self, r: &Arc<HttpRoute>) -> &[u8] {
        let Self { last, now } = self;
        let id = Arc::as_ptr(r) as usize;
        &now.entry(id)
            .or_insert_with(|| {
                last.remove(&id).unwrap_or_else(|| Encoded {
                    _route: Arc::clone(r),
                    bytes: canonical::route(route::route(r)).into_boxed_slice(),
                })
            })
            .bytes
    }

    /// The canonical encoding of the RouteConfiguration `name` with `virtual_hosts`: the
    /// bytes of `canonical::route_configuration(route::route_configuration(..))`.
    pub(crate) fn route_configuration(
        &mut self,
        name: &str,
        virtual_hosts: &[IrVirtualHost],
    ) -> Vec<u8> {
        let mut out = route::route_configuration_shell(name, virtual_hosts).encode_to_vec();
        for vh in virtual_hosts {
            let mut host = route::virtual_host_shell(vh).encode_to_vec();
            for r in &vh.routes {
                nested(ROUTES_TAG, self.route(r), &mut host);
            }
            nested(VIRTUAL_HOSTS_TAG, &host, &mut out);
        }
        out
    }

    /// Ends a translation: routes it did not use are dropped.
    pub(crate) fn finish(&mut self) {
        let capacity = self.now.len();
        self.last = std::mem::replace(
            &mut self.now,
            HashMap::with_capacity_and_hasher(capacity, RandomState::default()),
        );
    }
}
