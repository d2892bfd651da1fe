//! The kinds Ferrogate reads from a cluster, and the API versions it accepts for each,
//! newest first (a cluster with an older Gateway API release serves older versions; the
//! store reads any of them by kind).

use ferrogate_store::Kind;

/// A kind to watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchedKind {
    /// The store kind it fills.
    pub kind: Kind,
    /// API group (`""` for core).
    pub group: &'static str,
    /// Versions to try, preferred first.
    pub versions: &'static [&'static str],
    /// Resource name in URLs.
    pub plural: &'static str,
    /// Kind name as served.
    pub kind_name: &'static str,
    /// Whether the kind must be served: core kinds always are; a missing Gateway API kind
    /// is skipped (with a log line and a metric) instead.
    pub required: bool,
}

const GW: &str = "gateway.networking.k8s.io";

/// Every kind the Kubernetes provider watches.
pub const WATCHED_KINDS: &[WatchedKind] = &[
    WatchedKind {
        kind: Kind::GatewayClass,
        group: GW,
        versions: &["v1", "v1beta1"],
        plural: "gatewayclasses",
        kind_name: "GatewayClass",
        required: false,
    },
    WatchedKind {
        kind: Kind::Gateway,
        group: GW,
        versions: &["v1", "v1beta1"],
        plural: "gateways",
        kind_name: "Gateway",
        required: false,
    },
    WatchedKind {
        kind: Kind::ListenerSet,
        group: GW,
        versions: &["v1", "v1alpha1"],
        plural: "listenersets",
        kind_name: "ListenerSet",
        required: false,
    },
    WatchedKind {
        kind: Kind::HttpRoute,
        group: GW,
        versions: &["v1", "v1beta1"],
        plural: "httproutes",
        kind_name: "HTTPRoute",
        required: false,
    },
    WatchedKind {
        kind: Kind::GrpcRoute,
        group: GW,
        versions: &["v1", "v1alpha2"],
        plural: "grpcroutes",
        kind_name: "GRPCRoute",
        required: false,
    },
    WatchedKind {
        kind: Kind::TlsRoute,
        group: GW,
        versions: &["v1", "v1alpha3", "v1alpha2"],
        plural: "tlsroutes",
        kind_name: "TLSRoute",
        required: false,
    },
    WatchedKind {
        kind: Kind::TcpRoute,
        group: GW,
        versions: &["v1", "v1alpha2"],
        plural: "tcproutes",
        kind_name: "TCPRoute",
        required: false,
    },
    WatchedKind {
        kind: Kind::UdpRoute,
        group: GW,
        versions: &["v1", "v1alpha2"],
        plural: "udproutes",
        kind_name: "UDPRoute",
        required: false,
    },
    WatchedKind {
        kind: Kind::ReferenceGrant,
        group: GW,
        versions: &["v1", "v1beta1"],
        plural: "referencegrants",
        kind_name: "ReferenceGrant",
        required: false,
    },
    WatchedKind {
        kind: Kind::BackendTlsPolicy,
        group: GW,
        versions: &["v1", "v1alpha3"],
        plural: "backendtlspolicies",
        kind_name: "BackendTLSPolicy",
        required: false,
    },
    WatchedKind {
        kind: Kind::Service,
        group: "",
        versions: &["v1"],
        plural: "services",
        kind_name: "Service",
        required: true,
    },
    WatchedKind {
        kind: Kind::EndpointSlice,
        group: "discovery.k8s.io",
        versions: &["v1"],
        plural: "endpointslices",
        kind_name: "EndpointSlice",
        required: true,
    },
    WatchedKind {
        kind: Kind::Secret,
        group: "",
        versions: &["v1"],
        plural: "secrets",
        kind_name: "Secret",
        required: true,
    },
    WatchedKind {
        kind: Kind::ConfigMap,
        group: "",
        versions: &["v1"],
        plural: "configmaps",
        kind_name: "ConfigMap",
        required: true,
    },
    WatchedKind {
        kind: Kind::Namespace,
        group: "",
        versions: &["v1"],
        plural: "namespaces",
        kind_name: "Namespace",
        required: true,
    },
    WatchedKind {
        kind: Kind::ServiceImport,
        group: "multicluster.x-k8s.io",
        versions: &["v1alpha1"],
        plural: "serviceimports",
        kind_name: "ServiceImport",
        required: false,
    },
    WatchedKind {
        kind: Kind::ClusterTrustBundle,
        group: "certificates.k8s.io",
        versions: &["v1beta1", "v1alpha1"],
        plural: "clustertrustbundles",
        kind_name: "ClusterTrustBundle",
        required: false,
    },
    WatchedKind {
        kind: Kind::EnvoyProxy,
        group: "gateway.ferrogate.dev",
        versions: &["v1alpha1"],
        plural: "envoyproxies",
        kind_name: "EnvoyProxy",
        required: false,
    },
];

impl WatchedKind {
    /// `group/version` (or `version` for core).
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_kind_is_watched_once() {
        let mut seen: Vec<&str> = WATCHED_KINDS.iter().map(|k| k.kind.as_str()).collect();
        seen.sort();
        let before = seen.len();
        seen.dedup();
        assert_eq!(before, seen.len(), "a kind is watched twice");
        assert_eq!(seen.len(), 18, "a store kind is not watched: {seen:?}");
    }
}
