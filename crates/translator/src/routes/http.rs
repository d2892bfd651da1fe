//! HTTPRoute into the shared route input.

use std::sync::Arc;

use ferrogate_api::gateway::HttpRoute;
use ferrogate_store::ObjectKey;

use super::http_matches;
use super::http_rules::{self, RuleParts};
use super::open_values::OpenValues;
use super::session;
use super::{ConvertedRoute, Payload, RouteInput, creation_time, parent_refs};
use crate::backend::Resolver;

pub(super) fn input(resolver: &Resolver<'_>, key: &ObjectKey, route: &HttpRoute) -> RouteInput {
    let values = OpenValues::of(&route.metadata);
    let rules = route
        .spec
        .rules
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, rule)| {
            values.check_rule(index)?;
            let session_persistence = session::convert(
                rule.session_persistence.as_ref(),
                &session::default_name("HTTPRoute", key, index),
            )?;
            let matches = rule
                .matches
                .iter()
                .flatten()
                .map(http_matches::convert_match)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RuleParts {
                matches,
                filters: rule.filters.as_deref().unwrap_or_default(),
                backend_refs: rule.backend_refs.as_deref().unwrap_or_default(),
                timeouts: rule.timeouts.as_ref(),
                retry: rule.retry.as_ref(),
                backend_unknown: (0..rule.backend_refs.as_ref().map_or(0, Vec::len))
                    .map(|i| values.backend_filters(index, i))
                    .collect(),
                session_persistence,
            })
        });
    let mut converted =
        http_rules::convert_rules(resolver, "HTTPRoute", &key.namespace, false, rules);
    if let Some(problem) = values.route_problem() {
        converted.problem = Some(problem);
    }
    RouteInput {
        kind: "HTTPRoute",
        generation: route.metadata.generation,
        hostnames: route.spec.hostnames.clone().unwrap_or_default(),
        parents: parent_refs!(resolver, route.spec.parent_refs),
        problem: converted.problem.map(Box::new),
        unresolved_refs: RouteInput::unresolved(converted.resolved_refs),
        partially_invalid: converted.partially_invalid.map(Box::new),
        payload: Payload::Http(Arc::new(ConvertedRoute {
            kind: "HTTPRoute",
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            created: creation_time(&route.metadata),
            rules: converted.rules,
        })),
        backends: converted.backends,
        tls_policies: converted.tls_policies,
    }
}
