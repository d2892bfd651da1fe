//! Route configurations put together from virtual hosts and routes encoded at an earlier
//! translation.
//!
//! After a one-route edit, a Gateway's IR shares every unchanged route with its last IR (the
//! same `Arc<HttpRoute>`), and an Envoy route depends on nothing but its IR route, so its
//! bytes are the same as last time. So is a whole virtual host whose routes are all the same
//! `Arc`s in the same order: its bytes are taken as they were, without looking into its
//! routes. A virtual host that changed is encoded again from its kept route bytes, and only
//! its new routes are built and encoded. The configuration is the concatenation `canonical`
//! defines, byte for byte what encoding the whole configuration gives.
//!
//! At 10 000 routes over five hostnames, a one-route edit so touches the 2000 routes of one
//! virtual host instead of moving 10 000 per-route entries between two maps, and the memo
//! holds one buffer per virtual host instead of one allocation per route.
//!
//! Two generations: what a translation used moves to `now`; whatever the last one used and
//! this one did not is dropped when it finishes, so the memo holds one Gateway's virtual
//! hosts at most. Each kept host holds its IR routes, so the addresses that identify them
//! cannot be reused by other routes while the host is kept.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use ferrogate_ir::{HttpRoute, VirtualHost as IrVirtualHost};
use foldhash::fast::RandomState;
use prost::Message;

use crate::canonical::{self, ROUTES_TAG, VIRTUAL_HOSTS_TAG, nested};
use crate::route;

/// One virtual host as last encoded.
struct EncodedHost {
    /// Its domains (the rest of its shell is its name, the key it is kept under).
    domains: Vec<String>,
    /// The IR routes it was made of, in order.
    routes: Vec<Arc<HttpRoute>>,
    /// Where each route's own bytes are in `bytes`, parallel to `routes`.
    spans: Vec<Range<usize>>,
    /// The canonical encoding of the virtual host: its shell, then each route nested.
    bytes: Vec<u8>,
    /// Whether one of its routes sends a share to invalid backends (see
    /// [`route::shell_with`]).
    invalid_share: bool,
}

impl EncodedHost {
    /// Whether `vh` is exactly what this was made of.
    fn is_of(&self, vh: &IrVirtualHost) -> bool {
        self.domains == vh.domains
            && self.routes.len() == vh.routes.len()
            && self
                .routes
                .iter()
                .zip(&vh.routes)
                .all(|(kept, now)| Arc::ptr_eq(kept, now))
    }

    /// Encodes `vh`, taking the bytes of the routes `last` (this host's last encoding) had.
    fn encode(vh: &IrVirtualHost, last: Option<&EncodedHost>) -> Self {
        let kept: HashMap<usize, &[u8], RandomState> = last
            .map(|last| {
                last.routes
                    .iter()
                    .zip(&last.spans)
                    .map(|(r, span)| (address(r), &last.bytes[span.clone()]))
                    .collect()
            })
            .unwrap_or_default();
        let mut bytes = route::virtual_host_shell(vh).encode_to_vec();
        let mut spans = Vec::with_capacity(vh.routes.len());
        let mut invalid_share = false;
        for r in &vh.routes {
            invalid_share |= route::sends_to_invalid_backends(r);
            let fresh;
            let encoded = match kept.get(&address(r)) {
                Some(encoded) => *encoded,
                None => {
                    fresh = canonical::route(route::route(r));
                    &fresh
                }
            };
            nested(ROUTES_TAG, encoded, &mut bytes);
            spans.push(bytes.len() - encoded.len()..bytes.len());
        }
        Self {
            domains: vh.domains.clone(),
            routes: vh.routes.clone(),
            spans,
            bytes,
            invalid_share,
        }
    }
}

fn address(r: &Arc<HttpRoute>) -> usize {
    Arc::as_ptr(r) as usize
}

/// (RouteConfiguration name, virtual host name).
type HostKey = (String, String);

/// See the module docs. One per Gateway.
#[derive(Default)]
pub struct RouteEncodings {
    last: HashMap<HostKey, EncodedHost, RandomState>,
    now: HashMap<HostKey, EncodedHost, RandomState>,
}

impl RouteEncodings {
    /// The canonical encoding of the RouteConfiguration `name` with `virtual_hosts`: the
    /// bytes of `canonical::route_configuration(route::route_configuration(..))`.
    pub(crate) fn route_configuration(
        &mut self,
        name: &str,
        virtual_hosts: &[IrVirtualHost],
    ) -> Vec<u8> {
        let hosts: Vec<(HostKey, EncodedHost)> = virtual_hosts
            .iter()
            .map(|vh| {
                let key = (name.to_string(), vh.name.clone());
                let last = self.last.remove(&key);
                let host = match last {
                    Some(last) if last.is_of(vh) => last,
                    last => EncodedHost::encode(vh, last.as_ref()),
                };
                (key, host)
            })
            .collect();
        let invalid_share = hosts.iter().any(|(_, h)| h.invalid_share);
        let mut out = route::shell_with(name, invalid_share).encode_to_vec();
        out.reserve(hosts.iter().map(|(_, h)| h.bytes.len() + 10).sum());
        for (_, host) in &hosts {
            nested(VIRTUAL_HOSTS_TAG, &host.bytes, &mut out);
        }
        // Two hosts of one name (never made by the IR build) keep the second.
        self.now.extend(hosts);
        out
    }

    /// Ends a translation: virtual hosts it did not use are dropped.
    pub(crate) fn finish(&mut self) {
        self.last = std::mem::take(&mut self.now);
    }
}
