//! Shared by the host manager tests: the Envoy binary, free ports, specs, probes.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ferrogate_infra_render::{HostPortPlan, HostProcessSpec, bootstrap_hash, render_host_replica};
use ferrogate_ir::{GatewayKey, InfraIr};

pub use ferrogate_testkit::envoy_path as envoy;

/// Port plans far from the defaults, one per test, so tests run in parallel with each
/// other and with a standalone ferrogate on the same host.
/// A base port with 25 free ports from `base - 5`, below the ephemeral range (fixed ports
/// in it collide with other tests' outgoing connections); distinct for every call.
pub fn free_base() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = 20_000 + ((std::process::id() as u16 % 300 + n * 7) % 300) * 40;
        if (base - 5..base + 20).all(|p| {
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
                && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
        }) {
            return base;
        }
    }
}

/// Replica 0 of Gateway `test/<name>` in `slot` of a plan starting at `base`.
pub fn spec(name: &str, base: u16, slot: u32, xds_port: u16) -> HostProcessSpec {
    render(name, base, slot, 0, xds_port)
}

fn render(name: &str, base: u16, slot: u32, replica: u32, xds_port: u16) -> HostProcessSpec {
    let infra = InfraIr {
        gateway: GatewayKey::new("test", name),
        gateway_class: "ferrogate".into(),
        ..InfraIr::default()
    };
    render_host_replica(
        &infra.gateway,
        slot,
        replica,
        &HostPortPlan { base, stride: 10 },
        ("127.0.0.1", xds_port),
        false,
        None,
    )
    .expect("the test's slot fits the port plan")
}

/// Status code of `GET path` on 127.0.0.1:port, if anything answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

pub async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_serving(spec: &HostProcessSpec) {
    let admin = spec.admin_port;
    wait_for("Envoy's admin /server_info", || {
        http_status(admin, "/server_info") == Some(200)
    })
    .await;
    assert_eq!(http_status(admin, "/stats/prometheus"), Some(200));
}

pub fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// Replica `replica` of Gateway `test/<name>` in slot 0 of a plan starting at `base`.
pub fn replica_spec(name: &str, base: u16, replica: u32, xds_port: u16) -> HostProcessSpec {
    render(name, base, 0, replica, xds_port)
}

/// As [`replica_spec`], but serving on its own: no xDS (so Envoy initializes at once and
/// binds its listeners) and a static listener on `listener_port` (every replica binds the
/// same one, as they bind the Gateway's xDS listeners) answering 200 `replica <r>`.
pub fn serving_replica(name: &str, base: u16, replica: u32, listener_port: u16) -> HostProcessSpec {
    let mut spec = replica_spec(name, base, replica, base - 1);
    let bootstrap = spec.bootstrap.as_object_mut().unwrap();
    bootstrap.remove("dynamic_resources");
    let listener = serde_json::json!({
        "name": "gateway",
        "address": { "socket_address": { "address": "0.0.0.0", "port_value": listener_port } },
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "gateway",
                "route_config": { "virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{
                        "match": { "prefix": "/" },
                        "direct_response": { "status": 200, "body": { "inline_string": format!("replica {replica}") } },
                    }],
                }] },
                "http_filters": [{
                    "name": "envoy.filters.http.router",
                    "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
                }],
            },
        }] }],
    });
    bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .unwrap()
        .push(listener);
    spec.bootstrap_hash = bootstrap_hash(&spec.bootstrap);
    spec
}

/// `GET /` on a fresh connection to 127.0.0.1:port: the body, or the I/O error (so a
/// refused connection can be told from other failures). Reads by `content-length`, not to
/// the end: Envoy keeps a connection it closes open for up to 1 s (`delayed_close_timeout`)
/// waiting for the client to close first.
pub fn get(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            if n == 0 {
                return Err(std::io::Error::other(format!(
                    "incomplete answer: {text:?}"
                )));
            }
            continue;
        };
        let length = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        if !head.starts_with("HTTP/1.1 200") {
            return Err(std::io::Error::other(format!(
                "unexpected answer: {text:?}"
            )));
        }
        if length.is_some_and(|l| body.len() >= l) || n == 0 {
            return Ok(body.to_string());
        }
    }
}
