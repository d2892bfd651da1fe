//! End to end with a real Envoy in standalone mode:
//! - a TCP listener whose only route has no usable backend (weight 0) is bound and rejects
//!   each connection actively (accept, then close), and a weight change restores traffic
//!   without Envoy modifying or adding a listener (an EDS update only);
//! - backendRef filters: a URLRewrite hostname per weighted backend, and a backendRef whose
//!   filter cannot run per backend answered with 500 for its share.

use std::net::SocketAddr;
use std::time::Duration;

use ferrogate_e2e::client;
use ferrogate_e2e::testing::{self, Standalone, free_block, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const GREETING: &[u8] = b"hello from the tcp backend\n";

/// A TCP backend that writes [`GREETING`] to every connection and closes it.
async fn greeter() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = conn.write_all(GREETING).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

/// What a client sees on a TCP connection to the gateway.
#[derive(Debug, PartialEq)]
enum Seen {
    /// Nothing listens (connection refused).
    Refused,
    /// Accepted, then closed or reset without a byte.
    Rejected,
    /// The backend's bytes.
    Data(Vec<u8>),
}

async fn tcp_probe(gateway: SocketAddr) -> Seen {
    let mut conn = match TcpStream::connect(gateway).await {
        Ok(c) => c,
        Err(_) => return Seen::Refused,
    };
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), conn.read_to_end(&mut buf)).await;
    match read {
        Ok(_) if buf.is_empty() => Seen::Rejected,
        Ok(_) => Seen::Data(buf),
        // Envoy keeps a connection without upstream open: that is not an active rejection.
        Err(_) => Seen::Data(b"<timeout: connection held open>".to_vec()),
    }
}

/// A counter from Envoy's admin `/stats` (0 when absent).
async fn envoy_stat(admin: SocketAddr, name: &str) -> u64 {
    let r = client::get(admin, "localhost", &format!("/stats?filter=^{name}$"), &[])
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&r.body).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn service(name: &str, port: u16, backend: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  ports:\n  - {{name: p, port: {port}}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-local\n  namespace: default\n  labels: {{kubernetes.io/service-name: {name}}}\n\
         addressType: IPv4\nports:\n- {{name: p, port: {}}}\nendpoints:\n- addresses: [\"127.0.0.1\"]\n---\n",
        backend.port()
    )
}

fn gateway(tcp_port: u16, http_port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: ferrogate}}\n\
         spec: {{controllerName: gateway.ferrogate.dev/gatewayclass-controller}}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\n\
         spec:\n  gatewayClassName: ferrogate\n  listeners:\n  - {{name: tcp, protocol: TCP, port: {tcp_port}}}\n  - {{name: http, protocol: HTTP, port: {http_port}}}\n"
    )
}

fn tcp_route(weight: u32) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {{name: tcp, namespace: default}}\n\
         spec:\n  parentRefs: [{{name: gw, sectionName: tcp}}]\n  rules:\n  - backendRefs: [{{name: greeter, port: 7000, weight: {weight}}}]\n"
    )
}

/// Two weighted backends, each with its own Host; a third whose RequestMirror filter cannot
/// run per backend (its share gets 500).
const HTTP_ROUTE: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [www.example.com]
  rules:
  - backendRefs:
    - name: echo-a
      port: 8080
      filters: [{type: URLRewrite, urlRewrite: {hostname: a.internal}}]
    - name: echo-b
      port: 8080
      filters: [{type: URLRewrite, urlRewrite: {hostname: b.internal}}]
    - name: echo-a
      port: 8080
      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: echo-b, port: 8080}}}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_listener_without_usable_backend_rejects_and_a_weight_change_restores_traffic_without_a_listener_change()
 {
    let backend = greeter().await;
    let a = ferrogate_e2e::echo::spawn_for_test("echo-a-local", "default", "echo-a").await;
    let b = ferrogate_e2e::echo::spawn_for_test("echo-b-local", "default", "echo-b").await;
    let (tcp_port, http_port) = (free_port(), free_port());
    let base = free_block(23000, 10);
    let files = vec![
        ("gateway.yaml", gateway(tcp_port, http_port)),
        (
            "backends.yaml",
            format!(
                "{}{}{}",
                service("greeter", 7000, backend),
                service("echo-a", 8080, a),
                service("echo-b", 8080, b)
            ),
        ),
        ("tcp.yaml", tcp_route(0)),
        ("http.yaml", HTTP_ROUTE.to_string()),
    ];
    let fg = Standalone::start(env!("CARGO_BIN_EXE_ferrogate"), files, base, &[]);
    let tcp_gateway = SocketAddr::from(([127, 0, 0, 1], tcp_port));
    let http_gateway = SocketAddr::from(([127, 0, 0, 1], http_port));
    let admin = SocketAddr::from(([127, 0, 0, 1], base));

    // Weight 0: the port is bound (the listener says Programmed) and rejects actively.
    testing::eventually(
        "the TCP listener rejects connections",
        Duration::from_secs(60),
        || async { (tcp_probe(tcp_gateway).await == Seen::Rejected).then_some(()) },
    )
    .await;
    let status =
        std::fs::read_to_string(fg.dir.path().join("status/gateways/default/gw.yaml")).unwrap();
    assert!(status.contains("attachedRoutes: 1"), "{status}");
    assert!(status.contains("reason: Programmed"), "{status}");

    // Backend filters over the HTTP listener: per-backend Host, and 500s for the share
    // whose filter cannot run per backend.
    testing::eventually_response(
        http_gateway,
        "www.example.com",
        "/",
        &[],
        Duration::from_secs(30),
        |r| r.status == 200,
    )
    .await;
    let mut hosts = std::collections::BTreeMap::new();
    for _ in 0..60 {
        let r = client::get(http_gateway, "www.example.com", "/", &[])
            .await
            .unwrap();
        let key = match r.status {
            200 => format!(
                "{} via {}",
                r.json().unwrap()["host"].as_str().unwrap_or_default(),
                testing::pod(&r)
            ),
            other => other.to_string(),
        };
        *hosts.entry(key).or_insert(0) += 1;
    }
    eprintln!("answers by Host and backend: {hosts:?}");
    let keys: Vec<&str> = hosts.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "500",
            "a.internal via echo-a-local",
            "b.internal via echo-b-local"
        ],
        "{hosts:?}"
    );
    let route_status =
        std::fs::read_to_string(fg.dir.path().join("status/httproutes/default/split.yaml"))
            .unwrap();
    assert!(
        route_status.contains("reason: UnsupportedRefValue"),
        "{route_status}"
    );
    assert!(route_status.contains("reason: Accepted"), "{route_status}");

    // Weight 1: traffic flows, and Envoy modified or added no listener for it.
    let modified = envoy_stat(admin, "listener_manager.listener_modified").await;
    let added = envoy_stat(admin, "listener_manager.listener_added").await;
    std::fs::write(fg.dir.path().join("config/tcp.yaml"), tcp_route(1)).unwrap();
    testing::eventually(
        "the TCP listener reaches the backend",
        Duration::from_secs(30),
        || async { (tcp_probe(tcp_gateway).await == Seen::Data(GREETING.to_vec())).then_some(()) },
    )
    .await;
    eprintln!(
        "listener_manager: listener_modified {modified}, listener_added {added} before the weight change"
    );
    assert!(
        added > 0,
        "the admin stats must show the listeners Envoy added"
    );
    assert_eq!(
        envoy_stat(admin, "listener_manager.listener_modified").await,
        modified,
        "a weight change must not modify the listener"
    );
    assert_eq!(
        envoy_stat(admin, "listener_manager.listener_added").await,
        added,
        "a weight change must not add a listener"
    );
}
