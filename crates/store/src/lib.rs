//! ferrogate-store: the input world as an immutable, cheaply clonable snapshot.
//!
//! Owns: the typed object model (one map per kind, objects behind `Arc`), the mutations
//! `apply` / `delete` / `reset` that report what changed, and multi-document YAML loading
//! shared by the file provider, the `translate` command and tests.
//!
//! Must not: watch anything, read files or talk to a cluster. Providers do that and feed
//! the store; nothing downstream knows which provider filled it.
#![forbid(unsafe_code)]

pub mod depth;
mod load;
mod object;
mod open_enum;
mod packed;
mod snapshot;

pub use depth::MAX_FLOW_DEPTH;
pub use load::{LoadError, load_documents, load_object};
pub use object::{Kind, Object, ObjectKey, ObjectRef};
pub use open_enum::{UNSUPPORTED_VALUES_ANNOTATION, UnsupportedValue, unsupported_values};
pub use packed::Packed;
pub use snapshot::{Kinded, Snapshot};
