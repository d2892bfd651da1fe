//! Echo backend compatible with the HTTP role of the Gateway API conformance
//! `echo-basic` server (facts in the shared conformance INDEX, section "Echo backend").
//!
//! Only the HTTP role is implemented for now: plain HTTP/1.1 (plus h2c prior
//! knowledge) on the HTTP port and cleartext HTTP/2 on the optional H2C port.
//! Not yet implemented: the `/ws` WebSocket endpoint, the HTTPS port and the
//! gRPC/TCP/UDP roles.

mod config;
mod duration;
mod handler;
mod headers;
mod query;
mod report;
mod retry;
mod server;

pub use config::{EchoConfig, Identity};
pub use duration::parse_go_duration;
pub use report::{EchoedRequest, Ports};
pub use server::{BoundEcho, bind, run};

/// Starts an in-process echo backend on a free loopback port with the given identity and
/// returns its address; it serves until the test's runtime ends.
pub async fn spawn_for_test(pod: &str, namespace: &str, service: &str) -> std::net::SocketAddr {
    let config = EchoConfig {
        http_port: 0,
        h2c_port: None,
        bind: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        identity: Identity { pod: pod.into(), namespace: namespace.into(), service: service.into(), ingress: String::new() },
    };
    let bound = bind(&config).await.expect("binding an echo backend on a free port");
    let port = bound.ports().expect("bound ports").http;
    tokio::spawn(bound.serve());
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}
