//! HTTPRoute rules to IR: matches, filters, backends and the rule's action.

use ferrogate_api::gateway::{
    HttpRouteRulesBackendRefs, HttpRouteRulesFilters,
    HttpRouteRulesFiltersRequestRedirectPathType as RedirectPathType,
    HttpRouteRulesFiltersRequestRedirectScheme as Scheme, HttpRouteRulesFiltersType as FilterType,
    HttpRouteRulesFiltersUrlRewritePathType as RewritePathType, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeadersType as HeaderType, HttpRouteRulesMatchesPathType as PathType,
    HttpRouteRulesMatchesQueryParamsType as QueryType, HttpRouteRulesRetry, HttpRouteRulesTimeouts,
};
use ferrogate_ir::{
    Backend, Cors, Forward, HeaderMatch, HeaderMods, HeaderValue, HttpMatch, Mirror, PathMatch,
    PathModifier, QueryParamMatch, Redirect, Retry, RouteAction, StringMatch, Timeouts, UrlRewrite,
    WeightedBackend,
};
use ferrogate_status::Condition;
use ferrogate_store::{Snapshot, UnsupportedValue};

use super::ConvertedRule;
use super::backend_filters::{self, FilterError};
use super::envoy_limits;
use crate::backend::RefProblem;
use crate::backend::{self, BackendRef};
use crate::conditions::{Problem, reasons, types};

/// A route's rules, converted, with what the route status must say about them.
pub(crate) struct ConvertedRules {
    pub rules: Vec<ConvertedRule>,
    pub backends: Vec<Backend>,
    /// A problem that makes the route unacceptable (`Accepted: False`).
    pub problem: Option<Problem>,
    /// The route's `ResolvedRefs` condition.
    pub resolved_refs: Condition,
    /// Some rules are invalid and were left out (its reason and message go to the
    /// `PartiallyInvalid` condition).
    pub partially_invalid: Option<Problem>,
}

/// A rule that is not accepted: `UnsupportedValue`.
pub(crate) fn unsupported(message: impl Into<String>) -> Problem {
    Problem::not_accepted(reasons::UNSUPPORTED_VALUE, message)
}

/// The parts of a rule every HTTP-like route kind has, in HTTPRoute's types (GRPCRoute
/// converts its filters and backendRefs into these; their JSON shapes are the same).
pub(crate) struct RuleParts<'a> {
    pub matches: Vec<HttpMatch>,
    pub filters: &'a [HttpRouteRulesFilters],
    pub backend_refs: &'a [HttpRouteRulesBackendRefs],
    pub timeouts: Option<&'a HttpRouteRulesTimeouts>,
    pub retry: Option<&'a HttpRouteRulesRetry>,
    /// Per backendRef: unsupported values the store recorded inside its filters.
    pub backend_unknown: Vec<Vec<UnsupportedValue>>,
    /// The rule's session persistence, converted (see `session`).
    pub session_persistence: Option<ferrogate_ir::SessionPersistence>,
}

/// Converts the rules of an HTTP-like route. `kind` names the route kind for
/// ReferenceGrants; `http2` forces HTTP/2 to backends (gRPC).
pub(crate) fn convert_rules<'a>(
    snapshot: &Snapshot,
    kind: &str,
    namespace: &str,
    http2: bool,
    rules: impl Iterator<Item = Result<RuleParts<'a>, Problem>>,
) -> ConvertedRules {
    let mut out = ConvertedRules {
        rules: Vec::new(),
        backends: Vec::new(),
        problem: None,
        resolved_refs: Condition::ok(
            types::RESOLVED_REFS,
            reasons::RESOLVED_REFS,
            "Resolved all the Object references for the Route",
        ),
        partially_invalid: None,
    };
    let mut ref_problems: Vec<RefProblem> = Vec::new();
    let mut invalid_rules = Vec::new();
    let mut total = 0;
    for (index, parts) in rules.enumerate() {
        total += 1;
        let converted = parts.and_then(|parts| {
            let mut ctx = RefContext {
                snapshot,
                kind,
                namespace,
                http2,
                backends: &mut out.backends,
                problems: &mut ref_problems,
            };
            convert_rule(&mut ctx, index, parts)
        });
        match converted {
            Ok(converted) => out.rules.push(converted),
            Err(problem) => invalid_rules.push(problem.within(&format!("rule {index}"))),
        }
    }
    if let Some(first) = invalid_rules.first() {
        let message = invalid_rules
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let problem = Problem {
            message,
            ..first.clone()
        };
        // Every rule broken: the route is not accepted. Some broken: the valid rules serve.
        if invalid_rules.len() == total {
            out.problem = Some(problem);
        } else {
            out.partially_invalid = Some(problem);
        }
    }
    if let Some(first) = ref_problems.first() {
        let message = ref_problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        out.resolved_refs = Condition::not(types::RESOLVED_REFS, first.reason, message);
    }
    out
}

/// Everything needed to resolve backend references of one route.
pub(crate) struct RefContext<'a, 'b> {
    pub snapshot: &'a Snapshot,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub http2: bool,
    pub backends: &'b mut Vec<Backend>,
    pub problems: &'b mut Vec<RefProblem>,
}

impl RefContext<'_, '_> {
    /// Resolves a reference; records the backend or the problem. `Ok(None)` when unusable.
    pub(crate) fn resolve(&mut self, reference: &BackendRef<'_>) -> Option<String> {
        match backend::resolve(
            self.snapshot,
            self.kind,
            self.namespace,
            reference,
            self.http2,
        ) {
            Ok(resolved) => {
                let name = resolved.name.clone();
                if !self.backends.iter().any(|b| b.name == resolved.name) {
                    self.backends.push(resolved);
                }
                Some(name)
            }
            Err(problem) => {
                self.problems.push(problem);
                None
            }
        }
    }
}

fn convert_rule(
    ctx: &mut RefContext<'_, '_>,
    index: usize,
    parts: RuleParts<'_>,
) -> Result<ConvertedRule, Problem> {
    let matches = if parts.matches.is_empty() {
        vec![HttpMatch {
            path: PathMatch::Prefix("/".into()),
            headers: vec![],
            query_params: vec![],
            method: None,
        }]
    } else {
        parts.matches
    };
    // With a single backendRef, its RequestRedirect or URLRewrite filter is the rule's
    // behaviour and runs at rule level (the conformance features
    // HTTPRouteBackendRequestRedirect and HTTPRouteBackendURLRewrite). With several, each
    // backend's filters run per weighted cluster, see `backend_filters`.
    let single = parts.backend_refs.len() == 1;
    // A backendRef holding unsupported values is not served at all (see below): nothing of
    // it is hoisted, so a substituted value never acts.
    let clean = parts.backend_unknown.iter().all(Vec::is_empty);
    let hoisted: Vec<HttpRouteRulesFilters> = parts
        .backend_refs
        .iter()
        .filter(|_| single && clean)
        .flat_map(|r| r.filters.iter().flatten())
        .filter(|f| backend_filters::runs_at_rule_level(&f.r#type))
        .filter_map(|f| {
            serde_json::to_value(f)
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())
        })
        .collect();
    let rule_filters: Vec<HttpRouteRulesFilters> =
        parts.filters.iter().cloned().chain(hoisted).collect();
    let filters = Filters::convert(ctx, &rule_filters, &matches)?;

    let mut forward = Forward {
        backends: Vec::new(),
        invalid_weight: 0,
        rewrite: filters.rewrite,
        mirrors: filters.mirrors,
        timeouts: timeouts(parts.timeouts)?,
        retry: retry(parts.retry)?,
    };
    for (i, r) in parts.backend_refs.iter().enumerate() {
        let weight = envoy_limits::weight(r.weight)?;
        let unknown = parts
            .backend_unknown
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let per_backend = match backend_filters::convert(
            &r.name,
            r.filters.as_deref().unwrap_or_default(),
            unknown,
            single,
        ) {
            Ok(per_backend) => per_backend,
            Err(FilterError::Rule(problem)) => return Err(problem),
            Err(FilterError::Backend(problem)) => {
                // Not served: its share gets 500, like an unresolved reference.
                ctx.problems.push(problem);
                forward.invalid_weight = forward.invalid_weight.saturating_add(weight);
                continue;
            }
        };
        let reference = BackendRef {
            group: r.group.as_deref(),
            kind: r.kind.as_deref(),
            name: &r.name,
            namespace: r.namespace.as_deref(),
            port: r.port,
        };
        match ctx.resolve(&reference) {
            Some(name) if weight > 0 => forward.backends.push(WeightedBackend {
                backend: name,
                weight,
                request_headers: per_backend.request_headers,
                response_headers: per_backend.response_headers,
                host_rewrite: per_backend.host_rewrite,
            }),
            Some(_) => {}
            None => forward.invalid_weight = forward.invalid_weight.saturating_add(weight),
        }
    }
    envoy_limits::weight_sum(
        forward
            .backends
            .iter()
            .map(|b| b.weight)
            .chain([forward.invalid_weight]),
    )?;
    let action = match filters.redirect {
        Some(redirect) => RouteAction::Redirect(redirect),
        // No usable backend: the spec asks for a 500 answer.
        None if forward.backends.is_empty() => RouteAction::DirectResponse { status: 500 },
        None => RouteAction::Forward(forward),
    };
    Ok(ConvertedRule {
        index,
        matches,
        request_headers: filters.request_headers,
        response_headers: filters.response_headers,
        cors: filters.cors,
        session_persistence: parts.session_persistence,
        action,
    })
}

/// Parses a Gateway API duration (`1h2m3s4ms` style, as in GEP-2257) into milliseconds.
pub(crate) fn duration_ms(value: &str) -> Result<u64, Problem> {
    let bad = || unsupported(format!("invalid duration {value:?}"));
    if value == "0" {
        return Ok(0);
    }
    let mut total = 0u64;
    let mut digits = String::new();
    let mut chars = value.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                1
            }
            ('h', _) => 3_600_000,
            ('m', _) => 60_000,
            ('s', _) => 1000,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total += n * unit;
        digits.clear();
        any = true;
    }
    if !digits.is_empty() || !any {
        return Err(bad());
    }
    Ok(total)
}

fn timeouts(t: Option<&HttpRouteRulesTimeouts>) -> Result<Option<Timeouts>, Problem> {
    let Some(t) = t else { return Ok(None) };
    let request_ms = t.request.as_deref().map(duration_ms).transpose()?;
    let backend_request_ms = t.backend_request.as_deref().map(duration_ms).transpose()?;
    if let (Some(r), Some(b)) = (request_ms, backend_request_ms)
        && r != 0
        && (b == 0 || b > r)
    {
        return Err(unsupported(
            "timeouts.backendRequest must not be longer than timeouts.request",
        ));
    }
    Ok(Some(Timeouts {
        request_ms,
        backend_request_ms,
    }))
}

fn retry(r: Option<&HttpRouteRulesRetry>) -> Result<Option<Retry>, Problem> {
    let Some(r) = r else { return Ok(None) };
    let codes = r
        .codes
        .iter()
        .flatten()
        .map(|&c| {
            u16::try_from(c)
                .ok()
                .filter(|c| (400..600).contains(c))
                .ok_or_else(|| unsupported(format!("retry code {c} is not an HTTP error status")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Retry {
        attempts: r.attempts.map_or(1, |a| a.max(0) as u32),
        codes,
        backoff_ms: r.backoff.as_deref().map(duration_ms).transpose()?,
        on_connection_error: true,
    }))
}

pub(crate) fn convert_match(m: &HttpRouteRulesMatches) -> Result<HttpMatch, Problem> {
    let path = match &m.path {
        None => PathMatch::Prefix("/".into()),
        Some(p) => {
            let value = p.value.clone().unwrap_or_else(|| "/".into());
            match p.r#type.as_ref().unwrap_or(&PathType::PathPrefix) {
                PathType::Exact | PathType::PathPrefix if !value.starts_with('/') => {
                    return Err(unsupported(format!("path {value:?} must start with '/'")));
                }
                PathType::Exact => PathMatch::Exact(value),
                PathType::PathPrefix => PathMatch::Prefix(value),
                PathType::RegularExpression => PathMatch::Regex(valid_regex(&value)?),
            }
        }
    };
    let mut headers: Vec<HeaderMatch> = Vec::new();
    for h in m.headers.iter().flatten() {
        let name = h.name.to_ascii_lowercase();
        if !valid_header_name(&name) {
            return Err(unsupported(format!("invalid header name {:?}", h.name)));
        }
        // Repeated names: the first one wins, as the spec says.
        if headers.iter().any(|x| x.name == name) {
            continue;
        }
        let value = match h.r#type.as_ref().unwrap_or(&HeaderType::Exact) {
            HeaderType::Exact => StringMatch::Exact(h.value.clone()),
            HeaderType::RegularExpression => StringMatch::Regex(valid_regex(&h.value)?),
        };
        headers.push(HeaderMatch { name, value });
    }
    let mut query_params: Vec<QueryParamMatch> = Vec::new();
    for q in m.query_params.iter().flatten() {
        if query_params.iter().any(|x| x.name == q.name) {
            continue;
        }
        let value = match q.r#type.as_ref().unwrap_or(&QueryType::Exact) {
            QueryType::Exact => StringMatch::Exact(q.value.clone()),
            QueryType::RegularExpression => StringMatch::Regex(valid_regex(&q.value)?),
        };
        query_params.push(QueryParamMatch {
            name: q.name.clone(),
            value,
        });
    }
    let method = m.method.as_ref().map(|method| {
        serde_json::to_value(method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    });
    Ok(HttpMatch {
        path,
        headers,
        query_params,
        method,
    })
}

pub(crate) fn valid_regex(value: &str) -> Result<String, Problem> {
    regex::Regex::new(value).map_err(|e| {
        // The parser's message spans several lines; its last line says what is wrong.
        let text = e.to_string();
        let cause = text.lines().last().unwrap_or_default().trim().to_string();
        unsupported(format!("invalid regular expression {value:?}: {cause}"))
    })?;
    envoy_limits::re2_program_fits(value)?;
    Ok(value.to_string())
}

/// RFC 1123 DNS name, without a wildcard.
pub(crate) fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// RFC 7230 token characters.
pub(crate) fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The rule-level filters, converted.
#[derive(Default)]
struct Filters {
    request_headers: HeaderMods,
    response_headers: HeaderMods,
    redirect: Option<Redirect>,
    rewrite: Option<UrlRewrite>,
    mirrors: Vec<Mirror>,
    cors: Option<Cors>,
}

impl Filters {
    fn convert(
        ctx: &mut RefContext<'_, '_>,
        filters: &[HttpRouteRulesFilters],
        matches: &[HttpMatch],
    ) -> Result<Filters, Problem> {
        let mut out = Filters::default();
        let mut seen = Vec::new();
        for f in filters {
            let once = matches!(
                f.r#type,
                FilterType::RequestHeaderModifier
                    | FilterType::ResponseHeaderModifier
                    | FilterType::RequestRedirect
                    | FilterType::UrlRewrite
                    | FilterType::Cors
            );
            let name = format!("{:?}", f.r#type);
            if once && seen.contains(&name) {
                return Err(unsupported(format!(
                    "filter {name} may appear only once per rule"
                )));
            }
            seen.push(name.clone());
            match f.r#type {
                FilterType::RequestHeaderModifier => {
                    let m = f
                        .request_header_modifier
                        .as_ref()
                        .ok_or_else(|| unsupported("requestHeaderModifier is missing"))?;
                    out.request_headers = header_mods(
                        m.set.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.add.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.remove.iter().flatten(),
                    )?;
                }
                FilterType::ResponseHeaderModifier => {
                    let m = f
                        .response_header_modifier
                        .as_ref()
                        .ok_or_else(|| unsupported("responseHeaderModifier is missing"))?;
                    out.response_headers = header_mods(
                        m.set.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.add.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.remove.iter().flatten(),
                    )?;
                }
                FilterType::RequestRedirect => {
                    let r = f
                        .request_redirect
                        .as_ref()
                        .ok_or_else(|| unsupported("requestRedirect is missing"))?;
                    let status_code = match r.status_code.unwrap_or(302) {
                        code @ (301 | 302 | 303 | 307 | 308) => code as u16,
                        other => {
                            return Err(unsupported(format!(
                                "redirect status code {other} is not supported"
                            )));
                        }
                    };
                    let path = match &r.path {
                        None => None,
                        Some(p) => Some(path_modifier(
                            matches!(p.r#type, RedirectPathType::ReplaceFullPath),
                            p.replace_full_path.as_deref(),
                            p.replace_prefix_match.as_deref(),
                            matches,
                        )?),
                    };
                    if let Some(h) = &r.hostname {
                        envoy_limits::header_safe("requestRedirect hostname", h)?;
                        if !valid_hostname(h) {
                            return Err(unsupported(format!(
                                "requestRedirect hostname {h:?} is not a valid DNS name"
                            )));
                        }
                    }
                    out.redirect = Some(Redirect {
                        scheme: r.scheme.as_ref().map(|s| match s {
                            Scheme::Http => "http".to_string(),
                            Scheme::Https => "https".to_string(),
                        }),
                        hostname: r.hostname.clone(),
                        port: r
                            .port
                            .map(|p| {
                                u16::try_from(p).map_err(|_| {
                                    unsupported(format!("redirect port {p} is out of range"))
                                })
                            })
                            .transpose()?,
                        path,
                        status_code,
                    });
                }
                FilterType::UrlRewrite => {
                    let r = f
                        .url_rewrite
                        .as_ref()
                        .ok_or_else(|| unsupported("urlRewrite is missing"))?;
                    let path = match &r.path {
                        None => None,
                        Some(p) => Some(path_modifier(
                            matches!(p.r#type, RewritePathType::ReplaceFullPath),
                            p.replace_full_path.as_deref(),
                            p.replace_prefix_match.as_deref(),
                            matches,
                        )?),
                    };
                    if let Some(h) = &r.hostname
                        && !valid_hostname(h)
                    {
                        return Err(unsupported(format!(
                            "urlRewrite hostname {h:?} is not a valid DNS name"
                        )));
                    }
                    out.rewrite = Some(UrlRewrite {
                        hostname: r.hostname.clone(),
                        path,
                    });
                }
                FilterType::RequestMirror => {
                    let m = f
                        .request_mirror
                        .as_ref()
                        .ok_or_else(|| unsupported("requestMirror is missing"))?;
                    let (numerator, denominator) = match (&m.fraction, m.percent) {
                        (Some(fr), _) => (fr.numerator, fr.denominator.unwrap_or(100)),
                        (None, Some(p)) => (p, 100),
                        (None, None) => (100, 100),
                    };
                    if numerator < 0 || denominator <= 0 || numerator > denominator {
                        return Err(unsupported(
                            "requestMirror fraction must be between 0 and 1",
                        ));
                    }
                    let r = &m.backend_ref;
                    let reference = BackendRef {
                        group: r.group.as_deref(),
                        kind: r.kind.as_deref(),
                        name: &r.name,
                        namespace: r.namespace.as_deref(),
                        port: r.port,
                    };
                    if let Some(backend) = ctx.resolve(&reference) {
                        out.mirrors.push(Mirror {
                            backend,
                            numerator: numerator as u32,
                            denominator: denominator as u32,
                        });
                    }
                }
                FilterType::Cors => {
                    let c = f
                        .cors
                        .as_ref()
                        .ok_or_else(|| unsupported("cors is missing"))?;
                    out.cors = Some(Cors {
                        allow_origins: c.allow_origins.clone().unwrap_or_default(),
                        allow_methods: c.allow_methods.clone().unwrap_or_default(),
                        allow_headers: c.allow_headers.clone().unwrap_or_default(),
                        expose_headers: c.expose_headers.clone().unwrap_or_default(),
                        max_age_seconds: c.max_age.map(|a| a.max(0) as u32),
                        allow_credentials: c.allow_credentials.unwrap_or(false),
                    });
                }
                FilterType::ExtensionRef => {
                    let e = f.extension_ref.as_ref();
                    return Err(unsupported(format!(
                        "extensionRef {}/{} {} is not supported",
                        e.map(|e| e.group.as_str()).unwrap_or_default(),
                        e.map(|e| e.kind.as_str()).unwrap_or_default(),
                        e.map(|e| e.name.as_str()).unwrap_or_default()
                    )));
                }
                _ => return Err(unsupported(format!("filter type {name} is not supported"))),
            }
        }
        if out.redirect.is_some() && !out.mirrors.is_empty() {
            // A redirect answers without forwarding: nothing would be mirrored.
            out.mirrors.clear();
        }
        if out.redirect.is_some() && out.rewrite.is_some() {
            return Err(unsupported(
                "RequestRedirect and URLRewrite cannot be used in the same rule",
            ));
        }
        Ok(out)
    }
}

fn path_modifier(
    full: bool,
    full_path: Option<&str>,
    prefix: Option<&str>,
    matches: &[HttpMatch],
) -> Result<PathModifier, Problem> {
    if full && prefix.is_some() {
        return Err(unsupported(
            "ReplacePrefixMatch cannot be set when the path type is ReplaceFullPath",
        ));
    }
    if !full && full_path.is_some() {
        return Err(unsupported(
            "ReplaceFullPath cannot be set when the path type is ReplacePrefixMatch",
        ));
    }
    for value in full_path.iter().chain(prefix.iter()) {
        envoy_limits::header_safe("path", value)?;
    }
    if full {
        let value = full_path.ok_or_else(|| unsupported("replaceFullPath is missing"))?;
        return Ok(PathModifier::ReplaceFullPath(value.to_string()));
    }
    let value = prefix.ok_or_else(|| unsupported("replacePrefixMatch is missing"))?;
    if !matches
        .iter()
        .all(|m| matches!(m.path, PathMatch::Prefix(_)))
    {
        return Err(unsupported(
            "ReplacePrefixMatch needs every match of the rule to be a PathPrefix match",
        ));
    }
    Ok(PathModifier::ReplacePrefixMatch(value.to_string()))
}

pub(crate) fn header_mods<'a>(
    set: impl Iterator<Item = (&'a String, &'a String)>,
    add: impl Iterator<Item = (&'a String, &'a String)>,
    remove: impl Iterator<Item = &'a String>,
) -> Result<HeaderMods, Problem> {
    let mut mods = HeaderMods::default();
    let push =
        |list: &mut Vec<HeaderValue>, name: &String, value: &String| -> Result<(), Problem> {
            if !valid_header_name(name) {
                return Err(unsupported(format!("invalid header name {name:?}")));
            }
            // Host is the route's to match, not a filter's to change (use URLRewrite).
            if name.eq_ignore_ascii_case("host") || name.starts_with(':') {
                return Err(unsupported(format!(
                    "Header: {name:?} cannot be modified by a header filter"
                )));
            }
            // Envoy refuses empty values and control characters (a newline would split the header).
            if value.is_empty() || value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(unsupported(format!(
                    "Header: {name:?}: invalid value {value:?}"
                )));
            }
            // A name given twice: the first one wins (case-insensitive), as the spec says.
            if !list.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
                list.push(HeaderValue {
                    name: name.clone(),
                    value: value.clone(),
                });
            }
            Ok(())
        };
    for (name, value) in set {
        push(&mut mods.set, name, value)?;
    }
    for (name, value) in add {
        push(&mut mods.add, name, value)?;
    }
    for name in remove {
        if !valid_header_name(name) {
            return Err(unsupported(format!("invalid header name {name:?}")));
        }
        if !mods
            .remove
            .iter()
            .any(|h: &String| h.eq_ignore_ascii_case(name))
        {
            mods.remove.push(name.clone());
        }
    }
    Ok(mods)
}
