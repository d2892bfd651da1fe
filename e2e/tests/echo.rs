//! Runs the real `ferrogate-echo` binary on free ports and checks the answers
//! the conformance scenarios depend on (see the shared conformance INDEX,
//! section "Echo backend").

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrogate_e2e::echo::{EchoedRequest, Ports};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One backend process; killed on drop. Its stdout is drained into `log` so a
/// full pipe can never stall it.
struct Echo {
    child: Child,
    ports: Ports,
    log: Arc<Mutex<Vec<String>>>,
}

impl Echo {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Echo {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrogate-echo"));
        for var in [
            "HTTP_PORT",
            "H2C_PORT",
            "POD_NAME",
            "NAMESPACE",
            "SERVICE_NAME",
            "INGRESS_NAME",
        ] {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ferrogate-echo");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("read ports line");
        let ports: Ports =
            serde_json::from_str(&first).unwrap_or_else(|e| panic!("ports line {first:?}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Echo { child, ports, log }
    }

    /// HTTP port 0 and H2C port 0, with the given identity flags.
    fn start_default() -> Echo {
        Echo::start(
            &[
                "--http-port",
                "0",
                "--h2c-port",
                "0",
                "--pod",
                "infra-backend-v1-abc-xyz",
                "--namespace",
                "gateway-conformance-infra",
            ],
            &[],
        )
    }

    fn h2c_port(&self) -> u16 {
        self.ports.h2c.expect("h2c port configured")
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn echoed(&self) -> EchoedRequest {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("echo body {:?}: {e}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

fn get(target: &str, host: &str) -> Request<Full<Bytes>> {
    Request::get(target)
        .header("host", host)
        .body(Full::default())
        .unwrap()
}

/// One HTTP/1.1 request on a fresh connection, as the conformance client does.
async fn http1(port: u16, req: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    collect(sender.send_request(req).await?).await
}

/// One HTTP/2 request with prior knowledge (no upgrade) on a fresh connection.
async fn h2c(port: u16, req: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    collect(sender.send_request(req).await?).await
}

async fn collect(resp: hyper::Response<hyper::body::Incoming>) -> anyhow::Result<Answer> {
    let (parts, body) = resp.into_parts();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await?.to_bytes(),
    })
}

/// Sends a request target byte for byte (hyper's client would not send `//x`).
async fn raw_http1(port: u16, target: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: raw.example\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    answer
}

#[test]
fn ports_line_reports_bound_ports_and_omits_h2c_when_not_configured() {
    let with_h2c = Echo::start_default();
    assert_ne!(with_h2c.ports.http, 0);
    assert!(
        with_h2c
            .ports
            .h2c
            .is_some_and(|p| p != 0 && p != with_h2c.ports.http)
    );

    let without = Echo::start(&[], &[("HTTP_PORT", "0"), ("H2C_PORT", "")]);
    assert_ne!(without.ports.http, 0);
    assert_eq!(without.ports.h2c, None);
}

#[tokio::test]
async fn echo_reports_target_host_method_proto_canonical_headers_and_identity() {
    let echo = Echo::start_default();
    let req = Request::post("/some/path?x=1&y=two")
        .header("host", "foo.example.com")
        .header("x-header-set", "a")
        .header("x-header-set", "b")
        .header("UPPER-CASE", "c")
        .body(Full::new(Bytes::from_static(b"body")))
        .unwrap();
    let answer = http1(echo.ports.http, req).await.unwrap();

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    let echoed = answer.echoed();
    assert_eq!(echoed.path, "/some/path?x=1&y=two");
    assert_eq!(echoed.host, "foo.example.com");
    assert_eq!(echoed.method, "POST");
    assert_eq!(echoed.proto, "HTTP/1.1");
    assert_eq!(echoed.headers["X-Header-Set"], ["a", "b"]);
    assert_eq!(echoed.headers["Upper-Case"], ["c"]);
    assert!(
        !echoed.headers.contains_key("Host"),
        "Go moves Host out of the header map"
    );
    assert_eq!(echoed.pod, "infra-backend-v1-abc-xyz");
    assert_eq!(echoed.namespace, "gateway-conformance-infra");
    assert_eq!(echoed.http_port, echo.ports.http.to_string());
}

#[tokio::test]
async fn identity_comes_from_the_environment_like_the_upstream_image() {
    let envs = [
        ("HTTP_PORT", "0"),
        ("POD_NAME", "infra-backend-v2-1-2"),
        ("NAMESPACE", "ns2"),
        ("SERVICE_NAME", "svc2"),
        ("INGRESS_NAME", "ing2"),
    ];
    let echo = Echo::start(&[], &envs);
    let echoed = http1(echo.ports.http, get("/", "h"))
        .await
        .unwrap()
        .echoed();
    assert_eq!(
        (
            echoed.pod.as_str(),
            echoed.namespace.as_str(),
            echoed.service.as_str(),
            echoed.ingress.as_str()
        ),
        ("infra-backend-v2-1-2", "ns2", "svc2", "ing2")
    );
}

#[tokio::test]
async fn echo_logs_the_line_mirroring_checks_search_for() {
    let echo = Echo::start_default();
    http1(echo.ports.http, get("/mirror?id=42", "h"))
        .await
        .unwrap();
    let wanted = "Echoing back request made to /mirror?id=42 to client (127.0.0.1:";
    let deadline = Instant::now() + Duration::from_secs(5);
    while !echo
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with(wanted))
    {
        assert!(
            Instant::now() < deadline,
            "log line missing: {:?}",
            echo.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn h2c_port_echoes_prior_knowledge_requests_with_authority_as_host() {
    let echo = Echo::start_default();
    let req = Request::get("http://h2c.example:8080/h2c/path?q=1")
        .header("x-h2", "yes")
        .body(Full::default())
        .unwrap();
    let answer = h2c(echo.h2c_port(), req).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let echoed = answer.echoed();
    assert_eq!(echoed.proto, "HTTP/2.0");
    assert_eq!(echoed.path, "/h2c/path?q=1");
    assert_eq!(echoed.host, "h2c.example:8080");
    assert_eq!(echoed.header("x-h2").as_deref(), Some("yes"));
    assert_eq!(
        echoed.http_port,
        echo.ports.http.to_string(),
        "httpPort is the HTTP port even on h2c"
    );
}

#[tokio::test]
async fn h2c_port_rejects_plain_http1_requests_with_400() {
    let echo = Echo::start_default();
    let answer = http1(echo.h2c_port(), get("/", "h")).await.unwrap();
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn http_port_also_accepts_h2c_prior_knowledge() {
    let echo = Echo::start_default();
    let answer = h2c(
        echo.ports.http,
        Request::get("http://a.example/x")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(answer.echoed().proto, "HTTP/2.0");
}

#[tokio::test]
async fn health_answers_ok_even_with_doubled_slashes() {
    let echo = Echo::start_default();
    let answer = http1(echo.ports.http, get("/health", "h")).await.unwrap();
    assert_eq!(
        (answer.status, &answer.body[..]),
        (StatusCode::OK, &b"OK"[..])
    );
    let raw = raw_http1(echo.ports.http, "//health").await;
    assert!(
        raw.starts_with("HTTP/1.1 200") && raw.ends_with("\r\n\r\nOK"),
        "{raw}"
    );
}

#[tokio::test]
async fn status_endpoint_answers_the_requested_code_and_400_otherwise() {
    let echo = Echo::start_default();
    for (target, expected) in [
        ("/status/404", 404),
        ("/status/503", 503),
        ("/status/4040", 400),
        ("/status/404?x=1", 400),
    ] {
        let answer = http1(echo.ports.http, get(target, "h")).await.unwrap();
        assert_eq!(answer.status.as_u16(), expected, "{target}");
        assert!(answer.body.is_empty(), "{target}");
    }
}

#[tokio::test]
async fn echo_set_header_becomes_response_headers() {
    let echo = Echo::start_default();
    let req = Request::get("/")
        .header("x-echo-set-header", "X-Foo: one, X-Bar:two,x-foo:three")
        .body(Full::default())
        .unwrap();
    let answer = http1(echo.ports.http, req).await.unwrap();
    assert_eq!(answer.header("x-foo"), Some("one,three"));
    assert_eq!(answer.header("x-bar"), Some("two"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn delay_parameter_waits_and_a_bad_value_gives_500_with_a_json_message() {
    let echo = Echo::start_default();
    let started = Instant::now();
    let answer = http1(echo.ports.http, get("/slow?delay=300ms", "h"))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let answer = http1(echo.ports.http, get("/slow?delay=abc", "h"))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["message"], "time: invalid duration \"abc\"");
}

#[tokio::test]
async fn retry_simulator_fails_the_first_attempts_with_response_code_then_echoes() {
    let echo = Echo::start_default();
    let target = "/retry/code-500?responseCode=503&succeedAfter=2&uuid=11111111-2222";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            http1(echo.ports.http, get(target, "h"))
                .await
                .unwrap()
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [503, 503, 200]);
    let answer = http1(echo.ports.http, get(target, "h")).await.unwrap();
    assert_eq!(answer.echoed().path, target);

    // Counts are per uuid.
    let other = "/retry/code-500?responseCode=500&succeedAfter=1&uuid=other";
    assert_eq!(
        http1(echo.ports.http, get(other, "h"))
            .await
            .unwrap()
            .status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn retry_simulator_resets_the_connection_without_response_code() {
    let echo = Echo::start_default();
    let target = "/retry/no-status?succeedAfter=1&uuid=reset-me";
    let err = http1(echo.ports.http, get(target, "h"))
        .await
        .err()
        .expect("first attempt must fail");
    let reset = err
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::ConnectionReset);
    assert!(reset, "expected a connection reset, got {err:#}");
    assert_eq!(
        http1(echo.ports.http, get(target, "h"))
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn retry_simulator_requires_uuid_and_integer_succeed_after() {
    let echo = Echo::start_default();
    for target in [
        "/retry/x?succeedAfter=1",
        "/retry/x?uuid=u&succeedAfter=many",
        "/retry/x?uuid=u",
    ] {
        assert_eq!(
            http1(echo.ports.http, get(target, "h"))
                .await
                .unwrap()
                .status,
            StatusCode::BAD_REQUEST,
            "{target}"
        );
    }
}
