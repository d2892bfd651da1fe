//! Route actions: forwarding (single or weighted clusters, per-backend header changes,
//! URL rewrites, mirrors, timeouts, retries), redirects, direct responses, and
//! request/response header modifiers.

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, RedirectAction, RetryPolicy, Route, RouteAction, WeightedCluster,
    redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier},
    retry_policy::RetryBackOff,
    route,
    route_action::{
        ClusterNotFoundResponseCode, ClusterSpecifier, HostRewriteSpecifier, RequestMirrorPolicy,
    },
    weighted_cluster::{ClusterWeight, cluster_weight},
};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent::DenominatorType};
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
use ferrogate_ir::{
    Forward, HeaderMods, Mirror, PathMatch, PathModifier, Redirect, Retry, RouteAction as IrAction,
    Timeouts, UrlRewrite, WeightedBackend,
};

use crate::common::{re2_escape, regex_rewrite};
use crate::route::segment_prefix;

/// The Envoy action for an IR action. `path` is the route's path match, needed to replace
/// the matched prefix.
pub fn action(a: &IrAction, path: &PathMatch) -> route::Action {
    match a {
        IrAction::Forward(f) => forward(f, path),
        IrAction::Redirect(r) => route::Action::Redirect(redirect(r, path)),
        IrAction::DirectResponse { status } => direct_response(*status),
    }
}

/// A fixed status with no body.
pub fn direct_response(status: u16) -> route::Action {
    route::Action::DirectResponse(DirectResponseAction {
        status: u32::from(status),
        ..Default::default()
    })
}

/// Name used in `weighted_clusters` for the share of invalid backend references. No
/// cluster of that name is ever emitted (backend names always contain `/`), so Envoy answers
/// those requests with the route's `cluster_not_found_response_code`, set to 500.
pub const INVALID_BACKEND_CLUSTER: &str = "ferrogate-invalid-backend";

/// Forwarding:
/// - `cluster` for one backend without per-backend header changes; otherwise
///   `weighted_clusters` (weights as given; each entry carries its backend's header
///   changes, which Envoy applies before the route's own);
/// - without any valid backend the route answers 500 (Gateway API);
/// - with `invalid_weight > 0` and valid backends, an extra weighted entry
///   [`INVALID_BACKEND_CLUSTER`] (weight `invalid_weight`) and
///   `cluster_not_found_response_code: INTERNAL_SERVER_ERROR`: that share gets 500s, as the
///   spec requires. (A STATIC cluster without endpoints would answer 503 instead.)
/// - mirrors, timeouts and retries: see [`mirror_policy`], [`apply_timeouts`],
///   [`retry_policy`].
///
/// Without `timeouts` the route timeout stays at Envoy's default (15 s).
pub fn forward(f: &Forward, path: &PathMatch) -> route::Action {
    let has_mods = f.backends.iter().any(|b| {
        !b.request_headers.is_empty() || !b.response_headers.is_empty() || b.host_rewrite.is_some()
    });
    let cluster_specifier = match f.backends.as_slice() {
        [] => return direct_response(500),
        [one] if f.invalid_weight == 0 && !has_mods => {
            ClusterSpecifier::Cluster(one.backend.clone())
        }
        many => {
            let mut clusters: Vec<ClusterWeight> = many.iter().map(cluster_weight).collect();
            if f.invalid_weight > 0 {
                clusters.push(ClusterWeight {
                    name: INVALID_BACKEND_CLUSTER.to_string(),
                    weight: Some(UInt32Value {
                        value: f.invalid_weight,
                    }),
                    ..Default::default()
                });
            }
            ClusterSpecifier::WeightedClusters(WeightedCluster {
                clusters,
                ..Default::default()
            })
        }
    };
    let mut ra = RouteAction {
        cluster_specifier: Some(cluster_specifier),
        request_mirror_policies: f.mirrors.iter().map(mirror_policy).collect(),
        retry_policy: f.retry.as_deref().map(retry_policy),
        ..Default::default()
    };
    if f.invalid_weight > 0 {
        ra.cluster_not_found_response_code =
            ClusterNotFoundResponseCode::InternalServerError as i32;
    }
    if let Some(t) = f.timeouts.as_deref() {
        apply_timeouts(&mut ra, t);
    }
    if let Some(rw) = f.rewrite.as_deref() {
        apply_url_rewrite(&mut ra, rw, path);
    }
    route::Action::Route(ra)
}

fn cluster_weight(b: &WeightedBackend) -> ClusterWeight {
    ClusterWeight {
        name: b.backend.clone(),
        weight: Some(UInt32Value { value: b.weight }),
        request_headers_to_add: headers_to_add(&b.request_headers),
        request_headers_to_remove: b.request_headers.remove().to_vec(),
        response_headers_to_add: headers_to_add(&b.response_headers),
        response_headers_to_remove: b.response_headers.remove().to_vec(),
        // Overrides the route's own host rewrite for requests sent to this backend.
        host_rewrite_specifier: b
            .host_rewrite
            .clone()
            .map(cluster_weight::HostRewriteSpecifier::HostRewriteLiteral),
        ..Default::default()
    }
}

/// A RequestMirror: the backend's cluster, and the share as a runtime fraction (no runtime
/// key). Denominators 100, 10 000 and 1 000 000 map onto Envoy's; any other is converted to
/// a millionth (rounded down, capped at 100 %).
pub fn mirror_policy(m: &Mirror) -> RequestMirrorPolicy {
    let (numerator, denominator) = match m.denominator {
        100 => (m.numerator, DenominatorType::Hundred),
        10_000 => (m.numerator, DenominatorType::TenThousand),
        1_000_000 => (m.numerator, DenominatorType::Million),
        0 => (1_000_000, DenominatorType::Million),
        d => {
            let scaled = u64::from(m.numerator) * 1_000_000 / u64::from(d);
            (scaled.min(1_000_000) as u32, DenominatorType::Million)
        }
    };
    RequestMirrorPolicy {
        cluster: m.backend.clone(),
        runtime_fraction: Some(RuntimeFractionalPercent {
            default_value: Some(FractionalPercent {
                numerator,
                denominator: denominator as i32,
            }),
            runtime_key: String::new(),
        }),
        ..Default::default()
    }
}

/// Timeouts (0 disables, as in Gateway API; Envoy reads a zero duration as "none"):
/// - `request_ms` -> route `timeout` (the whole request, retries included);
/// - `backend_request_ms`: with a retry policy -> its `per_try_timeout` (0: left unset, an
///   attempt is then bounded by the route timeout only); without one there is a single
///   attempt, so it bounds the route `timeout` (the smaller of the two non-zero values).
pub fn apply_timeouts(ra: &mut RouteAction, t: &Timeouts) {
    let mut timeout = t.request_ms;
    if let Some(backend) = t.backend_request_ms {
        match &mut ra.retry_policy {
            Some(rp) => {
                if backend > 0 {
                    rp.per_try_timeout = Some(millis(backend));
                }
            }
            None => {
                timeout = Some(match timeout {
                    None | Some(0) => backend,
                    Some(req) if backend == 0 => req,
                    Some(req) => req.min(backend),
                });
            }
        }
    }
    ra.timeout = timeout.map(millis);
}

/// A retry policy: on the given status codes (`retriable-status-codes`), plus connection
/// failures and resets when asked (`connect-failure,reset`); `attempts` retries; the
/// backoff base interval when set and non-zero (Envoy's max interval is 10x the base).
pub fn retry_policy(r: &Retry) -> RetryPolicy {
    let mut retry_on = "retriable-status-codes".to_string();
    if r.on_connection_error {
        retry_on.push_str(",connect-failure,reset");
    }
    RetryPolicy {
        retry_on,
        num_retries: Some(UInt32Value { value: r.attempts }),
        retriable_status_codes: r.codes.iter().map(|c| u32::from(*c)).collect(),
        retry_back_off: r.backoff_ms.filter(|ms| *ms > 0).map(|ms| RetryBackOff {
            base_interval: Some(millis(ms)),
            max_interval: None,
        }),
        ..Default::default()
    }
}

fn millis(ms: u64) -> Duration {
    Duration {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

fn apply_url_rewrite(ra: &mut RouteAction, rw: &UrlRewrite, path: &PathMatch) {
    if let Some(host) = &rw.hostname {
        ra.host_rewrite_specifier = Some(HostRewriteSpecifier::HostRewriteLiteral(host.clone()));
    }
    match rw.path.as_ref().and_then(|m| path_rewrite(m, path)) {
        Some(PathRewrite::Prefix(p)) => ra.prefix_rewrite = p,
        Some(PathRewrite::Regex(r)) => ra.regex_rewrite = Some(r),
        None => {}
    }
}

/// How a path is rewritten (forwarding) or redirected.
#[derive(Clone, Debug, PartialEq)]
pub enum PathRewrite {
    /// Replace the prefix the route matched with this value (Envoy `prefix_rewrite`).
    Prefix(String),
    /// Regex substitution on the path (the query string is kept).
    Regex(RegexMatchAndSubstitute),
}

/// The rewrite for a path modifier, or `None` when nothing changes.
///
/// - `ReplaceFullPath(v)`: regex `^/.*$` -> `v` (keeps the query string);
/// - `ReplacePrefixMatch(r)` with the route's prefix `p` (trailing slashes of both removed):
///   - `p` and `r` both `/`: nothing to do;
///   - `p` is `/`: regex `^/` -> `r/` (`/one` -> `/r/one`; `prefix_rewrite` would give
///     `/rone`);
///   - `r` is `/`: regex `^p/*` -> `/` (`/p/one` -> `/one`, `/p` -> `/`, no double slash);
///   - otherwise `prefix_rewrite: r` (`/p/one` -> `/r/one`, `/p` -> `/r`).
///
/// `ReplacePrefixMatch` is only valid with a `Prefix` match (the Gateway API translator
/// rejects anything else); an `Exact` match is treated as a prefix of itself, and a `Regex`
/// match gives no rewrite.
pub fn path_rewrite(m: &PathModifier, path: &PathMatch) -> Option<PathRewrite> {
    match m {
        PathModifier::ReplaceFullPath(v) => Some(PathRewrite::Regex(regex_rewrite("^/.*$", v))),
        PathModifier::ReplacePrefixMatch(replacement) => {
            let matched = match path {
                PathMatch::Prefix(p) | PathMatch::Exact(p) => segment_prefix(p),
                PathMatch::Regex(_) => return None,
            };
            let r = replacement.trim_end_matches('/');
            match (matched.is_empty(), r.is_empty()) {
                (true, true) => None,
                (true, false) => Some(PathRewrite::Regex(regex_rewrite("^/", &format!("{r}/")))),
                (false, true) => Some(PathRewrite::Regex(regex_rewrite(
                    &format!("^{}/*", re2_escape(matched)),
                    "/",
                ))),
                (false, false) => Some(PathRewrite::Prefix(r.to_string())),
            }
        }
    }
}

/// A redirect. A scheme without a port redirects to the scheme's well-known port (Envoy
/// then omits it from `Location`); the query string is kept.
///
/// Without scheme and port the port of the request's `Host` is used; the HCM strips it
/// before routing, so the redirect goes to the scheme's default port. Gateway API wants the
/// listener's port there, which the IR does not carry (the translator can set `port`).
pub fn redirect(r: &Redirect, path: &PathMatch) -> RedirectAction {
    let port_redirect = match (r.port, r.scheme.as_deref()) {
        (Some(p), _) => u32::from(p),
        (None, Some("http")) => 80,
        (None, Some("https")) => 443,
        (None, _) => 0,
    };
    let path_rewrite_specifier = match &r.path {
        Some(PathModifier::ReplaceFullPath(p)) => {
            Some(PathRewriteSpecifier::PathRedirect(p.clone()))
        }
        Some(m) => match path_rewrite(m, path) {
            Some(PathRewrite::Prefix(p)) => Some(PathRewriteSpecifier::PrefixRewrite(p)),
            Some(PathRewrite::Regex(re)) => Some(PathRewriteSpecifier::RegexRewrite(re)),
            None => None,
        },
        None => None,
    };
    RedirectAction {
        host_redirect: r.hostname.clone().unwrap_or_default(),
        port_redirect,
        response_code: response_code(r.status_code) as i32,
        strip_query: false,
        scheme_rewrite_specifier: r.scheme.clone().map(SchemeRewriteSpecifier::SchemeRedirect),
        path_rewrite_specifier,
    }
}

/// Redirect status to Envoy's enum; anything unknown becomes 302 (Gateway API's default).
pub fn response_code(status: u16) -> RedirectResponseCode {
    match status {
        301 => RedirectResponseCode::MovedPermanently,
        303 => RedirectResponseCode::SeeOther,
        307 => RedirectResponseCode::TemporaryRedirect,
        308 => RedirectResponseCode::PermanentRedirect,
        _ => RedirectResponseCode::Found,
    }
}

/// Header modifiers on the route: `remove` (applied first by Envoy), then `set`
/// (OVERWRITE_IF_EXISTS_OR_ADD), then `add` (APPEND_IF_EXISTS_OR_ADD).
pub fn apply_header_mods(out: &mut Route, request: &HeaderMods, response: &HeaderMods) {
    out.request_headers_to_add = headers_to_add(request);
    out.request_headers_to_remove = request.remove().to_vec();
    out.response_headers_to_add = headers_to_add(response);
    out.response_headers_to_remove = response.remove().to_vec();
}

fn headers_to_add(m: &HeaderMods) -> Vec<HeaderValueOption> {
    let opt = |h: &ferrogate_ir::HeaderValue, action: HeaderAppendAction| HeaderValueOption {
        header: Some(HeaderValue {
            key: h.name.clone(),
            value: h.value.clone(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    };
    m.set()
        .iter()
        .map(|h| opt(h, HeaderAppendAction::OverwriteIfExistsOrAdd))
        .chain(
            m.add()
                .iter()
                .map(|h| opt(h, HeaderAppendAction::AppendIfExistsOrAdd)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix_rewrite(matched: &str, replacement: &str) -> Option<PathRewrite> {
        path_rewrite(
            &PathModifier::ReplacePrefixMatch(replacement.to_string()),
            &PathMatch::Prefix(matched.to_string()),
        )
    }

    fn regex_of(rw: Option<PathRewrite>) -> (String, String) {
        match rw {
            Some(PathRewrite::Regex(r)) => (r.pattern.unwrap().regex, r.substitution),
            other => panic!("expected a regex rewrite, got {other:?}"),
        }
    }

    /// Applies an Envoy regex rewrite the way Envoy does for the patterns we emit
    /// (one anchored match, replaced once).
    fn apply(pattern: &str, substitution: &str, path: &str) -> String {
        assert!(pattern.starts_with('^'));
        match pattern {
            "^/.*$" => substitution.to_string(),
            "^/" => format!("{substitution}{}", &path[1..]),
            _ => {
                let prefix = pattern[1..].trim_end_matches("/*").replace('\\', "");
                let rest = path.strip_prefix(&prefix).expect("pattern matches");
                format!("{substitution}{}", rest.trim_start_matches('/'))
            }
        }
    }

    #[test]
    fn replace_prefix_with_slash_strips_the_prefix() {
        let (pattern, sub) = regex_of(prefix_rewrite("/prefix", "/"));
        assert_eq!(pattern, "^/prefix/*");
        assert_eq!(sub, "/");
        assert_eq!(apply(&pattern, &sub, "/prefix/one"), "/one");
        assert_eq!(apply(&pattern, &sub, "/prefix"), "/");
        // A trailing slash on the match changes nothing.
        assert_eq!(regex_of(prefix_rewrite("/prefix/", "/")), (pattern, sub));
    }

    #[test]
    fn replace_prefix_with_path_uses_prefix_rewrite() {
        assert_eq!(
            prefix_rewrite("/prefix", "/one"),
            Some(PathRewrite::Prefix("/one".into()))
        );
        assert_eq!(
            prefix_rewrite("/prefix/", "/one/"),
            Some(PathRewrite::Prefix("/one".into()))
        );
    }

    #[test]
    fn replace_root_prefix() {
        assert_eq!(prefix_rewrite("/", "/"), None);
        let (pattern, sub) = regex_of(prefix_rewrite("/", "/foo"));
        assert_eq!(apply(&pattern, &sub, "/one"), "/foo/one");
    }

    #[test]
    fn replace_prefix_escapes_regex_characters() {
        let (pattern, _) = regex_of(prefix_rewrite("/a.b", "/"));
        assert_eq!(pattern, "^/a\\.b/*");
    }

    #[test]
    fn replace_full_path() {
        let rw = path_rewrite(
            &PathModifier::ReplaceFullPath("/new".into()),
            &PathMatch::Prefix("/old".into()),
        );
        let (pattern, sub) = regex_of(rw);
        assert_eq!(apply(&pattern, &sub, "/old/deep/path"), "/new");
    }

    #[test]
    fn redirect_scheme_without_port_uses_well_known_port() {
        let r = Redirect {
            scheme: Some("https".into()),
            hostname: None,
            port: None,
            path: None,
            status_code: 301,
        };
        let out = redirect(&r, &PathMatch::Prefix("/".into()));
        assert_eq!(out.port_redirect, 443);
        assert_eq!(
            out.response_code,
            RedirectResponseCode::MovedPermanently as i32
        );
        assert!(!out.strip_query);
    }

    #[test]
    fn response_codes() {
        assert_eq!(response_code(302), RedirectResponseCode::Found);
        assert_eq!(response_code(303), RedirectResponseCode::SeeOther);
        assert_eq!(response_code(307), RedirectResponseCode::TemporaryRedirect);
        assert_eq!(response_code(308), RedirectResponseCode::PermanentRedirect);
    }
}
