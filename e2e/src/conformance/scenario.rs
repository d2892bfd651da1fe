//! Loading scenarios and manifests, and the upstream applier's preprocessing.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use super::util::{kind_and_name, str_list};
use super::world::{Capabilities, IMPLEMENTED_STEPS};
use super::{CONTROLLER_NAME, GATEWAY_CLASS_NAME, RunnerConfig, ScenarioMeta};

/// One scenario file, kept as JSON values.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Scenario name.
    pub name: String,
    /// The whole document.
    pub doc: Value,
    /// The suite setup document.
    pub setup: Value,
    /// Data folder.
    pub data_dir: PathBuf,
}

impl Scenario {
    /// Reads `scenarios/<name>.yaml` and the suite setup it names.
    pub fn load(data_dir: &Path, name: &str) -> anyhow::Result<Self> {
        let path = data_dir.join("scenarios").join(format!("{name}.yaml"));
        let doc = read_yaml(&path)?;
        if doc.get("schema_version").and_then(Value::as_i64) != Some(1) {
            anyhow::bail!("{}: unsupported schema_version", path.display());
        }
        let setup_name = doc
            .get("setup")
            .and_then(Value::as_str)
            .unwrap_or("suite-setup.yaml");
        let setup = read_yaml(&data_dir.join(setup_name))?;
        Ok(Self {
            name: name.to_string(),
            doc,
            setup,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// Metadata for reports.
    pub fn meta(&self) -> ScenarioMeta {
        let strings = |key: &str| -> Vec<String> { str_list(self.doc.get(key)) };
        ScenarioMeta {
            features: strings("features"),
            profiles: self
                .doc
                .get("profiles")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        p.get("support")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect(),
            support_level: self
                .doc
                .get("support_level")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            area: self
                .doc
                .get("area")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            provisional: self
                .doc
                .get("provisional")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// The steps.
    pub fn steps(&self) -> Vec<Value> {
        self.doc
            .get("steps")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Why the scenario cannot run here, if it cannot.
    pub fn skip_reason(&self, config: &RunnerConfig, caps: &Capabilities) -> Option<String> {
        let supported = |f: &str| !config.unsupported_features.iter().any(|u| u == f);
        if let Some(run_if) = self.doc.get("run_if") {
            if let Some(f) = run_if.get("feature_not_supported").and_then(Value::as_str)
                && supported(f)
            {
                return Some(format!(
                    "run_if feature_not_supported: {f}, but {f} is claimed (upstream passes it without checks)"
                ));
            }
            if let Some(f) = run_if.get("feature_supported").and_then(Value::as_str)
                && !supported(f)
            {
                return Some(format!(
                    "run_if feature_supported: {f}, which is not claimed (upstream passes it without checks)"
                ));
            }
        }
        let unsupported: Vec<String> = self
            .meta()
            .features
            .into_iter()
            .filter(|f| !supported(f))
            .collect();
        if !unsupported.is_empty() {
            return Some(format!("unsupported features: {}", unsupported.join(", ")));
        }
        for step in self
            .setup
            .get("steps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(self.steps().iter())
        {
            let kind = step.get("step").and_then(Value::as_str).unwrap_or("<none>");
            if !IMPLEMENTED_STEPS.contains(&kind) {
                return Some(format!("step type `{kind}` not implemented by the runner"));
            }
            if kind == "http" {
                for case in step
                    .get("cases")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let proto = case
                        .pointer("/request/protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !matches!(proto, "" | "HTTP" | "H2" | "H2C_PRIOR_KNOWLEDGE") {
                        return Some(format!("http request protocol {proto} not implemented"));
                    }
                }
            }
        }
        if self.doc.get("manifest_substitutions").is_some() && !caps.address_pool {
            return Some("manifest_substitutions need ferrogate --address-pool".into());
        }
        None
    }

    /// The manifest documents of `manifests` (base first), not yet preprocessed.
    pub fn manifest_documents(&self) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        for m in self
            .doc
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let rel = m.as_str().unwrap_or_default();
            out.extend(read_yaml_stream(
                &self.data_dir.join("manifests").join(rel),
            )?);
        }
        Ok(out)
    }
}

/// Reads one YAML document as JSON.
pub fn read_yaml(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    yaml_serde::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Reads every document of a YAML stream (empty documents dropped, `List`s flattened).
pub fn read_yaml_stream(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for document in yaml_serde::Deserializer::from_str(&text) {
        let value =
            Value::deserialize(document).with_context(|| format!("parsing {}", path.display()))?;
        push_flat(value, &mut out);
    }
    Ok(out)
}

fn push_flat(value: Value, out: &mut Vec<Value>) {
    if value.is_null() {
        return;
    }
    if value.get("kind").and_then(Value::as_str) == Some("List") {
        for item in value
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            push_flat(item, out);
        }
        return;
    }
    out.push(value);
}

/// The upstream applier's substitutions: the GatewayClass under test and our controller name.
pub fn preprocess(doc: &mut Value) {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "Gateway" => {
            if let Some(v) = doc.pointer_mut("/spec/gatewayClassName")
                && v.as_str() == Some("{GATEWAY_CLASS_NAME}")
            {
                *v = GATEWAY_CLASS_NAME.into();
            }
        }
        "GatewayClass" => {
            if let Some(v) = doc.pointer_mut("/spec/controllerName")
                && v.as_str() == Some("{GATEWAY_CONTROLLER_NAME}")
            {
                *v = CONTROLLER_NAME.into();
            }
        }
        "Namespace" => {
            // The API server labels every Namespace with its name (Kubernetes 1.22+).
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
                let labels = meta
                    .entry("labels")
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), name.into());
                }
            }
        }
        _ => {}
    }
    default_parent_refs(doc, &kind);
}

/// CRD defaulting the API server would do: `parentRef(s)` get `group` and `kind`
/// (`gateway.networking.k8s.io`, `Gateway`), so route statuses echo them back.
fn default_parent_refs(doc: &mut Value, kind: &str) {
    let refs: Vec<&mut Value> = if kind.ends_with("Route") {
        doc.pointer_mut("/spec/parentRefs")
            .and_then(Value::as_array_mut)
            .map(|a| a.iter_mut().collect())
            .unwrap_or_default()
    } else if kind == "ListenerSet" {
        doc.pointer_mut("/spec/parentRef").into_iter().collect()
    } else {
        Vec::new()
    };
    for r in refs {
        if let Some(m) = r.as_object_mut() {
            m.entry("group")
                .or_insert_with(|| "gateway.networking.k8s.io".into());
            m.entry("kind").or_insert_with(|| "Gateway".into());
        }
    }
}

/// `(kind, namespace, name)` of a manifest; namespaced kinds default to `default`.
pub fn object_key(doc: &Value) -> (String, String, String) {
    let (kind, name) = kind_and_name(doc);
    let cluster_scoped = matches!(kind.as_str(), "GatewayClass" | "Namespace");
    let ns = if cluster_scoped {
        String::new()
    } else {
        doc.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string()
    };
    (kind, ns, name)
}
