//! Route conversions kept between translations, with the index that says which of them a
//! change invalidates.
//!
//! Converting a route (its rules, filters and backendRefs) is most of a translation's cost,
//! and it depends on nothing but the route itself and what resolving its backendRefs reads.
//! Everything that reads lives in the namespace a backendRef points at: the Service or
//! ServiceImport, its EndpointSlices, the ReferenceGrant that permits the reference, and the
//! BackendTLSPolicy of the port with its CA ConfigMaps and Secrets. So the index is a
//! route's namespaces: a change in one of those kinds in namespace X converts again only
//! the routes that touched X. ClusterTrustBundles are cluster-scoped and can feed any
//! BackendTLSPolicy: a change to one converts everything again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use foldhash::fast::RandomState;

use ferrogate_store::{Kind, ObjectKey, ObjectRef};

use crate::backend::Resolver;
use crate::routes::{Outcome, RouteInput};

/// A route's conversion and the namespaces its resolution read.
pub(crate) struct Conversion {
    pub input: Arc<RouteInput>,
    /// What attaching it gave, while the Gateways' contexts are what they were then.
    pub outcome: Option<Arc<Outcome>>,
    /// Sorted (a boxed slice: most routes touch one namespace, and a set's node would
    /// cost more than the route's own conversion at 10 000 routes).
    touched: Box<[String]>,
}

/// Conversions by route, valid for the snapshot the last translation read.
#[derive(Default)]
pub(crate) struct RouteCache {
    /// Hashed, not sorted: every route is looked up at every translation, and nothing
    /// depends on the order of this map (a search tree's string compares were a twelfth of
    /// an edit's CPU at 10 000 routes).
    kept: BTreeMap<Kind, HashMap<ObjectKey, Conversion, RandomState>>,
}

/// What a change means for the kept conversions.
enum Reach {
    /// Only the changed route itself.
    Route,
    /// Every route that resolved a reference into the object's namespace.
    Namespace,
    /// Every route.
    All,
    /// No route conversion reads it (it feeds Gateways, attachment or status).
    None,
}

fn reach(kind: Kind) -> Reach {
    match kind {
        Kind::HttpRoute | Kind::GrpcRoute | Kind::TlsRoute | Kind::TcpRoute | Kind::UdpRoute => {
            Reach::Route
        }
        Kind::Service
        | Kind::ServiceImport
        | Kind::EndpointSlice
        | Kind::ReferenceGrant
        | Kind::BackendTlsPolicy
        | Kind::ConfigMap
        | Kind::Secret => Reach::Namespace,
        Kind::ClusterTrustBundle => Reach::All,
        Kind::GatewayClass
        | Kind::Gateway
        | Kind::ListenerSet
        | Kind::Namespace
        | Kind::EnvoyProxy => Reach::None,
    }
}

impl RouteCache {
    /// Drops the conversions that `changed` (the objects that differ between the snapshot
    /// they were made from and the next one) may have made stale.
    pub(crate) fn invalidate(&mut self, changed: &[ObjectRef]) {
        let mut namespaces = BTreeSet::new();
        for object in changed {
            match reach(object.kind) {
                Reach::Route => {
                    if let Some(kept) = self.kept.get_mut(&object.kind) {
                        kept.remove(&object.key);
                    }
                }
                Reach::Namespace => {
                    namespaces.insert(object.key.namespace.as_str());
                }
                Reach::All => {
                    self.kept.clear();
                    return;
                }
                Reach::None => {}
            }
        }
        if !namespaces.is_empty() {
            for kept in self.kept.values_mut() {
                kept.retain(|_, k| k.touched.iter().all(|n| !namespaces.contains(n.as_str())));
            }
        }
        // A hash map keeps its table when entries go: after a scale-down, give it back.
        for kept in self.kept.values_mut() {
            if kept.capacity() > 4 * kept.len().max(256) {
                kept.shrink_to_fit();
            }
        }
    }

    /// Drops every kept conversion.
    pub(crate) fn clear(&mut self) {
        self.kept.clear();
    }

    /// Forgets every route's attachment outcome (a Gateway's context may have changed);
    /// the conversions stay.
    pub(crate) fn forget_outcomes(&mut self) {
        for kept in self.kept.values_mut() {
            for conversion in kept.values_mut() {
                conversion.outcome = None;
            }
        }
    }

    /// The kept conversion of a route, or a new one made with `convert` (and kept).
    pub(crate) fn get_or_convert(
        &mut self,
        resolver: &Resolver<'_>,
        kind: Kind,
        key: &ObjectKey,
        convert: &dyn Fn() -> RouteInput,
    ) -> &mut Conversion {
        let of_kind = self.kept.entry(kind).or_default();
        of_kind.entry(key.clone()).or_insert_with(|| {
            resolver.take_touched();
            Conversion::of(resolver, convert())
        })
    }

    /// Takes the kept conversion of a route out of the cache.
    pub(crate) fn take(&mut self, kind: Kind, key: &ObjectKey) -> Option<Conversion> {
        self.kept.get_mut(&kind)?.remove(key)
    }

    /// Converts the route `key` of `kind` (replacing what was kept of it) and keeps the
    /// conversion; `None` when the snapshot has no such route.
    pub(crate) fn convert_again(
        &mut self,
        resolver: &Resolver<'_>,
        kind: Kind,
        key: &ObjectKey,
    ) -> Option<&mut Conversion> {
        resolver.take_touched();
        let input = crate::routes::convert_one(resolver, kind, key)?;
        let conversion = Conversion::of(resolver, input);
        let of_kind = self.kept.entry(kind).or_default();
        of_kind.insert(key.clone(), conversion);
        of_kind.get_mut(key)
    }
}

impl Conversion {
    /// Keeps `input`, with the namespaces its conversion read (the resolver's record since
    /// it was last taken).
    fn of(resolver: &Resolver<'_>, mut input: RouteInput) -> Self {
        input.compact();
        Conversion {
            input: Arc::new(input),
            outcome: None,
            touched: resolver.take_touched().into_iter().collect(),
        }
    }
}
