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
    /// The IR of every Gateway.
    Ir,
    /// The Envoy resources of every Gateway.
    Xds,
}

/// Translates the objects of `files` ("-" reads standard input) and returns the YAML to
/// print, plus one warning line per document that could not be loaded.
pub fn translate_files(files: &[PathBuf], format: OutputFormat) -> anyhow::Result<(String, Vec<String>)> {
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
        for object in objects {
            snapshot.apply(object);
        }
    }
    let options = Options { shift_privileged_ports: false, ..Options::default() };
    let translation = translate(&snapshot, &options);
    let text = match format {
        OutputFormat::Status => yaml_serde::to_string(&translation.statuses)?,
        OutputFormat::Ir => yaml_serde::to_string(&translation.gateways.values().map(|g| g.as_ref()).collect::<Vec<_>>())?,
        OutputFormat::Xds => crate::translate_cmd::xds_yaml(&translation)?,
    };
    Ok((text, warnings))
}

fn xds_yaml(translation: &ferrogate_translator::Translation) -> anyhow::Result<String> {
    let _ = translation;
    anyhow::bail!("-o xds is not available yet")
}
