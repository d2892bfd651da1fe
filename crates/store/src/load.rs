//! Multi-document YAML into typed objects. A bad document is reported with its source and
//! index and skipped; it never hides the good documents around it.

use serde::Deserialize;

use crate::{Kind, Object};

/// Why one document of a YAML stream was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not YAML at all (the rest of the stream may be lost too).
    #[error("{source_name}: document {index}: invalid YAML: {message}")]
    Yaml {
        /// File name or other label of the stream.
        source_name: String,
        /// 0-based document index.
        index: usize,
        /// Parser message.
        message: String,
    },
    /// Flow collections nested deeper than [`crate::MAX_FLOW_DEPTH`]: refused before
    /// parsing, whose cost grows with the square of the depth.
    #[error(
        "{source_name}: line {line}: brackets nested deeper than {limit} levels; refused without parsing"
    )]
    TooDeep {
        /// Stream label.
        source_name: String,
        /// 1-based line where the limit was passed.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// A kind the store holds, under a version its group does not serve (a typo, or a
    /// version from the future): refused rather than read as a version it is not.
    #[error(
        "{source_name}: document {index}: unknown apiVersion {api_version} for {kind} (served: {served}); ignored"
    )]
    UnknownVersion {
        /// Stream label.
        source_name: String,
        /// 0-based document index.
        index: usize,
        /// apiVersion as written.
        api_version: String,
        /// kind as written.
        kind: String,
        /// The versions the group serves, comma-separated.
        served: String,
    },
    /// A kind the store does not hold.
    #[error("{source_name}: document {index}: unsupported kind {api_version}/{kind} (ignored)")]
    UnknownKind {
        /// Stream label.
        source_name: String,
        /// 0-based document index.
        index: usize,
        /// apiVersion as written.
        api_version: String,
        /// kind as written.
        kind: String,
    },
    /// The kind is known but the object does not fit its schema.
    #[error("{source_name}: document {index}: invalid {kind} {name}: {message}")]
    Invalid {
        /// Stream label.
        source_name: String,
        /// 0-based document index.
        index: usize,
        /// kind as written.
        kind: String,
        /// Object name, if readable.
        name: String,
        /// Deserializer message.
        message: String,
    },
}

impl LoadError {
    /// Whether the stream could not be parsed (so nothing after this point was read, and
    /// a reader should keep the stream's last good content).
    pub fn is_unparsable(&self) -> bool {
        matches!(self, LoadError::Yaml { .. } | LoadError::TooDeep { .. })
    }
}

/// Parses every document of a YAML stream. Namespaced objects without a namespace get
/// `default`, as `kubectl apply` would. `List` documents are flattened. A stream nested
/// deeper than [`crate::MAX_FLOW_DEPTH`] is refused whole, before parsing (see
/// [`crate::depth`]): its time would grow with the square of its depth.
pub fn load_documents(source_name: &str, text: &str) -> (Vec<Object>, Vec<LoadError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    if let Some(line) = crate::depth::too_deep(text, crate::MAX_FLOW_DEPTH) {
        errors.push(LoadError::TooDeep {
            source_name: source_name.into(),
            line,
            limit: crate::MAX_FLOW_DEPTH,
        });
        return (objects, errors);
    }
    for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value = match serde_json::Value::deserialize(document) {
            Ok(value) => value,
            Err(e) => {
                errors.push(LoadError::Yaml {
                    source_name: source_name.into(),
                    index,
                    message: e.to_string(),
                });
                // The parser cannot resynchronize after a syntax error.
                break;
            }
        };
        load_value(source_name, index, value, &mut objects, &mut errors);
    }
    (objects, errors)
}

/// Reads one object as a cluster serves it (any served apiVersion of a kind the store
/// holds), with the same normalisation as [`load_documents`]. Used by the Kubernetes
/// provider for watch events.
pub fn load_object(value: serde_json::Value) -> Result<Object, LoadError> {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    load_value("cluster", 0, value, &mut objects, &mut errors);
    match (objects.pop(), errors.pop()) {
        (Some(object), _) => Ok(object),
        (None, Some(error)) => Err(error),
        (None, None) => Err(LoadError::Invalid {
            source_name: "cluster".into(),
            index: 0,
            kind: String::new(),
            name: String::new(),
            message: "empty object".into(),
        }),
    }
}

fn load_value(
    source_name: &str,
    index: usize,
    mut value: serde_json::Value,
    objects: &mut Vec<Object>,
    errors: &mut Vec<LoadError>,
) {
    if value.is_null() {
        return; // empty document, e.g. a trailing `---`
    }
    let api_version = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let kind_str = value
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if kind_str == "List" {
        if let Some(items) = value.get_mut("items").and_then(|v| v.as_array_mut()) {
            for item in std::mem::take(items) {
                load_value(source_name, index, item, objects, errors);
            }
        }
        return;
    }
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let Some(kind) = Kind::from_group_kind(group, &kind_str) else {
        errors.push(LoadError::UnknownKind {
            source_name: source_name.into(),
            index,
            api_version,
            kind: kind_str,
        });
        return;
    };
    let version = api_version
        .rsplit_once('/')
        .map_or(api_version.as_str(), |(_, v)| v);
    let served = served_versions(kind.group());
    if !served.contains(&version) {
        errors.push(LoadError::UnknownVersion {
            source_name: source_name.into(),
            index,
            api_version,
            kind: kind_str,
            served: served.join(", "),
        });
        return;
    }
    let name = value
        .pointer("/metadata/name")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if kind.namespaced()
        && value
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str())
            .is_none()
        && let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut())
    {
        meta.insert("namespace".into(), "default".into());
    }
    if let Some(map) = value.as_object_mut() {
        // Status is ours to compute; a stale one in the input is dropped, not read.
        map.remove("status");
        // Older served versions of TLSRoute allowed leaving out what v1 requires.
        if kind == Kind::TlsRoute
            && let Some(spec) = map.get_mut("spec").and_then(|s| s.as_object_mut())
        {
            spec.entry("hostnames")
                .or_insert_with(|| serde_json::Value::Array(vec![]));
            spec.entry("rules")
                .or_insert_with(|| serde_json::Value::Array(vec![]));
        }
    }
    match Object::from_value(kind, value) {
        Ok(object) if name.is_empty() => errors.push(LoadError::Invalid {
            source_name: source_name.into(),
            index,
            kind: object.kind().as_str().into(),
            name,
            message: "metadata.name is required".into(),
        }),
        Ok(object) => objects.push(object),
        Err(e) => errors.push(LoadError::Invalid {
            source_name: source_name.into(),
            index,
            kind: kind_str,
            name,
            message: e.to_string(),
        }),
    }
}

/// The versions each API group of the store's kinds serves (or served: inputs written for
/// an older release still read). Objects are read by kind, one schema per kind, so these
/// differ only in what the API server would have accepted.
fn served_versions(group: &str) -> &'static [&'static str] {
    match group {
        "" | "discovery.k8s.io" => &["v1"],
        "gateway.networking.k8s.io" => &["v1", "v1beta1", "v1alpha2", "v1alpha3"],
        "gateway.ferrogate.dev" => &["v1alpha1"],
        "multicluster.x-k8s.io" => &["v1alpha1", "v1beta1"],
        "certificates.k8s.io" => &["v1", "v1beta1", "v1alpha1"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_every_document_and_reports_bad_ones_with_their_index() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n\
                    apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\n\
                    apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: x}\nspec: {gatewayClassName: c, listeners: []}\n---\n";
        let (objects, errors) = load_documents("f.yaml", text);
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].key().namespace, "default");
        assert_eq!(objects[1].kind(), Kind::Gateway);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().contains("f.yaml: document 1"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn broken_yaml_is_an_error_not_a_panic() {
        let (objects, errors) = load_documents("bad.yaml", "kind: [unclosed\n");
        assert!(objects.is_empty());
        assert!(matches!(errors[0], LoadError::Yaml { index: 0, .. }));
    }

    #[test]
    fn deeply_nested_brackets_are_refused_in_milliseconds() {
        // 200 KB of brackets: the parser alone took 23 s on this before the depth check.
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: a}}\nspec: {}",
            "[".repeat(200_000)
        );
        let started = std::time::Instant::now();
        let (objects, errors) = load_documents("deep.yaml", &text);
        let took = started.elapsed();
        assert!(objects.is_empty());
        assert!(
            matches!(
                errors[..],
                [LoadError::TooDeep {
                    line: 4,
                    limit: 64,
                    ..
                }]
            ),
            "{errors:?}"
        );
        assert!(errors[0].is_unparsable());
        assert!(
            errors[0]
                .to_string()
                .contains("deep.yaml: line 4: brackets nested deeper than 64"),
            "{}",
            errors[0]
        );
        assert!(
            took < std::time::Duration::from_millis(500),
            "took {took:?}"
        );
    }

    #[test]
    fn an_unknown_api_version_is_refused_with_a_message() {
        let text = "apiVersion: gateway.networking.k8s.io/v9\nkind: Gateway\nmetadata: {name: g, namespace: n}\nspec: {gatewayClassName: c, listeners: []}\n---\napiVersion: v2\nkind: Service\nmetadata: {name: s}\n";
        let (objects, errors) = load_documents("f.yaml", text);
        assert!(objects.is_empty(), "{objects:?}");
        assert_eq!(errors.len(), 2);
        let message = errors[0].to_string();
        assert!(
            message.contains(
                "f.yaml: document 0: unknown apiVersion gateway.networking.k8s.io/v9 for Gateway"
            ),
            "{message}"
        );
        assert!(
            message.contains("served: v1, v1beta1, v1alpha2, v1alpha3"),
            "{message}"
        );
        assert!(matches!(
            errors[1],
            LoadError::UnknownVersion { index: 1, .. }
        ));
    }

    #[test]
    fn any_served_api_version_maps_by_kind() {
        let text = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: r, namespace: n}\nspec: {from: [], to: []}\n";
        let (objects, errors) = load_documents("f", text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(objects[0].kind(), Kind::ReferenceGrant);
    }
}
