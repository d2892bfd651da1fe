//! Reaching the Gateway's Envoy Pod and timing what it answers.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::world::{ENVOY_PORT, ENVOY_SELECTOR, NAMESPACE};

/// How often a probe asks again after a wrong answer (the standalone bench's pace).
/// Envoy's readiness port in a Pod (`ferrogate_api::ENVOY_READY_PORT`, delivered over xDS).
const READY_PORT: u16 = 19003;

/// The address of the Gateway's Envoy Pod once Envoy answers `/ready` (which only arrives
/// over xDS, so the Pod has its configuration).
pub async fn envoy_pod(client: &kube::Client, timeout: Duration) -> anyhow::Result<SocketAddr> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let params = ListParams::default().labels(ENVOY_SELECTOR);
    crate::wait::until("the Envoy Pod answers /ready", timeout, || {
        let pods = pods.clone();
        let params = params.clone();
        async move {
            let list = pods.list(&params).await.map_err(|e| e.to_string())?;
            let ips: Vec<IpAddr> = list
                .items
                .iter()
                .filter_map(|p| p.status.as_ref()?.pod_ip.as_ref()?.parse().ok())
                .collect();
            for ip in &ips {
                let ready = SocketAddr::new(*ip, READY_PORT);
                if let Ok(r) = ferrogate_e2e::client::get(ready, "ready", "/ready", &[]).await
                    && r.status == 200
                {
                    return Ok(SocketAddr::new(*ip, ENVOY_PORT));
                }
            }
            Err(format!("{} Pods with an address, none ready", ips.len()))
        }
    })
    .await
}

/// Polls `GET http://envoy/` with `Host: host` until it answers `want` `times` times in a
/// row (the standalone bench's poller); returns when the first answer of that run came.
/// Fails after `budget`.
pub async fn until_status(
    envoy: SocketAddr,
    host: &str,
    want: u16,
    times: usize,
    budget: Duration,
) -> anyhow::Result<Instant> {
    ferrogate_e2e::bench::until_status(envoy, host, "/", want, times, budget).await
}

/// The sum of metric `name`'s series on a controller's `/metrics` port.
pub async fn metric(port: u16, name: &str) -> anyhow::Result<f64> {
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let response = ferrogate_e2e::client::get(target, "localhost", "/metrics", &[])
        .await
        .context("GET /metrics")?;
    let body = String::from_utf8_lossy(&response.body);
    Ok(body
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Waits until a controller is ready (every watch listed), leads (so it writes statuses)
/// and serves at least one Envoy.
pub async fn controller_serving(
    health_port: u16,
    metrics_port: u16,
    timeout: Duration,
) -> anyhow::Result<()> {
    crate::wait::until(
        "the controller ready, leading and serving an Envoy",
        timeout,
        || async move {
            let health: SocketAddr = ([127, 0, 0, 1], health_port).into();
            let ready = ferrogate_e2e::client::get(health, "localhost", "/readyz", &[])
                .await
                .map(|r| r.status)
                .map_err(|e| format!("/readyz: {e}"))?;
            let leader = metric(metrics_port, "ferrogate_leader")
                .await
                .map_err(|e| e.to_string())?;
            let proxies = metric(metrics_port, "ferrogate_xds_connected_proxies")
                .await
                .map_err(|e| e.to_string())?;
            if ready == 200 && leader >= 1.0 && proxies >= 1.0 {
                Ok(())
            } else {
                Err(format!(
                    "/readyz {ready}, leader {leader}, connected proxies {proxies}"
                ))
            }
        },
    )
    .await
}

/// Polls a controller's `/metrics` until its first status pass is done (the leader observes
/// `ferrogate_status_write_duration_seconds` after each pass); returns how long after
/// `started` that was seen (to 100 ms).
pub async fn first_status_pass(
    metrics_port: u16,
    started: Instant,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    crate::wait::until(
        "the controller's first status pass",
        timeout,
        || async move {
            let passes = metric(
                metrics_port,
                "ferrogate_status_write_duration_seconds_count",
            )
            .await
            .map_err(|e| e.to_string())?;
            if passes >= 1.0 {
                Ok(started.elapsed())
            } else {
                Err(format!("{passes} passes"))
            }
        },
    )
    .await
}
