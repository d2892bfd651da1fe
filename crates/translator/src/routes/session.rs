//! `sessionPersistence` of HTTPRoute and GRPCRoute rules (GEP-1619), for Envoy's stateful
//! session filter: the session token (a cookie Envoy sets, or a header) names the endpoint
//! that served the first request, and later requests carrying it go there while it is
//! healthy. What Envoy cannot do is reported, never silently dropped:
//! - `idleTimeout`: Envoy's stateful session has no idle expiry (Gateway API v1.6 removed
//!   the field; the store records it when an older input still sets it, and the rule is
//!   judged through its open values);
//! - `absoluteTimeout` on a session cookie (lifetimeType Session) or on a header: Envoy can
//!   only express it as the cookie's Max-Age, which makes the cookie permanent.
//!
//! A session sticks to an endpoint within one backendRef: with several weighted
//! backendRefs, Envoy picks the backend by weight before the session picks the endpoint.

use ferrogate_api::gateway::{
    HttpRouteRulesSessionPersistence,
    HttpRouteRulesSessionPersistenceCookieConfigLifetimeType as Lifetime,
    HttpRouteRulesSessionPersistenceType as Type,
};
use ferrogate_ir::SessionPersistence;
use ferrogate_store::ObjectKey;

use super::http_rules::unsupported;
use super::http_timeouts::duration_ms;
use crate::conditions::Problem;

/// The session name when the rule gives none: unique per rule, and a valid cookie and
/// header name (no `/`).
pub(crate) fn default_name(kind: &str, key: &ObjectKey, rule: usize) -> String {
    format!(
        "{}-{}-{}-rule-{rule}",
        kind.to_ascii_lowercase(),
        key.namespace,
        key.name
    )
}

/// Converts a rule's `sessionPersistence`.
pub(crate) fn convert(
    sp: Option<&HttpRouteRulesSessionPersistence>,
    default_name: &str,
) -> Result<Option<SessionPersistence>, Problem> {
    let Some(sp) = sp else { return Ok(None) };
    let name = sp
        .session_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default_name.to_string());
    let absolute = sp
        .absolute_timeout
        .as_deref()
        .map(duration_ms)
        .transpose()?;
    match sp.r#type.as_ref().unwrap_or(&Type::Cookie) {
        Type::Header => {
            if absolute.is_some() {
                return Err(unsupported(
                    "sessionPersistence.absoluteTimeout is not supported for header-based sessions",
                ));
            }
            Ok(Some(SessionPersistence::Header { name }))
        }
        Type::Cookie => {
            let lifetime = sp
                .cookie_config
                .as_ref()
                .and_then(|c| c.lifetime_type.as_ref())
                .unwrap_or(&Lifetime::Session);
            let ttl_seconds = match (lifetime, absolute) {
                (Lifetime::Permanent, Some(ms)) => Some(ms.div_ceil(1000).max(1)),
                (Lifetime::Permanent, None) => {
                    return Err(unsupported(
                        "sessionPersistence: a Permanent cookie needs absoluteTimeout (its Max-Age)",
                    ));
                }
                (Lifetime::Session, Some(_)) => {
                    return Err(unsupported(
                        "sessionPersistence.absoluteTimeout is not supported for a Session cookie: Envoy would make the cookie permanent",
                    ));
                }
                (Lifetime::Session, None) => None,
            };
            Ok(Some(SessionPersistence::Cookie { name, ttl_seconds }))
        }
    }
}
