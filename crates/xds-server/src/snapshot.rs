//! Immutable per-Gateway resource snapshots with content-derived versions.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use envoy_types::pb::google::protobuf::Any;
use sha2::{Digest, Sha256};

/// Type URL of `envoy.config.cluster.v3.Cluster` (CDS).
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// Type URL of `envoy.config.endpoint.v3.ClusterLoadAssignment` (EDS).
pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
/// Type URL of `envoy.config.listener.v3.Listener` (LDS).
pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// Type URL of `envoy.config.route.v3.RouteConfiguration` (RDS).
pub const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/// Type URL of `envoy.extensions.transport_sockets.tls.v3.Secret` (SDS).
pub const SECRET_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// Number of hex characters kept from a SHA-256 digest for versions (64 bits).
const VERSION_HEX_LEN: usize = 16;

/// Version of a type that has no resources (or is absent from a snapshot).
static EMPTY_TYPE_VERSION: LazyLock<String> = LazyLock::new(|| type_version(&BTreeMap::new()));

/// One resource with its content version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedResource {
    /// Content version: a hash of the encoded `Any` (type URL and bytes).
    pub version: String,
    /// The resource itself.
    pub resource: Any,
}

/// All resources of one type URL, with the type's version.
#[derive(Debug, Clone, PartialEq, Default)]
struct TypeResources {
    version: String,
    resources: BTreeMap<String, VersionedResource>,
}

impl TypeResources {
    fn new(list: Vec<(String, Any)>) -> Self {
        let resources: BTreeMap<String, VersionedResource> = list
            .into_iter()
            .map(|(name, resource)| {
                let version = resource_version(&resource);
                (name, VersionedResource { version, resource })
            })
            .collect();
        let version = type_version(&resources);
        Self { version, resources }
    }
}

/// Immutable resources of one Gateway: type URL -> (name -> `Any`).
///
/// Each resource gets a content version (a hash of its encoded bytes) and each type a version
/// (a hash over its resources' names and versions), so identical content always has identical
/// versions, whichever process or replica built it. A snapshot is never mutated after it is built;
/// it is shared as `Arc<Snapshot>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Shared between snapshots that differ in other types only ([`Snapshot::with_type`]).
    types: BTreeMap<String, Arc<TypeResources>>,
    fingerprint: String,
}

impl Snapshot {
    /// Builds a snapshot from resources grouped by type URL.
    ///
    /// Names must be unique within a type; if a name repeats, the last resource wins. The `Any`
    /// of each resource should carry the same type URL as its group (not checked).
    pub fn new(resources: BTreeMap<String, Vec<(String, Any)>>) -> Self {
        let types = resources
            .into_iter()
            .map(|(type_url, list)| (type_url, Arc::new(TypeResources::new(list))))
            .collect();
        Self::from_types(types)
    }

    /// This snapshot with the resources of `type_url` replaced. The other types are shared,
    /// not copied or hashed again: an endpoint change costs its ClusterLoadAssignments only,
    /// however large the route table is.
    pub fn with_type(&self, type_url: &str, resources: Vec<(String, Any)>) -> Self {
        let mut types = self.types.clone();
        types.insert(
            type_url.to_string(),
            Arc::new(TypeResources::new(resources)),
        );
        Self::from_types(types)
    }

    fn from_types(types: BTreeMap<String, Arc<TypeResources>>) -> Self {
        let mut hasher = Sha256::new();
        for (type_url, resources) in &types {
            update_field(&mut hasher, type_url.as_bytes());
            update_field(&mut hasher, resources.version.as_bytes());
        }
        let fingerprint = short_hex(hasher);
        Self { types, fingerprint }
    }

    /// The version of `type_url`, or `None` if the snapshot has no entry for that type.
    pub fn version(&self, type_url: &str) -> Option<&str> {
        self.types.get(type_url).map(|t| t.version.as_str())
    }

    /// The version of `type_url`, treating an absent type as an empty one.
    pub(crate) fn version_or_empty(&self, type_url: &str) -> &str {
        self.version(type_url)
            .unwrap_or(EMPTY_TYPE_VERSION.as_str())
    }

    /// Names of the resources of `type_url`, sorted (empty if the type is absent).
    pub fn resource_names(&self, type_url: &str) -> impl Iterator<Item = &str> + '_ {
        self.types
            .get(type_url)
            .into_iter()
            .flat_map(|t| t.resources.keys().map(String::as_str))
    }

    /// The type URLs present in this snapshot, sorted.
    pub fn type_urls(&self) -> impl Iterator<Item = &str> + '_ {
        self.types.keys().map(String::as_str)
    }

    /// One resource with its version, if present.
    pub fn resource(&self, type_url: &str, name: &str) -> Option<&VersionedResource> {
        self.types.get(type_url)?.resources.get(name)
    }

    /// All resources of `type_url` by name (empty if the type is absent).
    pub(crate) fn resources(
        &self,
        type_url: &str,
    ) -> impl Iterator<Item = (&str, &VersionedResource)> + '_ {
        self.types
            .get(type_url)
            .into_iter()
            .flat_map(|t| t.resources.iter().map(|(n, r)| (n.as_str(), r)))
    }

    /// A hash over every type URL and type version: equal fingerprints mean equal content.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether `type_url` may be subscribed to with the legacy wildcard (an empty name list).
    pub(crate) fn is_wildcard_type(type_url: &str) -> bool {
        type_url == LISTENER_TYPE || type_url == CLUSTER_TYPE
    }
}

/// Order in which pushes go out, like go-control-plane's ADS ordering: clusters before
/// endpoints, listeners before routes, so Envoy never points at something not yet sent.
/// Types not listed come afterwards, sorted by type URL.
pub(crate) fn push_order<'a>(types: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    const ORDER: [&str; 5] = [
        CLUSTER_TYPE,
        ENDPOINT_TYPE,
        LISTENER_TYPE,
        ROUTE_TYPE,
        SECRET_TYPE,
    ];
    let mut out: Vec<&str> = types.into_iter().collect();
    out.sort_by_key(|t| {
        let rank = ORDER.iter().position(|o| o == t).unwrap_or(ORDER.len());
        (rank, *t)
    });
    out.dedup();
    out
}

fn resource_version(resource: &Any) -> String {
    let mut hasher = Sha256::new();
    update_field(&mut hasher, resource.type_url.as_bytes());
    update_field(&mut hasher, &resource.value);
    short_hex(hasher)
}

fn type_version(resources: &BTreeMap<String, VersionedResource>) -> String {
    let mut hasher = Sha256::new();
    for (name, r) in resources {
        update_field(&mut hasher, name.as_bytes());
        update_field(&mut hasher, r.version.as_bytes());
    }
    short_hex(hasher)
}

/// Length-prefixed, so that field boundaries cannot be confused.
fn update_field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

fn short_hex(hasher: Sha256) -> String {
    let mut s = hex::encode(hasher.finalize());
    s.truncate(VERSION_HEX_LEN);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(type_url: &str, bytes: &[u8]) -> Any {
        Any {
            type_url: type_url.to_string(),
            value: bytes.to_vec(),
        }
    }

    fn snap(list: &[(&str, &str, &[u8])]) -> Snapshot {
        let mut m: BTreeMap<String, Vec<(String, Any)>> = BTreeMap::new();
        for (t, n, b) in list {
            m.entry(t.to_string())
                .or_default()
                .push((n.to_string(), any(t, b)));
        }
        Snapshot::new(m)
    }

    #[test]
    fn identical_content_gives_identical_versions() {
        let a = snap(&[(CLUSTER_TYPE, "a", b"1"), (CLUSTER_TYPE, "b", b"2")]);
        let b = snap(&[(CLUSTER_TYPE, "b", b"2"), (CLUSTER_TYPE, "a", b"1")]);
        assert_eq!(a.version(CLUSTER_TYPE), b.version(CLUSTER_TYPE));
        assert_eq!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn changing_one_resource_changes_only_its_type_and_its_version() {
        let a = snap(&[(CLUSTER_TYPE, "a", b"1"), (LISTENER_TYPE, "l", b"x")]);
        let b = snap(&[(CLUSTER_TYPE, "a", b"2"), (LISTENER_TYPE, "l", b"x")]);
        assert_ne!(a.version(CLUSTER_TYPE), b.version(CLUSTER_TYPE));
        assert_eq!(a.version(LISTENER_TYPE), b.version(LISTENER_TYPE));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn absent_type_has_the_version_of_an_empty_type() {
        let a = snap(&[(CLUSTER_TYPE, "a", b"1")]);
        let empty = Snapshot::new(BTreeMap::from([(ROUTE_TYPE.to_string(), vec![])]));
        assert_eq!(a.version(ROUTE_TYPE), None);
        assert_eq!(
            a.version_or_empty(ROUTE_TYPE),
            empty.version(ROUTE_TYPE).unwrap()
        );
    }

    #[test]
    fn push_order_puts_clusters_before_endpoints_before_listeners_before_routes() {
        let order = push_order([
            ROUTE_TYPE,
            "type.googleapis.com/x.Y",
            LISTENER_TYPE,
            ENDPOINT_TYPE,
            CLUSTER_TYPE,
        ]);
        assert_eq!(
            order,
            vec![
                CLUSTER_TYPE,
                ENDPOINT_TYPE,
                LISTENER_TYPE,
                ROUTE_TYPE,
                "type.googleapis.com/x.Y"
            ]
        );
    }

    #[test]
    fn replacing_one_type_equals_building_anew() {
        let any = |v: &[u8]| Any {
            type_url: ENDPOINT_TYPE.into(),
            value: v.to_vec(),
        };
        let route = Any {
            type_url: ROUTE_TYPE.into(),
            value: vec![9; 64],
        };
        let before = Snapshot::new(BTreeMap::from([
            (
                ROUTE_TYPE.to_string(),
                vec![("r".to_string(), route.clone())],
            ),
            (
                ENDPOINT_TYPE.to_string(),
                vec![("c".to_string(), any(b"old"))],
            ),
        ]));
        let after = before.with_type(ENDPOINT_TYPE, vec![("c".to_string(), any(b"new"))]);
        let built = Snapshot::new(BTreeMap::from([
            (ROUTE_TYPE.to_string(), vec![("r".to_string(), route)]),
            (
                ENDPOINT_TYPE.to_string(),
                vec![("c".to_string(), any(b"new"))],
            ),
        ]));
        assert_eq!(after, built);
        assert_eq!(after.fingerprint(), built.fingerprint());
        assert_eq!(after.version(ROUTE_TYPE), before.version(ROUTE_TYPE));
        assert_ne!(after.version(ENDPOINT_TYPE), before.version(ENDPOINT_TYPE));
    }
}
