//! Clusters (CDS): one EDS cluster per backend. Endpoints are not embedded, so a Cluster
//! does not change when only its endpoints do.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    Cluster,
    cluster::{ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbPolicy},
};
use envoy_types::pb::envoy::config::core::v3::Http2ProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions,
    http_protocol_options::{
        ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
    },
};
use ferrogate_ir::{Backend, BackendProtocol};

use crate::common::{ads_config_source, pack, seconds};
use crate::tls::upstream_transport_socket;
use crate::type_url;

/// Key of the upstream HTTP protocol options in `typed_extension_protocol_options`.
pub const HTTP_PROTOCOL_OPTIONS_KEY: &str =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// Connect timeout of every cluster.
pub const CONNECT_TIMEOUT_SECONDS: i64 = 5;

/// The cluster for a backend: named after it, EDS over ADS (`service_name` = backend name),
/// round robin, 5 s connect timeout. HTTP/2 backends (h2c, gRPC, and HTTP/2 over TLS) get
/// explicit HTTP/2 upstream protocol options; HTTP/1.1 backends use Envoy's default; TCP and
/// UDP backends carry no HTTP options at all. A backend with `tls` gets a TLS transport
/// socket ([`crate::tls::upstream_tls_context`]).
pub fn cluster(b: &Backend) -> Cluster {
    // The map holds at most one entry, so its encoding is deterministic.
    let mut typed_extension_protocol_options = HashMap::new();
    if b.protocol == BackendProtocol::Http2 {
        let opts = HttpProtocolOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                        Http2ProtocolOptions::default(),
                    )),
                },
            )),
            ..Default::default()
        };
        typed_extension_protocol_options.insert(
            HTTP_PROTOCOL_OPTIONS_KEY.to_string(),
            pack(type_url::HTTP_PROTOCOL_OPTIONS, &opts),
        );
    }
    Cluster {
        name: b.name.clone(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(ads_config_source()),
            service_name: b.name.clone(),
        }),
        connect_timeout: Some(seconds(CONNECT_TIMEOUT_SECONDS)),
        lb_policy: LbPolicy::RoundRobin as i32,
        typed_extension_protocol_options,
        transport_socket: b.tls.as_ref().map(upstream_transport_socket),
        ..Default::default()
    }
}

/// Name of the synthetic cluster spreading a UDP listener over several weighted backends.
pub fn weighted_udp_cluster_name(listener: &str) -> String {
    format!("udp-weighted/{listener}")
}

/// The UDP proxy has no weighted clusters, so a UDPRoute with several backends gets one
/// EDS cluster whose localities are the backends, weighted as the route says
/// (locality-weighted load balancing; each UDP session picks a host).
pub fn weighted_udp_cluster(name: &str) -> Cluster {
    use envoy_types::pb::envoy::config::cluster::v3::cluster::{
        CommonLbConfig,
        common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig},
    };
    Cluster {
        name: name.to_string(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig { eds_config: Some(ads_config_source()), service_name: name.to_string() }),
        connect_timeout: Some(seconds(CONNECT_TIMEOUT_SECONDS)),
        lb_policy: LbPolicy::RoundRobin as i32,
        common_lb_config: Some(CommonLbConfig {
            locality_config_specifier: Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(LocalityWeightedLbConfig {})),
            ..Default::default()
        }),
        ..Default::default()
    }
}
