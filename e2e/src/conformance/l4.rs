//! TCP, TLS-stream and UDP traffic steps against the TCP/UDP echo roles.

use super::util::{f64_or, u64_or};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

use super::http::{Target, deployment_of, resolve_target};
use super::tls::{TlsSettings, Trust};
use super::world::World;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

const POLL: Duration = Duration::from_millis(100);
const BUDGET: Duration = Duration::from_secs(30);

async fn open(target: &Target, tls: Option<&TlsSettings>) -> Result<Box<dyn Io>, String> {
    match tls {
        Some(s) => {
            let (stream, _) = super::tls::connect(target.addr, s, "", &[])
                .await
                .map_err(|(e, _)| format!("TLS: {e}"))?;
            Ok(Box::new(stream))
        }
        None => Ok(Box::new(
            TcpStream::connect(target.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?,
        )),
    }
}

async fn read_line(
    reader: &mut BufReader<Box<dyn Io>>,
    line: &mut String,
) -> Result<String, String> {
    line.clear();
    let n = reader
        .read_line(line)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        Err("connection closed".to_string())
    } else {
        Ok(line.clone())
    }
}

struct Conversation {
    welcome: String,
    pong: String,
    is_tls: String,
    test: Value,
}

async fn converse(
    target: &Target,
    tls: Option<&TlsSettings>,
    full: bool,
    timeout: Duration,
) -> Result<Conversation, String> {
    let fut = async {
        let stream = open(target, tls).await?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let welcome = read_line(&mut reader, &mut line).await?;
        let (mut pong, mut is_tls) = (String::new(), String::new());
        if full {
            reader
                .get_mut()
                .write_all(b"PING\n")
                .await
                .map_err(|e| format!("write: {e}"))?;
            pong = read_line(&mut reader, &mut line).await?.trim().to_string();
            reader
                .get_mut()
                .write_all(b"IS_TLS\n")
                .await
                .map_err(|e| format!("write: {e}"))?;
            is_tls = read_line(&mut reader, &mut line).await?.trim().to_string();
        }
        reader
            .get_mut()
            .write_all(b"TEST\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let test_line = read_line(&mut reader, &mut line).await?;
        let test: Value = serde_json::from_str(test_line.trim())
            .map_err(|e| format!("TEST answer {test_line:?}: {e}"))?;
        Ok(Conversation {
            welcome,
            pong,
            is_tls,
            test,
        })
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// One weighted-distribution sample over TCP.
pub async fn tcp_sample(target: &Target, step: &Value) -> Result<String, String> {
    let timeout = step
        .pointer("/sample/per_sample_timeout_seconds")
        .and_then(Value::as_u64)
        .unwrap_or(10);
    let c = converse(target, None, false, Duration::from_secs(timeout)).await?;
    Ok(c.test
        .get("pod")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

/// Sends one DNS query and waits for a DNS response with the same ID (any answer counts).
async fn dns_exchange(
    target: &Target,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<(), String> {
    let id: u16 = (std::process::id() as u16) ^ 0x5a5a;
    let mut query = Vec::with_capacity(64);
    query.extend(id.to_be_bytes());
    query.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    for label in name.split('.').filter(|l| !l.is_empty()) {
        query.push(label.len() as u8);
        query.extend(label.as_bytes());
    }
    query.push(0);
    query.extend(qtype.to_be_bytes());
    query.extend(1u16.to_be_bytes()); // IN
    let socket = UdpSocket::bind(if target.addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .await
    .map_err(|e| format!("bind: {e}"))?;
    socket
        .connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    socket
        .send(&query)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(timeout, socket.recv(&mut buf))
        .await
        .map_err(|_| "no DNS reply".to_string())?
        .map_err(|e| format!("recv: {e}"))?;
    if n < 12 || buf[..2] != id.to_be_bytes() || buf[2] & 0x80 == 0 {
        return Err(format!("{n} bytes back, not a DNS response to the query"));
    }
    Ok(())
}

async fn udp_exchange(
    target: &Target,
    payload: &str,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let bind = if target.addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    socket
        .connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    socket
        .send(payload.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(timeout, socket.recv(&mut buf))
        .await
        .map_err(|_| "no reply".to_string())?
        .map_err(|e| format!("recv: {e}"))?;
    buf.truncate(n);
    Ok(buf)
}

/// One weighted-distribution sample over UDP.
pub async fn udp_sample(target: &Target, step: &Value) -> Result<String, String> {
    let timeout = step
        .pointer("/sample/per_sample_timeout_seconds")
        .and_then(Value::as_u64)
        .unwrap_or(2);
    let payload = step
        .pointer("/sample/payload")
        .and_then(Value::as_str)
        .unwrap_or("ping");
    let reply = udp_exchange(target, payload, Duration::from_secs(timeout)).await?;
    let v: Value = serde_json::from_slice(&reply).map_err(|e| format!("reply is not JSON: {e}"))?;
    Ok(v.get("pod")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// Executes one L4 step.
pub async fn l4_step(world: &World, step: &Value) -> Result<(), String> {
    let kind = s(step, "step");
    let target = resolve_target(world, step.get("target").unwrap_or(&Value::Null)).await?;
    let tls = match step.get("tls") {
        Some(t) => Some(super::tls::settings(world, Some(t), None)?),
        None => None,
    };
    let expect = step.get("expect").cloned().unwrap_or(Value::Null);
    match kind {
        "tcp_echo" => {
            let deadline = Instant::now() + BUDGET;
            let c = loop {
                match converse(&target, tls.as_ref(), true, Duration::from_secs(10)).await {
                    Ok(c) => break c,
                    Err(e) => {
                        if Instant::now() >= deadline {
                            return Err(format!("{e} (no complete exchange in 30s)"));
                        }
                        tokio::time::sleep(POLL).await;
                    }
                }
            };
            if let Some(w) = expect.get("welcome").and_then(Value::as_str)
                && c.welcome != w
            {
                return Err(format!("welcome {:?}, want {w:?}", c.welcome));
            }
            if let Some(p) = expect.get("ping_reply").and_then(Value::as_str)
                && c.pong != p
            {
                return Err(format!("PING answer {:?}, want {p}", c.pong));
            }
            if let Some(t) = expect.get("is_tls").and_then(Value::as_bool)
                && c.is_tls != t.to_string()
            {
                return Err(format!("IS_TLS answer {:?}, want {t}", c.is_tls));
            }
            if let Some(ns) = expect.get("namespace").and_then(Value::as_str)
                && s(&c.test, "namespace") != ns
            {
                return Err(format!(
                    "TEST namespace {:?}, want {ns}",
                    s(&c.test, "namespace")
                ));
            }
            if let Some(b) = expect.get("backend").and_then(Value::as_str)
                && !s(&c.test, "pod").starts_with(&format!("{b}-"))
            {
                return Err(format!("TEST pod {:?}, want {b}-*", s(&c.test, "pod")));
            }
            if let Some(sni) = expect
                .get("backend_tls_server_name")
                .and_then(Value::as_str)
            {
                let got = c
                    .test
                    .pointer("/tls/serverName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if got != sni {
                    return Err(format!("backend saw SNI {got:?}, want {sni:?}"));
                }
            }
            Ok(())
        }
        "tcp_connect" => {
            super::util::poll(BUDGET, POLL, || async {
                TcpStream::connect(target.addr)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("connect {}: {e}", target.addr))
            })
            .await
        }
        "tcp_echo_probe" => {
            super::util::poll(BUDGET, POLL, || async {
                let c = converse(&target, None, false, Duration::from_secs(10)).await?;
                if s(&c.test, "pod").is_empty() {
                    Err("TEST answer without pod".into())
                } else {
                    Ok(())
                }
            })
            .await
        }
        "tcp_samples" => {
            let count = u64_or(step, "count", 100);
            let timeout = Duration::from_secs(u64_or(step, "per_request_timeout_seconds", 5));
            let prefix = s(&expect, "pod_name_prefix");
            let never = expect.get("never_pod_name_prefix").and_then(Value::as_str);
            for i in 0..count {
                let c = converse(&target, None, false, timeout)
                    .await
                    .map_err(|e| format!("sample {}: {e}", i + 1))?;
                let pod = s(&c.test, "pod");
                if !pod.starts_with(prefix) || never.is_some_and(|n| pod.starts_with(n)) {
                    return Err(format!("sample {}: pod {pod:?}, want {prefix}*", i + 1));
                }
            }
            Ok(())
        }
        "tls_connection_rejected" => {
            let settings = TlsSettings {
                server_name: step
                    .get("server_name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                trust: Trust::Any,
                client: None,
            };
            super::util::poll(BUDGET, POLL, || async {
                match super::tls::connect(target.addr, &settings, "", &[]).await {
                    Ok(_) => Err("TLS handshake succeeded".to_string()),
                    Err((e, _)) => {
                        let text = e.to_string().to_ascii_lowercase();
                        let rejected = matches!(
                            e.kind(),
                            std::io::ErrorKind::UnexpectedEof
                                | std::io::ErrorKind::ConnectionReset
                                | std::io::ErrorKind::ConnectionAborted
                        ) || text.contains("eof")
                            || text.contains("reset");
                        if rejected {
                            Ok(())
                        } else {
                            Err(format!("handshake failed otherwise: {e}"))
                        }
                    }
                }
            })
            .await
        }
        "dns_query" => {
            let question = step.get("question").cloned().unwrap_or(Value::Null);
            let name = s(&question, "name").trim_end_matches('.').to_string();
            let qtype: u16 = match s(&question, "type") {
                "AAAA" => 28,
                "TXT" => 16,
                _ => 1,
            };
            let interval = Duration::from_secs_f64(f64_or(step, "poll_interval_seconds", 1.0));
            let budget = Duration::from_secs_f64(f64_or(step, "timeout_seconds", 60.0));
            super::util::poll(budget, interval, || async {
                dns_exchange(&target, &name, qtype, Duration::from_secs(2)).await
            })
            .await
        }
        "udp_echo" => {
            let payload = s(step, "payload").to_string();
            super::util::poll(BUDGET, POLL, || async {
                let reply = udp_exchange(&target, &payload, Duration::from_secs(2)).await?;
                if expect.get("any_reply").and_then(Value::as_bool) == Some(true) {
                    return Ok(());
                }
                let v: Value = serde_json::from_slice(&reply)
                    .map_err(|e| format!("reply is not JSON: {e}"))?;
                for k in ["service", "namespace"] {
                    if let Some(want) = expect.get(k).and_then(Value::as_str)
                        && s(&v, k) != want
                    {
                        return Err(format!("reply {k} {:?}, want {want}", s(&v, k)));
                    }
                }
                Ok(())
            })
            .await
        }
        "udp_samples" => {
            let payload = s(step, "payload").to_string();
            let batch = u64_or(step, "batch", 20);
            let per = Duration::from_secs_f64(f64_or(step, "per_datagram_timeout_seconds", 2.0));
            let interval = Duration::from_secs_f64(f64_or(step, "poll_interval_seconds", 1.0));
            let budget = Duration::from_secs_f64(f64_or(step, "timeout_seconds", 60.0));
            let want = s(&expect, "backend").to_string();
            let deadline = Instant::now() + budget;
            let mut last = String::new();
            loop {
                let mut clean = true;
                for _ in 0..batch {
                    match udp_exchange(&target, &payload, per).await.and_then(|r| {
                        serde_json::from_slice::<Value>(&r).map_err(|e| e.to_string())
                    }) {
                        Ok(v) => {
                            let pod = s(&v, "pod");
                            if deployment_of(pod) != want {
                                return Err(format!("reply from pod {pod:?}, want {want}"));
                            }
                        }
                        Err(e) => {
                            last = e;
                            clean = false;
                            break;
                        }
                    }
                }
                if clean {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "{last} (no clean batch within {}s)",
                        budget.as_secs()
                    ));
                }
                tokio::time::sleep(interval).await;
            }
        }
        other => Err(format!("step type {other} not implemented")),
    }
}
