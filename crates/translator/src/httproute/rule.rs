//! HTTPRoute rules to IR: matches, filters, backends and the rule's action.

use ferrogate_api::gateway::{
    HttpRoute, HttpRouteRules, HttpRouteRulesFilters, HttpRouteRulesFiltersRequestRedirectPathType as RedirectPathType,
    HttpRouteRulesFiltersRequestRedirectScheme as Scheme, HttpRouteRulesFiltersType as FilterType,
    HttpRouteRulesFiltersUrlRewritePathType as RewritePathType, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeadersType as HeaderType, HttpRouteRulesMatchesPathType as PathType,
    HttpRouteRulesMatchesQueryParamsType as QueryType,
};
use ferrogate_ir::{
    Backend, Forward, HeaderMatch, HeaderMods, HeaderValue, HttpMatch, PathMatch, PathModifier, QueryParamMatch,
    Redirect, RouteAction, StringMatch, UrlRewrite, WeightedBackend,
};
use ferrogate_status::Condition;
use ferrogate_store::Snapshot;

use super::ConvertedRule;
use crate::backend::{self, BackendRef, RefProblem};
use crate::conditions::{reasons, types};

/// A route's rules, converted, with what the route status must say about them.
pub(crate) struct ConvertedRules {
    pub rules: Vec<ConvertedRule>,
    pub backends: Vec<Backend>,
    /// A problem that makes the route unacceptable: (reason, message).
    pub problem: Option<(&'static str, String)>,
    /// The route's `ResolvedRefs` condition.
    pub resolved_refs: Condition,
}

type Problem = (&'static str, String);

fn unsupported(message: impl Into<String>) -> Problem {
    (reasons::UNSUPPORTED_VALUE, message.into())
}

pub(crate) fn convert_route(snapshot: &Snapshot, namespace: &str, route: &HttpRoute) -> ConvertedRules {
    let mut out = ConvertedRules {
        rules: Vec::new(),
        backends: Vec::new(),
        problem: None,
        resolved_refs: Condition::ok(types::RESOLVED_REFS, reasons::RESOLVED_REFS, "Resolved all the Object references for the Route"),
    };
    let mut ref_problems: Vec<RefProblem> = Vec::new();
    for (index, rule) in route.spec.rules.iter().flatten().enumerate() {
        match convert_rule(snapshot, namespace, index, rule, &mut out.backends, &mut ref_problems) {
            Ok(converted) => out.rules.push(converted),
            Err((reason, message)) => {
                if out.problem.is_none() {
                    out.problem = Some((reason, format!("rule {index}: {message}")));
                }
            }
        }
    }
    if let Some(first) = ref_problems.first() {
        let message = ref_problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; ");
        out.resolved_refs = Condition::not(types::RESOLVED_REFS, first.reason, message);
    }
    out
}

fn convert_rule(
    snapshot: &Snapshot,
    namespace: &str,
    index: usize,
    rule: &HttpRouteRules,
    backends: &mut Vec<Backend>,
    ref_problems: &mut Vec<RefProblem>,
) -> Result<ConvertedRule, Problem> {
    let matches = match rule.matches.as_deref() {
        None | Some([]) => vec![HttpMatch { path: PathMatch::Prefix("/".into()), headers: vec![], query_params: vec![], method: None }],
        Some(matches) => matches.iter().map(convert_match).collect::<Result<_, _>>()?,
    };
    let filters = Filters::convert(rule.filters.as_deref().unwrap_or_default(), &matches)?;

    let mut forward = Forward { backends: Vec::new(), invalid_weight: 0, rewrite: filters.rewrite };
    let refs = rule.backend_refs.as_deref().unwrap_or_default();
    for r in refs {
        if r.filters.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(unsupported("filters on a backendRef are not supported yet"));
        }
        let weight = u32::try_from(r.weight.unwrap_or(1)).map_err(|_| unsupported("backendRef weight must not be negative"))?;
        let reference = BackendRef {
            group: r.group.as_deref(),
            kind: r.kind.as_deref(),
            name: &r.name,
            namespace: r.namespace.as_deref(),
            port: r.port,
        };
        match backend::resolve(snapshot, "HTTPRoute", namespace, &reference) {
            Ok(resolved) => {
                if weight > 0 {
                    forward.backends.push(WeightedBackend { backend: resolved.name.clone(), weight });
                }
                if !backends.iter().any(|b| b.name == resolved.name) {
                    backends.push(resolved);
                }
            }
            Err(problem) => {
                forward.invalid_weight += weight;
                ref_problems.push(problem);
            }
        }
    }
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
        action,
    })
}

fn convert_match(m: &HttpRouteRulesMatches) -> Result<HttpMatch, Problem> {
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
        query_params.push(QueryParamMatch { name: q.name.clone(), value });
    }
    let method = m.method.as_ref().map(|method| {
        serde_json::to_value(method).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    });
    Ok(HttpMatch { path, headers, query_params, method })
}

fn valid_regex(value: &str) -> Result<String, Problem> {
    regex::Regex::new(value).map(|_| value.to_string()).map_err(|e| {
        // The parser's message spans several lines; its last line says what is wrong.
        let text = e.to_string();
        let cause = text.lines().last().unwrap_or_default().trim().to_string();
        unsupported(format!("invalid regular expression {value:?}: {cause}"))
    })
}

/// RFC 7230 token characters.
fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The rule-level filters, converted.
#[derive(Default)]
struct Filters {
    request_headers: HeaderMods,
    response_headers: HeaderMods,
    redirect: Option<Redirect>,
    rewrite: Option<UrlRewrite>,
}

impl Filters {
    fn convert(filters: &[HttpRouteRulesFilters], matches: &[HttpMatch]) -> Result<Filters, Problem> {
        let mut out = Filters::default();
        let mut seen = Vec::new();
        for f in filters {
            let once = matches!(f.r#type, FilterType::RequestHeaderModifier | FilterType::ResponseHeaderModifier | FilterType::RequestRedirect | FilterType::UrlRewrite);
            let name = format!("{:?}", f.r#type);
            if once && seen.contains(&name) {
                return Err(unsupported(format!("filter {name} may appear only once per rule")));
            }
            seen.push(name.clone());
            match f.r#type {
                FilterType::RequestHeaderModifier => {
                    let m = f.request_header_modifier.as_ref().ok_or_else(|| unsupported("requestHeaderModifier is missing"))?;
                    out.request_headers = header_mods(
                        m.set.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.add.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.remove.iter().flatten(),
                    )?;
                }
                FilterType::ResponseHeaderModifier => {
                    let m = f.response_header_modifier.as_ref().ok_or_else(|| unsupported("responseHeaderModifier is missing"))?;
                    out.response_headers = header_mods(
                        m.set.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.add.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.remove.iter().flatten(),
                    )?;
                }
                FilterType::RequestRedirect => {
                    let r = f.request_redirect.as_ref().ok_or_else(|| unsupported("requestRedirect is missing"))?;
                    let status_code = match r.status_code.unwrap_or(302) {
                        code @ (301 | 302 | 303 | 307 | 308) => code as u16,
                        other => return Err(unsupported(format!("redirect status code {other} is not supported"))),
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
                    out.redirect = Some(Redirect {
                        scheme: r.scheme.as_ref().map(|s| match s {
                            Scheme::Http => "http".to_string(),
                            Scheme::Https => "https".to_string(),
                        }),
                        hostname: r.hostname.clone(),
                        port: r.port.map(|p| u16::try_from(p).map_err(|_| unsupported(format!("redirect port {p} is out of range")))).transpose()?,
                        path,
                        status_code,
                    });
                }
                FilterType::UrlRewrite => {
                    let r = f.url_rewrite.as_ref().ok_or_else(|| unsupported("urlRewrite is missing"))?;
                    let path = match &r.path {
                        None => None,
                        Some(p) => Some(path_modifier(
                            matches!(p.r#type, RewritePathType::ReplaceFullPath),
                            p.replace_full_path.as_deref(),
                            p.replace_prefix_match.as_deref(),
                            matches,
                        )?),
                    };
                    out.rewrite = Some(UrlRewrite { hostname: r.hostname.clone(), path });
                }
                _ => return Err(unsupported(format!("filter type {name} is not supported yet"))),
            }
        }
        if out.redirect.is_some() && out.rewrite.is_some() {
            return Err(unsupported("RequestRedirect and URLRewrite cannot be used in the same rule"));
        }
        Ok(out)
    }
}

fn path_modifier(full: bool, full_path: Option<&str>, prefix: Option<&str>, matches: &[HttpMatch]) -> Result<PathModifier, Problem> {
    if full {
        let value = full_path.ok_or_else(|| unsupported("replaceFullPath is missing"))?;
        return Ok(PathModifier::ReplaceFullPath(value.to_string()));
    }
    let value = prefix.ok_or_else(|| unsupported("replacePrefixMatch is missing"))?;
    if !matches.iter().all(|m| matches!(m.path, PathMatch::Prefix(_))) {
        return Err(unsupported("ReplacePrefixMatch needs every match of the rule to be a PathPrefix match"));
    }
    Ok(PathModifier::ReplacePrefixMatch(value.to_string()))
}

fn header_mods<'a>(
    set: impl Iterator<Item = (&'a String, &'a String)>,
    add: impl Iterator<Item = (&'a String, &'a String)>,
    remove: impl Iterator<Item = &'a String>,
) -> Result<HeaderMods, Problem> {
    let mut mods = HeaderMods::default();
    let push = |list: &mut Vec<HeaderValue>, name: &String, value: &String| -> Result<(), Problem> {
        if !valid_header_name(name) {
            return Err(unsupported(format!("invalid header name {name:?}")));
        }
        // A name given twice: the first one wins (case-insensitive), as the spec says.
        if !list.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
            list.push(HeaderValue { name: name.clone(), value: value.clone() });
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
        if !mods.remove.iter().any(|h: &String| h.eq_ignore_ascii_case(name)) {
            mods.remove.push(name.clone());
        }
    }
    Ok(mods)
}
