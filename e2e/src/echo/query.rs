//! Query-string and path decoding with Go `net/url` semantics.
//!
//! Upstream reads parameters with `Request.FormValue`, i.e. `url.ParseQuery`:
//! pairs split on `&`, `+` means space, and pairs with a bad escape or a `;`
//! are skipped. The first value of a key wins.

/// First value of `key` in a raw query string, decoded.
pub(crate) fn first_value(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        if pair.is_empty() || pair.contains(';') {
            return None;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true)?;
        if k != key {
            return None;
        }
        percent_decode(v, true)
    })
}

/// Decodes `%XX` escapes (and `+` when `plus_is_space`); `None` on a malformed
/// escape, like Go's `url.QueryUnescape`/`PathUnescape`.
pub(crate) fn percent_decode(input: &str, plus_is_space: bool) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_decodes_and_takes_the_first_occurrence() {
        let q = Some("a=1&delay=1%73&delay=2s&b=x+y");
        assert_eq!(first_value(q, "delay").as_deref(), Some("1s"));
        assert_eq!(first_value(q, "b").as_deref(), Some("x y"));
        assert_eq!(first_value(q, "missing"), None);
        assert_eq!(first_value(None, "a"), None);
    }

    #[test]
    fn malformed_pairs_are_skipped() {
        assert_eq!(first_value(Some("a=%zz&a=2"), "a").as_deref(), Some("2"));
        assert_eq!(first_value(Some("a=1;b=2"), "a"), None);
    }
}
