//! End to end, with a real Envoy: no tenant's route can freeze a Gateway.
//!
//! The three kinds of route Envoy used to reject after Ferrogate accepted them (a redirect
//! hostname with CR/LF, weights summing past what Envoy takes, a regular expression over
//! RE2's program-size limit) are refused by the translator with a status. A route Envoy
//! rejects that validation misses (nested loops, which RE2 compiles larger than the
//! estimate counts: 135 instructions here, estimated 79) is caught by the quarantine: Envoy
//! NACKs it, `ferrogate_xds_nacks_total` counts it, the route is held out of the Gateway
//! with `Accepted: False` and Envoy's message, and everyone else's later changes flow: a
//! valid route written after all four answers 200. Fixing the held route lets it back in.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ferrogate_e2e::testing::{self, Standalone, free_block, free_port, pod};

const HOST: &str = "www.example.com";

fn route(name: &str, rule: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: default
spec:
  parentRefs:
    - name: quickstart
  hostnames: [www.example.com]
  rules:
{rule}"
    )
}

/// Passes Ferrogate's RE2 estimate; Envoy's RE2 refuses it.
const NESTED_LOOPS: &str = "    - matches:
        - path:
            type: RegularExpression
            value: \"/nack((x*)*){14}\"
      backendRefs:
        - name: echo-v2
          port: 8080
";

const FIXED: &str = "    - matches:
        - path:
            type: RegularExpression
            value: \"/nack(x*){2}\"
      backendRefs:
        - name: echo-v2
          port: 8080
";

const CRLF_REDIRECT: &str = "    - matches: [{path: {type: PathPrefix, value: /crlf}}]
      filters:
        - type: RequestRedirect
          requestRedirect: {hostname: \"evil.example.com\\r\\nx-injected: 1\"}
";

const HUGE_WEIGHTS: &str = "    - matches: [{path: {type: PathPrefix, value: /weights}}]
      backendRefs:
        - {name: echo-v1, port: 8080, weight: 1000000}
        - {name: echo-v2, port: 8080, weight: 1000001}
";

const OVERSIZED_REGEX: &str = "    - matches:
        - path: {type: RegularExpression, value: \"/(abcdefgh){60}\"}
      backendRefs:
        - name: echo-v1
          port: 8080
";

/// The quickstart's catch-all sends `/fresh` to echo-v1; this route sends it to echo-v2.
const FRESH: &str = "    - matches: [{path: {type: PathPrefix, value: /fresh}}]
      backendRefs:
        - name: echo-v2
          port: 8080
";

fn route_status(status_dir: &Path, name: &str) -> String {
    std::fs::read_to_string(status_dir.join(format!("httproutes/default/{name}.yaml")))
        .unwrap_or_default()
}

async fn metric(metrics: SocketAddr, name: &str) -> f64 {
    let Ok(r) = ferrogate_e2e::client::get(metrics, "localhost", "/metrics", &[]).await else {
        return 0.0;
    };
    String::from_utf8_lossy(&r.body)
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_envoy_rejects_is_held_out_and_a_later_valid_route_answers() {
    let v1 = ferrogate_e2e::echo::spawn_for_test("echo-v1-nack", "default", "echo-v1").await;
    let v2 = ferrogate_e2e::echo::spawn_for_test("echo-v2-nack", "default", "echo-v2").await;
    let gateway_port = free_port();
    let fg = Standalone::start(
        env!("CARGO_BIN_EXE_ferrogate"),
        testing::quickstart(gateway_port, v1, v2),
        free_block(24000, 10),
        &[],
    );
    let gateway = SocketAddr::from(([127, 0, 0, 1], gateway_port));
    let status_dir = fg.dir.path().join("status");
    let config = fg.dir.path().join("config");
    let ok = |r: &ferrogate_e2e::client::HttpResponse| r.status == 200;
    let from_v2 =
        |r: &ferrogate_e2e::client::HttpResponse| r.status == 200 && pod(r) == "echo-v2-nack";
    testing::eventually_response(gateway, HOST, "/v2", &[], Duration::from_secs(30), ok).await;
    let nacks_before = metric(fg.metrics, "ferrogate_xds_nacks_total").await;

    // The three refused by the translator, with a status each.
    for (name, rule, says) in [
        ("crlf", CRLF_REDIRECT, "hostname"),
        ("weights", HUGE_WEIGHTS, "weight"),
        ("oversized", OVERSIZED_REGEX, "program"),
    ] {
        std::fs::write(config.join(format!("{name}.yaml")), route(name, rule)).unwrap();
        let status = testing::eventually(
            &format!("{name} judged"),
            Duration::from_secs(20),
            || async {
                let s = route_status(&status_dir, name);
                s.contains("Accepted").then_some(s)
            },
        )
        .await;
        assert!(
            status.contains("status: \"False\"")
                || status.contains("status: 'False'")
                || status.contains("status: False"),
            "{name}: {status}"
        );
        assert!(
            status.to_lowercase().contains(says),
            "{name} says why: {status}"
        );
    }

    // The one only Envoy refuses: NACKed, then held out with Envoy's message.
    std::fs::write(
        config.join("too-complex.yaml"),
        route("too-complex", NESTED_LOOPS),
    )
    .unwrap();
    testing::eventually("the NACK counted", Duration::from_secs(20), || async {
        (metric(fg.metrics, "ferrogate_xds_nacks_total").await > nacks_before).then_some(())
    })
    .await;
    let status = testing::eventually("the route held out", Duration::from_secs(20), || async {
        let s = route_status(&status_dir, "too-complex");
        s.contains("Envoy rejected").then_some(s)
    })
    .await;
    assert!(status.contains("UnsupportedValue"), "{status}");
    assert!(
        status.contains("RE2") || status.contains("program size"),
        "Envoy's own message is shown: {status}"
    );

    // Written after all four, a valid route is served: nothing froze the Gateway.
    std::fs::write(config.join("fresh.yaml"), route("fresh", FRESH)).unwrap();
    let (r, _) = testing::eventually_response(
        gateway,
        HOST,
        "/fresh",
        &[],
        Duration::from_secs(20),
        from_v2,
    )
    .await;
    assert_eq!(pod(&r), "echo-v2-nack");
    let (r, _) =
        testing::eventually_response(gateway, HOST, "/v2", &[], Duration::from_secs(5), ok).await;
    assert_eq!(
        pod(&r),
        "echo-v2-nack",
        "the routes that were there keep serving"
    );
    assert_eq!(
        metric(fg.metrics, "ferrogate_routes_rejected_by_envoy").await,
        1.0
    );
    testing::eventually(
        "the Gateway's rejection condition cleared",
        Duration::from_secs(20),
        || async {
            let s = std::fs::read_to_string(status_dir.join("gateways/default/quickstart.yaml"))
                .unwrap_or_default();
            (!s.contains("gateway.ferrogate.dev/ConfigAccepted")).then_some(())
        },
    )
    .await;

    // Its owner fixes it: the route is let back in and serves.
    std::fs::write(config.join("too-complex.yaml"), route("too-complex", FIXED)).unwrap();
    let (r, _) = testing::eventually_response(
        gateway,
        HOST,
        "/nackxx",
        &[],
        Duration::from_secs(20),
        from_v2,
    )
    .await;
    assert_eq!(pod(&r), "echo-v2-nack");
    testing::eventually("nothing held", Duration::from_secs(10), || async {
        (metric(fg.metrics, "ferrogate_routes_rejected_by_envoy").await == 0.0).then_some(())
    })
    .await;
    // The status sink writes off the path to Envoy, so the route's status can trail its traffic.
    testing::eventually(
        "the route's status no longer says Envoy rejected it",
        Duration::from_secs(20),
        || async {
            let s = route_status(&status_dir, "too-complex");
            (s.contains("Accepted") && !s.contains("Envoy rejected")).then_some(())
        },
    )
    .await;
}
