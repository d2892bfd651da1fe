//! ferrogate-infra-manager: applies rendered infrastructure to the world.
//!
//! Owns: the side effects of provisioning. In standalone mode that is [`HostInfra`], which
//! supervises local Envoy processes, one per replica of each Gateway: it writes each
//! bootstrap to disk, starts, restarts (on unexpected exit, with backoff) and stops
//! processes so that the running set equals the desired set of [`HostProcessSpec`]s. In a
//! cluster it is [`kubernetes`]: server-side apply of the rendered objects, deletion of what
//! is no longer needed, drift correction, and watching what exists.
//!
//! Must not: decide what to run. Every spec, bootstrap and hash comes from
//! `ferrogate-infra-render` (pure); this crate only compares hashes and acts. A process is
//! restarted for exactly two reasons: it exited on its own, or its bootstrap hash changed.
//! It never imports other adapters (providers, xDS server); only the runtime wires it.

mod error;
mod host;
pub mod kubernetes;

pub use error::InfraError;
pub use ferrogate_infra_render::{HostProcessKey, HostProcessSpec};
pub use host::HostInfra;
