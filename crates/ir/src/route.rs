//! HTTP routing: virtual hosts, routes in Gateway API precedence order, matches, filters
//! and actions.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A set of domains and the routes that serve them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualHost {
    /// Stable name, derived from the domain.
    pub name: String,
    /// Host names (exact, `*.suffix` wildcard, or `*`). Envoy matches them ignoring the port.
    pub domains: Vec<String>,
    /// Routes in the order Envoy must try them (Gateway API precedence, first match wins).
    /// Shared: a Gateway rebuilt after a one-route edit hands the other routes over from its
    /// last IR instead of building them again, and copies of the IR (the pipeline's last
    /// one, the quarantine's history) cost a pointer per route.
    pub routes: Vec<Arc<HttpRoute>>,
}

/// One HTTPRoute rule match, expanded: Envoy route entries are one per match.
///
/// `Eq` (as every type in it) matters beyond meaning: std's `Arc` equality compares the
/// pointers first for `Eq` types, so comparing a Gateway's new IR with its last (the pipeline
/// does at every translation) costs a pointer compare per shared route, not a walk through
/// each route's match and action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// Stable name: `httproute/<namespace>/<name>/rule/<i>/match/<j>`.
    pub name: String,
    /// What a request must look like. Shared with the route's kept conversion (one match
    /// of its rule), so an IR route copies none of it.
    #[serde(rename = "match")]
    pub matcher: Arc<HttpMatch>,
    /// Request headers to change before forwarding.
    #[serde(default, skip_serializing_if = "HeaderMods::is_empty")]
    pub request_headers: HeaderMods,
    /// Response headers to change before answering.
    #[serde(default, skip_serializing_if = "HeaderMods::is_empty")]
    pub response_headers: HeaderMods,
    /// CORS policy. Boxed, as the next field: few routes have one, and every route is
    /// kept in memory (the box costs a pointer, the policy inline cost 112 bytes a route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Box<Cors>>,
    /// Session persistence: requests of one session go to the same endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_persistence: Option<Box<SessionPersistence>>,
    /// What to do with a matching request. Shared with the route's kept conversion unless
    /// the Gateway changes it (a blocked backend, a redirect taking the listener's port).
    pub action: Arc<RouteAction>,
}

/// How a session is recognised (HTTPRoute/GRPCRoute `sessionPersistence`). The token names
/// the endpoint that served the session's first request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionPersistence {
    /// A cookie the gateway sets; `ttl_seconds` makes it permanent with that lifetime.
    Cookie {
        /// Cookie name.
        name: String,
        /// Lifetime (absolute timeout), `None` for a session cookie.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_seconds: Option<u64>,
    },
    /// A header the gateway sets on responses and the client sends back.
    Header {
        /// Header name.
        name: String,
    },
}

/// Conditions on a request; all must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpMatch {
    /// Path condition.
    pub path: PathMatch,
    /// Header conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<QueryParamMatch>,
    /// HTTP method, upper case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Path condition. `Prefix` follows Gateway API semantics: it matches whole path segments
/// (`/foo` matches `/foo` and `/foo/bar`, not `/foobar`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    /// The path equals this value.
    Exact(String),
    /// The path starts with these segments.
    Prefix(String),
    /// The whole path matches this RE2 regular expression.
    Regex(String),
}

/// How a string value is compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMatch {
    /// Equal, byte for byte.
    Exact(String),
    /// The whole value matches this RE2 regular expression.
    Regex(String),
}

/// A header condition; the name is lower case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderMatch {
    /// Header name, lower case.
    pub name: String,
    /// How its value must look.
    pub value: StringMatch,
}

/// A query parameter condition; names are case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryParamMatch {
    /// Parameter name.
    pub name: String,
    /// How its value must look.
    pub value: StringMatch,
}

/// A header name and value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderValue {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// Header changes, applied as: remove, then set (overwrite), then add (append).
///
/// Most routes change no header, yet every route holds several of these (its own two and
/// two per backend, in the kept conversion and again in the IR), so the lists sit behind
/// one pointer that is null when nothing changes: 8 bytes instead of 72, about 5 MiB at
/// 10 000 one-backend routes. Never `Some` with empty lists, so equality stays structural.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "HeaderLists", into = "HeaderLists")]
pub struct HeaderMods(Option<Box<HeaderLists>>);

/// The lists of a [`HeaderMods`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderLists {
    /// Headers to overwrite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<HeaderValue>,
    /// Headers to append.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<HeaderValue>,
    /// Header names to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl HeaderLists {
    /// True when nothing is changed.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

impl From<HeaderLists> for HeaderMods {
    fn from(mut lists: HeaderLists) -> Self {
        if lists.is_empty() {
            return Self(None);
        }
        // Kept as long as the route: no spare capacity.
        lists.set.shrink_to_fit();
        lists.add.shrink_to_fit();
        lists.remove.shrink_to_fit();
        Self(Some(Box::new(lists)))
    }
}

impl From<HeaderMods> for HeaderLists {
    fn from(mods: HeaderMods) -> Self {
        mods.0.map(|lists| *lists).unwrap_or_default()
    }
}

impl HeaderMods {
    /// True when nothing is changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Headers to overwrite.
    pub fn set(&self) -> &[HeaderValue] {
        self.0.as_ref().map_or(&[], |l| &l.set)
    }

    /// Headers to append.
    pub fn add(&self) -> &[HeaderValue] {
        self.0.as_ref().map_or(&[], |l| &l.add)
    }

    /// Header names to remove.
    pub fn remove(&self) -> &[String] {
        self.0.as_ref().map_or(&[], |l| &l.remove)
    }
}

/// What a route does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    /// Forward to weighted backends.
    Forward(Forward),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed status and no body (e.g. 500 when a rule has no valid backend).
    DirectResponse {
        /// HTTP status code.
        status: u16,
    },
}

/// Forwarding to one or more backends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// Backends with their weights (non-zero), sorted as the route wrote them.
    pub backends: Vec<WeightedBackend>,
    /// Weight of backend references that could not be resolved. Requests that would have
    /// gone to them must get a 500 answer, as the Gateway API spec requires.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub invalid_weight: u32,
    /// Path and host rewrite before forwarding. Boxed, as timeouts and retries: most
    /// routes have none of them, and every route's action is kept (inline the three made
    /// the action 192 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Box<UrlRewrite>>,
    /// Copies of requests sent elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<Mirror>,
    /// Timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Box<Timeouts>>,
    /// Retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Box<Retry>>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// A backend and its share of the traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedBackend {
    /// Name of a [`crate::Backend`] of the same Gateway.
    pub backend: String,
    /// Relative weight, > 0.
    pub weight: u32,
    /// Request headers changed for this backend only (backendRef filters).
    #[serde(default, skip_serializing_if = "HeaderMods::is_empty")]
    pub request_headers: HeaderMods,
    /// Response headers changed for this backend only.
    #[serde(default, skip_serializing_if = "HeaderMods::is_empty")]
    pub response_headers: HeaderMods,
    /// Host header for this backend only (a backendRef's URLRewrite hostname).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_rewrite: Option<String>,
}

impl WeightedBackend {
    /// A backend with a weight and no per-backend filters.
    pub fn new(backend: impl Into<String>, weight: u32) -> Self {
        Self {
            backend: backend.into(),
            weight,
            request_headers: HeaderMods::default(),
            response_headers: HeaderMods::default(),
            host_rewrite: None,
        }
    }
}

/// A RequestMirror filter: a copy of each selected request goes to `backend`; its answer is
/// ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    /// Name of a [`crate::Backend`].
    pub backend: String,
    /// Share of requests mirrored: numerator / denominator (100/100 = all).
    pub numerator: u32,
    /// Denominator of the share.
    pub denominator: u32,
}

/// CORS policy (HTTPRoute CORS filter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cors {
    /// Allowed origins: exact (`https://a.com`), with a wildcard (`https://*.a.com`), or `*`.
    pub allow_origins: Vec<String>,
    /// Allowed methods (`*` allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// Response headers exposed to scripts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// Preflight cache lifetime, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
    /// Allow credentials.
    #[serde(default)]
    pub allow_credentials: bool,
}

/// Timeouts of a rule (HTTPRoute `timeouts`), in milliseconds; 0 disables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Whole request, from first byte received to last byte sent (including retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_ms: Option<u64>,
    /// One attempt to a backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_request_ms: Option<u64>,
}

/// Retry policy (HTTPRoute `retry`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// HTTP status codes that trigger a retry (5xx and some 4xx).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<u16>,
    /// Base backoff between attempts, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
    /// Also retry when the connection to a backend fails or resets.
    #[serde(default)]
    pub on_connection_error: bool,
}

/// URLRewrite filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlRewrite {
    /// Replacement for the Host header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Path replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
}

/// Path replacement for rewrites and redirects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathModifier {
    /// Replace the whole path.
    ReplaceFullPath(String),
    /// Replace the part of the path the route's `Prefix` match matched.
    ReplacePrefixMatch(String),
}

/// RequestRedirect filter. Unset fields keep the request's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// New host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// New port. `None` with a scheme set means the scheme's well-known port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Path replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    /// 301, 302, 303, 307 or 308.
    pub status_code: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str) -> HeaderValue {
        HeaderValue {
            name: name.into(),
            value: "v".into(),
        }
    }

    #[test]
    fn empty_header_lists_hold_no_box_so_equality_stays_structural() {
        let empty = HeaderMods::from(HeaderLists::default());
        assert!(empty.is_empty());
        assert_eq!(empty, HeaderMods::default());
        assert_eq!(std::mem::size_of::<HeaderMods>(), 8);
        let one = HeaderMods::from(HeaderLists {
            remove: vec!["x-gone".into()],
            ..HeaderLists::default()
        });
        assert!(!one.is_empty());
        assert_ne!(one, empty);
        assert_eq!(one.remove(), ["x-gone".to_string()]);
        assert!(one.set().is_empty() && one.add().is_empty());
    }

    #[test]
    fn header_mods_serialize_as_their_lists() {
        let mods = HeaderMods::from(HeaderLists {
            set: vec![header("a")],
            add: vec![header("b")],
            remove: vec![],
        });
        let text = yaml_serde::to_string(&mods).unwrap();
        assert_eq!(
            text,
            "set:\n- name: a\n  value: v\nadd:\n- name: b\n  value: v\n"
        );
        let back: HeaderMods = yaml_serde::from_str(&text).unwrap();
        assert_eq!(back, mods);
        // Lists written empty read back as no change at all.
        let none: HeaderMods = yaml_serde::from_str("set: []\n").unwrap();
        assert_eq!(none, HeaderMods::default());
    }
}
