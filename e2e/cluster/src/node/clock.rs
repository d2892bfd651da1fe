//! Timestamps in the two forms the API takes: RFC 3339 seconds (Time) and six fractional
//! digits (MicroTime, which the API server refuses with any other precision).

use crate::utc::rfc3339;

/// `2026-12-02T17:00:00Z`.
pub fn now() -> String {
    rfc3339(time::OffsetDateTime::now_utc(), 0)
}

/// `2026-12-02T17:00:00.123456Z`.
pub fn now_micro() -> String {
    rfc3339(time::OffsetDateTime::now_utc(), 6)
}
