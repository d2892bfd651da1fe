//! `ferrogate translate`: offline translation of YAML files, printed as YAML.

use std::path::PathBuf;

use anyhow::Context;
use ferrogate_store::{Snapshot, load_documents};
use ferrogate_translator::{Options, translate};

/// What to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Statuses, in the corpus schema.
    Status,
    /// Statuses as JSON (same content as [`OutputFormat::Status`]).
    StatusJson,
    /// The IR of every Gateway.
    Ir,
    /// The Envoy resources of every Gateway.
    Xds,
    /// The Kubernetes objects the controller would apply for every Gateway.
    Infra,
}

/// Which mode's data plane to translate for, with that mode's own translation options. Pods
/// shift listener ports below 1024 by 10000 (Envoy runs unprivileged) and have their
/// readiness listener on [`ferrogate_api::ENVOY_READY_PORT`]; standalone binds the declared
/// ports, reports `127.0.0.1` as a Gateway's address (no address pool here), and its
/// readiness port is its Gateway slot's (the first slot's here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Variant {
    /// What `ferrogate controller` provisions.
    #[default]
    Controller,
    /// What `ferrogate standalone` runs.
    Standalone,
}

impl Variant {
    fn options(self) -> Options {
        match self {
            Variant::Controller => Options::default(),
            Variant::Standalone => Options::standalone(false),
        }
    }

    fn ready_port(self) -> u16 {
        match self {
            Variant::Controller => ferrogate_api::ENVOY_READY_PORT,
            Variant::Standalone => ferrogate_infra_render::HostPortPlan::default()
                .ready_port(0)
                .expect("the default port plan has a first slot"),
        }
    }
}

/// Translates the objects of `files` ("-" reads standard input) for `variant` and returns
/// the YAML to print, plus one warning line per document that could not be loaded.
pub fn translate_files(
    files: &[PathBuf],
    format: OutputFormat,
    variant: Variant,
) -> anyhow::Result<(String, Vec<String>)> {
    let mut snapshot = Snapshot::default();
    let mut warnings = Vec::new();
    for file in files {
        let text = if file.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())?
        } else {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        };
        let (objects, errors) = load_documents(&file.display().to_string(), &text);
        warnings.extend(errors.iter().map(ToString::to_string));
        snapshot.extend(objects);
    }
    anyhow::ensure!(
        !(format == OutputFormat::Infra && variant == Variant::Standalone),
        "standalone mode provisions no Kubernetes objects: -o infra is the controller's"
    );
    let translation = translate(&snapshot, &variant.options());
    let text = match format {
        OutputFormat::Status => yaml_serde::to_string(&translation.statuses)?,
        OutputFormat::StatusJson => {
            format!("{}\n", serde_json::to_string_pretty(&translation.statuses)?)
        }
        OutputFormat::Ir => {
            let mut value = serde_json::to_value(
                translation
                    .gateways
                    .values()
                    .map(|g| g.as_ref())
                    .collect::<Vec<_>>(),
            )?;
            for gateway in value.as_array_mut().into_iter().flatten() {
                for secret in gateway
                    .get_mut("secrets")
                    .and_then(|s| s.as_array_mut())
                    .into_iter()
                    .flatten()
                {
                    secret["private_key"] = "<redacted>".into();
                }
            }
            yaml_serde::to_string(&value)?
        }
        OutputFormat::Xds => xds_yaml(&translation, variant.ready_port())?,
        OutputFormat::Infra => infra_yaml(&snapshot, &translation),
    };
    Ok((text, warnings))
}

/// Every Gateway's Envoy resources as proto3 JSON (rendered as YAML), grouped by Gateway
/// and resource type.
fn xds_yaml(
    translation: &ferrogate_translator::Translation,
    ready_port: u16,
) -> anyhow::Result<String> {
    let mut out = Vec::new();
    for (key, ir) in &translation.gateways {
        let access_logs = translation
            .infra
            .get(key)
            .map(|i| i.access_logs.clone())
            .unwrap_or_default();
        let options = ferrogate_xds_translator::XdsOptions {
            ready_port,
            access_logs,
        };
        let resources = ferrogate_xds_translator::translate(ir, &options);
        let mut by_type = serde_json::Map::new();
        for (type_url, items) in resources.into_any() {
            let short = type_url.rsplit('.').next().unwrap_or(type_url).to_string();
            let values = items
                .iter()
                .map(|(_, any)| ferrogate_xds_json::any_to_json(any).map(redact_private_key))
                .collect::<Result<Vec<_>, _>>()?;
            by_type.insert(short, serde_json::Value::Array(values));
        }
        out.push(serde_json::json!({ "gateway": key.to_string(), "resources": by_type }));
    }
    Ok(yaml_serde::to_string(&out)?)
}

/// Private keys never reach a terminal: Secrets keep their certificate, not their key.
fn redact_private_key(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(key) = value.pointer_mut("/tlsCertificate/privateKey") {
        *key = serde_json::json!({ "inlineString": "<redacted>" });
    }
    value
}

/// Every accepted Gateway's Kubernetes objects, as the controller would apply them. The
/// Gateway's UID comes from the input when present.
fn infra_yaml(snapshot: &Snapshot, translation: &ferrogate_translator::Translation) -> String {
    use ferrogate_infra_render::kubernetes::{RenderOptions, render, to_yaml};
    let mut objects = Vec::new();
    for (key, infra) in &translation.infra {
        let uid = snapshot
            .gateways
            .get(&key.namespace, &key.name)
            .and_then(|g| g.metadata.uid.clone())
            .unwrap_or_default();
        let spec = translation.parameters.get(key).cloned().unwrap_or_default();
        let options = RenderOptions {
            gateway_uid: uid,
            ..RenderOptions::default()
        };
        objects.extend(render(infra, &spec, &options));
    }
    to_yaml(&objects)
}
