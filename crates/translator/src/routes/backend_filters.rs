//! Filters on a backendRef: what Envoy can do per backend of a weighted split. Header
//! modifiers and a URLRewrite of the hostname run per weighted cluster (Envoy's
//! `ClusterWeight` carries header changes and a host rewrite), so they work with any number
//! of backends. A rule with a single backendRef runs that backendRef's RequestRedirect and
//! URLRewrite at rule level instead (the same thing for one backend; see `convert_rule`).
//! Every other filter (with several backends a redirect or a path rewrite; always a mirror,
//! CORS, an extension, a filter type Ferrogate does not know) cannot run per backend. As in
//! Envoy Gateway, such a backendRef is not served: the rule stays accepted, the route says
//! `ResolvedRefs: False` with `UnsupportedRefValue`, and that backend's share of requests
//! is answered with 500 (the spec's rule for a backendRef that cannot be used).

use ferrogate_api::gateway::{
    HttpRouteRulesBackendRefsFilters, HttpRouteRulesBackendRefsFiltersType as FilterType,
};
use ferrogate_ir::HeaderMods;
use ferrogate_store::UnsupportedValue;

use super::http_filters::header_mods_of;
use super::http_matches::valid_hostname;
use crate::conditions::{Problem, reasons};

/// What one backendRef's filters do to requests sent to that backend.
#[derive(Default)]
pub(crate) struct PerBackend {
    pub request_headers: HeaderMods,
    pub response_headers: HeaderMods,
    pub host_rewrite: Option<String>,
}

/// Why a backendRef's filters make it unusable (a rule-level problem stays a `Problem`:
/// a header modifier with an invalid header is a broken rule, not an unsupported backend).
pub(crate) enum FilterError {
    /// The rule is invalid.
    Rule(Problem),
    /// This backendRef cannot be served.
    Backend(Problem),
}

/// Filters of a rule's only backendRef that run at rule level.
pub(crate) fn runs_at_rule_level(t: &FilterType) -> bool {
    matches!(t, FilterType::RequestRedirect | FilterType::UrlRewrite)
}

/// Converts the filters of backendRef `name`; `unknown` are the unsupported values the
/// store recorded inside them; `single`: the rule's only backendRef (whose redirect and
/// rewrite run at rule level).
pub(crate) fn convert(
    name: &str,
    filters: &[HttpRouteRulesBackendRefsFilters],
    unknown: &[UnsupportedValue],
    single: bool,
) -> Result<PerBackend, FilterError> {
    let unsupported_ref = |message: String| {
        FilterError::Backend(Problem::unresolved(
            reasons::UNSUPPORTED_REF_VALUE,
            format!("backendRef {name}: {message}"),
        ))
    };
    if let Some(v) = unknown.first() {
        return Err(unsupported_ref(v.describe()));
    }
    let mut out = PerBackend::default();
    for f in filters
        .iter()
        .filter(|f| !(single && runs_at_rule_level(&f.r#type)))
    {
        match f.r#type {
            FilterType::RequestHeaderModifier => {
                let m = f.request_header_modifier.as_ref().ok_or_else(|| {
                    FilterError::Rule(super::http_rules::unsupported(
                        "requestHeaderModifier is missing",
                    ))
                })?;
                out.request_headers = header_mods_of!(m).map_err(FilterError::Rule)?;
            }
            FilterType::ResponseHeaderModifier => {
                let m = f.response_header_modifier.as_ref().ok_or_else(|| {
                    FilterError::Rule(super::http_rules::unsupported(
                        "responseHeaderModifier is missing",
                    ))
                })?;
                out.response_headers = header_mods_of!(m).map_err(FilterError::Rule)?;
            }
            FilterType::UrlRewrite => {
                let r = f.url_rewrite.as_ref().ok_or_else(|| {
                    FilterError::Rule(super::http_rules::unsupported("urlRewrite is missing"))
                })?;
                // Envoy's weighted clusters cannot rewrite the path per cluster.
                if r.path.is_some() {
                    return Err(unsupported_ref(
                        "a URLRewrite path modifier cannot run per backend".into(),
                    ));
                }
                if let Some(h) = &r.hostname {
                    if !valid_hostname(h) {
                        return Err(FilterError::Rule(super::http_rules::unsupported(format!(
                            "urlRewrite hostname {h:?} is not a valid DNS name"
                        ))));
                    }
                    out.host_rewrite = Some(h.clone());
                }
            }
            ref other => {
                return Err(unsupported_ref(format!(
                    "filter {other:?} cannot run per backend; only RequestHeaderModifier, ResponseHeaderModifier and URLRewrite (hostname) can"
                )));
            }
        }
    }
    Ok(out)
}
