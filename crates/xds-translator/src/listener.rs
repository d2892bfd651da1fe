//! Listeners (LDS): one per IR listener.
//!
//! - HTTP: one filter chain running the HTTP connection manager (HCM);
//! - HTTPS: TLS inspector, one TLS-terminating HCM chain per server-name set;
//! - TLS: TLS inspector, one `tcp_proxy` chain per server-name set (passthrough, or
//!   terminating when the chain has certificates);
//! - TCP: one `tcp_proxy` chain;
//! - UDP: a UDP listener running the UDP proxy listener filter.
//!
//! Routes come over RDS and certificates over SDS, so a route or certificate content change
//! never changes a Listener (its bytes depend only on listener, chain, route configuration
//! and certificate names, and on stream backends).

use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, address,
    socket_address::{PortSpecifier, Protocol},
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, UdpListenerConfig,
    filter::ConfigType, listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds,
    http_connection_manager::{CodecType, RouteSpecifier, UpgradeConfig},
    http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    TcpProxy, tcp_proxy::ClusterSpecifier as TcpClusterSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::udp::udp_proxy::v3::{
    Route as UdpRoute, UdpProxyConfig, udp_proxy_config::RouteSpecifier as UdpRouteSpecifier,
};
use envoy_types::pb::google::protobuf::BoolValue;
use envoy_types::pb::xds::core::v3::TypedExtensionConfig;
use envoy_types::pb::xds::r#type::matcher::v3::{Matcher, matcher::OnMatch, matcher::on_match};
use ferrogate_ir::{
    HttpListener, HttpsListener, Listener as IrListener, StreamListener, TlsListener,
};

use crate::cluster::stream_cluster_name;
use crate::common::{ads_config_source, pack};
use crate::tls::{HTTPS_ALPN, downstream_tls_context, downstream_transport_socket};
use crate::type_url;

/// Name of the HTTP connection manager network filter.
pub const HCM_FILTER: &str = "envoy.filters.network.http_connection_manager";
/// Name of the router HTTP filter.
pub const ROUTER_FILTER: &str = "envoy.filters.http.router";
/// Name of the CORS HTTP filter.
pub const CORS_FILTER: &str = "envoy.filters.http.cors";
/// Name of the TLS inspector listener filter.
pub const TLS_INSPECTOR_FILTER: &str = "envoy.filters.listener.tls_inspector";
/// Name of the TCP proxy network filter.
pub const TCP_PROXY_FILTER: &str = "envoy.filters.network.tcp_proxy";
/// Name of the UDP proxy listener filter.
pub const UDP_PROXY_FILTER: &str = "envoy.filters.udp_listener.udp_proxy";

/// `SO_REUSEPORT` on every listener socket, said explicitly although it is Envoy's default
/// on Linux: several Envoy processes of one Gateway (standalone `replicas`) bind the same
/// ports, so a crashed one leaves the others accepting.
pub(crate) fn reuse_port() -> Option<BoolValue> {
    Some(BoolValue { value: true })
}

/// The Envoy Listener for an IR HTTP listener: binds `address:port`, one filter chain with
/// an HCM that fetches `route_config` over RDS (ADS).
pub fn http_listener(l: &IrListener, http: &HttpListener, logs: &[AccessLog]) -> Listener {
    hcm_listener(
        &l.name,
        &l.address,
        l.port,
        rds_hcm(&l.name, &http.route_config, logs),
    )
}

/// The Envoy Listener for an IR HTTPS listener: TLS inspector, then one filter chain per
/// IR chain, selected by SNI (`server_names`; none: the default chain), terminating TLS
/// with the chain's certificates (SDS) and running an HCM on the chain's route
/// configuration (RDS). ALPN offers `h2` and `http/1.1`.
///
/// The IR guarantees distinct server-name sets (Envoy rejects duplicate matches). A
/// listener whose IR has no chain at all gives `None` (Envoy rejects listeners without
/// filter chains).
pub fn https_listener(
    l: &IrListener,
    https: &HttpsListener,
    logs: &[AccessLog],
) -> Option<Listener> {
    let filter_chains: Vec<FilterChain> = https
        .chains
        .iter()
        .map(|c| FilterChain {
            name: c.name.clone(),
            filter_chain_match: sni_match(&c.server_names),
            filters: vec![hcm_filter(rds_hcm(&l.name, &c.route_config, logs))],
            transport_socket: Some(downstream_transport_socket(&downstream_tls_context(
                &c.certificates,
                c.client_validation.as_ref(),
                &HTTPS_ALPN,
            ))),
            ..Default::default()
        })
        .collect();
    sni_listener(l, filter_chains)
}

/// A listener selecting filter chains by SNI (TLS inspector first); `None` without chains,
/// as Envoy rejects listeners without filter chains.
fn sni_listener(l: &IrListener, filter_chains: Vec<FilterChain>) -> Option<Listener> {
    if filter_chains.is_empty() {
        return None;
    }
    Some(Listener {
        name: l.name.clone(),
        address: Some(socket_address(&l.address, l.port)),
        listener_filters: vec![tls_inspector()],
        filter_chains,
        enable_reuse_port: reuse_port(),
        ..Default::default()
    })
}

/// The Envoy Listener for an IR TLS listener: TLS inspector, then one `tcp_proxy` filter
/// chain per IR chain, selected by SNI. A chain with certificates terminates TLS (SDS, no
/// ALPN) and proxies the decrypted stream; one without passes the TLS stream through. Each
/// chain proxies to its stream cluster ([`crate::cluster::stream_cluster`]): without usable
/// backends that cluster is empty, so the connection is accepted and closed, which is what
/// the Gateway API asks for a TLSRoute whose backends are all invalid.
pub fn tls_listener(l: &IrListener, tls: &TlsListener, logs: &[AccessLog]) -> Option<Listener> {
    let filter_chains: Vec<FilterChain> = tls
        .chains
        .iter()
        .map(|c| FilterChain {
            name: c.name.clone(),
            filter_chain_match: sni_match(&c.server_names),
            filters: vec![tcp_proxy(
                &l.name,
                TcpClusterSpecifier::Cluster(stream_cluster_name(&l.name, Some(&c.name))),
                logs,
            )],
            transport_socket: (!c.certificates.is_empty()).then(|| {
                downstream_transport_socket(&downstream_tls_context(&c.certificates, None, &[]))
            }),
            ..Default::default()
        })
        .collect();
    sni_listener(l, filter_chains)
}

/// The Envoy Listener for an IR TCP listener: one `tcp_proxy` filter chain to the listener's
/// stream cluster. It binds its port whatever the route's backends are: without a usable one
/// each connection is accepted and closed (see [`crate::cluster::stream_cluster`]).
pub fn tcp_listener(l: &IrListener, _tcp: &StreamListener, logs: &[AccessLog]) -> Listener {
    Listener {
        name: l.name.clone(),
        address: Some(socket_address(&l.address, l.port)),
        filter_chains: vec![FilterChain {
            filters: vec![tcp_proxy(
                &l.name,
                TcpClusterSpecifier::Cluster(stream_cluster_name(&l.name, None)),
                logs,
            )],
            ..Default::default()
        }],
        enable_reuse_port: reuse_port(),
        ..Default::default()
    }
}

/// The Envoy Listener for an IR UDP listener: a UDP socket (`udp_listener_config`) with the
/// UDP proxy listener filter, routed with its `matcher` (`on_no_match` -> the listener's
/// stream cluster; the `cluster` field is deprecated). Without a usable backend the socket
/// stays bound and datagrams are dropped (UDP has no way to refuse them).
pub fn udp_listener(l: &IrListener, _udp: &StreamListener, logs: &[AccessLog]) -> Listener {
    let proxy = UdpProxyConfig {
        stat_prefix: l.name.clone(),
        route_specifier: Some(UdpRouteSpecifier::Matcher(Matcher {
            on_no_match: Some(Box::new(OnMatch {
                keep_matching: false,
                on_match: Some(on_match::OnMatch::Action(TypedExtensionConfig {
                    name: "route".to_string(),
                    typed_config: Some(pack(
                        type_url::UDP_PROXY_ROUTE,
                        &UdpRoute {
                            cluster: stream_cluster_name(&l.name, None),
                        },
                    )),
                })),
            })),
            matcher_type: None,
        })),
        // Session logs: one line per UDP session when it ends.
        access_log: logs.to_vec(),
        ..Default::default()
    };
    let mut address = socket_address(&l.address, l.port);
    if let Some(address::Address::SocketAddress(sa)) = &mut address.address {
        sa.protocol = Protocol::Udp as i32;
    }
    Listener {
        name: l.name.clone(),
        address: Some(address),
        udp_listener_config: Some(UdpListenerConfig::default()),
        enable_reuse_port: reuse_port(),
        listener_filters: vec![ListenerFilter {
            name: UDP_PROXY_FILTER.to_string(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(pack(
                type_url::UDP_PROXY,
                &proxy,
            ))),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A `tcp_proxy` filter to the given cluster(s), logging each connection when it closes.
fn tcp_proxy(
    stat_prefix: &str,
    cluster_specifier: TcpClusterSpecifier,
    logs: &[AccessLog],
) -> Filter {
    let proxy = TcpProxy {
        stat_prefix: stat_prefix.to_string(),
        cluster_specifier: Some(cluster_specifier),
        access_log: logs.to_vec(),
        ..Default::default()
    };
    Filter {
        name: TCP_PROXY_FILTER.to_string(),
        config_type: Some(ConfigType::TypedConfig(pack(type_url::TCP_PROXY, &proxy))),
    }
}

/// The TLS inspector listener filter (reads SNI and ALPN for filter chain selection).
pub(crate) fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: TLS_INSPECTOR_FILTER.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack(
            type_url::TLS_INSPECTOR,
            &TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

/// Matches the given SNI values; `None` (any) when empty.
fn sni_match(server_names: &[String]) -> Option<FilterChainMatch> {
    (!server_names.is_empty()).then(|| FilterChainMatch {
        server_names: server_names.to_vec(),
        ..Default::default()
    })
}

/// The HCM of HTTP and HTTPS listeners: [`base_hcm`] plus RDS for `route_config` over ADS,
/// `use_remote_address`, WebSocket upgrades and the access logs (one line per request).
fn rds_hcm(stat_prefix: &str, route_config: &str, logs: &[AccessLog]) -> HttpConnectionManager {
    let mut hcm = base_hcm(stat_prefix);
    hcm.access_log = logs.to_vec();
    hcm.route_specifier = Some(RouteSpecifier::Rds(Rds {
        config_source: Some(ads_config_source()),
        route_config_name: route_config.to_string(),
    }));
    // Behind a load balancer the peer is the client (or trusted proxy): use it for
    // x-forwarded-for and internal/external decisions.
    hcm.use_remote_address = Some(BoolValue { value: true });
    // WebSocket upgrades are forwarded (Gateway API expects them to work through routes).
    hcm.upgrade_configs = vec![UpgradeConfig {
        upgrade_type: "websocket".to_string(),
        ..Default::default()
    }];
    hcm
}

/// HCM options shared by every HTTP listener (including `ready`):
/// - codec AUTO: HTTP/1.1 and h2c (prior knowledge) are both accepted;
/// - `normalize_path`: RFC 3986 normalization (`/a/../b` -> `/b`) before matching; slashes
///   are not merged and escaped slashes keep Envoy's default handling, so paths are otherwise
///   forwarded as sent (Gateway API conformance);
/// - no port stripping: the Host header reaches backends as the client sent it (Gateway API
///   conformance checks this); route configurations ignore the port when matching instead;
/// - HTTP filters: CORS, stateful session, then the router. CORS and stateful session are
///   always present, so adding a CORS policy or session persistence to a route never
///   changes a Listener (a Listener change drains its connections), but they are disabled
///   by default: only routes with a policy enable them (see [`crate::route::route`]), so
///   every other request skips them.
pub(crate) fn base_hcm(stat_prefix: &str) -> HttpConnectionManager {
    HttpConnectionManager {
        codec_type: CodecType::Auto as i32,
        stat_prefix: stat_prefix.to_string(),
        http_filters: vec![cors_filter(), crate::session::hcm_filter(), router_filter()],
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: false,
        ..Default::default()
    }
}

/// The CORS filter, disabled by default: Envoy leaves it out of a request's filter chain
/// unless the route enables it with its policy (`typed_per_filter_config`), so routes
/// without CORS pay nothing for it.
pub(crate) fn cors_filter() -> HttpFilter {
    HttpFilter {
        name: CORS_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack(
            type_url::CORS,
            &Cors::default(),
        ))),
        disabled: true,
        ..Default::default()
    }
}

/// The terminal router filter.
pub(crate) fn router_filter() -> HttpFilter {
    HttpFilter {
        name: ROUTER_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack(
            type_url::ROUTER,
            &Router::default(),
        ))),
        ..Default::default()
    }
}

/// A listener on `address:port` (TCP) whose single filter chain runs `hcm`.
pub(crate) fn hcm_listener(
    name: &str,
    address: &str,
    port: u16,
    hcm: HttpConnectionManager,
) -> Listener {
    Listener {
        name: name.to_string(),
        address: Some(socket_address(address, port)),
        filter_chains: vec![FilterChain {
            filters: vec![hcm_filter(hcm)],
            ..Default::default()
        }],
        enable_reuse_port: reuse_port(),
        ..Default::default()
    }
}

/// The HCM network filter.
fn hcm_filter(hcm: HttpConnectionManager) -> Filter {
    Filter {
        name: HCM_FILTER.to_string(),
        config_type: Some(ConfigType::TypedConfig(pack(
            type_url::HTTP_CONNECTION_MANAGER,
            &hcm,
        ))),
    }
}

/// A TCP socket address.
pub(crate) fn socket_address(address: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: address.to_string(),
            port_specifier: Some(PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}
