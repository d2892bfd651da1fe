//! Listeners (LDS): one per IR listener, each with a single filter chain running the HTTP
//! connection manager. Routes come over RDS, so a route change never changes a Listener.

use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, address, socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, Listener, filter::ConfigType,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds,
    http_connection_manager::{CodecType, RouteSpecifier, StripPortMode, UpgradeConfig},
    http_filter,
};
use envoy_types::pb::google::protobuf::BoolValue;
use ferrogate_ir::{HttpListener, Listener as IrListener};

use crate::common::{ads_config_source, pack};
use crate::type_url;

/// Name of the HTTP connection manager network filter.
pub const HCM_FILTER: &str = "envoy.filters.network.http_connection_manager";
/// Name of the router HTTP filter.
pub const ROUTER_FILTER: &str = "envoy.filters.http.router";

/// The Envoy Listener for an IR HTTP listener: binds `address:port`, one filter chain with
/// an HCM that fetches `route_config` over RDS (ADS).
pub fn http_listener(l: &IrListener, http: &HttpListener) -> Listener {
    let mut hcm = base_hcm(&l.name);
    hcm.route_specifier = Some(RouteSpecifier::Rds(Rds {
        config_source: Some(ads_config_source()),
        route_config_name: http.route_config.clone(),
    }));
    // Behind a load balancer the peer is the client (or trusted proxy): use it for
    // x-forwarded-for and internal/external decisions.
    hcm.use_remote_address = Some(BoolValue { value: true });
    // WebSocket upgrades are forwarded (Gateway API expects them to work through routes).
    hcm.upgrade_configs = vec![UpgradeConfig {
        upgrade_type: "websocket".to_string(),
        ..Default::default()
    }];
    hcm_listener(&l.name, &l.address, l.port, hcm)
}

/// HCM options shared by every HTTP listener (including `ready`):
/// - codec AUTO: HTTP/1.1 and h2c (prior knowledge) are both accepted;
/// - `normalize_path`: RFC 3986 normalization (`/a/../b` -> `/b`) before matching; slashes
///   are not merged and escaped slashes keep Envoy's default handling, so paths are otherwise
///   forwarded as sent (Gateway API conformance);
/// - `strip_any_host_port`: `Host: example.com:8080` matches domain `example.com`;
/// - the router as the only HTTP filter.
pub(crate) fn base_hcm(stat_prefix: &str) -> HttpConnectionManager {
    HttpConnectionManager {
        codec_type: CodecType::Auto as i32,
        stat_prefix: stat_prefix.to_string(),
        http_filters: vec![router_filter()],
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: false,
        strip_port_mode: Some(StripPortMode::StripAnyHostPort(true)),
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
            filters: vec![Filter {
                name: HCM_FILTER.to_string(),
                config_type: Some(ConfigType::TypedConfig(pack(
                    type_url::HTTP_CONNECTION_MANAGER,
                    &hcm,
                ))),
            }],
            ..Default::default()
        }],
        ..Default::default()
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
