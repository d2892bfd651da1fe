//! Route configurations (RDS): virtual hosts, routes in the IR's order (first match wins)
//! and Gateway API request matches.

use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher, QueryParameterMatcher, Route, RouteConfiguration, RouteMatch, VirtualHost,
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    route_match::PathSpecifier,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use ferrogate_ir::{HttpListener, HttpMatch, HttpRoute, PathMatch, VirtualHost as IrVirtualHost};

use crate::action;
use crate::common::{regex, string_matcher};

/// The RouteConfiguration named `http.route_config`, virtual hosts and routes in the given
/// order.
pub fn route_configuration(http: &HttpListener) -> RouteConfiguration {
    RouteConfiguration {
        name: http.route_config.clone(),
        virtual_hosts: http.virtual_hosts.iter().map(virtual_host).collect(),
        ..Default::default()
    }
}

/// A virtual host with its domains as given (the HCM strips the port from `Host` first).
pub fn virtual_host(vh: &IrVirtualHost) -> VirtualHost {
    VirtualHost {
        name: vh.name.clone(),
        domains: vh.domains.clone(),
        routes: vh.routes.iter().map(route).collect(),
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
    out
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
