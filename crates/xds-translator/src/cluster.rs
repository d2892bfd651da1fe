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

/// Name of the stream cluster of a TCP or UDP listener, or of one chain of a TLS listener.
pub fn stream_cluster_name(listener: &str, chain: Option<&str>) -> String {
    match chain {
        Some(chain) => format!("stream/{listener}/{chain}"),
        None => format!("stream/{listener}"),
    }
}

/// The cluster a TCP, TLS or UDP listener (chain) proxies to: one EDS cluster whose
/// localities are the route's backends, weighted as the route says (locality-weighted load
/// balancing; each connection or UDP session picks a host).
///
/// Why one cluster per listener instead of the backends' own clusters: the listener then
/// names only this cluster, so its bytes never depend on the route's backends. A listener
/// whose route has no usable backend (all weights 0, none resolved) still binds its port and
/// proxies here; with no endpoints Envoy accepts each connection and closes it at once (an
/// active rejection, where an unbound port would contradict `Programmed: True`), and a
/// weight change later is an EDS update only, never a Listener change (which would drain
/// connections). The UDP proxy has no weighted clusters, so it needs this shape anyway.
///
/// Upstream TLS is per cluster: the stream cluster carries it when every backend agrees on
/// it (the usual single backend); backends with different TLS settings get none.
pub fn stream_cluster(
    name: &str,
    backends: &[ferrogate_ir::WeightedBackend],
    all: &[Backend],
) -> Cluster {
    use envoy_types::pb::envoy::config::cluster::v3::cluster::{
        CommonLbConfig,
        common_lb_config::{LocalityConfigSpecifier, LocalityWeightedLbConfig},
    };
    let tls: Vec<Option<&ferrogate_ir::UpstreamTls>> = backends
        .iter()
        .filter_map(|wb| all.iter().find(|b| b.name == wb.backend))
        .map(|b| b.tls.as_ref())
        .collect();
    let shared_tls = match tls.split_first() {
        Some((first, rest)) if rest.iter().all(|t| t == first) => *first,
        _ => None,
    };
    Cluster {
        name: name.to_string(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(ads_config_source()),
            service_name: name.to_string(),
        }),
        connect_timeout: Some(seconds(CONNECT_TIMEOUT_SECONDS)),
        lb_policy: LbPolicy::RoundRobin as i32,
        common_lb_config: Some(CommonLbConfig {
            locality_config_specifier: Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(
                LocalityWeightedLbConfig {},
            )),
            ..Default::default()
        }),
        transport_socket: shared_tls.map(upstream_transport_socket),
        ..Default::default()
    }
}
