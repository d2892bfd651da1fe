//! The kubelet's container log options (`PodLogOptions` as query parameters) and the output
//! they select from a CRI log file, as the kubelet computes it (`k8s.io/cri-client`
//! `pkg/logs/logs.go` `ReadLogs`, and `NewLogOptions` in the kubelet's `kuberuntime_logs.go`):
//!
//! 1. `tailLines`: only the file's last N records are read;
//! 2. `sinceTime` / `sinceSeconds`: of those, records stamped strictly before the later of
//!    the two moments are skipped (so tail-then-since may give fewer than N lines, as on a
//!    real node);
//! 3. `timestamps=true`: each line starts with its record's time (nine fractional digits)
//!    and a space; the continuation of a partial record gets none;
//! 4. `limitBytes`: the output is cut after that many bytes, prefixes included.
//!
//! The API server forwards `sinceTime` URL-encoded (`2026-12-03T02%3A32%3A42Z`). `follow`,
//! `previous` and `stream` are not supported: the answer is what the file holds now, of the
//! current run, both streams.

use time::{Duration, OffsetDateTime};

use crate::cri_log;

/// What a request asks of the log.
#[derive(Debug, Default, PartialEq)]
pub struct Options {
    pub since: Option<OffsetDateTime>,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
}

/// Reads the query string of a `/containerLogs/...` request; `now` is for `sinceSeconds`.
/// Unknown parameters are ignored; a malformed known one is an error, as the kubelet answers
/// 400 to a query it cannot decode.
pub fn parse(query: &str, now: OffsetDateTime) -> Result<Options, String> {
    let mut options = Options::default();
    let mut since_time = None;
    let mut since_seconds = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| format!("{key}: bad URL encoding"))?;
        let bad = |what: &str| format!("{key}={value:?}: {what}");
        match key {
            "sinceTime" => {
                since_time = Some(cri_log::parse_time(&value).ok_or_else(|| bad("not RFC 3339"))?)
            }
            "sinceSeconds" => {
                let s: i64 = value.parse().map_err(|_| bad("not an integer"))?;
                since_seconds = Some(now - Duration::seconds(s));
            }
            "timestamps" => {
                options.timestamps = parse_bool(&value).ok_or_else(|| bad("not a bool"))?
            }
            // Negative means all (the kubelet's -1).
            "tailLines" => {
                let n: i64 = value.parse().map_err(|_| bad("not an integer"))?;
                options.tail_lines = usize::try_from(n).ok();
            }
            "limitBytes" => {
                let n: i64 = value.parse().map_err(|_| bad("not an integer"))?;
                options.limit_bytes = Some(usize::try_from(n).unwrap_or(0));
            }
            _ => {}
        }
    }
    // The API server refuses requests with both; when both come, the later moment wins.
    options.since = since_time.into_iter().chain(since_seconds).max();
    Ok(options)
}

/// The answer's body from the file's bytes.
pub fn render(file: &[u8], options: &Options) -> Vec<u8> {
    let records: Vec<&[u8]> = file.split_inclusive(|b| *b == b'\n').collect();
    let from = match options.tail_lines {
        Some(n) => records.len().saturating_sub(n),
        None => 0,
    };
    let mut remain = options.limit_bytes.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut at_line_start = true;
    for r in records[from..].iter().filter_map(|r| cri_log::parse(r)) {
        if remain == 0 {
            break;
        }
        let starts_line = at_line_start;
        at_line_start = !r.partial;
        if options.since.is_some_and(|since| r.time < since) {
            continue;
        }
        let mut line = Vec::new();
        if options.timestamps && starts_line {
            line.extend_from_slice(cri_log::format_time(r.time).as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(r.text);
        if !r.partial {
            line.push(b'\n');
        }
        line.truncate(remain);
        remain -= line.len();
        out.extend(line);
    }
    out
}

/// Go's `strconv.ParseBool`, which the kubelet's query decoding uses.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `%XX` escapes and `+` for space, as in a form-encoded query (`url.Values`).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri_log::{Stream, record};

    fn at(s: &str) -> OffsetDateTime {
        cri_log::parse_time(s).unwrap()
    }

    /// Lines `l0`..`l4` one second apart from 02:32:40, on alternating streams.
    fn file() -> Vec<u8> {
        let mut f = Vec::new();
        for i in 0..5 {
            let t = at("2026-12-03T02:32:40.5Z") + Duration::seconds(i);
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            f.extend(record(t, stream, false, format!("l{i}").as_bytes()));
        }
        f
    }

    fn answer(query: &str) -> String {
        let options = parse(query, at("2026-12-03T02:32:45Z")).unwrap();
        String::from_utf8(render(&file(), &options)).unwrap()
    }

    #[test]
    fn no_options_give_the_plain_text() {
        assert_eq!(answer(""), "l0\nl1\nl2\nl3\nl4\n");
    }

    #[test]
    fn since_time_skips_lines_strictly_before_it() {
        // URL-encoded as the API server forwards it; a line at exactly that time stays.
        assert_eq!(
            answer("sinceTime=2026-12-03T02%3A32%3A42.5Z"),
            "l2\nl3\nl4\n"
        );
        assert_eq!(answer("sinceTime=2026-12-03T02%3A32%3A42.603Z"), "l3\nl4\n");
        assert_eq!(answer("sinceTime=2026-12-03T02:32:42Z"), "l2\nl3\nl4\n");
        // Other offsets are the same moment.
        assert_eq!(
            answer("sinceTime=2026-12-03T03%3A32%3A43%2B01%3A00"),
            "l3\nl4\n"
        );
        assert_eq!(answer("sinceTime=2027-01-01T00%3A00%3A00Z"), "");
    }

    #[test]
    fn since_seconds_counts_back_from_now() {
        assert_eq!(answer("sinceSeconds=2"), "l3\nl4\n");
        // With both, the later moment wins.
        assert_eq!(
            answer("sinceSeconds=2&sinceTime=2026-12-03T02:32:40Z"),
            "l3\nl4\n"
        );
    }

    #[test]
    fn timestamps_prefix_each_line_with_its_time() {
        assert_eq!(
            answer("timestamps=true&tailLines=2"),
            "2026-12-03T02:32:43.500000000Z l3\n2026-12-03T02:32:44.500000000Z l4\n"
        );
        assert_eq!(answer("timestamps=false&tailLines=1"), "l4\n");
    }

    #[test]
    fn tail_applies_before_since_and_limit_last() {
        assert_eq!(answer("tailLines=2"), "l3\nl4\n");
        assert_eq!(answer("tailLines=0"), "");
        assert_eq!(answer("tailLines=-1"), answer(""));
        // The last three lines, then those from 02:32:43 on: two (as the kubelet gives).
        assert_eq!(
            answer("tailLines=3&sinceTime=2026-12-03T02:32:43Z"),
            "l3\nl4\n"
        );
        // Since, then the byte limit cuts mid-line; prefixes count.
        assert_eq!(
            answer("sinceTime=2026-12-03T02:32:42Z&limitBytes=4"),
            "l2\nl"
        );
        assert_eq!(answer("timestamps=1&limitBytes=10"), "2026-12-03");
        assert_eq!(answer("limitBytes=0"), "");
    }

    #[test]
    fn a_partial_record_continues_without_a_second_prefix() {
        let t = at("2026-12-03T00:00:01Z");
        let mut f = record(t, Stream::Stdout, true, b"long ");
        f.extend(record(t, Stream::Stdout, false, b"line"));
        let options = parse("timestamps=true", t).unwrap();
        assert_eq!(
            String::from_utf8(render(&f, &options)).unwrap(),
            "2026-12-03T00:00:01.000000000Z long line\n"
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        let now = at("2026-12-03T00:00:00Z");
        assert!(parse("sinceTime=yesterday", now).is_err());
        assert!(parse("tailLines=x", now).is_err());
        assert!(parse("timestamps=yes", now).is_err());
        assert!(parse("follow=true&previous=false&pretty=1", now).is_ok());
    }
}
