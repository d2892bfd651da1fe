//! The readiness listener. Envoy only receives it over xDS, so a pod probing it is ready
//! exactly when Envoy has its configuration.

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, Route, RouteConfiguration, RouteMatch, VirtualHost, route,
    route_match::PathSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;

use crate::listener::{base_hcm, hcm_listener};

/// Name of the readiness listener (and of its inline route configuration).
pub const READY_LISTENER: &str = "ready";
/// Path the readiness listener answers on.
pub const READY_PATH: &str = "/ready";

/// The `ready` listener on `0.0.0.0:port`: `GET /ready` answers 200 `ready`, with an inline
/// (static) route configuration so it depends on nothing else. Its bytes depend only on
/// `port`.
pub fn ready_listener(port: u16) -> Listener {
    let route = Route {
        name: READY_LISTENER.to_string(),
        r#match: Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix(READY_PATH.to_string())),
            ..Default::default()
        }),
        action: Some(route::Action::DirectResponse(DirectResponseAction {
            status: 200,
            body: Some(DataSource {
                specifier: Some(Specifier::InlineString("ready".to_string())),
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    let mut hcm = base_hcm(READY_LISTENER);
    hcm.route_specifier = Some(RouteSpecifier::RouteConfig(RouteConfiguration {
        name: READY_LISTENER.to_string(),
        virtual_hosts: vec![VirtualHost {
            name: READY_LISTENER.to_string(),
            domains: vec!["*".to_string()],
            routes: vec![route],
            ..Default::default()
        }],
        ..Default::default()
    }));
    hcm_listener(READY_LISTENER, "0.0.0.0", port, hcm)
}
