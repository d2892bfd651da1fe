//! Label and field selectors (`labelSelector=`, `fieldSelector=` query parameters).
//!
//! Labels: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, comma-separated (AND).
//! Fields: `path=value`, `path==value`, `path!=value` where `path` is a dotted path into the object
//! (`metadata.name`, `metadata.namespace`, `spec.type`, ...); a missing field compares as "".

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Term {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selector {
    terms: Vec<Term>,
    fields: bool,
}

/// Splits on commas that are not inside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("invalid set {rest:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

/// `a!=b`, `a==b` or `a=b`: the terms label and field selectors share.
fn equality_term(t: &str) -> Option<Term> {
    if let Some((k, v)) = t.split_once("!=") {
        Some(Term::NotEq(k.trim().into(), v.trim().into()))
    } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
        Some(Term::Eq(k.trim().into(), v.trim().into()))
    } else {
        None
    }
}

impl Selector {
    pub fn parse_labels(s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for t in split_terms(s) {
            let term = if let Some(term) = equality_term(t) {
                term
            } else if let Some(k) = t.strip_prefix('!') {
                Term::NotExists(k.trim().into())
            } else if let Some((k, rest)) = t.split_once(" notin ") {
                Term::NotIn(k.trim().into(), parse_set(rest)?)
            } else if let Some((k, rest)) = t.split_once(" in ") {
                Term::In(k.trim().into(), parse_set(rest)?)
            } else if t.contains(['(', ')', ' ']) {
                return Err(format!("unable to parse requirement {t:?}"));
            } else {
                Term::Exists(t.into())
            };
            terms.push(term);
        }
        Ok(Selector {
            terms,
            fields: false,
        })
    }

    pub fn parse_fields(s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for t in split_terms(s) {
            let term = equality_term(t).ok_or_else(|| format!("invalid field selector {t:?}"))?;
            terms.push(term);
        }
        Ok(Selector {
            terms,
            fields: true,
        })
    }

    fn lookup<'a>(&self, obj: &'a Value, key: &str) -> Option<&'a str> {
        if self.fields {
            let mut cur = obj;
            for part in key.split('.') {
                cur = cur.get(part)?;
            }
            cur.as_str()
        } else {
            obj.pointer("/metadata/labels")
                .and_then(|l| l.get(key))
                .and_then(Value::as_str)
        }
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Eq(k, v) => {
                self.lookup(obj, k).unwrap_or_default() == v
                    && (self.fields || self.lookup(obj, k).is_some())
            }
            Term::NotEq(k, v) => {
                self.lookup(obj, k).is_none_or(|x| x != v)
                    && (!self.fields || self.lookup(obj, k).unwrap_or_default() != v)
            }
            Term::Exists(k) => self.lookup(obj, k).is_some(),
            Term::NotExists(k) => self.lookup(obj, k).is_none(),
            Term::In(k, vs) => self
                .lookup(obj, k)
                .is_some_and(|x| vs.iter().any(|v| v == x)),
            Term::NotIn(k, vs) => self
                .lookup(obj, k)
                .is_none_or(|x| !vs.iter().any(|v| v == x)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels() {
        let o =
            json!({"metadata": {"name": "n", "namespace": "ns", "labels": {"a": "1", "b": "2"}}});
        let m = |s: &str| Selector::parse_labels(s).unwrap().matches(&o);
        assert!(m(""));
        assert!(m("a=1"));
        assert!(m("a==1,b"));
        assert!(!m("a!=1"));
        assert!(m("c!=1"));
        assert!(m("!c"));
        assert!(!m("!a"));
        assert!(m("a in (1, 3),b notin (3)"));
        assert!(!m("a notin (1)"));
        let f = |s: &str| Selector::parse_fields(s).unwrap().matches(&o);
        assert!(f("metadata.name=n,metadata.namespace==ns"));
        assert!(!f("metadata.name!=n"));
        assert!(Selector::parse_fields("metadata.name").is_err());
    }
}
