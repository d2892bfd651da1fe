//! Route configurations (RDS): virtual hosts, routes in the IR's order (first match wins)
//! and Gateway API request matches.

use envoy_types::pb::envoy::config::route::v3::{
    FilterConfig, HeaderMatcher, QueryParameterMatcher, Route, RouteConfiguration, RouteMatch,
    VirtualHost, header_matcher::HeaderMatchSpecifier,
    query_parameter_matcher::QueryParameterMatchSpecifier, route_match::PathSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use envoy_types::pb::google::protobuf::BoolValue;
use ferrogate_ir::{
    Cors, HttpMatch, HttpRoute, PathMatch, RouteAction as IrAction, VirtualHost as IrVirtualHost,
};

use crate::action;
use crate::common::{pack, re2_escape, regex, string_matcher};
use crate::listener::CORS_FILTER;
use crate::type_url;

/// The RouteConfiguration `name`, virtual hosts and routes in the given order (HTTP
/// listeners and HTTPS chains alike).
///
/// When a route sends a share of its requests to invalid backends
/// ([`action::INVALID_BACKEND_CLUSTER`], which is never emitted), `validate_clusters` is set
/// to `false` explicitly. That is already Envoy's default for RDS; being explicit keeps the
/// configuration valid when it is inlined (static route configurations validate clusters by
/// default).
pub fn route_configuration(name: &str, virtual_hosts: &[IrVirtualHost]) -> RouteConfiguration {
    let invalid_share = virtual_hosts
        .iter()
        .flat_map(|vh| &vh.routes)
        .any(|r| sends_to_invalid_backends(r));
    RouteConfiguration {
        virtual_hosts: virtual_hosts.iter().map(virtual_host).collect(),
        ..shell_with(name, invalid_share)
    }
}

/// [`route_configuration`] `name` without its virtual hosts; `invalid_share`: whether one
/// of its routes [`sends_to_invalid_backends`].
pub(crate) fn shell_with(name: &str, invalid_share: bool) -> RouteConfiguration {
    RouteConfiguration {
        name: name.to_string(),
        validate_clusters: invalid_share.then_some(BoolValue { value: false }),
        // `Host: example.com:8080` matches domain `example.com`, without rewriting the Host
        // header the backend receives (unlike the HCM's port stripping).
        ignore_port_in_host_matching: true,
        ..Default::default()
    }
}

/// Whether `r` sends a share of its requests to invalid backends.
pub(crate) fn sends_to_invalid_backends(r: &HttpRoute) -> bool {
    matches!(&*r.action, IrAction::Forward(f) if f.invalid_weight > 0 && !f.backends.is_empty())
}

/// A virtual host with its domains as given (the port in `Host` is ignored when matching).
pub fn virtual_host(vh: &IrVirtualHost) -> VirtualHost {
    VirtualHost {
        routes: vh.routes.iter().map(|r| route(r)).collect(),
        ..virtual_host_shell(vh)
    }
}

/// [`virtual_host`] without its routes.
pub(crate) fn virtual_host_shell(vh: &IrVirtualHost) -> VirtualHost {
    VirtualHost {
        name: vh.name.clone(),
        domains: vh.domains.clone(),
        ..Default::default()
    }
}

/// One Envoy route for one IR route (one HTTPRoute rule match).
pub fn route(r: &HttpRoute) -> Route {
    let mut out = Route {
        name: r.name.clone(),
        r#match: Some(route_match(&r.matcher)),
        action: Some(action::action(&r.action, &r.matcher.path)),
        ..Default::default()
    };
    action::apply_header_mods(&mut out, &r.request_headers, &r.response_headers);
    if let Some(cors) = &r.cors {
        // The wrapper enables the CORS filter,
        // which the HCM disables by default, for this route only.
        let enabled = FilterConfig {
            config: Some(pack(type_url::CORS_POLICY, &cors_policy(cors))),
            is_optional: false,
            disabled: false,
        };
        out.typed_per_filter_config.insert(
            CORS_FILTER.to_string(),
            pack(type_url::FILTER_CONFIG, &enabled),
        );
    }
    if let Some(sp) = &r.session_persistence {
        // With CORS this map holds two entries; route configurations are encoded with
        // sorted map entries (`crate::canonical`) so their bytes stay deterministic.
        out.typed_per_filter_config.insert(
            crate::session::STATEFUL_SESSION_FILTER.to_string(),
            crate::session::per_route(sp, &r.matcher.path),
        );
    }
    out
}

/// The per-route CORS policy (the route enables the HCM's CORS filter with it):
/// - origins: `*` -> any (regex `.*`); with a `*` inside (`https://*.example.com`) -> a
///   whole-value regex where `*` matches any run of host characters (`[^/:]*`, so it cannot
///   reach into the scheme, port or a path); otherwise exact;
/// - methods, allowed and exposed headers: comma-joined, as given (`*` kept);
/// - `max_age`: seconds, as a string; `allow_credentials` only when true;
/// - preflights from origins that are not allowed are answered, not forwarded.
pub fn cors_policy(c: &Cors) -> CorsPolicy {
    CorsPolicy {
        allow_origin_string_match: c.allow_origins.iter().map(|o| origin_matcher(o)).collect(),
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c.max_age_seconds.map(|s| s.to_string()).unwrap_or_default(),
        allow_credentials: c.allow_credentials.then_some(BoolValue { value: true }),
        // A preflight from an origin the route does not allow is answered by Envoy (without
        // CORS headers) instead of reaching the backend, as the Gateway API CORS filter says.
        forward_not_matching_preflights: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

fn origin_matcher(origin: &str) -> StringMatcher {
    let pattern = if origin == "*" {
        MatchPattern::SafeRegex(regex(".*"))
    } else if origin.contains('*') {
        let re = origin
            .split('*')
            .map(re2_escape)
            .collect::<Vec<_>>()
            .join("[^/:]*");
        MatchPattern::SafeRegex(regex(&re))
    } else {
        MatchPattern::Exact(origin.to_string())
    };
    StringMatcher {
        ignore_case: false,
        match_pattern: Some(pattern),
    }
}

/// Path, header, query parameter and method conditions.
pub fn route_match(m: &HttpMatch) -> RouteMatch {
    let mut headers: Vec<HeaderMatcher> = m
        .headers
        .iter()
        .map(|h| header_matcher(&h.name, string_matcher(&h.value)))
        .collect();
    if let Some(method) = &m.method {
        headers.push(header_matcher(
            ":method",
            StringMatcher {
                ignore_case: false,
                match_pattern: Some(MatchPattern::Exact(method.clone())),
            },
        ));
    }
    RouteMatch {
        path_specifier: Some(path_specifier(&m.path)),
        headers,
        query_parameters: m
            .query_params
            .iter()
            .map(|q| QueryParameterMatcher {
                name: q.name.clone(),
                query_parameter_match_specifier: Some(QueryParameterMatchSpecifier::StringMatch(
                    string_matcher(&q.value),
                )),
            })
            .collect(),
        ..Default::default()
    }
}

/// Gateway API path match to Envoy:
/// - `Exact` -> `path`;
/// - `Prefix("/")` -> `prefix: "/"` (matches everything);
/// - `Prefix(p)` -> `path_separated_prefix` (whole segments: `/foo` matches `/foo` and
///   `/foo/bar`, not `/foobar`), with trailing slashes removed (`/foo/` -> `/foo`) since
///   Envoy rejects them there;
/// - `Regex` -> `safe_regex` (RE2, whole path).
pub fn path_specifier(p: &PathMatch) -> PathSpecifier {
    match p {
        PathMatch::Exact(path) => PathSpecifier::Path(path.clone()),
        PathMatch::Prefix(prefix) => match segment_prefix(prefix) {
            "" => PathSpecifier::Prefix("/".to_string()),
            trimmed => PathSpecifier::PathSeparatedPrefix(trimmed.to_string()),
        },
        PathMatch::Regex(re) => PathSpecifier::SafeRegex(regex(re)),
    }
}

/// A Gateway API prefix without its trailing slashes; empty for `/`.
pub(crate) fn segment_prefix(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

fn header_matcher(name: &str, m: StringMatcher) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(m)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins() {
        let p = |o: &str| origin_matcher(o).match_pattern.unwrap();
        assert_eq!(
            p("https://a.com"),
            MatchPattern::Exact("https://a.com".into())
        );
        assert_eq!(p("*"), MatchPattern::SafeRegex(regex(".*")));
        assert_eq!(
            p("https://*.a.com"),
            MatchPattern::SafeRegex(regex("https://[^/:]*\\.a\\.com"))
        );
    }

    #[test]
    fn prefix_paths() {
        let p = |s: &str| path_specifier(&PathMatch::Prefix(s.to_string()));
        assert_eq!(p("/"), PathSpecifier::Prefix("/".into()));
        assert_eq!(p("/foo"), PathSpecifier::PathSeparatedPrefix("/foo".into()));
        assert_eq!(
            p("/foo/"),
            PathSpecifier::PathSeparatedPrefix("/foo".into())
        );
        assert_eq!(
            path_specifier(&PathMatch::Exact("/foo/".into())),
            PathSpecifier::Path("/foo/".into())
        );
    }
}
