//! HTTPRoute rule timeouts and retries, and the Gateway API duration format they (and
//! session persistence) share.

use ferrogate_api::gateway::{HttpRouteRulesRetry, HttpRouteRulesTimeouts};
use ferrogate_ir::{Retry, Timeouts};

use super::http_rules::unsupported;
use crate::conditions::Problem;

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

pub(super) fn timeouts(t: Option<&HttpRouteRulesTimeouts>) -> Result<Option<Timeouts>, Problem> {
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

pub(super) fn retry(r: Option<&HttpRouteRulesRetry>) -> Result<Option<Retry>, Problem> {
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
