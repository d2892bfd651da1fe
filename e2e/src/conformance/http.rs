//! HTTP traffic: `http` cases, `weighted_distribution`, `backend_header_consistency`.
//!
//! HTTP/1.1 requests are written by hand (one connection per request, `Connection: close`)
//! so the request target goes out exactly as the scenario writes it; HTTP/2 uses hyper.

use super::util::{f64_or, u64_or};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::status::gateway_address;
use super::tls::{TlsSettings, connect as tls_connect};
use super::util::{substitute, uuid};
use super::world::World;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONSISTENCY: Duration = Duration::from_secs(30);

/// A completed exchange.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    fn header_values(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn echo(&self) -> Option<Value> {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .filter(Value::is_object)
    }
}

/// Where a step sends traffic.
pub struct Target {
    /// Socket address.
    pub addr: SocketAddr,
    /// Scheme.
    pub scheme: String,
}

/// Resolves a `target` to a socket address (Gateway status address + manifest port).
pub async fn resolve_target(world: &World, target: &Value) -> Result<Target, String> {
    let gateway = target
        .get("gateway")
        .and_then(Value::as_str)
        .ok_or("target without gateway")?;
    let port = target
        .get("port")
        .and_then(Value::as_u64)
        .ok_or("target without port")? as u16;
    let ip = gateway_address(world, gateway).await?;
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| format!("Gateway {gateway} address {ip} is not an IP"))?;
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        scheme: target
            .get("scheme")
            .and_then(Value::as_str)
            .unwrap_or("http")
            .to_string(),
    })
}

/// Sends one request.
pub async fn send(
    target: &Target,
    req: &Value,
    tls: Option<&TlsSettings>,
) -> Result<(Resp, bool), (String, bool)> {
    let fut = send_inner(target, req, tls);
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(("request timed out".to_string(), false)),
    }
}

async fn send_inner(
    target: &Target,
    req: &Value,
    tls: Option<&TlsSettings>,
) -> Result<(Resp, bool), (String, bool)> {
    let method = req
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_string();
    let path = req
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_string();
    let host = req
        .get("host")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| target.addr.to_string());
    let mut headers: Vec<(String, String)> = Vec::new();
    for (k, v) in req
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        headers.push((
            k.clone(),
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string()),
        ));
    }
    let set: Vec<String> = req
        .get("backend_set_response_headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or_default()))
        .collect();
    headers.push(("X-Echo-Set-Header".into(), set.join(",")));
    let protocol = req.get("protocol").and_then(Value::as_str).unwrap_or("");
    let sni_default = host
        .rsplit_once(':')
        .map_or(host.as_str(), |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host.as_str()
            }
        })
        .to_string();
    let tls_settings = if target.scheme == "https" {
        Some(tls.cloned().unwrap_or(TlsSettings {
            server_name: None,
            trust: super::tls::Trust::Any,
            client: None,
        }))
    } else {
        None
    };
    match (protocol, &tls_settings) {
        ("H2", s) => {
            let s = s.clone().or_else(|| tls.cloned()).unwrap_or(TlsSettings {
                server_name: None,
                trust: super::tls::Trust::Any,
                client: None,
            });
            let (stream, requested) = tls_connect(target.addr, &s, &sni_default, &[b"h2"])
                .await
                .map_err(|(e, r)| (format!("TLS: {e}"), r))?;
            let flag = requested.load(std::sync::atomic::Ordering::SeqCst);
            h2_exchange(
                TokioIo::new(stream),
                "https",
                &method,
                &host,
                &path,
                &headers,
            )
            .await
            .map(|r| (r, flag))
            .map_err(|e| (e, flag))
        }
        ("H2C_PRIOR_KNOWLEDGE", _) => {
            let tcp = TcpStream::connect(target.addr)
                .await
                .map_err(|e| (format!("connect: {e}"), false))?;
            h2_exchange(TokioIo::new(tcp), "http", &method, &host, &path, &headers)
                .await
                .map(|r| (r, false))
                .map_err(|e| (e, false))
        }
        (_, Some(s)) => {
            let (stream, requested) = tls_connect(target.addr, s, &sni_default, &[b"http/1.1"])
                .await
                .map_err(|(e, r)| (format!("TLS: {e}"), r))?;
            let flag = requested.load(std::sync::atomic::Ordering::SeqCst);
            h1_exchange(stream, &method, &host, &path, &headers)
                .await
                .map(|r| (r, flag))
                .map_err(|e| (e, flag))
        }
        (_, None) => {
            let tcp = TcpStream::connect(target.addr)
                .await
                .map_err(|e| (format!("connect: {e}"), false))?;
            h1_exchange(tcp, &method, &host, &path, &headers)
                .await
                .map(|r| (r, false))
                .map_err(|e| (e, false))
        }
    }
}

async fn h1_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(String, String)],
) -> Result<Resp, String> {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    stream.flush().await.map_err(|e| format!("flush: {e}"))?;
    let mut buf = Vec::new();
    let read = stream.read_to_end(&mut buf).await;
    if let Err(e) = read {
        // A TLS peer that closes without close_notify still delivered a full answer.
        if (buf.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof) && buf.is_empty() {
            return Err(format!("read: {e}"));
        }
    }
    parse_h1(&buf, method == "HEAD")
}

fn parse_h1(buf: &[u8], head_only: bool) -> Result<Resp, String> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete response ({} bytes)", buf.len()))?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let raw = &buf[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(raw)
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        raw[..len.min(raw.len())].to_vec()
    } else {
        raw.to_vec()
    };
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..pos]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        raw = &raw[pos + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
    out
}

async fn h2_exchange<T>(
    io: T,
    scheme: &str,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(String, String)],
) -> Result<Resp, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .map_err(|e| format!("h2 handshake: {e}"))?;
    tokio::spawn(conn);
    let uri = format!("{scheme}://{host}{path}");
    let mut builder = hyper::Request::builder().method(method).uri(uri.as_str());
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request {uri}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("h2 request: {e}"))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("h2 body: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn status_ok(expected: &[u16], got: u16) -> bool {
    let timeouts = [408, 504];
    expected.contains(&got)
        || (expected.iter().any(|s| timeouts.contains(s)) && timeouts.contains(&got))
}

fn norm(s: &str, ignore_ws: bool) -> String {
    if ignore_ws {
        s.replace(' ', "")
    } else {
        s.to_string()
    }
}

/// Checks a response against an `expect` block.
pub fn check(expect: &Value, resp: &Resp, cert_requested: bool) -> Result<(), String> {
    let statuses: Vec<u16> = expect
        .get("status")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .map(|s| s as u16)
        .collect();
    if !statuses.is_empty() && !status_ok(&statuses, resp.status) {
        let snippet =
            String::from_utf8_lossy(&resp.body[..resp.body.len().min(160)]).replace('\n', " ");
        return Err(format!(
            "status {} want {statuses:?} (body: {snippet})",
            resp.status
        ));
    }
    if let Some(r) = expect.get("redirect") {
        check_redirect(r, resp)?;
    }
    if expect
        .get("client_certificate_requested")
        .and_then(Value::as_bool)
        == Some(true)
        && !cert_requested
    {
        return Err("server did not request a client certificate".into());
    }
    if !matches!(resp.status, 200 | 204) {
        return Ok(());
    }
    let echo = resp.echo();
    let field = |k: &str| {
        echo.as_ref()
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if expect.get("answered_by_gateway").and_then(Value::as_bool) == Some(true)
        && (!field("path").is_empty() || !field("namespace").is_empty())
    {
        return Err(format!(
            "answered by echo pod {} instead of the gateway",
            field("pod")
        ));
    }
    if let Some(b) = expect.get("backend").and_then(Value::as_str)
        && !field("pod").starts_with(b)
    {
        return Err(format!("answered by pod {:?}, want {b}-*", field("pod")));
    }
    if let Some(ns) = expect.get("namespace").and_then(Value::as_str)
        && field("namespace") != ns
    {
        return Err(format!(
            "backend namespace {:?}, want {ns:?}",
            field("namespace")
        ));
    }
    if let Some(br) = expect.get("backend_request") {
        let echo = echo.as_ref().ok_or("response is not an echo JSON body")?;
        check_backend_request(br, echo)?;
    }
    let ignore_ws = expect
        .get("ignore_whitespace_in_header_values")
        .and_then(Value::as_bool)
        == Some(true);
    for (k, v) in expect
        .get("response_headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let got = resp.header_values(k).join(",");
        if resp.header_values(k).is_empty()
            || norm(&got, ignore_ws) != norm(v.as_str().unwrap_or_default(), ignore_ws)
        {
            return Err(format!("response header {k}: {got:?}, want {v}"));
        }
    }
    for (k, vs) in expect
        .get("response_headers_one_of")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let got = resp.header_values(k).join(",");
        let ok =
            !resp.header_values(k).is_empty()
                && vs.as_array().into_iter().flatten().any(|v| {
                    norm(v.as_str().unwrap_or_default(), ignore_ws) == norm(&got, ignore_ws)
                });
        if !ok {
            return Err(format!("response header {k}: {got:?}, want one of {vs}"));
        }
    }
    for k in expect
        .get("response_absent_headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !resp.header_values(k).is_empty() {
            return Err(format!(
                "response header {k} present: {:?}",
                resp.header_values(k)
            ));
        }
    }
    Ok(())
}

fn check_backend_request(br: &Value, echo: &Value) -> Result<(), String> {
    let field = |k: &str| {
        echo.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if let Some(m) = br.get("method").and_then(Value::as_str)
        && field("method") != m
    {
        return Err(format!(
            "backend saw method {:?}, want {m}",
            field("method")
        ));
    }
    if let Some(p) = br.get("path").and_then(Value::as_str)
        && field("path") != p
    {
        return Err(format!("backend saw path {:?}, want {p:?}", field("path")));
    }
    if let Some(h) = br.get("host").and_then(Value::as_str)
        && field("host") != h
    {
        return Err(format!("backend saw host {:?}, want {h:?}", field("host")));
    }
    let headers: BTreeMap<String, Vec<String>> = echo
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            )
        })
        .collect();
    for (k, v) in br
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let want = v.as_str().unwrap_or_default();
        match headers.get(&k.to_ascii_lowercase()) {
            Some(vals) if vals.join(",") == want => {}
            Some(vals) => {
                return Err(format!(
                    "backend saw header {k}: {:?}, want {want:?}",
                    vals.join(",")
                ));
            }
            None => return Err(format!("backend did not see header {k} (want {want:?})")),
        }
    }
    for k in br
        .get("absent_headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(vals) = headers.get(&k.to_ascii_lowercase()) {
            return Err(format!("backend saw header {k}: {vals:?}, want absent"));
        }
    }
    if let Some(sni) = br.get("tls_server_name").and_then(Value::as_str) {
        let got = echo
            .pointer("/tls/serverName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if got != sni {
            return Err(format!("backend saw SNI {got:?}, want {sni:?}"));
        }
    }
    if let Some(pem) = br.get("tls_peer_certificate").and_then(Value::as_str) {
        let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        let found = echo
            .pointer("/tls/peerCertificates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|c| squash(c) == squash(pem));
        if !found {
            return Err("backend did not receive the expected client certificate".into());
        }
    }
    Ok(())
}

fn check_redirect(r: &Value, resp: &Resp) -> Result<(), String> {
    let location = resp
        .header_values("location")
        .first()
        .map(|s| s.to_string())
        .ok_or_else(|| format!("status {} without Location", resp.status))?;
    let (scheme, rest) = location
        .split_once("://")
        .ok_or_else(|| format!("Location {location:?} is not absolute"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p))
            if p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(']')
                || authority.starts_with('[') && authority.contains("]:") =>
        {
            (h.to_string(), p.parse::<u16>().ok())
        }
        _ => (authority.to_string(), None),
    };
    let want_scheme = r.get("scheme").and_then(Value::as_str);
    if let Some(s) = want_scheme
        && scheme != s
    {
        return Err(format!(
            "redirect scheme {scheme:?} want {s:?} (Location {location})"
        ));
    }
    if let Some(h) = r.get("host").and_then(Value::as_str)
        && host != h
    {
        return Err(format!(
            "redirect host {host:?} want {h:?} (Location {location})"
        ));
    }
    let default_port = match want_scheme.unwrap_or(scheme) {
        "https" => 443,
        _ => 80,
    };
    let want_port = r.get("port").and_then(|p| {
        p.as_u64()
            .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
    });
    match want_port {
        Some(p) => {
            if port != Some(p as u16) {
                return Err(format!(
                    "redirect port {port:?} want {p} (Location {location})"
                ));
            }
        }
        None => {
            if port.is_some_and(|p| p != default_port) {
                return Err(format!(
                    "redirect port {port:?} want none/{default_port} (Location {location})"
                ));
            }
        }
    }
    if let Some(p) = r.get("path").and_then(Value::as_str) {
        let got = if path.is_empty() { "/" } else { path };
        if got != p {
            return Err(format!(
                "redirect path {got:?} want {p:?} (Location {location})"
            ));
        }
    }
    Ok(())
}

/// Runs every case of an `http` step.
pub async fn http_step(world: &World, step: &Value) -> Result<(), String> {
    let cases = step
        .get("cases")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let parallel = step
        .get("parallel")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let run_case = |i: usize, case: Value| async move {
        run_http_case(world, step, &case).await.map_err(|e| {
            let req = case.get("request").cloned().unwrap_or(Value::Null);
            format!(
                "case {} ({} {}{}): {e}",
                i + 1,
                req.get("method").and_then(Value::as_str).unwrap_or("GET"),
                req.get("host")
                    .and_then(Value::as_str)
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
                req.get("path").and_then(Value::as_str).unwrap_or("/")
            )
        })
    };
    if parallel {
        let results =
            futures::future::join_all(cases.into_iter().enumerate().map(|(i, c)| run_case(i, c)))
                .await;
        results
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map(|_| ())
    } else {
        for (i, c) in cases.into_iter().enumerate() {
            run_case(i, c).await?;
        }
        Ok(())
    }
}

async fn run_http_case(world: &World, step: &Value, case: &Value) -> Result<(), String> {
    let target_v = case
        .get("target")
        .or_else(|| step.get("target"))
        .cloned()
        .unwrap_or(Value::Null);
    let target = resolve_target(world, &target_v).await?;
    let tls = if target.scheme == "https"
        || case.pointer("/request/protocol").and_then(Value::as_str) == Some("H2")
    {
        Some(super::tls::settings(
            world,
            step.get("tls"),
            case.get("tls"),
        )?)
    } else {
        None
    };
    let mode = case
        .get("mode")
        .or_else(|| step.get("mode"))
        .and_then(Value::as_str)
        .unwrap_or("eventually")
        .to_string();
    let expect_raw = case.get("expect").cloned().unwrap_or(Value::Null);
    let request_raw = case.get("request").cloned().unwrap_or(Value::Null);
    let deadline = Instant::now() + CONSISTENCY;
    let mut good = 0;
    let mut last = String::from("no attempt");
    let request_id = uuid();
    let case_started = Instant::now();
    let mut last_path: String;
    loop {
        let attempt_uuid = uuid();
        let lookup = |n: &str| match n {
            "request_id" => Some(request_id.clone()),
            "uuid" => Some(attempt_uuid.clone()),
            _ => None,
        };
        let mut request = request_raw.clone();
        substitute(&mut request, &lookup);
        let mut expect = expect_raw.clone();
        substitute(&mut expect, &lookup);
        last_path = request
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("/")
            .to_string();
        let result = send(&target, &request, tls.as_ref()).await;
        let ok = match mode.as_str() {
            "expect_failure" => match &result {
                Ok((r, _)) if r.status == 200 => return Err("got 200, want a failure".to_string()),
                Ok((r, _)) if [408, 504].contains(&r.status) => {
                    last = format!("status {}", r.status);
                    false
                }
                Ok(_) => true,
                Err((e, _)) => {
                    last = e.clone();
                    false
                }
            },
            "expect_tls_failure" => match &result {
                Ok((r, _)) => {
                    last = format!("request completed with status {}", r.status);
                    false
                }
                Err((e, requested)) => {
                    if expect
                        .get("client_certificate_requested")
                        .and_then(Value::as_bool)
                        == Some(true)
                        && !requested
                    {
                        last = format!("{e}, but no client certificate was requested");
                        false
                    } else {
                        true
                    }
                }
            },
            _ => match &result {
                Ok((r, requested)) => match check(&expect, r, *requested) {
                    Ok(()) => true,
                    Err(e) => {
                        last = e;
                        false
                    }
                },
                Err((e, _)) => {
                    last = e.clone();
                    false
                }
            },
        };
        if ok {
            good += 1;
            if good >= 3 {
                if let Some(mirrors) = expect_raw.get("mirrored_to") {
                    super::mirror::expect_mirrored(world, mirrors, &last_path, case_started)
                        .await?;
                }
                return Ok(());
            }
            continue;
        }
        good = 0;
        if Instant::now() >= deadline {
            return Err(format!(
                "{last} (not consistent after {}s)",
                CONSISTENCY.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One distribution sample: the answering pod, or why the sample failed.
async fn sample(
    world: &World,
    step: &Value,
    target: &Target,
    protocol: &str,
) -> Result<String, String> {
    match protocol {
        "http" => {
            let mut request = step.get("request").cloned().unwrap_or(Value::Null);
            if let Some(h) = step.pointer("/entropy/header").and_then(Value::as_str)
                && super::util::random_u64().is_multiple_of(2)
            {
                request["headers"][h] = (super::util::random_u64() % 10000).to_string().into();
            }
            let (resp, _) = send(target, &request, None).await.map_err(|(e, _)| e)?;
            if let Some(m) = step.get("each_response_must_match") {
                let mut m = m.clone();
                if let (Some(h), Some(map)) = (
                    step.pointer("/entropy/header").and_then(Value::as_str),
                    request.get("headers"),
                ) {
                    let _ = (h, map);
                    if let Some(obj) = m
                        .pointer_mut("/backend_request/headers")
                        .and_then(Value::as_object_mut)
                    {
                        obj.remove(h);
                    }
                }
                check(&m, &resp, false)?;
            }
            resp.echo()
                .and_then(|e| e.get("pod").and_then(Value::as_str).map(str::to_string))
                .ok_or_else(|| "answer has no pod".to_string())
        }
        "grpc" => super::grpc::sample(world, step, target).await,
        "tcp" => super::l4::tcp_sample(target, step).await,
        "udp" => super::l4::udp_sample(target, step).await,
        other => Err(format!("distribution protocol {other} not implemented")),
    }
}

/// Deployment name of a pod (`<deployment>-<hash>-<hash>`).
pub fn deployment_of(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    if parts.len() > 2 {
        parts[..parts.len() - 2].join("-")
    } else {
        pod.to_string()
    }
}

/// `weighted_distribution`.
pub async fn weighted_distribution(world: &World, step: &Value) -> Result<(), String> {
    let protocol = step
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("http")
        .to_string();
    let target = resolve_target(world, step.get("target").unwrap_or(&Value::Null)).await?;
    let weights: BTreeMap<String, f64> = step
        .get("expected_weights")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0)))
        .collect();
    let total = u64_or(step, "total_requests", 500) as usize;
    let concurrency = u64_or(step, "concurrency", 10).max(1) as usize;
    let tolerance = f64_or(step, "tolerance", 0.05);
    let attempts = u64_or(step, "max_attempts", 10);
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let semaphore = tokio::sync::Semaphore::new(concurrency);
        let failed = std::sync::atomic::AtomicBool::new(false);
        // A failed sample fails the round: later samples are not sent.
        let samples = futures::future::join_all((0..total).map(|_| async {
            let _permit = semaphore.acquire().await;
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                return Err("round abandoned".to_string());
            }
            let r = sample(world, step, &target, &protocol).await;
            if r.is_err() {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            r
        }))
        .await;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut failure = None;
        for s in samples {
            match s {
                Ok(pod) => *counts.entry(deployment_of(&pod)).or_default() += 1,
                Err(e) if e != "round abandoned" => failure = Some(e),
                Err(_) => {}
            }
        }
        if let Some(e) = failure {
            last = format!("a sample failed: {e}");
            continue;
        }
        let unexpected: Vec<&String> = counts
            .keys()
            .filter(|k| !weights.contains_key(*k))
            .collect();
        if !unexpected.is_empty() {
            last = format!("unexpected backends {unexpected:?} in {counts:?}");
            continue;
        }
        let with_weight = weights.values().filter(|w| **w > 0.0).count();
        if counts.len() != with_weight {
            last = format!(
                "{} backends got traffic, want {with_weight}: {counts:?}",
                counts.len()
            );
            continue;
        }
        let mut bad = None;
        for (b, w) in &weights {
            let share = *counts.get(b).unwrap_or(&0) as f64 / total as f64;
            if (share - w).abs() > tolerance {
                bad = Some(format!(
                    "{b} got {share:.3}, want {w} ± {tolerance}: {counts:?}"
                ));
            }
        }
        match bad {
            None => return Ok(()),
            Some(b) => last = b,
        }
    }
    Err(format!("{last} (after {attempts} rounds)"))
}

/// `backend_header_consistency`.
pub async fn backend_header_consistency(world: &World, step: &Value) -> Result<(), String> {
    let target = resolve_target(world, step.get("target").unwrap_or(&Value::Null)).await?;
    let request = step.get("request").cloned().unwrap_or(Value::Null);
    let header = step
        .pointer("/expect/header")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    // First one eventually-consistent 200.
    let first = serde_json::json!({"status": [200]});
    super::util::poll(CONSISTENCY, Duration::from_millis(100), || async {
        let (r, _) = send(&target, &request, None).await.map_err(|(e, _)| e)?;
        check(&first, &r, false)
    })
    .await?;
    let count = u64_or(step, "count", 100);
    for i in 0..count {
        let (r, _) = send(&target, &request, None)
            .await
            .map_err(|(e, _)| format!("request {}: {e}", i + 1))?;
        let echo = r
            .echo()
            .ok_or_else(|| format!("request {}: status {} without echo body", i + 1, r.status))?;
        let values: Vec<String> = echo
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.to_ascii_lowercase() == header)
            .flat_map(|(_, v)| v.as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if values.len() != 1 {
            return Err(format!(
                "request {}: backend saw {header} values {values:?}, want exactly one",
                i + 1
            ));
        }
        let pod = echo.get("pod").and_then(Value::as_str).unwrap_or_default();
        if !pod.starts_with(&values[0]) {
            return Err(format!(
                "request {}: pod {pod} does not start with {header} value {}",
                i + 1,
                values[0]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_plain() {
        let r = parse_h1(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(r.body, b"abc");
        let r = parse_h1(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, b"no".as_slice()));
        assert_eq!(
            deployment_of("infra-backend-v1-abc-def"),
            "infra-backend-v1"
        );
    }
}
