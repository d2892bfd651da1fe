//! The snapshot: one ordered map per kind. The maps are persistent (`imbl::OrdMap`): a
//! clone shares every node, and a change copies only the path to it, so a provider can
//! patch the published snapshot by one object and hand the pipeline a new one in
//! O(log n), and comparing two snapshots skips the subtrees they share. A published
//! snapshot is never mutated.

use std::sync::Arc;

use imbl::OrdMap;
use imbl::ordmap::{DiffItem, Entry};

use ferrogate_api::envoyproxy::EnvoyProxy;
use ferrogate_api::gateway::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ListenerSet, ReferenceGrant,
    TcpRoute, TlsRoute, UdpRoute,
};
use ferrogate_api::k8s::{
    ClusterTrustBundle, ConfigMap, EndpointSlice, Namespace, Secret, Service,
};
use ferrogate_api::multicluster::ServiceImport;

use crate::object::Held;
use crate::{Kind, Object, ObjectKey, ObjectRef, Packed};

/// Objects of one kind by key, each with the sequence number of its first apply (input
/// order matters to Gateway API tie-breaks between objects created at the same time).
#[derive(Clone, Debug)]
pub struct Kinded<T> {
    map: OrdMap<ObjectKey, Slot<T>>,
}

/// An object and the sequence number of its first apply. Two slots are equal when their
/// objects and places in the order are; [`Snapshot::diff`] reports content changes only,
/// [`Snapshot::diff_and_moves`] also the objects that only moved in the order.
#[derive(Debug)]
struct Slot<T> {
    seq: u64,
    object: Arc<T>,
}

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Self {
            seq: self.seq,
            object: Arc::clone(&self.object),
        }
    }
}

impl<T: PartialEq> PartialEq for Slot<T> {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq && same_object(&self.object, &other.object)
    }
}

/// An object still shared is the same without comparing its fields.
fn same_object<T: PartialEq>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

impl<T> Default for Kinded<T> {
    fn default() -> Self {
        Self { map: OrdMap::new() }
    }
}

impl<T> Kinded<T> {
    /// Looks an object up.
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Arc<T>> {
        self.map
            .get(&ObjectKey::new(namespace, name))
            .map(|slot| &slot.object)
    }

    /// Objects sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &Arc<T>)> {
        self.map.iter().map(|(k, slot)| (k, &slot.object))
    }

    /// Where the object `namespace/name` stands in [`Kinded::in_order`]: its apply sequence
    /// number (only the order of two numbers means anything).
    pub fn order_of(&self, namespace: &str, name: &str) -> Option<u64> {
        self.map
            .get(&ObjectKey::new(namespace, name))
            .map(|slot| slot.seq)
    }

    /// Objects in the order they were first applied.
    pub fn in_order(&self) -> Vec<(&ObjectKey, &Arc<T>)> {
        let mut items: Vec<_> = self
            .map
            .iter()
            .map(|(k, slot)| (slot.seq, k, &slot.object))
            .collect();
        items.sort_by_key(|(seq, _, _)| *seq);
        items.into_iter().map(|(_, k, o)| (k, o)).collect()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<T: PartialEq> Kinded<T> {
    fn apply(&mut self, key: ObjectKey, seq: u64, object: Arc<T>) -> bool {
        // One search (a file provider builds a whole snapshot per read).
        match self.map.entry(key) {
            Entry::Occupied(mut entry) => {
                if same_object(&entry.get().object, &object) {
                    return false;
                }
                entry.get_mut().object = object;
                true
            }
            Entry::Vacant(entry) => {
                entry.insert(Slot { seq, object });
                true
            }
        }
    }

    fn delete(&mut self, key: &ObjectKey) -> bool {
        self.map.remove(key).is_some()
    }
}

/// The whole input world.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    next_seq: u64,
    /// GatewayClasses (cluster-scoped).
    pub gateway_classes: Kinded<GatewayClass>,
    /// Gateways.
    pub gateways: Kinded<Gateway>,
    /// ListenerSets.
    pub listener_sets: Kinded<ListenerSet>,
    /// HTTPRoutes.
    pub http_routes: Kinded<Packed<HttpRoute>>,
    /// GRPCRoutes.
    pub grpc_routes: Kinded<Packed<GrpcRoute>>,
    /// TLSRoutes.
    pub tls_routes: Kinded<Packed<TlsRoute>>,
    /// TCPRoutes.
    pub tcp_routes: Kinded<Packed<TcpRoute>>,
    /// UDPRoutes.
    pub udp_routes: Kinded<Packed<UdpRoute>>,
    /// ReferenceGrants.
    pub reference_grants: Kinded<ReferenceGrant>,
    /// BackendTLSPolicies.
    pub backend_tls_policies: Kinded<BackendTlsPolicy>,
    /// Services.
    pub services: Kinded<Service>,
    /// EndpointSlices.
    pub endpoint_slices: Kinded<EndpointSlice>,
    /// Secrets.
    pub secrets: Kinded<Secret>,
    /// ConfigMaps.
    pub config_maps: Kinded<ConfigMap>,
    /// Namespaces (cluster-scoped).
    pub namespaces: Kinded<Namespace>,
    /// SIG-Multicluster ServiceImports.
    pub service_imports: Kinded<ServiceImport>,
    /// ClusterTrustBundles (cluster-scoped CA bundles).
    pub cluster_trust_bundles: Kinded<ClusterTrustBundle>,
    /// Ferrogate's EnvoyProxy parameters.
    pub envoy_proxies: Kinded<EnvoyProxy>,
}

/// Runs `body` with `map` bound to the kind's map: `&mut` by default, `&` after `ref`.
macro_rules! dispatch {
    ($self:ident, $kind:expr, |$map:ident| $body:expr) => {
        dispatch!(@ [&mut] $self, $kind, |$map| $body)
    };
    (ref $self:ident, $kind:expr, |$map:ident| $body:expr) => {
        dispatch!(@ [&] $self, $kind, |$map| $body)
    };
    (@ [$($borrow:tt)+] $self:ident, $kind:expr, |$map:ident| $body:expr) => {
        match $kind {
            Kind::GatewayClass => {
                let $map = $($borrow)+ $self.gateway_classes;
                $body
            }
            Kind::Gateway => {
                let $map = $($borrow)+ $self.gateways;
                $body
            }
            Kind::ListenerSet => {
                let $map = $($borrow)+ $self.listener_sets;
                $body
            }
            Kind::HttpRoute => {
                let $map = $($borrow)+ $self.http_routes;
                $body
            }
            Kind::GrpcRoute => {
                let $map = $($borrow)+ $self.grpc_routes;
                $body
            }
            Kind::TlsRoute => {
                let $map = $($borrow)+ $self.tls_routes;
                $body
            }
            Kind::TcpRoute => {
                let $map = $($borrow)+ $self.tcp_routes;
                $body
            }
            Kind::UdpRoute => {
                let $map = $($borrow)+ $self.udp_routes;
                $body
            }
            Kind::ReferenceGrant => {
                let $map = $($borrow)+ $self.reference_grants;
                $body
            }
            Kind::BackendTlsPolicy => {
                let $map = $($borrow)+ $self.backend_tls_policies;
                $body
            }
            Kind::Service => {
                let $map = $($borrow)+ $self.services;
                $body
            }
            Kind::EndpointSlice => {
                let $map = $($borrow)+ $self.endpoint_slices;
                $body
            }
            Kind::Secret => {
                let $map = $($borrow)+ $self.secrets;
                $body
            }
            Kind::ConfigMap => {
                let $map = $($borrow)+ $self.config_maps;
                $body
            }
            Kind::Namespace => {
                let $map = $($borrow)+ $self.namespaces;
                $body
            }
            Kind::ServiceImport => {
                let $map = $($borrow)+ $self.service_imports;
                $body
            }
            Kind::ClusterTrustBundle => {
                let $map = $($borrow)+ $self.cluster_trust_bundles;
                $body
            }
            Kind::EnvoyProxy => {
                let $map = $($borrow)+ $self.envoy_proxies;
                $body
            }
        }
    };
}

/// Applies every object in order (later objects replace earlier ones with the same key).
impl Extend<Object> for Snapshot {
    fn extend<I: IntoIterator<Item = Object>>(&mut self, objects: I) {
        for object in objects {
            self.apply(object);
        }
    }
}

/// A snapshot of `objects`, applied in order.
impl FromIterator<Object> for Snapshot {
    fn from_iter<I: IntoIterator<Item = Object>>(objects: I) -> Self {
        let mut snapshot = Snapshot::default();
        snapshot.extend(objects);
        snapshot
    }
}

impl Snapshot {
    /// Inserts or replaces an object. Returns whether the store changed (re-applying an
    /// identical object is a no-op, so no stage downstream wakes up for it).
    pub fn apply(&mut self, object: Object) -> bool {
        let seq = self.next_seq;
        self.apply_at(object, seq)
    }

    /// Like [`Snapshot::apply`], with the sequence number a new object is ordered by given:
    /// a provider that patches a snapshot keeps the order a whole rebuild would give (the
    /// file provider numbers objects by path, then by document).
    pub fn apply_at(&mut self, object: Object, seq: u64) -> bool {
        let key = object.key();
        self.next_seq = self.next_seq.max(seq + 1);
        match object {
            Object::GatewayClass(o) => self.gateway_classes.apply(key, seq, o),
            Object::Gateway(o) => self.gateways.apply(key, seq, o),
            Object::ListenerSet(o) => self.listener_sets.apply(key, seq, o),
            Object::HttpRoute(o) => self.http_routes.apply(key, seq, o),
            Object::GrpcRoute(o) => self.grpc_routes.apply(key, seq, o),
            Object::TlsRoute(o) => self.tls_routes.apply(key, seq, o),
            Object::TcpRoute(o) => self.tcp_routes.apply(key, seq, o),
            Object::UdpRoute(o) => self.udp_routes.apply(key, seq, o),
            Object::ReferenceGrant(o) => self.reference_grants.apply(key, seq, o),
            Object::BackendTlsPolicy(o) => self.backend_tls_policies.apply(key, seq, o),
            Object::Service(o) => self.services.apply(key, seq, o),
            Object::EndpointSlice(o) => self.endpoint_slices.apply(key, seq, o),
            Object::Secret(o) => self.secrets.apply(key, seq, o),
            Object::ConfigMap(o) => self.config_maps.apply(key, seq, o),
            Object::Namespace(o) => self.namespaces.apply(key, seq, o),
            Object::ServiceImport(o) => self.service_imports.apply(key, seq, o),
            Object::ClusterTrustBundle(o) => self.cluster_trust_bundles.apply(key, seq, o),
            Object::EnvoyProxy(o) => self.envoy_proxies.apply(key, seq, o),
        }
    }

    /// Replaces every object of one kind with `objects` (a relist of that kind). Returns
    /// whether the store changed.
    pub fn reset_kind(&mut self, kind: Kind, objects: impl IntoIterator<Item = Object>) -> bool {
        let objects: Vec<Object> = objects.into_iter().filter(|o| o.kind() == kind).collect();
        let keep: std::collections::BTreeSet<ObjectKey> = objects.iter().map(|o| o.key()).collect();
        let stale: Vec<ObjectKey> = dispatch!(self, kind, |map| map
            .map
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect());
        let mut changed = false;
        for key in stale {
            changed |= self.delete(&ObjectRef { kind, key });
        }
        for object in objects {
            changed |= self.apply(object);
        }
        changed
    }

    /// The uid of the object `object` names, if the store holds it: tells an object from
    /// a newer one created under the same name after a delete.
    pub fn uid(&self, object: &ObjectRef) -> Option<&str> {
        let key = &object.key;
        dispatch!(ref self, object.kind, |map| map
            .get(&key.namespace, &key.name)
            .and_then(|o| Held::uid(&**o)))
    }

    /// Number of objects of every kind.
    pub fn len(&self) -> usize {
        Kind::ALL
            .iter()
            .map(|kind| dispatch!(ref self, *kind, |map| map.len()))
            .sum()
    }

    /// True when the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the store holds the object `object` names.
    pub fn contains(&self, object: &ObjectRef) -> bool {
        let key = &object.key;
        dispatch!(ref self, object.kind, |map| map.map.contains_key(key))
    }

    /// Removes an object. Returns whether it was there.
    pub fn delete(&mut self, object: &ObjectRef) -> bool {
        dispatch!(self, object.kind, |map| map.delete(&object.key))
    }

    /// Replaces the whole content of the store with `objects` (a relist, or a re-read of
    /// a directory) and returns the references that changed: added, replaced or removed.
    pub fn reset(&mut self, objects: impl IntoIterator<Item = Object>) -> Vec<ObjectRef> {
        let mut next = Snapshot::default();
        for object in objects {
            next.apply(object);
        }
        let changed = self.diff(&next);
        *self = next;
        changed
    }

    /// References whose content differs between `self` and `other`.
    pub fn diff(&self, other: &Snapshot) -> Vec<ObjectRef> {
        self.diff_and_moves(other).0
    }

    /// References whose content differs between `self` and `other`, and those whose content
    /// is the same but whose place in the apply order is not (deleted and applied again):
    /// a consumer that keeps results in input order must place these again too.
    pub fn diff_and_moves(&self, other: &Snapshot) -> (Vec<ObjectRef>, Vec<ObjectRef>) {
        let mut changed = (Vec::new(), Vec::new());
        diff_kind(
            Kind::GatewayClass,
            &self.gateway_classes,
            &other.gateway_classes,
            &mut changed,
        );
        diff_kind(Kind::Gateway, &self.gateways, &other.gateways, &mut changed);
        diff_kind(
            Kind::ListenerSet,
            &self.listener_sets,
            &other.listener_sets,
            &mut changed,
        );
        diff_kind(
            Kind::HttpRoute,
            &self.http_routes,
            &other.http_routes,
            &mut changed,
        );
        diff_kind(
            Kind::GrpcRoute,
            &self.grpc_routes,
            &other.grpc_routes,
            &mut changed,
        );
        diff_kind(
            Kind::TlsRoute,
            &self.tls_routes,
            &other.tls_routes,
            &mut changed,
        );
        diff_kind(
            Kind::TcpRoute,
            &self.tcp_routes,
            &other.tcp_routes,
            &mut changed,
        );
        diff_kind(
            Kind::UdpRoute,
            &self.udp_routes,
            &other.udp_routes,
            &mut changed,
        );
        diff_kind(
            Kind::ReferenceGrant,
            &self.reference_grants,
            &other.reference_grants,
            &mut changed,
        );
        diff_kind(
            Kind::BackendTlsPolicy,
            &self.backend_tls_policies,
            &other.backend_tls_policies,
            &mut changed,
        );
        diff_kind(Kind::Service, &self.services, &other.services, &mut changed);
        diff_kind(
            Kind::EndpointSlice,
            &self.endpoint_slices,
            &other.endpoint_slices,
            &mut changed,
        );
        diff_kind(Kind::Secret, &self.secrets, &other.secrets, &mut changed);
        diff_kind(
            Kind::ConfigMap,
            &self.config_maps,
            &other.config_maps,
            &mut changed,
        );
        diff_kind(
            Kind::Namespace,
            &self.namespaces,
            &other.namespaces,
            &mut changed,
        );
        diff_kind(
            Kind::ServiceImport,
            &self.service_imports,
            &other.service_imports,
            &mut changed,
        );
        diff_kind(
            Kind::ClusterTrustBundle,
            &self.cluster_trust_bundles,
            &other.cluster_trust_bundles,
            &mut changed,
        );
        diff_kind(
            Kind::EnvoyProxy,
            &self.envoy_proxies,
            &other.envoy_proxies,
            &mut changed,
        );
        changed
    }

    /// Number of objects per kind (for metrics and logs).
    pub fn counts(&self) -> Vec<(Kind, usize)> {
        vec![
            (Kind::GatewayClass, self.gateway_classes.len()),
            (Kind::Gateway, self.gateways.len()),
            (Kind::ListenerSet, self.listener_sets.len()),
            (Kind::HttpRoute, self.http_routes.len()),
            (Kind::GrpcRoute, self.grpc_routes.len()),
            (Kind::TlsRoute, self.tls_routes.len()),
            (Kind::TcpRoute, self.tcp_routes.len()),
            (Kind::UdpRoute, self.udp_routes.len()),
            (Kind::ReferenceGrant, self.reference_grants.len()),
            (Kind::BackendTlsPolicy, self.backend_tls_policies.len()),
            (Kind::Service, self.services.len()),
            (Kind::EndpointSlice, self.endpoint_slices.len()),
            (Kind::Secret, self.secrets.len()),
            (Kind::ConfigMap, self.config_maps.len()),
            (Kind::Namespace, self.namespaces.len()),
            (Kind::ServiceImport, self.service_imports.len()),
            (Kind::ClusterTrustBundle, self.cluster_trust_bundles.len()),
            (Kind::EnvoyProxy, self.envoy_proxies.len()),
        ]
    }
}

/// The keys of one kind that differ between `old` and `new`, in key order, into `out.0`,
/// and those whose objects are the same but whose sequence numbers are not into `out.1`: one
/// merge pass over both sorted maps that skips the subtrees they share, and compares the
/// remaining entries with [`same_object`].
fn diff_kind<T: PartialEq>(
    kind: Kind,
    old: &Kinded<T>,
    new: &Kinded<T>,
    out: &mut (Vec<ObjectRef>, Vec<ObjectRef>),
) {
    // Shared subtrees are skipped, so two snapshots one edit apart compare in O(log n).
    for item in old.map.diff(&new.map) {
        let (key, moved) = match item {
            DiffItem::Add(key, _) | DiffItem::Remove(key, _) => (key, false),
            DiffItem::Update {
                old: (_, was),
                new: (key, now),
            } => (key, same_object(&was.object, &now.object)),
        };
        let reference = ObjectRef {
            kind,
            key: key.clone(),
        };
        if moved {
            out.1.push(reference);
        } else {
            out.0.push(reference);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(resource_version: &str, uid: &str, path: &str) -> Object {
        crate::load_object(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "apps", "uid": uid,
                         "resourceVersion": resource_version},
            "spec": {"rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}]}]},
            "status": {"parents": []},
        }))
        .unwrap()
    }

    #[test]
    fn a_status_write_is_not_a_change_of_the_world() {
        let mut snapshot = Snapshot::default();
        assert!(snapshot.apply(route("1", "u-1", "/")));
        // Our own status write: only the resourceVersion (and the status) moved.
        assert!(!snapshot.apply(route("2", "u-1", "/")));
        assert!(
            snapshot.apply(route("3", "u-1", "/v2")),
            "a spec change is one"
        );
    }

    #[test]
    fn an_object_applied_again_after_a_delete_moved_but_did_not_change() {
        let mut before = Snapshot::default();
        before.apply(route("1", "u-1", "/"));
        let mut after = before.clone();
        after.delete(&route("1", "u-1", "/").object_ref());
        after.apply(route("1", "u-1", "/"));
        assert!(before.diff(&after).is_empty(), "the same content");
        let (changed, moved) = before.diff_and_moves(&after);
        assert!(changed.is_empty());
        assert_eq!(moved, [route("1", "u-1", "/").object_ref()]);
        after.apply(route("2", "u-1", "/v2"));
        let (changed, moved) = before.diff_and_moves(&after);
        assert_eq!(
            (changed.len(), moved.len()),
            (1, 0),
            "a change is a change, not a move"
        );
    }

    #[test]
    fn uid_tells_an_object_from_a_newer_one_of_the_same_name() {
        let mut snapshot = Snapshot::default();
        snapshot.apply(route("1", "u-1", "/"));
        let r = route("1", "u-1", "/").object_ref();
        assert_eq!(snapshot.uid(&r), Some("u-1"));
        assert!(snapshot.apply(route("9", "u-2", "/")), "created again");
        assert_eq!(snapshot.uid(&r), Some("u-2"));
        snapshot.delete(&r);
        assert_eq!(snapshot.uid(&r), None);
    }
}
