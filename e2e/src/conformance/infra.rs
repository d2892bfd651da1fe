//! `infrastructure_metadata`, checked on the rendered infrastructure: standalone mode creates
//! no Kubernetes objects, so the runner asks `ferrogate translate -o infra` for the objects
//! Ferrogate would create per Gateway and reads the labels and annotations there. A `Pod` is
//! the pod template of a rendered Deployment.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::process::Command;

use super::util::{kind_and_name, str_list};
use super::world::World;

const BUDGET: Duration = Duration::from_secs(60);

/// `(kind, name, metadata)` of every rendered object; Deployments also yield their pod
/// template as kind `Pod`.
async fn rendered(world: &World) -> Result<Vec<(String, String, Value)>, String> {
    let mut files: Vec<_> = std::fs::read_dir(world.config_dir())
        .map_err(|e| format!("reading config dir: {e}"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err("config dir holds no manifests".into());
    }
    let mut cmd = Command::new(&world.config.ferrogate);
    cmd.arg("translate").arg("-o").arg("infra").arg("-f");
    cmd.args(&files);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .map_err(|_| "ferrogate translate -o infra timed out".to_string())?
        .map_err(|e| format!("running ferrogate translate: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "ferrogate translate -o infra failed ({}): {}",
            out.status,
            err.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut objects = Vec::new();
    for document in yaml_serde::Deserializer::from_str(&text) {
        let doc = Value::deserialize(document)
            .map_err(|e| format!("parsing translate -o infra output: {e}"))?;
        if doc.is_null() {
            continue;
        }
        let (kind, name) = kind_and_name(&doc);
        let meta = doc.get("metadata").cloned().unwrap_or(Value::Null);
        if kind == "Deployment" {
            let mut pod_meta = doc
                .pointer("/spec/template/metadata")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            // Pods live in the Deployment's namespace.
            if let (Some(m), Some(ns)) = (
                pod_meta.as_object_mut(),
                meta.get("namespace").and_then(Value::as_str),
            ) {
                m.entry("namespace").or_insert_with(|| ns.into());
            }
            objects.push(("Pod".to_string(), format!("{name}-<pod>"), pod_meta));
        }
        objects.push((kind, name, meta));
    }
    Ok(objects)
}

fn string_map(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect()
}

fn includes(meta: &Value, field: &str, want: &[(String, String)]) -> Result<(), String> {
    let have = meta.get(field).and_then(Value::as_object);
    for (k, v) in want {
        let got = have.and_then(|m| m.get(k)).and_then(Value::as_str);
        if got != Some(v.as_str()) {
            return Err(format!("{field} {k}: {got:?}, want {v:?}"));
        }
    }
    Ok(())
}

/// `infrastructure_metadata`.
pub async fn infrastructure_metadata(world: &World, step: &Value) -> Result<(), String> {
    let selector = string_map(step.pointer("/generated_resources/label_selector"));
    let namespace = step
        .pointer("/generated_resources/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kinds = str_list(step.pointer("/generated_resources/kinds"));
    let labels = string_map(step.pointer("/expect/labels_include"));
    let annotations = string_map(step.pointer("/expect/annotations_include"));
    let need_one = step
        .pointer("/expect/at_least_one_resource")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let budget = world
        .config
        .status_timeout_cap
        .map_or(BUDGET, |c| c.min(BUDGET));
    let deadline = Instant::now() + budget;
    let mut last;
    loop {
        let objects = rendered(world).await;
        match objects {
            Err(e) => last = e,
            Ok(objects) => {
                // The first labelled object of each listed kind.
                let mut found = Vec::new();
                for kind in &kinds {
                    let first = objects.iter().find(|(k, _, meta)| {
                        k == kind
                            && meta.get("namespace").and_then(Value::as_str)
                                == Some(namespace.as_str())
                            && includes(meta, "labels", &selector).is_ok()
                    });
                    if let Some(o) = first {
                        found.push(o);
                    }
                }
                if found.is_empty() && need_one {
                    let rendered: Vec<String> =
                        objects.iter().map(|(k, n, _)| format!("{k} {n}")).collect();
                    last = format!(
                        "no {} in {namespace} carries labels {selector:?} (rendered: {})",
                        kinds.join("/"),
                        rendered.join(", ")
                    );
                } else {
                    let mut bad = Vec::new();
                    for (kind, name, meta) in &found {
                        if let Err(e) = includes(meta, "labels", &labels)
                            .and_then(|()| includes(meta, "annotations", &annotations))
                        {
                            bad.push(format!("{kind} {namespace}/{name}: {e}"));
                        }
                    }
                    if bad.is_empty() {
                        return Ok(());
                    }
                    // The rendered objects follow the manifests deterministically: no retry.
                    return Err(bad.join("; "));
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("{last} (after {}s)", budget.as_secs()));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
