//! Order of route entries within a virtual host, as the HTTPRoute spec defines it: the
//! first matching entry wins in Envoy, so the most specific must come first.
//!
//! Spec order: Exact path, then the longest PathPrefix, then method, then the most header
//! matches, then the most query-param matches; ties go to the oldest route, then to
//! `namespace/name` alphabetically, then to rule and match order within the route.
//! Regular-expression paths are implementation-specific: they rank between Exact and
//! PathPrefix (by length), as our peer does, so users moving over see the same order.

use std::cmp::Ordering;

use ferrogate_ir::{HttpMatch, PathMatch};

/// What decides the position of one (route, rule, match) entry.
pub(crate) struct EntryKey<'a> {
    pub matcher: &'a HttpMatch,
    pub created: &'a str,
    /// `HTTPRoute` or `GRPCRoute`: the two kinds can share a name.
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub rule: usize,
    pub match_index: usize,
}

fn path_rank(path: &PathMatch) -> (u8, usize) {
    match path {
        PathMatch::Exact(v) => (3, v.len()),
        PathMatch::Regex(v) => (2, v.len()),
        // `/foo/` and `/foo` match the same segments: rank by the trimmed length.
        PathMatch::Prefix(v) => (1, v.trim_end_matches('/').len()),
    }
}

/// Most specific first.
pub(crate) fn compare(a: &EntryKey<'_>, b: &EntryKey<'_>) -> Ordering {
    path_rank(&b.matcher.path)
        .cmp(&path_rank(&a.matcher.path))
        .then_with(|| b.matcher.method.is_some().cmp(&a.matcher.method.is_some()))
        .then_with(|| b.matcher.headers.len().cmp(&a.matcher.headers.len()))
        .then_with(|| {
            b.matcher
                .query_params
                .len()
                .cmp(&a.matcher.query_params.len())
        })
        .then_with(|| creation_order(a.created, b.created))
        .then_with(|| (a.namespace, a.name).cmp(&(b.namespace, b.name)))
        .then_with(|| kind_rank(a.kind).cmp(&kind_rank(b.kind)))
        .then_with(|| a.rule.cmp(&b.rule))
        .then_with(|| a.match_index.cmp(&b.match_index))
}

/// An HTTPRoute and a GRPCRoute of the same name: the HTTPRoute first (as they were before
/// the order was kept between builds; the order must be total, so that a kept order and a
/// fresh sort agree).
fn kind_rank(kind: &str) -> u8 {
    u8::from(kind != "HTTPRoute")
}

/// Older first; an unknown creation time sorts as the oldest (objects from files have none).
fn creation_order(a: &str, b: &str) -> Ordering {
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(path: PathMatch, headers: usize) -> HttpMatch {
        HttpMatch {
            path,
            headers: (0..headers)
                .map(|i| ferrogate_ir::HeaderMatch {
                    name: format!("h{i}"),
                    value: ferrogate_ir::StringMatch::Exact("v".into()),
                })
                .collect(),
            query_params: vec![],
            method: None,
        }
    }

    fn key<'a>(matcher: &'a HttpMatch, name: &'a str) -> EntryKey<'a> {
        EntryKey {
            matcher,
            created: "",
            kind: "HTTPRoute",
            namespace: "ns",
            name,
            rule: 0,
            match_index: 0,
        }
    }

    #[test]
    fn exact_beats_longer_prefix_and_longer_prefix_beats_shorter() {
        let exact = m(PathMatch::Exact("/a".into()), 0);
        let long = m(PathMatch::Prefix("/a/b/c".into()), 0);
        let short = m(PathMatch::Prefix("/a".into()), 3);
        let mut keys = [key(&short, "x"), key(&long, "y"), key(&exact, "z")];
        keys.sort_by(compare);
        let names: Vec<_> = keys.iter().map(|k| k.name).collect();
        assert_eq!(names, ["z", "y", "x"]);
    }

    #[test]
    fn more_headers_win_when_paths_tie_then_name_breaks_ties() {
        let one = m(PathMatch::Prefix("/".into()), 1);
        let two = m(PathMatch::Prefix("/".into()), 2);
        let also_one = m(PathMatch::Prefix("/".into()), 1);
        let mut keys = [key(&one, "b"), key(&also_one, "a"), key(&two, "c")];
        keys.sort_by(compare);
        let names: Vec<_> = keys.iter().map(|k| k.name).collect();
        assert_eq!(names, ["c", "a", "b"]);
    }
}
