//! Small helpers: polling, random identifiers, string substitution, JSON Patch.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Polls `check` every `interval` until it returns `Ok`, or fails with its last error once
/// `budget` is spent.
pub async fn poll<F, Fut>(budget: Duration, interval: Duration, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + budget;
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(e) => {
                if Instant::now() >= deadline {
                    return Err(format!("{e} (after {}s)", budget.as_secs()));
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// 64 random bits (std's randomly keyed hasher plus a counter and the clock).
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// A random version-4 UUID string.
pub fn uuid() -> String {
    let a = random_u64();
    let b = random_u64();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `n` random lower-case alphanumerics (like Kubernetes pod name suffixes).
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::new();
    let mut bits = random_u64();
    for _ in 0..n {
        if bits < ALPHABET.len() as u64 {
            bits = random_u64();
        }
        out.push(ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char);
        bits /= ALPHABET.len() as u64;
    }
    out
}

/// Replaces every `${name}` in every string of `value` for which `lookup` returns a value.
pub fn substitute(value: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) {
    match value {
        Value::String(s) if s.contains("${") => {
            *s = substitute_str(s, lookup);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, lookup)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, lookup)),
        _ => {}
    }
}

/// String form of [`substitute`].
pub fn substitute_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push_str("${");
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("bad JSON pointer {path}"))?;
    Ok((parent.to_string(), unescape(last)))
}

/// Applies an RFC 6902 JSON Patch (add, remove, replace, test, copy, move).
pub fn json_patch(doc: &mut Value, ops: &[Value]) -> Result<(), String> {
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match kind {
            "test" => {
                let actual = doc
                    .pointer(&path)
                    .ok_or_else(|| format!("test: {path} missing"))?;
                if Some(actual) != op.get("value") {
                    return Err(format!("test failed at {path}: {actual}"));
                }
            }
            "remove" => {
                remove(doc, &path)?;
            }
            "add" | "replace" => {
                let value = op.get("value").cloned().unwrap_or(Value::Null);
                if kind == "replace" {
                    doc.pointer(&path)
                        .ok_or_else(|| format!("replace: {path} missing"))?;
                }
                add(doc, &path, value, kind == "replace")?;
            }
            "copy" | "move" => {
                let from = op.get("from").and_then(Value::as_str).unwrap_or_default();
                let value = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| format!("{kind}: {from} missing"))?;
                if kind == "move" {
                    remove(doc, from)?;
                }
                add(doc, &path, value, false)?;
            }
            other => return Err(format!("unknown JSON Patch op {other}")),
        }
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| format!("remove: parent of {path} missing"))?;
    match target {
        Value::Object(map) => map
            .remove(&last)
            .ok_or_else(|| format!("remove: {path} missing")),
        Value::Array(items) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("remove: bad index in {path}"))?;
            if i >= items.len() {
                return Err(format!("remove: {path} out of range"));
            }
            Ok(items.remove(i))
        }
        _ => Err(format!("remove: parent of {path} is not a container")),
    }
}

fn add(doc: &mut Value, path: &str, value: Value, replace: bool) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| format!("add: parent of {path} missing"))?;
    match target {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("add: bad index in {path}"))?;
            if replace {
                *items
                    .get_mut(i)
                    .ok_or_else(|| format!("replace: {path} out of range"))? = value;
            } else if i <= items.len() {
                items.insert(i, value);
            } else {
                return Err(format!("add: {path} out of range"));
            }
            Ok(())
        }
        _ => Err(format!("add: parent of {path} is not a container")),
    }
}

/// `"ns/name"` split; cluster-scoped refs have an empty namespace.
pub fn split_ref(r: &str) -> (String, String) {
    match r.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (String::new(), r.to_string()),
    }
}

/// A numeric field of a step (or expectation), or its default.
pub fn u64_or(v: &Value, key: &str, default: u64) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(default)
}

/// A floating-point field of a step (or expectation), or its default.
pub fn f64_or(v: &Value, key: &str, default: f64) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(default)
}

/// The string elements of an optional JSON array, owned; non-strings are skipped and a
/// missing or non-array value gives an empty list.
pub fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// A manifest's `kind` and `metadata.name`, empty when absent.
pub fn kind_and_name(doc: &Value) -> (String, String) {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    (kind, name)
}
