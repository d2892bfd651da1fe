//! Container log files in the CRI format that containerd and CRI-O write for the kubelet:
//! one record per line, `<RFC 3339 timestamp> <stdout|stderr> <F|P> <text>`, where `P` marks
//! a piece of a longer line that the next record continues and `F` the piece that ends it.
//!
//! The timestamp per line is what lets the node's log endpoint answer `sinceTime`,
//! `sinceSeconds` and `timestamps` as the kubelet does (clients such as the Gateway API
//! conformance suite count only the lines written after a moment). Records are written by
//! [`crate::log_pipe`] and read by the node's log endpoint; [`text`] and [`tail`] give the
//! plain output for error messages and tests.

use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The longest text of one record, as containerd's default (`max_container_log_line_size`):
/// a longer line is split into `P` records.
pub const MAX_RECORD_TEXT: usize = 16 * 1024;

/// Which of the container's outputs a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One parsed record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: OffsetDateTime,
    pub stream: Stream,
    /// The text continues in the next record (`P`).
    pub partial: bool,
    /// The text without the record's newline.
    pub text: &'a [u8],
}

/// `2026-12-03T02:32:42.603000000Z`: UTC with nine fractional digits, the kubelet's fixed
/// width form of RFC 3339 (what `timestamps=true` prefixes; readers accept any width).
pub fn format_time(t: OffsetDateTime) -> String {
    crate::utc::rfc3339(t, 9)
}

/// RFC 3339 with any fractional width and offset.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// The record for `text` (without newline), newline-terminated.
pub fn record(time: OffsetDateTime, stream: Stream, partial: bool, text: &[u8]) -> Vec<u8> {
    let head = format!(
        "{} {} {} ",
        format_time(time),
        stream.as_str(),
        if partial { "P" } else { "F" }
    );
    let mut out = Vec::with_capacity(head.len() + text.len() + 1);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(text);
    out.push(b'\n');
    out
}

/// Parses one line of the file (with or without its newline); `None` when it is no record
/// (the kubelet skips such lines too).
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut fields = line.splitn(4, |b| *b == b' ');
    let time = parse_time(std::str::from_utf8(fields.next()?).ok()?)?;
    let stream = match fields.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    // Tags are `:`-separated; only the first is defined (forward compatible, as the kubelet).
    let tags = fields.next()?;
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    Some(Record {
        time,
        stream,
        partial,
        text: fields.next().unwrap_or_default(),
    })
}

/// The container's output as it wrote it (`P` pieces joined), from the file's bytes.
pub fn plain(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len());
    for r in file.split_inclusive(|b| *b == b'\n').filter_map(parse) {
        out.extend_from_slice(r.text);
        if !r.partial {
            out.push(b'\n');
        }
    }
    out
}

/// The plain output of the log file at `path` ("" when unreadable).
pub fn text(path: &Path) -> String {
    String::from_utf8_lossy(&plain(&std::fs::read(path).unwrap_or_default())).into_owned()
}

/// The last `lines` lines of the plain output, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = text(path);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        parse_time(s).unwrap()
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let t = at("2026-12-03T02:32:42.603Z");
        let line = record(t, Stream::Stderr, false, b"hello world");
        assert_eq!(
            line,
            b"2026-12-03T02:32:42.603000000Z stderr F hello world\n"
        );
        let r = parse(&line).unwrap();
        assert_eq!(
            r,
            Record {
                time: t,
                stream: Stream::Stderr,
                partial: false,
                text: b"hello world"
            }
        );
    }

    #[test]
    fn records_from_other_runtimes_parse_too() {
        // containerd trims trailing zeros of the fraction; an empty line has an empty text.
        let r = parse(b"2016-10-06T00:17:09.669794202Z stdout P log content 1\n").unwrap();
        assert!(r.partial);
        assert_eq!(r.text, b"log content 1");
        let r = parse(b"2016-10-06T00:17:09.6Z stdout F\n").unwrap();
        assert_eq!(r.text, b"");
        assert_eq!(r.time, at("2016-10-06T00:17:09.600Z"));
        assert!(parse(b"not a record\n").is_none());
        assert!(parse(b"2016-10-06T00:17:09Z stdin F x\n").is_none());
    }

    #[test]
    fn plain_text_joins_partial_records() {
        let t = at("2026-12-03T00:00:00Z");
        let mut file = record(t, Stream::Stdout, true, b"first ");
        file.extend(record(t, Stream::Stdout, false, b"half"));
        file.extend(record(t, Stream::Stderr, false, b""));
        file.extend(record(t, Stream::Stderr, false, b"last"));
        assert_eq!(plain(&file), b"first half\n\nlast\n");
    }
}
