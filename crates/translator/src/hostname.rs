//! Hostname matching and intersection between listeners and routes (wildcards are a
//! leading `*.` label and match one or more labels).

/// Whether `pattern` (exact or `*.suffix`) matches the concrete or wildcard `host`.
pub(crate) fn matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        None => pattern.eq_ignore_ascii_case(host),
        Some(suffix) => {
            // `*.example.com` matches `a.example.com`, `a.b.example.com` and `*.a.example.com`,
            // but not `example.com` itself.
            let host = host.strip_prefix("*.").map_or(host, |h| h);
            host.len() > suffix.len() + 1
                && host
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", suffix.to_ascii_lowercase()))
        }
    }
}

/// The hostnames a route serves through a listener: the route hostnames that intersect the
/// listener hostname, each narrowed to the more specific of the two. `None` for either side
/// means "any host". An empty result means no intersection.
pub(crate) fn intersect(listener: Option<&str>, route: &[String]) -> Vec<String> {
    match (listener, route.is_empty()) {
        (None, true) => vec!["*".to_string()],
        (Some(l), true) => vec![l.to_string()],
        (None, false) => route.to_vec(),
        (Some(l), false) => {
            let mut out = Vec::new();
            for r in route {
                if r.eq_ignore_ascii_case(l) {
                    out.push(r.clone());
                } else if matches(l, r) {
                    out.push(r.clone()); // route is more specific
                } else if matches(r, l) {
                    out.push(l.to_string()); // listener is more specific
                }
            }
            out.dedup();
            out
        }
    }
}

/// How specific a listener hostname is, for choosing which listener owns a request host:
/// exact beats wildcard, longer wildcard beats shorter, any hostname beats none.
pub(crate) fn specificity(hostname: Option<&str>) -> (u8, usize) {
    match hostname {
        None => (0, 0),
        Some(h) if h.starts_with("*.") => (1, h.len()),
        Some(h) => (2, h.len()),
    }
}

/// Whether a listener hostname admits the given (possibly wildcard) request host.
pub(crate) fn listener_admits(listener: Option<&str>, host: &str) -> bool {
    match listener {
        None => true,
        Some(l) => l.eq_ignore_ascii_case(host) || matches(l, host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matches_one_or_more_labels_but_not_the_bare_suffix() {
        assert!(matches("*.example.com", "a.example.com"));
        assert!(matches("*.example.com", "a.b.example.com"));
        assert!(matches("*.example.com", "*.a.example.com"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(!matches("*.example.com", "aexample.com"));
    }

    #[test]
    fn intersection_keeps_the_more_specific_side() {
        let route = vec![
            "foo.example.com".to_string(),
            "*.example.com".to_string(),
            "x.net".to_string(),
        ];
        assert_eq!(
            intersect(Some("*.example.com"), &route),
            vec!["foo.example.com", "*.example.com"]
        );
        assert_eq!(
            intersect(Some("bar.example.com"), &route),
            vec!["bar.example.com"]
        );
        assert!(intersect(Some("other.org"), &route).is_empty());
        assert_eq!(intersect(None, &[]), vec!["*"]);
    }
}
