//! GRPCRoute into the shared route input. gRPC is HTTP/2 with the method in the path
//! (`/<service>/<method>`): matches become path matches, and filters and backendRefs share
//! HTTPRoute's conversion (their JSON shapes are the same).

use std::sync::Arc;

use ferrogate_api::gateway::{
    GrpcRoute, GrpcRouteRulesMatches, GrpcRouteRulesMatchesHeadersType as HeaderType,
    GrpcRouteRulesMatchesMethodType as MethodType, HttpRouteRulesBackendRefs,
    HttpRouteRulesFilters, HttpRouteRulesSessionPersistence,
};
use ferrogate_ir::{HeaderMatch, HttpMatch, PathMatch, StringMatch};
use ferrogate_store::ObjectKey;

use super::http_matches;
use super::http_rules::{self, RuleParts, unsupported};
use super::open_values::OpenValues;
use super::session;
use super::{ConvertedRoute, Payload, RouteInput, creation_time, parent_refs};
use crate::backend::Resolver;
use crate::conditions::Problem;

pub(super) fn input(resolver: &Resolver<'_>, key: &ObjectKey, route: &GrpcRoute) -> RouteInput {
    let values = OpenValues::of(&route.metadata);
    // Owned HTTPRoute-typed copies of each rule's filters and backendRefs.
    type Parts = (
        Vec<HttpMatch>,
        Vec<HttpRouteRulesFilters>,
        Vec<HttpRouteRulesBackendRefs>,
        Option<ferrogate_ir::SessionPersistence>,
    );
    let converted_parts: Vec<Result<Parts, Problem>> = route
        .spec
        .rules
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, rule)| {
            values.check_rule(index)?;
            let matches = rule
                .matches
                .iter()
                .flatten()
                .map(convert_match)
                .collect::<Result<Vec<_>, _>>()?;
            let filters = reshape(&rule.filters)?;
            let backend_refs = reshape(&rule.backend_refs)?;
            // Same JSON shape as HTTPRoute's.
            let persistence: Option<HttpRouteRulesSessionPersistence> =
                reshape_one(rule.session_persistence.as_ref())?;
            let session_persistence = session::convert(
                persistence.as_ref(),
                &session::default_name("GRPCRoute", key, index),
            )?;
            Ok((matches, filters, backend_refs, session_persistence))
        })
        .collect();
    let rules = converted_parts
        .iter()
        .enumerate()
        .map(|(index, parts)| match parts {
            Ok((matches, filters, backend_refs, session_persistence)) => Ok(RuleParts {
                matches: matches.clone(),
                filters,
                backend_refs,
                timeouts: None,
                retry: None,
                backend_unknown: (0..backend_refs.len())
                    .map(|i| values.backend_filters(index, i))
                    .collect(),
                session_persistence: session_persistence.clone(),
            }),
            Err(problem) => Err(problem.clone()),
        });
    let mut converted =
        http_rules::convert_rules(resolver, "GRPCRoute", &key.namespace, true, rules);
    if let Some(problem) = values.route_problem() {
        converted.problem = Some(problem);
    }
    RouteInput {
        kind: "GRPCRoute",
        generation: route.metadata.generation,
        hostnames: route.spec.hostnames.clone().unwrap_or_default(),
        parents: parent_refs!(resolver, route.spec.parent_refs),
        problem: converted.problem.map(Box::new),
        unresolved_refs: RouteInput::unresolved(converted.resolved_refs),
        partially_invalid: converted.partially_invalid.map(Box::new),
        payload: Payload::Http(Arc::new(ConvertedRoute {
            kind: "GRPCRoute",
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            created: creation_time(&route.metadata),
            rules: converted.rules,
        })),
        backends: converted.backends,
        tls_policies: converted.tls_policies,
    }
}

/// Re-types one GRPCRoute value as its HTTPRoute equivalent through JSON.
fn reshape_one<T: serde::Serialize, U: serde::de::DeserializeOwned>(
    item: Option<&T>,
) -> Result<Option<U>, Problem> {
    let Some(item) = item else { return Ok(None) };
    let value = serde_json::to_value(item).map_err(|e| unsupported(e.to_string()))?;
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| unsupported(format!("unsupported GRPCRoute sessionPersistence: {e}")))
}

/// Re-types a GRPCRoute list as its HTTPRoute equivalent through JSON.
fn reshape<T: serde::Serialize, U: serde::de::DeserializeOwned>(
    items: &Option<Vec<T>>,
) -> Result<Vec<U>, Problem> {
    let value = serde_json::to_value(items.as_deref().unwrap_or_default())
        .map_err(|e| unsupported(e.to_string()))?;
    serde_json::from_value(value)
        .map_err(|e| unsupported(format!("unsupported GRPCRoute filter or backendRef: {e}")))
}

fn convert_match(m: &GrpcRouteRulesMatches) -> Result<HttpMatch, Problem> {
    let path = match &m.method {
        None => PathMatch::Prefix("/".into()),
        Some(method) => {
            let service = method.service.as_deref().filter(|s| !s.is_empty());
            let name = method.method.as_deref().filter(|s| !s.is_empty());
            match method.r#type.as_ref().unwrap_or(&MethodType::Exact) {
                MethodType::Exact => match (service, name) {
                    (Some(s), Some(n)) => PathMatch::Exact(format!("/{s}/{n}")),
                    (Some(s), None) => PathMatch::Prefix(format!("/{s}")),
                    (None, Some(n)) => PathMatch::Regex(format!("/[^/]+/{}", regex::escape(n))),
                    (None, None) => {
                        return Err(unsupported(
                            "a gRPC method match needs a service or a method",
                        ));
                    }
                },
                MethodType::RegularExpression => {
                    let s = service
                        .map(http_matches::valid_regex)
                        .transpose()?
                        .unwrap_or_else(|| "[^/]+".into());
                    let n = name
                        .map(http_matches::valid_regex)
                        .transpose()?
                        .unwrap_or_else(|| "[^/]+".into());
                    PathMatch::Regex(format!("/{s}/{n}"))
                }
            }
        }
    };
    let mut headers: Vec<HeaderMatch> = Vec::new();
    for h in m.headers.iter().flatten() {
        let name = h.name.to_ascii_lowercase();
        if !http_matches::valid_header_name(&name) {
            return Err(unsupported(format!("invalid header name {:?}", h.name)));
        }
        if headers.iter().any(|x| x.name == name) {
            continue;
        }
        let value = match h.r#type.as_ref().unwrap_or(&HeaderType::Exact) {
            HeaderType::Exact => StringMatch::Exact(h.value.clone()),
            HeaderType::RegularExpression => {
                StringMatch::Regex(http_matches::valid_regex(&h.value)?)
            }
        };
        headers.push(HeaderMatch { name, value });
    }
    Ok(HttpMatch {
        path,
        headers,
        query_params: vec![],
        method: None,
    })
}
