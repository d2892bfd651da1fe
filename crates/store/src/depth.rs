//! A cheap bound on YAML flow nesting, checked before the YAML parser sees the text.
//!
//! The parser (libyaml, transpiled) does work proportional to the flow nesting depth for
//! every token, so a file of nothing but `[[[[...` costs time quadratic in its size: 200 KB
//! took 23 s. Objects Ferrogate reads are never nested more than a few levels, so a
//! document whose brackets nest deeper than [`MAX_FLOW_DEPTH`] is refused before parsing,
//! in one linear pass.
//!
//! The pass does not parse YAML; it estimates the depth twice and the larger estimate
//! counts, so hiding brackets from one estimate shows them to the other:
//! - *quote-aware*: brackets inside quoted scalars and block scalars (`|`, `>`) are text,
//!   not nesting. A quote opens a scalar only where YAML starts a node (line start, after
//!   `[ { ,`, or after `: - ?` and a space), so an apostrophe in `it's` opens nothing.
//! - *naive*: every bracket counts, quotes or not, so a quote the first estimate
//!   mistook for a scalar cannot hide the brackets after it.
//!
//! Both only ever over-count real nesting except for closing brackets inside quotes (naive)
//! or text the quote-aware pass takes for a scalar; an attacker would need to fool both at
//! once. Over-counting refuses only documents with dozens of unbalanced brackets in strings.

/// Deepest flow nesting (`[`/`{`) a document may have. Kubernetes objects need about 10.
pub const MAX_FLOW_DEPTH: usize = 64;

/// The line (1-based) where flow nesting first goes deeper than `limit`, if it does.
pub fn too_deep(text: &str, limit: usize) -> Option<usize> {
    let naive = naive_depth(text, limit);
    let aware = QuoteAware::new(limit).scan(text);
    match (naive, aware) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn naive_depth(text: &str, limit: usize) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => line += 1,
            _ => {}
        }
    }
    None
}

/// State of the quote-aware pass.
struct QuoteAware {
    limit: usize,
    depth: usize,
    line: usize,
    /// Last non-blank byte on this line before the current one (`None` at line start).
    prev: Option<u8>,
    /// Whether a blank separates `prev` from the current byte.
    blank_since_prev: bool,
    /// Inside a block scalar: lines indented more than this belong to it.
    block_indent: Option<usize>,
    /// Indentation of the current line.
    indent: usize,
}

impl QuoteAware {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            depth: 0,
            line: 1,
            prev: None,
            blank_since_prev: false,
            block_indent: None,
            indent: 0,
        }
    }

    fn scan(mut self, text: &str) -> Option<usize> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut line_start = true;
        while i < bytes.len() {
            let b = bytes[i];
            if line_start {
                let spaces = bytes[i..].iter().take_while(|c| **c == b' ').count();
                self.indent = spaces;
                let rest_blank = matches!(bytes.get(i + spaces), None | Some(b'\n') | Some(b'\r'));
                if let Some(parent) = self.block_indent {
                    if spaces > parent || rest_blank {
                        // A line of the block scalar: text. Stop at its newline, which the
                        // next turn counts as usual (and which starts the next line).
                        i = skip_line(bytes, i);
                        line_start = false;
                        continue;
                    }
                    self.block_indent = None;
                }
                line_start = false;
            }
            match b {
                b'\n' => {
                    self.line += 1;
                    self.prev = None;
                    self.blank_since_prev = false;
                    line_start = true;
                    i += 1;
                    continue;
                }
                b' ' | b'\t' | b'\r' => {
                    self.blank_since_prev = true;
                    i += 1;
                    continue;
                }
                b'"' | b'\'' if self.starts_node() => {
                    i = self.skip_quoted(bytes, i);
                    self.prev = Some(b);
                    self.blank_since_prev = false;
                    continue;
                }
                b'|' | b'>'
                    if self.depth == 0
                        && self.starts_node()
                        && header_ends_line(&bytes[i + 1..]) =>
                {
                    self.block_indent = Some(self.indent);
                    i = skip_line(bytes, i);
                    continue;
                }
                b'[' | b'{' => {
                    self.depth += 1;
                    if self.depth > self.limit {
                        return Some(self.line);
                    }
                }
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
            self.prev = Some(b);
            self.blank_since_prev = false;
            i += 1;
        }
        None
    }

    /// Whether a node may start here, so a quote opens a quoted scalar.
    fn starts_node(&self) -> bool {
        match self.prev {
            None => true,
            Some(b'[' | b'{' | b',') => true,
            Some(b':' | b'-' | b'?') => self.blank_since_prev,
            Some(_) => false,
        }
    }

    /// Index just past the quoted scalar opening at `start`, counting its lines.
    fn skip_quoted(&mut self, bytes: &[u8], start: usize) -> usize {
        let quote = bytes[start];
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if quote == b'"' => i += 1,
                b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 1,
                b'\n' => self.line += 1,
                c if c == quote => return i + 1,
                _ => {}
            }
            i += 1;
        }
        i
    }
}

/// Index of the newline ending the line at `from` (or the end of the text).
fn skip_line(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |p| from + p)
}

/// Whether a block scalar header (`|`, `>`, then chomping and indentation indicators) ends
/// its line, comments aside.
fn header_ends_line(rest: &[u8]) -> bool {
    let header = rest
        .iter()
        .take_while(|b| matches!(b, b'+' | b'-' | b'0'..=b'9'))
        .count();
    let rest = &rest[header..];
    let blanks = rest
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    match rest.get(blanks) {
        None | Some(b'\n' | b'\r') => true,
        Some(b'#') => blanks > 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_documents_pass() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: a, labels: {x: \"[[[[\"}}\nspec:\n  ports: [{port: 80}]\n  note: 'it''s [ fine'\n  regex: \"^/a[0-9]{2}$\"\n  text: |\n    [[[[[[[[\n    {{{{{{{{\n  after: ok\n";
        // The quote-aware pass sees the real nesting (2); the naive one over-counts the
        // brackets in strings, which the real limit leaves room for.
        assert_eq!(QuoteAware::new(2).scan(text), None);
        assert_eq!(QuoteAware::new(1).scan(text), Some(3));
        assert_eq!(too_deep(text, MAX_FLOW_DEPTH), None);
    }

    #[test]
    fn nested_brackets_are_found_with_their_line() {
        assert_eq!(
            too_deep(&format!("a: b\nc: {}", "[".repeat(65)), 64),
            Some(2)
        );
        assert_eq!(too_deep(&"{a: ".repeat(65), 64), Some(1));
        assert_eq!(too_deep(&"[".repeat(64), 64), None);
    }

    #[test]
    fn quotes_cannot_hide_nesting_from_both_estimates() {
        // Closing brackets hidden in quoted scalars: the quote-aware estimate sees the depth.
        let hidden_closes = format!("a: {}", "[\"]\",".repeat(100));
        assert!(too_deep(&hidden_closes, 64).is_some());
        // An apostrophe in a plain scalar opens no quote; a block scalar that ends gives the
        // brackets after it back to both estimates.
        let apostrophe = format!("a: it's\nb: {}", "[".repeat(100));
        assert!(too_deep(&apostrophe, 64).is_some());
        let after_block = format!("a: |\n  \"\nb: {}", "[".repeat(100));
        assert!(too_deep(&after_block, 64).is_some());
    }
}
