//! End to end with a real Envoy in standalone mode: HTTPRoute session persistence. One
//! Service has two endpoints (two echo pods). Without a session, requests reach both; with
//! the cookie (or header) Envoy handed out, every request reaches the pod that served the
//! first one; a new session may land on either.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use ferrogate_e2e::client;
use ferrogate_e2e::testing::{self, Standalone, free_block, free_port, pod};

const HOST: &str = "www.example.com";

fn files(gateway_port: u16, a: SocketAddr, b: SocketAddr) -> Vec<(&'static str, String)> {
    let slice = |name: &str, port: u16| {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{kubernetes.io/service-name: echo}}\n\
             addressType: IPv4\nports:\n- {{name: http, port: {port}}}\nendpoints:\n- addresses: [\"127.0.0.1\"]\n"
        )
    };
    vec![
        (
            "gateway.yaml",
            format!(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: ferrogate}}\n\
                 spec: {{controllerName: gateway.ferrogate.dev/gatewayclass-controller}}\n---\n\
                 apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\n\
                 spec:\n  gatewayClassName: ferrogate\n  listeners:\n  - {{name: http, protocol: HTTP, port: {gateway_port}}}\n"
            ),
        ),
        (
            "backends.yaml",
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: default}}\nspec:\n  ports:\n  - {{name: http, port: 8080}}\n---\n{}---\n{}",
                slice("echo-a", a.port()),
                slice("echo-b", b.port())
            ),
        ),
        ("route.yaml", ROUTE.to_string()),
    ]
}

const ROUTE: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: sessions, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [www.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /cart}}]
    sessionPersistence: {sessionName: cart}
    backendRefs: [{name: echo, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /api}}]
    sessionPersistence: {type: Header, sessionName: x-session}
    backendRefs: [{name: echo, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: echo, port: 8080}]
"#;

/// The pods that answer `n` requests to `path` with `headers`.
async fn pods(
    gateway: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let r = client::get(gateway, HOST, path, headers).await.unwrap();
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        seen.insert(pod(&r));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_keeps_reaching_the_endpoint_that_served_its_first_request() {
    let a = ferrogate_e2e::echo::spawn_for_test("echo-a-pod", "default", "echo").await;
    let b = ferrogate_e2e::echo::spawn_for_test("echo-b-pod", "default", "echo").await;
    let gateway_port = free_port();
    let fg = Standalone::start(
        env!("CARGO_BIN_EXE_ferrogate"),
        files(gateway_port, a, b),
        free_block(25000, 10),
        &[],
    );
    let gateway = SocketAddr::from(([127, 0, 0, 1], gateway_port));
    testing::eventually_response(gateway, HOST, "/", &[], Duration::from_secs(60), |r| {
        r.status == 200
    })
    .await;

    // Without a session both endpoints serve (round robin).
    let all = pods(gateway, "/", &[], 20).await;
    assert_eq!(
        all.len(),
        2,
        "both endpoints must serve without a session: {all:?}"
    );

    // Cookie: the first answer sets it (path from the route's match), later requests that
    // send it stay on the first answer's pod.
    let first = client::get(gateway, HOST, "/cart", &[]).await.unwrap();
    let set_cookie = first
        .header("set-cookie")
        .expect("the first answer sets the session cookie")
        .to_string();
    assert!(set_cookie.starts_with("cart="), "{set_cookie}");
    assert!(set_cookie.contains("Path=/cart"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let sticky = pods(gateway, "/cart/items", &[("cookie", &cookie)], 20).await;
    assert_eq!(
        sticky,
        BTreeSet::from([pod(&first)]),
        "the session must stay on its first pod"
    );

    // Header: the same with the token in a header.
    let first = client::get(gateway, HOST, "/api", &[]).await.unwrap();
    let token = first
        .header("x-session")
        .expect("the first answer carries the session header")
        .to_string();
    let sticky = pods(gateway, "/api/x", &[("x-session", &token)], 20).await;
    assert_eq!(
        sticky,
        BTreeSet::from([pod(&first)]),
        "the header session must stay on its first pod"
    );

    // New sessions are spread over the endpoints.
    let mut firsts = BTreeSet::new();
    for _ in 0..20 {
        firsts.insert(pod(&client::get(gateway, HOST, "/cart", &[])
            .await
            .unwrap()));
    }
    assert_eq!(
        firsts.len(),
        2,
        "new sessions may land on either endpoint: {firsts:?}"
    );
    drop(fg);
}
