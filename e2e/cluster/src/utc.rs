//! RFC 3339 timestamps in UTC with a fixed number of fractional digits, as the Kubernetes
//! API and the kubelet write them: none (Time), six (MicroTime, which the API server refuses
//! with any other precision) or nine (container log records).

use time::OffsetDateTime;

/// `t` as `2026-12-02T17:00:00Z` (`digits` 0), `...00.123456Z` (6) or `...00.123456789Z` (9).
pub fn rfc3339(t: OffsetDateTime, digits: u32) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let seconds = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    match digits.min(9) {
        0 => format!("{seconds}Z"),
        d => {
            let fraction = t.nanosecond() / 10u32.pow(9 - d);
            format!("{seconds}.{fraction:0width$}Z", width = d as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_widths() {
        let t = OffsetDateTime::parse(
            "2026-12-03T02:32:42.603000789+01:00",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(rfc3339(t, 0), "2026-12-03T01:32:42Z");
        assert_eq!(rfc3339(t, 6), "2026-12-03T01:32:42.603000Z");
        assert_eq!(rfc3339(t, 9), "2026-12-03T01:32:42.603000789Z");
    }
}
