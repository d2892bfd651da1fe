//! ferrogate-provider-file: standalone mode's provider. Reads a directory of Gateway API
//! YAML into the store, re-reads it when files change, and writes statuses as YAML files.
//!
//! Owns: directory reading (every `*.yaml`/`*.yml`, any depth, multi-document), the change
//! watcher (`notify`, with bursts debounced into one re-read), and the status files.
//!
//! Must not: interpret Gateway API semantics (the translator does) or talk to Envoy.
//! A file that stops parsing keeps its last good objects, so one broken edit never removes
//! a Gateway or its routes from the data plane.
#![forbid(unsafe_code)]

mod directory;
mod status_files;
mod watch;

pub use directory::{DirectoryReader, ReadReport};
pub use status_files::{StatusFileWriter, status_file_name};
pub use watch::watch_directory;
