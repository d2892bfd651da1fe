//! Request handling: routing and the `/health`, `/status/`, `/retry/` and echo
//! endpoints, mirroring upstream echo-basic.
//!
//! Upstream routes with a Go `ServeMux` on the HTTP (and HTTPS) port only; its
//! H2C port sends every HTTP/2 request straight to the echo handler, so `/health`
//! or `/status/404` there are echoed too. We keep that split.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, COOKIE, HOST, HeaderValue, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode, Version};

use super::duration::parse_go_duration;
use super::headers::{apply_echo_set_header, canonical_name};
use super::query::{first_value, percent_decode};
use super::report::{EchoedRequest, TlsAssertions};
use super::server::EchoState;
use super::websocket;

pub(crate) type Resp = Response<Full<Bytes>>;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    Http,
    H2c,
    /// TLS port: routed like the HTTP port, echoes carry the `tls` object.
    Https,
}

/// Per-connection facts the handler needs.
pub(crate) struct ConnInfo {
    pub(crate) port: Port,
    pub(crate) remote: SocketAddr,
    /// Set to make the connection close with a RST (see `ResettableStream`).
    pub(crate) reset: Arc<AtomicBool>,
    /// Negotiated TLS facts on the HTTPS port.
    pub(crate) tls: Option<Arc<TlsAssertions>>,
}

/// Returned to hyper to drop the connection without answering.
#[derive(Debug)]
pub(crate) struct AbortConnection;

impl std::fmt::Display for AbortConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection aborted by the retry simulator")
    }
}

impl std::error::Error for AbortConnection {}

pub(crate) async fn handle(
    state: Arc<EchoState>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Result<Resp, AbortConnection> {
    if conn.port == Port::H2c {
        // Upstream answers 400 to anything that is neither HTTP/2 nor an h2c
        // upgrade. We do not perform the upgrade; ignoring `Upgrade` is legal
        // HTTP, so such requests are echoed over HTTP/1.1.
        let upgrade = req
            .headers()
            .get("upgrade")
            .is_some_and(|v| v.as_bytes() == b"h2c");
        if req.version() != Version::HTTP_2 && !upgrade {
            return Ok(text(StatusCode::BAD_REQUEST, "Expected h2c request"));
        }
        return Ok(echo(&state, &conn, &req).await);
    }

    // Go's mux matches the decoded path after upstream replaced every `//`.
    let raw_path = req.uri().path();
    let path = percent_decode(raw_path, false)
        .unwrap_or_else(|| raw_path.to_owned())
        .replace("//", "/");
    match path.as_str() {
        "/health" => Ok(text(StatusCode::OK, "OK")),
        // Go's websocket handler answers 400 to requests that are not a handshake.
        "/ws" => Ok(websocket::upgrade(req, conn.remote)
            .unwrap_or_else(|| text(StatusCode::BAD_REQUEST, "Bad Request"))),
        // Go's mux redirects a subtree root named without its trailing slash.
        "/status" | "/retry" => Ok(redirect(&path, req.uri().query())),
        p if p.starts_with("/status/") => Ok(status(&request_target(&req))),
        p if p.starts_with("/retry/") => retry(&state, &conn, &req).await,
        _ => Ok(echo(&state, &conn, &req).await),
    }
}

/// The raw target as received; for HTTP/2 that is `:path` (hyper puts scheme
/// and authority into the URI too).
fn request_target<B>(req: &Request<B>) -> String {
    if req.version() == Version::HTTP_2 {
        req.uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned()
    } else {
        req.uri().to_string()
    }
}

/// `/status/<3 digits>` answers that status with an empty body. Upstream matches
/// the raw target, so any query or doubled slash yields 400.
fn status(target: &str) -> Resp {
    let digits = target
        .strip_prefix("/status/")
        .filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()));
    let code = digits.and_then(|d| d.parse::<u16>().ok()).unwrap_or(400);
    // Go sends a 1xx as an interim response and then defaults the final one to 200.
    let code = if code < 200 { 200 } else { code };
    let mut resp = Response::new(Full::default());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    resp
}

/// Retry simulator: the first `succeedAfter` attempts per `uuid` fail, later
/// ones are echoed.
async fn retry(
    state: &EchoState,
    conn: &ConnInfo,
    req: &Request<Incoming>,
) -> Result<Resp, AbortConnection> {
    let query = req.uri().query();
    let Some(uuid) = first_value(query, "uuid").filter(|u| !u.is_empty()) else {
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "missing uuid query parameter",
        ));
    };
    let Some(succeed_after) =
        first_value(query, "succeedAfter").and_then(|v| v.parse::<u64>().ok())
    else {
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "succeedAfter must be an integer",
        ));
    };
    if state.retries.record(&uuid) >= succeed_after {
        return Ok(echo(state, conn, req).await);
    }
    if let Some(delay) = first_value(query, "delayRetry").filter(|d| !d.is_empty()) {
        match parse_go_duration(&delay) {
            Ok(delay) => tokio::time::sleep(delay).await,
            Err(message) => return Ok(error_json(StatusCode::BAD_REQUEST, &message)),
        }
    }
    let code = first_value(query, "responseCode").and_then(|c| c.parse::<u16>().ok());
    if let Some(code) = code.and_then(|c| StatusCode::from_u16(c).ok()) {
        let mut resp = Response::new(Full::default());
        *resp.status_mut() = code;
        return Ok(resp);
    }
    // Only HTTP/1 connections get the RST: on HTTP/2 the failed request becomes
    // a stream reset and the other streams must survive.
    if req.version() != Version::HTTP_2 {
        conn.reset.store(true, Ordering::Relaxed);
    }
    Err(AbortConnection)
}

async fn echo<B>(state: &EchoState, conn: &ConnInfo, req: &Request<B>) -> Resp {
    let target = request_target(req);
    // Mirroring checks search the backend logs for exactly this line. A closed
    // stdout must not fail the request, hence no `println!`.
    let _ = writeln!(
        std::io::stdout(),
        "Echoing back request made to {target} to client ({})",
        conn.remote
    );

    if let Some(delay) = first_value(req.uri().query(), "delay").filter(|d| !d.is_empty()) {
        match parse_go_duration(&delay) {
            Ok(delay) => tokio::time::sleep(delay).await,
            Err(message) => return error_json(StatusCode::INTERNAL_SERVER_ERROR, &message),
        }
    }

    let echoed = EchoedRequest {
        path: target,
        host: request_host(req),
        method: req.method().to_string(),
        proto: proto(req.version()).to_owned(),
        headers: echoed_headers(req),
        namespace: state.identity.namespace.clone(),
        ingress: state.identity.ingress.clone(),
        service: state.identity.service.clone(),
        pod: state.identity.pod.clone(),
        http_port: state.http_port.clone(),
        tls: conn.tls.as_deref().cloned(),
    };
    let body = to_go_indented_json(&echoed);

    let mut resp = Response::new(Full::new(Bytes::from(body)));
    apply_echo_set_header(req.headers(), resp.headers_mut());
    // Set after the echo headers, like upstream, so these always win.
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Go's `Request.Host`: the absolute-form URI host or Host header for HTTP/1,
/// `:authority` (falling back to Host) for HTTP/2.
fn request_host<B>(req: &Request<B>) -> String {
    let from_header = || {
        req.headers()
            .get(HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
    };
    match req.uri().authority() {
        Some(authority) => authority.as_str().to_owned(),
        None => from_header().unwrap_or_default(),
    }
}

fn proto(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Headers as Go's `Request.Header` holds them: canonical names, without Host
/// (moved to `Request.Host`) and Transfer-Encoding (consumed by the body reader);
/// HTTP/2 cookie crumbs joined with `; ` as Go's HTTP/2 server does.
fn echoed_headers<B>(req: &Request<B>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        if name == HOST || name == TRANSFER_ENCODING {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(canonical_name(name.as_str()))
            .or_default()
            .push(value);
    }
    if req.version() == Version::HTTP_2
        && let Some(cookies) = out.get_mut(&canonical_name(COOKIE.as_str()))
        && cookies.len() > 1
    {
        *cookies = vec![cookies.join("; ")];
    }
    out
}

/// Go's `json.MarshalIndent(v, "", " ")`: one-space indentation.
fn to_go_indented_json(value: &EchoedRequest) -> Vec<u8> {
    let mut body = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut body, formatter);
    serde::Serialize::serialize(value, &mut ser).expect("echo body serialises");
    body
}

/// Upstream's `processError`: JSON `{"message": ...}` with the JSON headers.
fn error_json(status: StatusCode, message: &str) -> Resp {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn text(status: StatusCode, body: &'static str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn redirect(path: &str, query: Option<&str>) -> Resp {
    let location = match query {
        Some(q) => format!("{path}/?{q}"),
        None => format!("{path}/"),
    };
    let mut resp = Response::new(Full::default());
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(location) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(hyper::header::LOCATION, location);
    }
    resp
}
