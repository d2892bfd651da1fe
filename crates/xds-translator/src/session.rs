//! Session persistence: Envoy's stateful session HTTP filter. The HCM always carries the
//! filter, disabled and without a session state, so adding persistence to a route never
//! changes a Listener (which would drain its connections); a route with persistence enables
//! it with its own cookie or header (`typed_per_filter_config`, a `FilterConfig` wrapping a
//! `StatefulSessionPerRoute`). The cookie's path is the route's path match (its longest
//! literal prefix for a regex), as GEP-1619 asks.

use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
use envoy_types::pb::envoy::config::route::v3::FilterConfig;
use envoy_types::pb::envoy::extensions::filters::http::stateful_session::v3::{
    StatefulSession, StatefulSessionPerRoute, stateful_session_per_route::Override,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter,
};
use envoy_types::pb::envoy::extensions::http::stateful_session::cookie::v3::CookieBasedSessionState;
use envoy_types::pb::envoy::extensions::http::stateful_session::header::v3::HeaderBasedSessionState;
use envoy_types::pb::envoy::r#type::http::v3::Cookie;
use envoy_types::pb::google::protobuf::{Any, Duration};
use ferrogate_ir::{PathMatch, SessionPersistence};

use crate::common::pack;
use crate::type_url;

/// Name of the stateful session HTTP filter.
pub const STATEFUL_SESSION_FILTER: &str = "envoy.filters.http.stateful_session";

/// The HCM's stateful session filter: disabled, no session state.
pub(crate) fn hcm_filter() -> HttpFilter {
    HttpFilter {
        name: STATEFUL_SESSION_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack(
            type_url::STATEFUL_SESSION,
            &StatefulSession::default(),
        ))),
        disabled: true,
        ..Default::default()
    }
}

/// The per-route entry that enables the filter with the route's session.
pub(crate) fn per_route(sp: &SessionPersistence, path: &PathMatch) -> Any {
    let session_state = match sp {
        SessionPersistence::Cookie { name, ttl_seconds } => TypedExtensionConfig {
            name: "envoy.http.stateful_session.cookie".to_string(),
            typed_config: Some(pack(
                type_url::COOKIE_SESSION_STATE,
                &CookieBasedSessionState {
                    cookie: Some(Cookie {
                        name: name.clone(),
                        ttl: ttl_seconds.map(|s| Duration {
                            seconds: i64::try_from(s).unwrap_or(i64::MAX),
                            nanos: 0,
                        }),
                        path: cookie_path(path),
                        ..Default::default()
                    }),
                },
            )),
        },
        SessionPersistence::Header { name } => TypedExtensionConfig {
            name: "envoy.http.stateful_session.header".to_string(),
            typed_config: Some(pack(
                type_url::HEADER_SESSION_STATE,
                &HeaderBasedSessionState { name: name.clone() },
            )),
        },
    };
    let per_route = StatefulSessionPerRoute {
        r#override: Some(Override::StatefulSession(StatefulSession {
            session_state: Some(session_state),
            ..Default::default()
        })),
    };
    let enabled = FilterConfig {
        config: Some(pack(type_url::STATEFUL_SESSION_PER_ROUTE, &per_route)),
        is_optional: false,
        disabled: false,
    };
    pack(type_url::FILTER_CONFIG, &enabled)
}

/// The cookie's path: the matched path, or a regex's literal prefix up to its last `/`.
fn cookie_path(path: &PathMatch) -> String {
    match path {
        PathMatch::Exact(p) | PathMatch::Prefix(p) => p.clone(),
        PathMatch::Regex(r) => {
            let literal: String = r
                .chars()
                .take_while(|c| !"\\^$.|?*+()[]{}".contains(*c))
                .collect();
            match literal.rfind('/') {
                Some(i) if i > 0 => literal[..i].to_string(),
                _ => "/".to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_path_is_the_path_match_or_a_regex_literal_prefix() {
        assert_eq!(cookie_path(&PathMatch::Prefix("/cart".into())), "/cart");
        assert_eq!(
            cookie_path(&PathMatch::Exact("/cart/view".into())),
            "/cart/view"
        );
        assert_eq!(
            cookie_path(&PathMatch::Regex("/p1/p2/[a-z]+/p3".into())),
            "/p1/p2"
        );
        assert_eq!(cookie_path(&PathMatch::Regex(".*".into())), "/");
    }
}
