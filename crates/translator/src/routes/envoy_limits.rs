//! What Envoy's own validation would refuse, checked here so the route that carries it is
//! refused with a status instead of reaching Envoy.
//!
//! Envoy NACKs a whole RouteConfiguration for one bad value and keeps the last one it
//! accepted, so one tenant's bad route would stop every later change on that port from
//! arriving. Each check mirrors one rule of Envoy's (proto validation or route loading):
//! - values Envoy puts into headers (redirect host and path, rewrite path) must pass
//!   `HTTP_HEADER_VALUE` (non-strict): no NUL, CR or LF;
//! - a weight is at most the Gateway API maximum (1,000,000; files in standalone mode are
//!   not schema-checked by an API server), and the weights of one rule sum to at most
//!   `u32::MAX`, as Envoy's weighted clusters require;
//! - a regular expression's RE2 program is at most [`MAX_RE2_PROGRAM_SIZE`] instructions
//!   (Envoy's default `re2.max_program_size.error_level`), estimated in [`crate::re2_size`].

use super::http_rules::unsupported;
use crate::conditions::Problem;

/// Largest weight the Gateway API schema allows on a backendRef.
pub(crate) const MAX_WEIGHT: i32 = 1_000_000;

/// Envoy's default limit on an RE2 program (runtime `re2.max_program_size.error_level`).
pub(crate) const MAX_RE2_PROGRAM_SIZE: usize = 100;

/// A value Envoy will write into a request or response header (redirect hostname or path,
/// rewritten path): Envoy refuses NUL, CR and LF there, since they would end the header.
pub(crate) fn header_safe(what: &str, value: &str) -> Result<(), Problem> {
    if value.chars().any(|c| matches!(c, '\0' | '\r' | '\n')) {
        return Err(unsupported(format!(
            "{what} {value:?} contains a NUL, CR or LF character, which Envoy refuses in a header"
        )));
    }
    Ok(())
}

/// A backendRef weight: 0 to [`MAX_WEIGHT`], unset means 1.
pub(crate) fn weight(value: Option<i32>) -> Result<u32, Problem> {
    let w = value.unwrap_or(1);
    if !(0..=MAX_WEIGHT).contains(&w) {
        return Err(unsupported(format!(
            "backendRef weight {w} is outside 0..={MAX_WEIGHT}"
        )));
    }
    Ok(w as u32)
}

/// The weights of one rule: their sum must fit Envoy's 32-bit total.
pub(crate) fn weight_sum(weights: impl IntoIterator<Item = u32>) -> Result<u32, Problem> {
    let total: u64 = weights.into_iter().map(u64::from).sum();
    u32::try_from(total).map_err(|_| {
        unsupported(format!(
            "the weights of the rule sum to {total}, more than Envoy allows ({})",
            u32::MAX
        ))
    })
}

/// A regular expression whose RE2 program Envoy would find too large.
pub(crate) fn re2_program_fits(value: &str) -> Result<(), Problem> {
    match crate::re2_size::program_size(value) {
        Some(size) if size > MAX_RE2_PROGRAM_SIZE => Err(unsupported(format!(
            "regular expression {value:?} compiles to an RE2 program of about {size} instructions; Envoy refuses more than {MAX_RE2_PROGRAM_SIZE}"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_with_line_breaks_or_nul_are_refused() {
        assert!(header_safe("hostname", "example.com").is_ok());
        assert!(header_safe("path", "/a b\t").is_ok());
        for bad in ["evil.com\r\nx-injected: 1", "a\nb", "a\0b"] {
            let problem = header_safe("redirect hostname", bad).unwrap_err();
            assert_eq!(problem.reason, "UnsupportedValue");
            assert!(
                problem.message.contains("redirect hostname"),
                "{}",
                problem.message
            );
        }
    }

    #[test]
    fn weights_are_bounded_and_their_sum_fits_u32() {
        assert_eq!(weight(None), Ok(1));
        assert_eq!(weight(Some(MAX_WEIGHT)), Ok(1_000_000));
        assert!(weight(Some(-1)).is_err());
        assert!(weight(Some(i32::MAX)).is_err());
        assert_eq!(weight_sum([u32::MAX - 1, 1]), Ok(u32::MAX));
        assert!(
            weight_sum([u32::MAX, 1])
                .unwrap_err()
                .message
                .contains("4294967296")
        );
    }
}
