//! Errors of the infra manager.

use std::path::PathBuf;

use ferrogate_infra_render::HostProcessKey;
use ferrogate_ir::GatewayKey;

/// Why applying infrastructure failed.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// The bootstrap file (or its directory) could not be written.
    #[error("cannot write the Envoy bootstrap of {gateway} to {}: {source}", path.display())]
    WriteBootstrap {
        /// The Gateway.
        gateway: GatewayKey,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Envoy could not be started (it will be retried with backoff).
    #[error("cannot start Envoy ({}) for {process}: {source}", envoy.display())]
    Spawn {
        /// The Gateway and replica.
        process: HostProcessKey,
        /// The Envoy binary.
        envoy: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The desired set names one replica of a Gateway twice.
    #[error("{0} appears more than once in the desired process set")]
    DuplicateProcess(HostProcessKey),
}
