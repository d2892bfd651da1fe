//! The stats port is the one listener of the bootstrap open to the network, and it leads to
//! Envoy's admin interface. With a real Envoy: exactly `GET /stats/prometheus` gets through;
//! path tricks (`..`, `%2e%2e`, encoded slashes, doubled slashes) and every other method
//! and admin endpoint are refused, and after all of them Envoy still runs with its
//! listeners (no `/quitquitquit`, no `/drain_listeners` went through).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrogate_infra_render::{HostPortPlan, render_host_replica};
use ferrogate_ir::{GatewayKey, InfraIr};

mod common;

/// Kills Envoy when the test ends, whichever way it ends.
struct Envoy(Child);

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port block nobody else uses: tests of other crates take bases from 20000 up, so this
/// one looks above them and checks that all ten ports are free.
fn free_base() -> u16 {
    let start = 33_000 + (std::process::id() % 200) as u16 * 10;
    (0..200u16)
        .map(|i| 33_000 + (start - 33_000 + i * 10) % 2_000)
        .find(|base| {
            (*base..base + 10).all(|p| {
                std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
                    && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
            })
        })
        .expect("a free block of 10 ports")
}

/// Sends `request` as raw bytes (no client normalizes the path on the way) and returns the
/// status code and the body.
fn raw(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the stats port");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    // Read up to the end of the body as Content-Length gives it: Envoy delays closing a
    // connection after a direct response by a second, which would make this test slow.
    let mut response = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = complete_length(&response) {
            response.truncate(end);
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status for {request:?}: {response:?}"));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The length of a complete response in `bytes` with a `content-length`, if it is there.
fn complete_length(bytes: &[u8]) -> Option<usize> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    (bytes.len() >= head_end + length).then_some(head_end + length)
}

fn request(method: &str, path: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: pod\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

#[test]
fn the_stats_port_serves_prometheus_and_nothing_else_of_the_admin_api() {
    let base = free_base();
    let infra = InfraIr {
        gateway: GatewayKey::new("test", "stats"),
        gateway_class: "ferrogate".into(),
        ..InfraIr::default()
    };
    let spec = render_host_replica(
        &infra.gateway,
        0,
        0,
        &HostPortPlan { base, stride: 10 },
        ("127.0.0.1", 1),
        true,
        None,
    )
    .expect("slot 0 fits");
    let mut bootstrap = spec.bootstrap.clone();
    // Without an xDS server Envoy stays PRE_INITIALIZING and opens no listener. Dropping
    // the dynamic part lets it start at once; the stats listener, the admin cluster and the
    // admin interface under test are byte for byte the rendered ones.
    bootstrap
        .as_object_mut()
        .unwrap()
        .remove("dynamic_resources");
    let dir = std::env::temp_dir().join(format!("ferrogate-stats-port-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bootstrap.json");
    std::fs::write(&file, serde_json::to_vec(&bootstrap).unwrap()).unwrap();
    let _envoy = Envoy(
        Command::new(common::envoy())
            .args(["--disable-hot-restart", "-l", "warning", "-c"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start envoy"),
    );
    let stats = spec.stats_port;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = TcpStream::connect(("127.0.0.1", stats)).is_ok()
            && raw(stats, &request("GET", "/stats/prometheus")).0 == 200;
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Envoy never served the stats port {stats}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (status, body) = raw(stats, &request("GET", "/stats/prometheus"));
    assert_eq!(status, 200);
    assert!(body.contains("envoy_"), "Prometheus text: {body:.200}");
    // A query string stays the stats handler's business.
    assert_eq!(
        raw(stats, &request("GET", "/stats/prometheus?usedonly")).0,
        200
    );

    let traversals = [
        "/stats/prometheus/../../config_dump",
        "/stats/prometheus/../config_dump",
        "/stats/prometheus/%2e%2e/%2e%2e/config_dump",
        "/stats/prometheus/%2E%2E/config_dump",
        "/stats/prometheus%2f..%2f..%2fconfig_dump",
        "/stats/prometheus/..%2F..%2Fconfig_dump",
        "/stats/prometheus/..;/config_dump",
        "//config_dump",
        "/stats/prometheus/../../certs",
        "/stats/prometheus/../../clusters",
        "/stats/prometheus/../../runtime",
        "/stats/prometheus/../../server_info",
        "/stats/prometheus/../../stats",
        "/stats/prometheus/",
        "/stats/prometheus/extra",
        "/stats",
        "/config_dump",
        "/ready",
    ];
    for path in traversals {
        let (status, body) = raw(stats, &request("GET", path));
        assert!(
            status == 404 || status == 400,
            "GET {path}: {status}, admin content must not leak: {body:.200}"
        );
        assert!(
            !body.contains("configs"),
            "GET {path} leaked the config dump"
        );
    }

    let verbs = [
        "/quitquitquit",
        "/drain_listeners",
        "/healthcheck/fail",
        "/logging?level=trace",
        "/reset_counters",
        "/runtime_modify?x=1",
        "/cpuprofiler?enable=y",
        "/heapprofiler?enable=y",
    ];
    for verb in verbs {
        for path in [
            verb.to_string(),
            format!("/stats/prometheus/../..{verb}"),
            format!("/stats/prometheus/%2e%2e{verb}"),
        ] {
            for method in ["POST", "GET", "PUT"] {
                let (status, _) = raw(stats, &request(method, &path));
                assert!(
                    status == 404 || status == 400 || status == 405,
                    "{method} {path}: {status}"
                );
            }
        }
    }
    for method in ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"] {
        let (status, _) = raw(stats, &request(method, "/stats/prometheus"));
        assert!(
            status == 405 || status == 400,
            "{method} /stats/prometheus: {status}"
        );
    }

    // Nothing of the above reached the admin interface: Envoy runs, its listener was not
    // drained, its health check did not flip and it still answers the scrape.
    let admin = spec.admin_port;
    let (status, listeners) = raw(admin, &request("GET", "/listeners"));
    assert_eq!(status, 200);
    assert!(
        listeners.contains("stats"),
        "stats listener still there: {listeners}"
    );
    let (_, server) = raw(admin, &request("GET", "/server_info"));
    assert!(
        server.contains("\"state\": \"LIVE\""),
        "Envoy still LIVE: {server:.400}"
    );
    let (_, counters) = raw(
        admin,
        &request("GET", "/stats?filter=listener_manager.listener_stopped"),
    );
    assert!(
        !counters.contains("stopped: 1"),
        "no listener stopped: {counters}"
    );
    assert_eq!(raw(stats, &request("GET", "/stats/prometheus")).0, 200);
    let _ = std::fs::remove_dir_all(&dir);
}
