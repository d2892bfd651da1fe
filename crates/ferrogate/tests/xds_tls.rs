//! End to end: `ferrogate standalone --xds-tls` with real Envoys. Each Gateway's Envoy gets
//! its own client certificate and traffic flows; an Envoy started by hand with Gateway A's
//! certificate but Gateway B's `node.cluster` is refused (counted in
//! `ferrogate_xds_rejected_streams_total`) and never gets a listener, while B's own Envoy does.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferrogate_e2e::client;
use ferrogate_e2e::testing::{
    self, Proc, Standalone, envoy_path, eventually, free_block, free_port,
};

const HOST: &str = "www.example.com";

/// The quickstart (Gateway `default/quickstart` with routes to two backends) plus a second
/// Gateway `default/other` with its own listener.
fn config(
    quickstart_port: u16,
    other_port: u16,
    v1: SocketAddr,
    v2: SocketAddr,
) -> Vec<(&'static str, String)> {
    let other = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: other\n  namespace: default\nspec:\n  gatewayClassName: ferrogate\n  listeners:\n    - name: http\n      protocol: HTTP\n      port: {other_port}\n"
    );
    let mut files = testing::quickstart(quickstart_port, v1, v2);
    files.push(("other.yaml", other));
    files
}

/// The value of the Prometheus sample whose name and labels are exactly `series`.
async fn sample(metrics: SocketAddr, series: &str) -> Option<f64> {
    let r = client::get(metrics, "localhost", "/metrics", &[])
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&r.body).to_string();
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// An Envoy admin stat (`/stats?filter=^name$`).
async fn envoy_stat(admin: SocketAddr, name: &str) -> Option<u64> {
    let r = client::get(admin, "localhost", &format!("/stats?filter=^{name}$"), &[])
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&r.body).to_string();
    text.lines().find_map(|l| {
        l.strip_prefix(name)?
            .strip_prefix(": ")?
            .trim()
            .parse()
            .ok()
    })
}

fn admin_of(bootstrap: &serde_json::Value) -> SocketAddr {
    let port = bootstrap["admin"]["address"]["socket_address"]["port_value"]
        .as_u64()
        .unwrap() as u16;
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoys_get_only_the_gateway_their_certificate_names() {
    let v1 = ferrogate_e2e::echo::spawn_for_test("echo-v1-tls", "default", "echo-v1").await;
    let v2 = ferrogate_e2e::echo::spawn_for_test("echo-v2-tls", "default", "echo-v2").await;
    let (quickstart_port, other_port) = (free_port(), free_port());
    // Two Gateway slots of 10 ports each.
    let fg = Standalone::start(
        env!("CARGO_BIN_EXE_ferrogate"),
        config(quickstart_port, other_port, v1, v2),
        free_block(23000, 20),
        &["--xds-tls"],
    );
    let (dir, metrics, work) = (&fg.dir, fg.metrics, fg.work_dir());

    // Traffic flows through the quickstart Envoy, which reached xDS over mutual TLS.
    let gateway = SocketAddr::from(([127, 0, 0, 1], quickstart_port));
    let status = eventually(
        "quickstart answers 200",
        Duration::from_secs(60),
        || async {
            client::get(gateway, HOST, "/", &[])
                .await
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| r.status)
        },
    )
    .await;
    assert_eq!(status, 200);

    // Each Gateway has its own files; keys are private; bootstraps name them.
    let xds_a = work.join("default/quickstart/xds");
    for f in ["ca.crt", "tls.crt", "tls.key"] {
        assert!(
            xds_a.join(f).is_file(),
            "{f} missing in {}",
            xds_a.display()
        );
    }
    assert_eq!(
        std::fs::metadata(xds_a.join("tls.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let read_bootstrap = |gw: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(work.join("default").join(gw).join("bootstrap.json")).unwrap(),
        )
        .unwrap()
    };
    let bootstrap_a = read_bootstrap("quickstart");
    let key_path = &bootstrap_a["static_resources"]["clusters"][0]["transport_socket"]["typed_config"]
        ["common_tls_context"]["tls_certificates"][0]["private_key"]["filename"];
    assert_eq!(
        key_path.as_str().map(PathBuf::from),
        Some(std::fs::canonicalize(xds_a.join("tls.key")).unwrap())
    );

    // Gateway B's own Envoy gets its listeners (B has a snapshot to give).
    let admin_b = admin_of(
        &eventually("other's bootstrap", Duration::from_secs(30), || async {
            std::fs::read_to_string(work.join("default/other/bootstrap.json"))
                .ok()
                .map(|_| read_bootstrap("other"))
        })
        .await,
    );
    eventually(
        "other's Envoy has listeners over xDS",
        Duration::from_secs(30),
        || async {
            envoy_stat(admin_b, "listener_manager.lds.update_success")
                .await
                .filter(|n| *n > 0)
        },
    )
    .await;

    let rejected = "ferrogate_xds_rejected_streams_total{reason=\"wrong_gateway\"}";
    assert_eq!(sample(metrics, rejected).await, None, "nothing refused yet");

    // An impostor: Gateway A's certificate, Gateway B's node.cluster.
    let mut impostor = bootstrap_a.clone();
    impostor["node"]["cluster"] = "default/other".into();
    impostor["node"]["id"] = "impostor".into();
    let admin_port = free_port();
    impostor["admin"]["address"]["socket_address"]["port_value"] = admin_port.into();
    impostor["static_resources"]["clusters"][1]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        [0]["endpoint"]["address"]["socket_address"]["port_value"] = admin_port.into();
    impostor["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] =
        free_port().into();
    let impostor_path = dir.path().join("impostor.json");
    std::fs::write(
        &impostor_path,
        serde_json::to_vec_pretty(&impostor).unwrap(),
    )
    .unwrap();
    let _impostor = Proc(
        Command::new(envoy_path())
            .arg("-c")
            .arg(&impostor_path)
            .args(["--disable-hot-restart", "--log-level", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let admin_impostor = SocketAddr::from(([127, 0, 0, 1], admin_port));

    // Refused and counted ...
    eventually(
        "the impostor's stream is refused",
        Duration::from_secs(30),
        || async { sample(metrics, rejected).await.filter(|n| *n >= 1.0) },
    )
    .await;
    // ... and it keeps trying (Envoy retries), so the counter keeps rising ...
    let first = sample(metrics, rejected).await.unwrap();
    eventually(
        "the impostor retries and is refused again",
        Duration::from_secs(30),
        || async { sample(metrics, rejected).await.filter(|n| *n > first) },
    )
    .await;
    // ... without ever getting a listener: no LDS update, only the bootstrap's static stats
    // listener is active.
    let updates = eventually(
        "impostor admin answers",
        Duration::from_secs(10),
        || async { envoy_stat(admin_impostor, "listener_manager.lds.update_success").await },
    )
    .await;
    assert_eq!(updates, 0, "the impostor must get no listener over xDS");
    assert_eq!(
        envoy_stat(admin_impostor, "listener_manager.total_listeners_active").await,
        Some(1),
        "only the static stats listener"
    );
    let dump = client::get(
        admin_impostor,
        "localhost",
        "/config_dump?resource=dynamic_listeners",
        &[],
    )
    .await
    .unwrap();
    let dump: serde_json::Value = serde_json::from_slice(&dump.body).unwrap_or_default();
    assert!(
        dump["configs"].as_array().is_none_or(|c| c.is_empty()),
        "impostor got listeners: {dump}"
    );

    // The legitimate Envoys are unaffected.
    let r = client::get(gateway, HOST, "/", &[]).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        sample(
            metrics,
            "ferrogate_xds_connected_proxies{gateway=\"other\",namespace=\"default\"}"
        )
        .await,
        Some(1.0)
    );
}
