//! Header helpers that reproduce Go `net/http` behaviour the scenarios observe.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// Go's `textproto.CanonicalMIMEHeaderKey`: `x-header-set` -> `X-Header-Set`.
/// Names with bytes outside the token set are returned unchanged, as in Go.
pub(crate) fn canonical_name(name: &str) -> String {
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(is_token) {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// Applies every `X-Echo-Set-Header` request value to the response headers:
/// `Name1:value1,Name2:value2`; a name seen twice gets `,value` appended to its
/// first value. Invalid names or values are dropped, as Go drops them on write.
pub(crate) fn apply_echo_set_header(request: &HeaderMap, response: &mut HeaderMap) {
    for raw in request.get_all("x-echo-set-header") {
        let raw = String::from_utf8_lossy(raw.as_bytes());
        for item in raw.split(',') {
            let item = item.trim();
            let (name, value) = item.split_once(':').unwrap_or((item, ""));
            let (name, value) = (name.trim(), value.trim());
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            let merged = match response.get(&name) {
                Some(existing) => {
                    let mut bytes = existing.as_bytes().to_vec();
                    bytes.push(b',');
                    bytes.extend_from_slice(value.as_bytes());
                    HeaderValue::from_bytes(&bytes)
                }
                None => HeaderValue::from_str(value),
            };
            if let Ok(merged) = merged {
                response.insert(name, merged);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_canonicalised_like_go() {
        assert_eq!(canonical_name("x-header-set"), "X-Header-Set");
        assert_eq!(canonical_name("content-type"), "Content-Type");
        assert_eq!(canonical_name("X-FORWARDED-FOR"), "X-Forwarded-For");
        assert_eq!(canonical_name("bad name"), "bad name");
    }

    #[test]
    fn echo_set_header_splits_trims_and_appends() {
        let mut req = HeaderMap::new();
        req.append(
            "x-echo-set-header",
            HeaderValue::from_static("X-A: 1, X-B:2"),
        );
        req.append("x-echo-set-header", HeaderValue::from_static("x-a:3,"));
        let mut resp = HeaderMap::new();
        apply_echo_set_header(&req, &mut resp);
        assert_eq!(resp["x-a"], "1,3");
        assert_eq!(resp["x-b"], "2");
        assert_eq!(resp.len(), 2);
    }
}
