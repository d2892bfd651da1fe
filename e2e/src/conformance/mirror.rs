//! Request mirroring (`mirrored_to`, `mirror_distribution`) checked in the echo backends'
//! stdout, and `websocket_echo`.

use super::util::{f64_or, u64_or};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::http::{check, resolve_target, send};
use super::util::{substitute, uuid};
use super::world::World;

/// How long a mirror backend may take to log a mirrored request.
const MIRROR_BUDGET: Duration = Duration::from_secs(10);
const CONSISTENCY: Duration = Duration::from_secs(30);

fn mirror_key(m: &Value) -> (String, String) {
    (
        m.get("backend")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        m.get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

/// How many times the echo pods of `backend` (pod-name prefix) in `namespace` logged
/// `target` since `since`. `None` when no such pod runs.
fn logged_count(
    world: &World,
    backend: &str,
    namespace: &str,
    target: &str,
    since: Instant,
) -> Option<usize> {
    let pods: Vec<_> = world
        .echoes
        .iter()
        .filter(|e| {
            e.namespace == namespace && (e.deployment == backend || e.pod.starts_with(backend))
        })
        .collect();
    if pods.is_empty() {
        return None;
    }
    Some(
        pods.iter()
            .map(|e| {
                e.echoed_targets_since(since)
                    .iter()
                    .filter(|t| *t == target)
                    .count()
            })
            .sum(),
    )
}

/// `mirrored_to`: every listed backend logged `target` since `since`, within 10 s.
pub async fn expect_mirrored(
    world: &World,
    mirrors: &Value,
    target: &str,
    since: Instant,
) -> Result<(), String> {
    let deadline = Instant::now() + MIRROR_BUDGET;
    let mirrors: Vec<(String, String)> = mirrors
        .as_array()
        .into_iter()
        .flatten()
        .map(mirror_key)
        .collect();
    loop {
        let mut missing = Vec::new();
        for (backend, ns) in &mirrors {
            match logged_count(world, backend, ns, target, since) {
                None => return Err(format!("mirror backend {ns}/{backend}: no such echo pod")),
                Some(0) => missing.push(format!("{ns}/{backend}")),
                Some(_) => {}
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "mirror backend(s) {} did not log a request to {target} within {}s",
                missing.join(", "),
                MIRROR_BUDGET.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `mirror_distribution`.
pub async fn mirror_distribution(world: &World, step: &Value) -> Result<(), String> {
    let target = resolve_target(world, step.get("target").unwrap_or(&Value::Null)).await?;
    let request_raw = step.get("request").cloned().unwrap_or(Value::Null);
    let expect_raw = step.get("expect_each").cloned().unwrap_or(Value::Null);
    let mirrors: Vec<(String, String, f64)> = step
        .get("mirrors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let (b, ns) = mirror_key(m);
            (b, ns, f64_or(m, "percent", 0.0))
        })
        .collect();
    let total = u64_or(step, "total_requests", 500) as usize;
    let concurrency = u64_or(step, "concurrency", 10).max(1) as usize;
    let stddevs = step
        .pointer("/tolerance/stddevs")
        .and_then(Value::as_f64)
        .unwrap_or(3.0);
    let attempts = u64_or(step, "max_attempts", 5).max(1);
    let pause = f64_or(step, "pause_between_attempts_seconds", 2.0);
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs_f64(pause)).await;
        }
        let request_id = uuid();
        let lookup = |n: &str| (n == "request_id").then(|| request_id.clone());
        let mut request = request_raw.clone();
        substitute(&mut request, &lookup);
        let mut expect = expect_raw.clone();
        substitute(&mut expect, &lookup);
        let path = request
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_string();
        let started = Instant::now();
        let semaphore = tokio::sync::Semaphore::new(concurrency);
        // Each request is repeated until it meets `expect_each` once.
        let results = futures::future::join_all((0..total).map(|_| async {
            let _permit = semaphore.acquire().await;
            let deadline = Instant::now() + CONSISTENCY;
            loop {
                let why = match send(&target, &request, None).await {
                    Ok((r, _)) => match check(&expect, &r, false) {
                        Ok(()) => return Ok(()),
                        Err(e) => e,
                    },
                    Err((e, _)) => e,
                };
                if Instant::now() >= deadline {
                    return Err(why);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }))
        .await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            last = format!("a request never met expect_each: {e}");
            continue;
        }
        // Mirrors are sent asynchronously: wait until every count is stable for 1 s.
        let settle_deadline = Instant::now() + MIRROR_BUDGET;
        let mut previous: Option<Vec<usize>> = None;
        let mut stable_since = Instant::now();
        let counts = loop {
            let mut counts = Vec::new();
            for (b, ns, _) in &mirrors {
                counts.push(
                    logged_count(world, b, ns, &path, started)
                        .ok_or_else(|| format!("mirror backend {ns}/{b}: no such echo pod"))?,
                );
            }
            if previous.as_ref() != Some(&counts) {
                previous = Some(counts.clone());
                stable_since = Instant::now();
            }
            if stable_since.elapsed() >= Duration::from_secs(1) || Instant::now() >= settle_deadline
            {
                break counts;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let mut bad = Vec::new();
        let mut summary = BTreeMap::new();
        for ((b, ns, percent), got) in mirrors.iter().zip(&counts) {
            let n = total as f64;
            let p = percent / 100.0;
            let mean = n * p;
            let margin = stddevs * (n * p * (1.0 - p)).sqrt();
            summary.insert(format!("{ns}/{b}"), *got);
            if (*got as f64) < mean - margin || (*got as f64) > mean + margin {
                bad.push(format!(
                    "{ns}/{b} logged {got} of {total} mirrored requests, want {mean:.1} ± {margin:.1} ({percent}%)"
                ));
            }
        }
        if bad.is_empty() {
            return Ok(());
        }
        last = bad.join("; ");
    }
    Err(format!("{last} (after {attempts} attempts)"))
}

fn ws_messages(step: &Value) -> Result<Vec<Message>, String> {
    step.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            if let Some(t) = m.get("text").and_then(Value::as_str) {
                Ok(Message::text(t.to_string()))
            } else if let Some(b) = m.get("binary").and_then(Value::as_array) {
                let bytes = b
                    .iter()
                    .map(|v| {
                        v.as_u64()
                            .and_then(|n| u8::try_from(n).ok())
                            .ok_or_else(|| format!("binary message byte {v} is not a byte"))
                    })
                    .collect::<Result<Vec<u8>, String>>()?;
                Ok(Message::binary(bytes))
            } else {
                Err(format!("websocket message {m} is neither text nor binary"))
            }
        })
        .collect()
}

async fn ws_exchange(
    addr: std::net::SocketAddr,
    url: &str,
    origin: Option<&str>,
    messages: &[Message],
) -> Result<(), String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("request {url}: {e}"))?;
    if let Some(o) = origin {
        request.headers_mut().insert(
            "Origin",
            HeaderValue::from_str(o).map_err(|e| format!("Origin {o:?}: {e}"))?,
        );
    }
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    for (i, m) in messages.iter().enumerate() {
        ws.send(m.clone())
            .await
            .map_err(|e| format!("message {}: send: {e}", i + 1))?;
        let got = loop {
            match ws.next().await {
                None => return Err(format!("message {}: connection closed", i + 1)),
                Some(Err(e)) => return Err(format!("message {}: receive: {e}", i + 1)),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(other)) => break other,
            }
        };
        if &got != m {
            return Err(format!("message {}: sent {m:?}, got back {got:?}", i + 1));
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// `websocket_echo`: eventually consistent (3 consecutive successes within 30 s).
pub async fn websocket_echo(world: &World, step: &Value) -> Result<(), String> {
    let target = resolve_target(world, step.get("target").unwrap_or(&Value::Null)).await?;
    let path = step.get("path").and_then(Value::as_str).unwrap_or("/");
    let host = step
        .get("host")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| target.addr.to_string());
    let url = format!("ws://{host}{path}");
    let origin = step.get("origin").and_then(Value::as_str);
    let messages = ws_messages(step)?;
    let deadline = Instant::now() + CONSISTENCY;
    let mut good = 0;
    loop {
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            ws_exchange(target.addr, &url, origin, &messages),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        match result {
            Ok(()) => {
                good += 1;
                if good >= 3 {
                    return Ok(());
                }
                continue;
            }
            Err(e) => {
                good = 0;
                if Instant::now() >= deadline {
                    return Err(format!(
                        "{url}: {e} (not consistent after {}s)",
                        CONSISTENCY.as_secs()
                    ));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
