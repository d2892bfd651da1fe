//! HTTPRoute rules to IR: each rule's backends and action, from its matches
//! ([`super::http_matches`]), filters ([`super::http_filters`]) and timeouts and retries
//! ([`super::http_timeouts`]).

use std::sync::Arc;

use ferrogate_api::gateway::{
    HttpRouteRulesBackendRefs, HttpRouteRulesFilters, HttpRouteRulesRetry, HttpRouteRulesTimeouts,
};
use ferrogate_ir::{Backend, Forward, HttpMatch, PathMatch, RouteAction, WeightedBackend};
use ferrogate_status::Condition;
use ferrogate_store::UnsupportedValue;

use super::ConvertedRule;
use super::backend_filters::{self, FilterError};
use super::envoy_limits;
use super::http_filters::Filters;
use super::http_timeouts::{retry, timeouts};
use crate::backend::{BackendRef, RefProblem, Resolver, backend_ref};
use crate::backend_tls::Targets;
use crate::conditions::{Problem, reasons, types};

/// A route's rules, converted, with what the route status must say about them.
pub(crate) struct ConvertedRules {
    pub rules: Vec<ConvertedRule>,
    pub backends: Vec<Arc<Backend>>,
    /// The BackendTLSPolicies resolution met, by backend.
    pub tls_policies: Targets,
    /// A problem that makes the route unacceptable (`Accepted: False`).
    pub problem: Option<Problem>,
    /// The route's `ResolvedRefs` condition.
    pub resolved_refs: Condition,
    /// Some rules are invalid and were left out: `PartiallyInvalid: True`, with the first
    /// broken rule's reason.
    pub partially_invalid: Option<Problem>,
}

/// A rule that is not accepted: `UnsupportedValue`.
pub(crate) fn unsupported(message: impl Into<ferrogate_status::Text>) -> Problem {
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
    resolver: &Resolver<'_>,
    kind: &str,
    namespace: &str,
    http2: bool,
    rules: impl Iterator<Item = Result<RuleParts<'a>, Problem>>,
) -> ConvertedRules {
    let mut out = ConvertedRules {
        rules: Vec::new(),
        backends: Vec::new(),
        tls_policies: Targets::new(),
        problem: None,
        resolved_refs: super::resolved_refs(&[]),
        partially_invalid: None,
    };
    let mut ref_problems: Vec<RefProblem> = Vec::new();
    let mut invalid_rules = Vec::new();
    let mut total = 0;
    for (index, parts) in rules.enumerate() {
        total += 1;
        let converted = parts.and_then(|parts| {
            let mut ctx = RefContext {
                resolver,
                kind,
                namespace,
                http2,
                backends: &mut out.backends,
                problems: &mut ref_problems,
                tls_policies: &mut out.tls_policies,
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
            .map(|p| &*p.message)
            .collect::<Vec<_>>()
            .join("; ");
        let problem = Problem {
            message: message.into(),
            ..first.clone()
        };
        // Every rule broken: the route is not accepted. Some broken: the valid rules serve.
        if invalid_rules.len() == total {
            out.problem = Some(problem);
        } else {
            out.partially_invalid = Some(Problem {
                type_: types::PARTIALLY_INVALID,
                ..problem
            });
        }
    }
    out.resolved_refs = super::resolved_refs(&ref_problems);
    out
}

/// Everything needed to resolve backend references of one route.
pub(crate) struct RefContext<'a, 'b> {
    pub resolver: &'a Resolver<'a>,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub http2: bool,
    pub backends: &'b mut Vec<Arc<Backend>>,
    pub problems: &'b mut Vec<RefProblem>,
    pub tls_policies: &'b mut Targets,
}

impl RefContext<'_, '_> {
    /// Resolves a reference; records the backend or the problem. `Ok(None)` when unusable.
    pub(crate) fn resolve(&mut self, reference: &BackendRef<'_>) -> Option<String> {
        match self.resolver.resolve(
            self.kind,
            self.namespace,
            reference,
            self.http2,
            self.tls_policies,
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
        rewrite: filters.rewrite.map(Box::new),
        mirrors: filters.mirrors,
        timeouts: timeouts(parts.timeouts)?.map(Box::new),
        retry: retry(parts.retry)?.map(Box::new),
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
        let reference = backend_ref!(r);
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
        matches: matches.into_iter().map(Arc::new).collect(),
        request_headers: filters.request_headers,
        response_headers: filters.response_headers,
        cors: filters.cors.map(Box::new),
        session_persistence: parts.session_persistence.map(Box::new),
        action: Arc::new(action),
    })
}
