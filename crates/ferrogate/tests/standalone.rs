//! End to end: `ferrogate standalone` with a real Envoy and real HTTP traffic, over delta and
//! state-of-the-world xDS. Start, request, edit a route, request again (same Envoy process),
//! delete the Gateway, Envoy gone.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ferrogate_e2e::client::{self, HttpResponse};
use ferrogate_e2e::testing::{self, Standalone, free_block, free_port, pod};

const HOST: &str = "www.example.com";

/// The quickstart in a standalone instance; returns it and the Gateway's address.
fn start(xds_mode: &str, v1: SocketAddr, v2: SocketAddr) -> (Standalone, SocketAddr) {
    let gateway_port = free_port();
    // Per-Gateway Envoy ports come from a base: find a block of 10 free ports.
    let base = free_block(if xds_mode == "delta" { 21000 } else { 41000 }, 10);
    let fg = Standalone::start(
        env!("CARGO_BIN_EXE_ferrogate"),
        testing::quickstart(gateway_port, v1, v2),
        base,
        &["--xds-mode", xds_mode],
    );
    (fg, SocketAddr::from(([127, 0, 0, 1], gateway_port)))
}

/// Polls until `check` accepts a response, returning it and how long it took.
async fn eventually(
    gateway: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
    check: impl Fn(&HttpResponse) -> bool,
) -> (HttpResponse, Duration) {
    testing::eventually_response(gateway, HOST, path, headers, timeout, check).await
}

/// Pids of Envoy processes whose command line mentions `dir` (their bootstrap lives there).
fn envoy_pids(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("envoy")
            && cmdline.contains(&needle)
            && !cmdline.contains("ferrogate standalone")
        {
            pids.push(pid);
        }
    }
    pids
}

async fn full_cycle(xds_mode: &str) {
    let v1 = ferrogate_e2e::echo::spawn_for_test("echo-v1-local", "default", "echo-v1").await;
    let v2 = ferrogate_e2e::echo::spawn_for_test("echo-v2-local", "default", "echo-v2").await;
    let (fg, gateway) = start(xds_mode, v1, v2);
    let work = fg.work_dir();

    // Start: the catch-all rule answers from echo-v1.
    let (r, startup) = eventually(gateway, "/", &[], Duration::from_secs(60), |r| {
        r.status == 200
    })
    .await;
    assert_eq!(pod(&r), "echo-v1-local");
    eprintln!("[{xds_mode}] first 200 after {startup:?}");
    let echoed = r.json().unwrap();
    assert_eq!(echoed["host"], HOST);
    assert_eq!(echoed["path"], "/");

    // Path prefix and header matches go to echo-v2.
    let r = client::get(gateway, HOST, "/v2/page?x=1", &[])
        .await
        .unwrap();
    assert_eq!((r.status, pod(&r)), (200, "echo-v2-local".to_string()));
    assert_eq!(r.json().unwrap()["path"], "/v2/page?x=1");
    let r = client::get(gateway, HOST, "/", &[("x-backend", "v2")])
        .await
        .unwrap();
    assert_eq!(pod(&r), "echo-v2-local");

    // Header filters: a request header is set, a response header added.
    let r = client::get(gateway, HOST, "/headers", &[]).await.unwrap();
    assert_eq!(r.json().unwrap()["headers"]["X-Ferrogate"][0], "quickstart");
    assert_eq!(r.header("x-served-by"), Some("ferrogate"));

    // Weighted split: both backends answer.
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let r = client::get(gateway, HOST, "/split", &[]).await.unwrap();
        *seen.entry(pod(&r)).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both backends must get traffic: {seen:?}");

    // Another host is not routed.
    let r = client::get(gateway, "other.example.org", "/", &[])
        .await
        .unwrap();
    assert_eq!(r.status, 404);

    // Edit a route: the catch-all now goes to echo-v2, same Envoy process.
    let pids = envoy_pids(&work);
    assert_eq!(pids.len(), 1, "one Envoy per Gateway: {pids:?}");
    let routes = fg.dir.path().join("config/routes.yaml");
    let text = std::fs::read_to_string(&routes).unwrap();
    let edited = text.replacen(
        "    - backendRefs:\n        - name: echo-v1",
        "    - backendRefs:\n        - name: echo-v2",
        1,
    );
    assert_ne!(text, edited);
    std::fs::write(&routes, edited).unwrap();
    // A generous bound: this checks the edit arrives, benchmarks measure how fast.
    let (_, propagation) = eventually(gateway, "/", &[], Duration::from_secs(20), |r| {
        pod(r) == "echo-v2-local"
    })
    .await;
    eprintln!("[{xds_mode}] route edit visible after {propagation:?}");
    assert_eq!(
        envoy_pids(&work),
        pids,
        "Envoy must not restart for a config change"
    );

    // Bad input: a broken file and a half-written route file change nothing that serves.
    std::fs::write(
        fg.dir.path().join("config/broken.yaml"),
        "kind: [unclosed\n",
    )
    .unwrap();
    let good_routes = std::fs::read_to_string(&routes).unwrap();
    std::fs::write(
        &routes,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nspec: [",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = client::get(gateway, HOST, "/", &[]).await.unwrap();
    assert_eq!(
        (r.status, pod(&r)),
        (200, "echo-v2-local".to_string()),
        "last good config keeps serving"
    );
    std::fs::write(&routes, good_routes).unwrap();
    std::fs::remove_file(fg.dir.path().join("config/broken.yaml")).unwrap();

    // Envoy's own Prometheus stats are served on its stats port (base + 1).
    let stats = client::get(
        SocketAddr::from(([127, 0, 0, 1], fg.envoy_base + 1)),
        "localhost",
        "/stats/prometheus",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(stats.status, 200);
    assert!(
        String::from_utf8_lossy(&stats.body).contains("envoy_cluster_upstream_rq"),
        "Envoy stats"
    );

    // Statuses are written.
    let status = std::fs::read_to_string(
        fg.dir
            .path()
            .join("status/gateways/default/quickstart.yaml"),
    )
    .unwrap();
    assert!(status.contains("reason: Programmed"), "{status}");
    let route_status =
        std::fs::read_to_string(fg.dir.path().join("status/httproutes/default/www.yaml")).unwrap();
    assert!(route_status.contains("reason: Accepted"), "{route_status}");

    // Metrics are served.
    let m = client::get(fg.metrics, "localhost", "/metrics", &[])
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(text.contains("ferrogate_translations_total"), "{text}");
    assert!(text.contains("ferrogate_xds_acks_total{type_url=\"type.googleapis.com/envoy.config.route.v3.RouteConfiguration\"}"), "{text}");
    assert!(
        text.contains(
            "ferrogate_xds_connected_proxies{gateway=\"quickstart\",namespace=\"default\"} 1"
        ),
        "{text}"
    );

    // Delete the Gateway: its Envoy stops.
    std::fs::remove_file(fg.dir.path().join("config/gateway.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !envoy_pids(&work).is_empty() {
        assert!(
            Instant::now() < deadline,
            "Envoy still running after the Gateway was deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_serves_edits_and_stops_over_delta_xds() {
    full_cycle("delta").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_serves_edits_and_stops_over_state_of_the_world_xds() {
    full_cycle("sotw").await;
}
