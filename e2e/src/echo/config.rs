//! Command-line and environment configuration of the echo backend.
//!
//! Every setting that the conformance Deployments pass as environment variables
//! is also accepted as a flag, so a harness can use whichever is easier.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use clap::Parser;

/// Settings of one echo backend process.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ferrogate-echo",
    about = "Echo backend compatible with the conformance echo-basic image (HTTP, gRPC, TCP and UDP roles)"
)]
pub struct EchoConfig {
    /// HTTP/1.1 port (also accepts h2c prior knowledge) of the HTTP role, and the
    /// plaintext port of the gRPC role; 0 picks a free port.
    #[arg(long, env = "HTTP_PORT", default_value_t = 3000)]
    pub http_port: u16,

    /// Cleartext HTTP/2 port; not opened when unset (upstream defaults to 3001
    /// inside its container, but local harnesses must pick ports themselves).
    #[arg(long, env = "H2C_PORT")]
    pub h2c_port: Option<u16>,

    /// TLS port of the HTTP and gRPC roles, opened only when a certificate and
    /// key are configured.
    #[arg(long, env = "HTTPS_PORT", default_value_t = 8443)]
    pub https_port: u16,

    /// Server certificate PEM (HTTP, gRPC and TCP roles).
    #[arg(long, env = "TLS_SERVER_CERT")]
    pub tls_server_cert: Option<PathBuf>,

    /// Server key PEM of the HTTP role (upstream's spelling).
    #[arg(long, env = "TLS_SERVER_PRIVKEY")]
    pub tls_server_privkey: Option<PathBuf>,

    /// Server key PEM of the gRPC and TCP roles (upstream's other spelling).
    #[arg(long, env = "TLS_SERVER_PRIV_KEY")]
    pub tls_server_priv_key: Option<PathBuf>,

    /// CA bundle PEM; when set, the HTTPS port verifies client certificates if
    /// one is offered (connections without one are still accepted).
    #[arg(long, env = "TLS_CLIENT_CACERTS")]
    pub tls_client_cacerts: Option<PathBuf>,

    /// Non-empty: run the gRPC role instead of the HTTP role.
    #[arg(
        long,
        env = "GRPC_ECHO_SERVER",
        default_value = "",
        hide_default_value = true
    )]
    pub grpc_echo_server: String,

    /// Non-empty: run the TCP role.
    #[arg(
        long,
        env = "TCP_ECHO_SERVER",
        default_value = "",
        hide_default_value = true
    )]
    pub tcp_echo_server: String,

    /// Non-empty: run the UDP role.
    #[arg(
        long,
        env = "UDP_ECHO_SERVER",
        default_value = "",
        hide_default_value = true
    )]
    pub udp_echo_server: String,

    /// Plain TCP port of the TCP role.
    #[arg(long, env = "TCP_PORT", default_value_t = 3000)]
    pub tcp_port: u16,

    /// TLS port of the TCP role (opened with certificate and key).
    #[arg(long, env = "TLS_PORT", default_value_t = 8443)]
    pub tls_port: u16,

    /// UDP port of the UDP role.
    #[arg(long, env = "UDP_PORT", default_value_t = 8080)]
    pub udp_port: u16,

    /// UDP role only: answer DNS queries with an empty NOERROR reply instead of the JSON
    /// echo (a stand-in for the `coredns` Deployment of the conformance manifests).
    #[arg(long, env = "DNS_RESPONDER", default_value = "")]
    pub dns_responder: String,

    /// Address to bind every port on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,

    #[command(flatten)]
    pub identity: Identity,
}

impl Default for EchoConfig {
    /// Upstream's defaults (HTTP role, no H2C port, no TLS), bound on loopback.
    fn default() -> Self {
        EchoConfig {
            http_port: 3000,
            h2c_port: None,
            https_port: 8443,
            tls_server_cert: None,
            tls_server_privkey: None,
            tls_server_priv_key: None,
            tls_client_cacerts: None,
            grpc_echo_server: String::new(),
            tcp_echo_server: String::new(),
            udp_echo_server: String::new(),
            tcp_port: 3000,
            tls_port: 8443,
            udp_port: 8080,
            dns_responder: String::new(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            identity: Identity::default(),
        }
    }
}

/// Which of upstream's servers this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Http,
    Grpc,
    Tcp,
    Udp,
}

impl EchoConfig {
    /// The role, chosen in upstream's order: gRPC, then TCP, then UDP, else HTTP.
    pub fn role(&self) -> Role {
        if !self.grpc_echo_server.is_empty() {
            Role::Grpc
        } else if !self.tcp_echo_server.is_empty() {
            Role::Tcp
        } else if !self.udp_echo_server.is_empty() {
            Role::Udp
        } else {
            Role::Http
        }
    }
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

/// Every environment variable the backend reads; the binary drops empty ones
/// (upstream treats them as unset) before clap parses.
pub const ENV_VARS: &[&str] = &[
    "HTTP_PORT",
    "H2C_PORT",
    "HTTPS_PORT",
    "TLS_SERVER_CERT",
    "TLS_SERVER_PRIVKEY",
    "TLS_SERVER_PRIV_KEY",
    "TLS_CLIENT_CACERTS",
    "GRPC_ECHO_SERVER",
    "TCP_ECHO_SERVER",
    "UDP_ECHO_SERVER",
    "TCP_PORT",
    "TLS_PORT",
    "UDP_PORT",
    "POD_NAME",
    "NAMESPACE",
    "SERVICE_NAME",
    "INGRESS_NAME",
];
