//! Command-line and environment configuration of the echo backend.
//!
//! Every setting that the conformance Deployments pass as environment variables
//! is also accepted as a flag, so a harness can use whichever is easier.

use std::net::{IpAddr, Ipv4Addr};

use clap::Parser;

/// Settings of one echo backend process.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ferrogate-echo",
    about = "Echo backend compatible with the conformance echo-basic HTTP role"
)]
pub struct EchoConfig {
    /// HTTP/1.1 port (also accepts h2c prior knowledge); 0 picks a free port.
    #[arg(long, env = "HTTP_PORT", default_value_t = 3000)]
    pub http_port: u16,

    /// Cleartext HTTP/2 port; not opened when unset (upstream defaults to 3001
    /// inside its container, but local harnesses must pick ports themselves).
    #[arg(long, env = "H2C_PORT")]
    pub h2c_port: Option<u16>,

    /// Address to bind both ports on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,

    #[command(flatten)]
    pub identity: Identity,
}

/// Identity echoed back in every response; scenarios recognise backends by it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Identity {
    /// Pod name (`<deployment>-<hash>-<hash>`).
    #[arg(long = "pod", env = "POD_NAME", default_value = "")]
    pub pod: String,
    #[arg(long, env = "NAMESPACE", default_value = "")]
    pub namespace: String,
    #[arg(long = "service", env = "SERVICE_NAME", default_value = "")]
    pub service: String,
    #[arg(long = "ingress", env = "INGRESS_NAME", default_value = "")]
    pub ingress: String,
}
