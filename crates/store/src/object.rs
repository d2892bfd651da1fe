//! Typed objects of every kind the translator reads.

use std::fmt;
use std::sync::Arc;

use ferrogate_api::envoyproxy::EnvoyProxy;
use ferrogate_api::gateway::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ListenerSet, ReferenceGrant,
    TcpRoute, TlsRoute, UdpRoute,
};
use ferrogate_api::k8s::{
    ClusterTrustBundle, ConfigMap, EndpointSlice, Namespace, ObjectMeta, Secret, Service,
};
use ferrogate_api::multicluster::ServiceImport;

use kube::Resource;

use crate::packed::Packed;

/// Namespace and name. Cluster-scoped objects have an empty namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace, empty for cluster-scoped kinds.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// A kind and a key: identifies one object of the store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// Kind.
    pub kind: Kind,
    /// Namespace and name.
    pub key: ObjectKey,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}", self.kind, self.key)
    }
}

/// How a kind's objects are held: typed, or `packed` (see [`crate::packed`]).
macro_rules! held {
    ($ty:ty) => { $ty };
    ($ty:ty, packed) => { Packed<$ty> };
}

/// Holds a freshly decoded (and stripped) object as its kind holds them.
macro_rules! hold {
    ($object:ident) => {
        $object
    };
    ($object:ident, packed) => {
        Packed::pack(&$object)
    };
}

/// What the store reads of a held object without decoding it.
pub(crate) trait Held {
    /// Namespace and name.
    fn key(&self) -> ObjectKey;
    /// `metadata.uid`.
    fn uid(&self) -> Option<&str>;
}

/// A typed object reads them from its metadata.
impl<T: Resource> Held for T {
    fn key(&self) -> ObjectKey {
        key_of(self.meta())
    }

    fn uid(&self) -> Option<&str> {
        self.meta().uid.as_deref()
    }
}

/// A packed one holds them beside its text.
impl<T> Held for Packed<T> {
    fn key(&self) -> ObjectKey {
        Packed::key(self).clone()
    }

    fn uid(&self) -> Option<&str> {
        Packed::uid(self)
    }
}

/// The key metadata gives (empty parts when unset).
pub(crate) fn key_of(meta: &ObjectMeta) -> ObjectKey {
    ObjectKey::new(
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

macro_rules! objects {
    ($( $variant:ident($ty:ty $(, $packed:ident)?) => $group:literal, $kind:literal, namespaced: $ns:literal; )*) => {
        /// Every kind the store holds.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind { $( #[doc = $kind] $variant, )* }

        /// One object, as its kind is held (typed, or packed for routes).
        #[derive(Clone, Debug)]
        pub enum Object { $( #[doc = $kind] $variant(Arc<held!($ty $(, $packed)?)>), )* }

        impl Kind {
            /// Every kind, in a fixed order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            /// The Kubernetes `kind` string.
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $kind,)* }
            }

            /// The API group (empty for the core group).
            pub fn group(self) -> &'static str {
                match self { $(Kind::$variant => $group,)* }
            }

            /// Whether objects of this kind live in a namespace.
            pub fn namespaced(self) -> bool {
                match self { $(Kind::$variant => $ns,)* }
            }

            /// Finds a kind by API group and kind string, whatever the version.
            pub fn from_group_kind(group: &str, kind: &str) -> Option<Kind> {
                match (group, kind) {
                    $(($group, $kind) => Some(Kind::$variant),)*
                    _ => None,
                }
            }
        }

        impl Object {
            /// Its kind.
            pub fn kind(&self) -> Kind {
                match self { $(Object::$variant(_) => Kind::$variant,)* }
            }

            /// Namespace and name.
            pub fn key(&self) -> ObjectKey {
                match self { $(Object::$variant(o) => Held::key(&**o),)* }
            }

            /// Parses a JSON value of the given kind into a typed object, stripped of what
            /// no stage reads (see [`strip`]). Enum values the types do not know are
            /// substituted and recorded on the object (see [`crate::open_enum`]), so such an
            /// object still gets a status.
            pub fn from_value(kind: Kind, value: serde_json::Value) -> Result<Object, serde_json::Error> {
                Ok(match kind {
                    $(Kind::$variant => {
                        let (mut object, unsupported) = crate::open_enum::decode::<$ty>(value)?;
                        crate::open_enum::record(&mut object.metadata, &unsupported);
                        strip(&mut object.metadata);
                        Object::$variant(Arc::new(hold!(object $(, $packed)?)))
                    })*
                })
            }
        }
    };
}

objects! {
    GatewayClass(GatewayClass) => "gateway.networking.k8s.io", "GatewayClass", namespaced: false;
    Gateway(Gateway) => "gateway.networking.k8s.io", "Gateway", namespaced: true;
    ListenerSet(ListenerSet) => "gateway.networking.k8s.io", "ListenerSet", namespaced: true;
    HttpRoute(HttpRoute, packed) => "gateway.networking.k8s.io", "HTTPRoute", namespaced: true;
    GrpcRoute(GrpcRoute, packed) => "gateway.networking.k8s.io", "GRPCRoute", namespaced: true;
    TlsRoute(TlsRoute, packed) => "gateway.networking.k8s.io", "TLSRoute", namespaced: true;
    TcpRoute(TcpRoute, packed) => "gateway.networking.k8s.io", "TCPRoute", namespaced: true;
    UdpRoute(UdpRoute, packed) => "gateway.networking.k8s.io", "UDPRoute", namespaced: true;
    ReferenceGrant(ReferenceGrant) => "gateway.networking.k8s.io", "ReferenceGrant", namespaced: true;
    BackendTlsPolicy(BackendTlsPolicy) => "gateway.networking.k8s.io", "BackendTLSPolicy", namespaced: true;
    Service(Service) => "", "Service", namespaced: true;
    EndpointSlice(EndpointSlice) => "discovery.k8s.io", "EndpointSlice", namespaced: true;
    Secret(Secret) => "", "Secret", namespaced: true;
    ConfigMap(ConfigMap) => "", "ConfigMap", namespaced: true;
    Namespace(Namespace) => "", "Namespace", namespaced: false;
    ServiceImport(ServiceImport) => "multicluster.x-k8s.io", "ServiceImport", namespaced: true;
    ClusterTrustBundle(ClusterTrustBundle) => "certificates.k8s.io", "ClusterTrustBundle", namespaced: false;
    EnvoyProxy(EnvoyProxy) => "gateway.ferrogate.dev", "EnvoyProxy", namespaced: true;
}

impl Kind {
    /// Whether this is a route kind (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute).
    pub fn is_route(self) -> bool {
        matches!(
            self,
            Kind::HttpRoute | Kind::GrpcRoute | Kind::TlsRoute | Kind::TcpRoute | Kind::UdpRoute
        )
    }
}

impl Object {
    /// Kind and key.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind(),
            key: self.key(),
        }
    }
}

/// Drops what no stage reads (managedFields, the last-applied annotation) so the store holds
/// less memory. The resourceVersion goes too: it is the one field a status write changes,
/// and keeping it made each of our own status writes look like a change of the world (a
/// translation run for nothing, which then competes with the next status round).
pub(crate) fn strip(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.resource_version = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}
