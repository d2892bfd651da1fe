//! Errors of the infra manager.

use std::path::PathBuf;

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
    #[error("cannot start Envoy ({}) for {gateway}: {source}", envoy.display())]
    Spawn {
        /// The Gateway.
        gateway: GatewayKey,
        /// The Envoy binary.
        envoy: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The desired set names one Gateway twice.
    #[error("gateway {0} appears more than once in the desired process set")]
    DuplicateGateway(GatewayKey),
}
