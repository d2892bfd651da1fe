//! HTTPRoute matches (path, headers, query parameters, method) to IR, and the value checks
//! GRPCRoute matches share (regexes, header names, hostnames).

use ferrogate_api::gateway::{
    HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType as HeaderType,
    HttpRouteRulesMatchesPathType as PathType, HttpRouteRulesMatchesQueryParamsType as QueryType,
};
use ferrogate_ir::{HeaderMatch, HttpMatch, PathMatch, QueryParamMatch, StringMatch};

use super::envoy_limits;
use super::http_rules::unsupported;
use crate::conditions::Problem;

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
