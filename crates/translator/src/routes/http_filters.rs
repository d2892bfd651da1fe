//! HTTPRoute rule-level filters to IR: header modifiers, redirects, rewrites, mirrors and
//! CORS.

use ferrogate_api::gateway::{
    HttpRouteRulesFilters, HttpRouteRulesFiltersRequestRedirectPathType as RedirectPathType,
    HttpRouteRulesFiltersRequestRedirectScheme as Scheme, HttpRouteRulesFiltersType as FilterType,
    HttpRouteRulesFiltersUrlRewritePathType as RewritePathType,
};
use ferrogate_ir::{
    Cors, HeaderLists, HeaderMods, HeaderValue, HttpMatch, Mirror, PathMatch, PathModifier,
    Redirect, UrlRewrite,
};

use super::envoy_limits;
use super::http_matches::{valid_header_name, valid_hostname};
use super::http_rules::{RefContext, unsupported};
use crate::backend::backend_ref;
use crate::conditions::Problem;

/// The rule-level filters, converted.
#[derive(Default)]
pub(super) struct Filters {
    pub(super) request_headers: HeaderMods,
    pub(super) response_headers: HeaderMods,
    pub(super) redirect: Option<Redirect>,
    pub(super) rewrite: Option<UrlRewrite>,
    pub(super) mirrors: Vec<Mirror>,
    pub(super) cors: Option<Cors>,
}

impl Filters {
    pub(super) fn convert(
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
                    out.request_headers = header_mods_of!(m)?;
                }
                FilterType::ResponseHeaderModifier => {
                    let m = f
                        .response_header_modifier
                        .as_ref()
                        .ok_or_else(|| unsupported("responseHeaderModifier is missing"))?;
                    out.response_headers = header_mods_of!(m)?;
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
                    let reference = backend_ref!(r);
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

pub(super) fn path_modifier(
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

/// [`header_mods`] of any generated header-modifier type (request or response, on a rule or
/// on a backendRef): they are distinct types with the same `set`, `add` and `remove`.
macro_rules! header_mods_of {
    ($m:expr) => {
        $crate::routes::http_filters::header_mods(
            $m.set.iter().flatten().map(|h| (&h.name, &h.value)),
            $m.add.iter().flatten().map(|h| (&h.name, &h.value)),
            $m.remove.iter().flatten(),
        )
    };
}
pub(crate) use header_mods_of;

pub(crate) fn header_mods<'a>(
    set: impl Iterator<Item = (&'a String, &'a String)>,
    add: impl Iterator<Item = (&'a String, &'a String)>,
    remove: impl Iterator<Item = &'a String>,
) -> Result<HeaderMods, Problem> {
    let mut mods = HeaderLists::default();
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
    Ok(mods.into())
}
