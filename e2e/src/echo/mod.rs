//! Echo backend compatible with the Gateway API conformance `echo-basic` server
//! (facts in the shared conformance INDEX, section "Echo backend"). One binary,
//! four roles chosen like upstream by environment variables (or flags):
//!
//! - HTTP (default): plain HTTP/1.1 (plus h2c prior knowledge) on the HTTP port,
//!   cleartext HTTP/2 on the optional H2C port, and TLS (HTTP/1.1 and HTTP/2 by
//!   ALPN) on the HTTPS port when `TLS_SERVER_CERT`/`TLS_SERVER_PRIVKEY` are
//!   set; `/ws` is a WebSocket echo on the HTTP and HTTPS ports.
//! - gRPC (`GRPC_ECHO_SERVER`): see [`grpc`]; server reflection is not served.
//! - TCP (`TCP_ECHO_SERVER`) and UDP (`UDP_ECHO_SERVER`): see `tcp` and `udp`.

mod config;
mod duration;
pub mod grpc;
mod handler;
mod headers;
mod query;
mod report;
mod retry;
mod server;
mod tcp;
mod tls;
mod udp;
mod websocket;

pub use config::{ENV_VARS, EchoConfig, Identity, Role};
pub use duration::parse_go_duration;
pub use report::{EchoedRequest, Ports, TlsAssertions};
pub use server::{BoundEcho, bind, run};
pub use tcp::WELCOME as TCP_WELCOME;

/// Starts an in-process echo backend on a free loopback port with the given identity and
/// returns its address; it serves until the test's runtime ends.
pub async fn spawn_for_test(pod: &str, namespace: &str, service: &str) -> std::net::SocketAddr {
    spawn_for_test_on(
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        pod,
        namespace,
        service,
    )
    .await
}

/// As [`spawn_for_test`], bound to `ip` (a real API server refuses loopback endpoint
/// addresses, so in-cluster tests bind to an address of this host's interface).
pub async fn spawn_for_test_on(
    ip: std::net::IpAddr,
    pod: &str,
    namespace: &str,
    service: &str,
) -> std::net::SocketAddr {
    let config = EchoConfig {
        http_port: 0,
        bind: ip,
        identity: Identity {
            pod: pod.into(),
            namespace: namespace.into(),
            service: service.into(),
            ingress: String::new(),
        },
        ..EchoConfig::default()
    };
    let bound = bind(&config)
        .await
        .expect("binding an echo backend on a free port");
    let port = bound.ports().expect("bound ports").http;
    tokio::spawn(bound.serve());
    std::net::SocketAddr::new(ip, port)
}
