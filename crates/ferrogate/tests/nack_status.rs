//! End to end: a configuration Envoy rejects. A route whose regular expression exceeds
//! Envoy's RE2 program-size limit in a way Ferrogate's estimate misses (nested loops, which
//! RE2 compiles larger than the estimate counts: 135 instructions here, estimated 79)
//! passes Ferrogate's validation but is NACKed by Envoy. (A plainly oversized expression
//! such as `(abcdefgh){60}` is refused by the translator since issue 17.)
//! Envoy keeps serving its last accepted config, `ferrogate_xds_nacks_total` counts the
//! rejection, and the Gateway's status says so (`gateway.ferrogate.dev/ConfigAccepted:
//! False`, with Envoy's message). Removing the route clears the condition.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ferrogate_e2e::testing::{self, Standalone, free_block, free_port, pod};

const HOST: &str = "www.example.com";
const CONDITION: &str = "gateway.ferrogate.dev/ConfigAccepted";

const REJECTED_ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: too-complex
  namespace: default
spec:
  parentRefs:
    - name: quickstart
  hostnames: [www.example.com]
  rules:
    - matches:
        - path:
            type: RegularExpression
            value: \"/nack((x*)*){14}\"
      backendRefs:
        - name: echo-v2
          port: 8080
";

fn gateway_status(status_dir: &Path) -> String {
    std::fs::read_to_string(status_dir.join("gateways/default/quickstart.yaml")).unwrap_or_default()
}

async fn nacks(metrics: SocketAddr) -> f64 {
    let Ok(r) = ferrogate_e2e::client::get(metrics, "localhost", "/metrics", &[]).await else {
        return 0.0;
    };
    String::from_utf8_lossy(&r.body)
        .lines()
        .filter(|l| l.starts_with("ferrogate_xds_nacks_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_config_is_counted_shown_in_status_and_the_last_one_keeps_serving() {
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
    testing::eventually_response(gateway, HOST, "/v2", &[], Duration::from_secs(30), ok).await;
    let before = nacks(fg.metrics).await;

    std::fs::write(config.join("rejected.yaml"), REJECTED_ROUTE).unwrap();
    testing::eventually("the NACK counted", Duration::from_secs(20), || async {
        (nacks(fg.metrics).await > before).then_some(())
    })
    .await;
    let status = testing::eventually(
        "the Gateway's status shows the rejection",
        Duration::from_secs(20),
        || async {
            let s = gateway_status(&status_dir);
            s.contains(CONDITION).then_some(s)
        },
    )
    .await;
    assert!(status.contains("reason: Rejected"), "{status}");
    assert!(
        status.contains("RE2") || status.contains("program size"),
        "Envoy's own message is shown: {status}"
    );

    // The last accepted config keeps serving.
    let (r, _) =
        testing::eventually_response(gateway, HOST, "/v2", &[], Duration::from_secs(5), ok).await;
    assert_eq!(pod(&r), "echo-v2-nack");

    // Without the offending route Envoy accepts again and the condition goes away.
    std::fs::remove_file(config.join("rejected.yaml")).unwrap();
    testing::eventually("the condition cleared", Duration::from_secs(20), || async {
        (!gateway_status(&status_dir).contains(CONDITION)).then_some(())
    })
    .await;
}
