//! Timestamps in the two forms the API takes: RFC 3339 seconds (Time) and six fractional
//! digits (MicroTime, which the API server refuses with any other precision).

fn parts() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// `2026-12-02T17:00:00Z`.
pub fn now() -> String {
    let t = parts();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2026-12-02T17:00:00.123456Z`.
pub fn now_micro() -> String {
    let t = parts();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}
