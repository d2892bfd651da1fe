//! Which Gateway API implementation a benchmark context drives: Ferrogate or the peer,
//! Envoy Gateway. Everything the harness does through the data plane (probes, wrk, endpoint
//! changes) is the same for both; what differs is how the control plane is started and
//! stopped, which process is its Envoy, and the dialect its config directory is written in.

use std::path::Path;

use super::peer::EnvoyGateway;
use super::procs::{self, Ferrogate};

/// A Gateway API implementation the harness can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Implementation {
    Ferrogate,
    EnvoyGateway,
}

impl Implementation {
    /// The name in records (`implementation`) and tables.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Ferrogate => "ferrogate",
            Implementation::EnvoyGateway => "envoy-gateway",
        }
    }

    /// The name people read in tables.
    pub fn title(self) -> &'static str {
        match self {
            Implementation::Ferrogate => "Ferrogate",
            Implementation::EnvoyGateway => "Envoy Gateway",
        }
    }
}

/// A running control plane of either implementation.
pub enum ControlPlane {
    Ferrogate(Ferrogate),
    EnvoyGateway(EnvoyGateway),
}

impl ControlPlane {
    pub fn implementation(&self) -> Implementation {
        match self {
            ControlPlane::Ferrogate(_) => Implementation::Ferrogate,
            ControlPlane::EnvoyGateway(_) => Implementation::EnvoyGateway,
        }
    }

    /// The control-plane process (whose RSS and CPU are measured).
    pub fn pid(&self) -> u32 {
        match self {
            ControlPlane::Ferrogate(fg) => fg.pid,
            ControlPlane::EnvoyGateway(eg) => eg.pid,
        }
    }

    /// The Envoy serving the bench Gateway. Ferrogate's is found by its work directory in
    /// the command line (`gateway_dir`), the peer's as its child process.
    pub fn envoy_pid(&self, gateway_dir: &Path) -> Option<u32> {
        match self {
            ControlPlane::Ferrogate(_) => procs::find_envoy(gateway_dir),
            ControlPlane::EnvoyGateway(eg) => eg.envoy_pid(),
        }
    }

    /// Graceful stop (each stops its Envoys).
    pub async fn stop(&mut self) {
        match self {
            ControlPlane::Ferrogate(fg) => fg.stop().await,
            ControlPlane::EnvoyGateway(eg) => eg.stop().await,
        }
    }
}
