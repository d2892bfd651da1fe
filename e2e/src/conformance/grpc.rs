//! gRPC traffic to the echo service over cleartext HTTP/2 (hand-rolled unary calls on hyper).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

use super::http::{Target, resolve_target};
use super::world::World;

/// What the echo backend reported.
#[derive(Debug, Default)]
pub struct Assertions {
    /// `/package.Service/Method`.
    pub fully_qualified_method: String,
    /// Context namespace.
    pub namespace: String,
    /// Context pod.
    pub pod: String,
}

const CODES: &[&str] = &[
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

fn http_to_code(status: u16) -> &'static str {
    match status {
        400 => "Internal",
        401 => "Unauthenticated",
        403 => "PermissionDenied",
        404 => "Unimplemented",
        429 | 502 | 503 | 504 => "Unavailable",
        _ => "Unknown",
    }
}

/// One unary call; returns the status code name and, for OK, the decoded assertions.
pub async fn call(
    target: &Target,
    request: &Value,
    timeout: Duration,
) -> Result<(String, Option<Assertions>), String> {
    tokio::time::timeout(timeout, call_inner(target, request))
        .await
        .map_err(|_| "gRPC call timed out".to_string())?
}

async fn call_inner(
    target: &Target,
    request: &Value,
) -> Result<(String, Option<Assertions>), String> {
    let service = request
        .get("service")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("Echo");
    let authority = request
        .get("authority")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| target.addr.to_string());
    let tcp = TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
    tokio::spawn(conn);
    let uri = format!("http://{authority}/{service}/{method}");
    let mut builder = hyper::Request::builder()
        .method("POST")
        .uri(uri.as_str())
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in request
        .get("metadata")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        builder = builder.header(k.to_ascii_lowercase(), v.as_str().unwrap_or_default());
    }
    // An empty EchoRequest: no compression flag, zero length.
    let req = builder
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .map_err(|e| format!("request {uri}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("h2 request: {e}"))?;
    let http_status = resp.status().as_u16();
    let header_status = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let collected = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?;
    let trailer_status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = collected.to_bytes();
    let code = match trailer_status.or(header_status) {
        Some(s) => s
            .parse::<usize>()
            .ok()
            .and_then(|n| CODES.get(n))
            .copied()
            .unwrap_or("Unknown")
            .to_string(),
        None if http_status != 200 => http_to_code(http_status).to_string(),
        None => "Internal".to_string(),
    };
    if code != "OK" {
        return Ok((code, None));
    }
    if body.len() < 5 {
        return Err("OK without a response message".into());
    }
    Ok((code, Some(decode_response(&body[5..])?)))
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long".into())
}

/// Length-delimited fields of a message, by field number.
fn fields(buf: &[u8]) -> Result<Vec<(u64, &[u8])>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos)?;
        match key & 7 {
            0 => {
                read_varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = read_varint(buf, &mut pos)? as usize;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                out.push((key >> 3, &buf[pos..end]));
                pos = end;
            }
            w => return Err(format!("unsupported wire type {w}")),
        }
    }
    Ok(out)
}

fn decode_response(buf: &[u8]) -> Result<Assertions, String> {
    let mut a = Assertions::default();
    for (n, assertions) in fields(buf)? {
        if n != 1 {
            continue;
        }
        for (m, v) in fields(assertions)? {
            match m {
                1 => a.fully_qualified_method = String::from_utf8_lossy(v).to_string(),
                4 => {
                    for (c, x) in fields(v)? {
                        match c {
                            1 => a.namespace = String::from_utf8_lossy(x).to_string(),
                            4 => a.pod = String::from_utf8_lossy(x).to_string(),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(a)
}

fn check(expect: &Value, code: &str, a: Option<&Assertions>) -> Result<(), String> {
    let want = expect.get("code").and_then(Value::as_str).unwrap_or("OK");
    if code != want {
        return Err(format!("gRPC code {code}, want {want}"));
    }
    let Some(a) = a else { return Ok(()) };
    if let Some(m) = expect.get("fully_qualified_method").and_then(Value::as_str)
        && a.fully_qualified_method != m
    {
        return Err(format!(
            "backend saw method {:?}, want {m}",
            a.fully_qualified_method
        ));
    }
    if let Some(b) = expect.get("backend").and_then(Value::as_str)
        && !a.pod.starts_with(b)
    {
        return Err(format!("answered by pod {:?}, want {b}-*", a.pod));
    }
    if let Some(ns) = expect.get("namespace").and_then(Value::as_str)
        && a.namespace != ns
    {
        return Err(format!("backend namespace {:?}, want {ns}", a.namespace));
    }
    Ok(())
}

/// `grpc` step.
pub async fn grpc_step(world: &World, step: &Value) -> Result<(), String> {
    for (i, case) in step
        .get("cases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let target_v = case
            .get("target")
            .or_else(|| step.get("target"))
            .cloned()
            .unwrap_or(Value::Null);
        let target = resolve_target(world, &target_v).await?;
        let mode = case
            .get("mode")
            .or_else(|| step.get("mode"))
            .and_then(Value::as_str)
            .unwrap_or("eventually");
        let request = case.get("request").cloned().unwrap_or(Value::Null);
        let expect = case.get("expect").cloned().unwrap_or(Value::Null);
        let label = format!(
            "case {} ({})",
            i + 1,
            request.get("method").and_then(Value::as_str).unwrap_or("?")
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut good = 0;
        let mut last = String::new();
        loop {
            let result = call(&target, &request, Duration::from_secs(10)).await;
            let ok = match (mode, &result) {
                ("expect_failure", Ok((code, _))) if code == "OK" => {
                    return Err(format!("{label}: got OK, want a failure"));
                }
                ("expect_failure", Ok(_)) => true,
                (_, Ok((code, a))) => match check(&expect, code, a.as_ref()) {
                    Ok(()) => true,
                    Err(e) => {
                        last = e;
                        false
                    }
                },
                (_, Err(e)) => {
                    last = e.clone();
                    false
                }
            };
            if ok {
                good += 1;
                if good >= 3 {
                    break;
                }
                continue;
            }
            good = 0;
            if Instant::now() >= deadline {
                return Err(format!("{label}: {last} (not consistent after 30s)"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// One weighted-distribution sample: the answering pod.
pub async fn sample(_world: &World, step: &Value, target: &Target) -> Result<String, String> {
    let mut request = step.get("request").cloned().unwrap_or(Value::Null);
    if let Some(m) = step.pointer("/entropy/metadata").and_then(Value::as_str)
        && super::util::random_u64().is_multiple_of(2)
    {
        request["metadata"][m] = (super::util::random_u64() % 10000).to_string().into();
    }
    let timeout = step
        .pointer("/sample/per_sample_timeout_seconds")
        .and_then(Value::as_u64)
        .unwrap_or(10);
    let (code, a) = call(target, &request, Duration::from_secs(timeout)).await?;
    if code != "OK" {
        return Err(format!("gRPC code {code}"));
    }
    Ok(a.map(|a| a.pod).unwrap_or_default())
}
