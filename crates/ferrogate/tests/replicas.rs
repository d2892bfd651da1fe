//! End to end: an EnvoyProxy with `replicas: 2` in standalone mode runs two Envoy processes
//! for the Gateway, both configured over xDS and both bound to its listener port. A
//! `kill -9` of one under a stream of requests on fresh connections refuses none of them
//! (the other replica keeps accepting) and the killed one comes back with its config.
//! Scaling down to 1 stops replica 1 only. A `kill -9` of the control plane leaves the
//! replicas serving; the next control plane adopts each of them, and stops one that its
//! configuration no longer wants.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ferrogate_e2e::client;
use ferrogate_e2e::testing::{
    self, Proc, Standalone, StandalonePorts, eventually, free_block, free_port,
};

const HOST: &str = "www.example.com";

/// Where each test looks for its ports. Tests of one binary share a pid, so `free_block`
/// would give them the same block from the same start; these are far apart (and the last
/// one's blocks stay below 32768 for any pid).
const START_PLAIN: u16 = 1100;
const START_TLS: u16 = 5100;
const START_ADOPT: u16 = 9100;
/// Ports per test, see [`Ports`].
const PORTS: u16 = 13;

/// A test's fixed ports, all below the ephemeral range (from 32768 on Linux): the thousands
/// of outgoing connections these tests make take their local ports from that range, and
/// could take a port there between the moment it is found free and the moment it is bound.
struct Ports {
    /// `--envoy-base-port`: the Gateway's block of 10 (replica 0's admin port first).
    base: u16,
    /// The Gateway's listener.
    gateway: u16,
    /// xDS and metrics, for a control plane that must keep them across a restart.
    xds: u16,
    metrics: u16,
}

fn ports(start: u16) -> Ports {
    let base = free_block(start, PORTS);
    assert!(
        base + PORTS <= 32768,
        "no free ports below the ephemeral range"
    );
    Ports {
        base,
        gateway: base + 10,
        xds: base + 11,
        metrics: base + 12,
    }
}

/// The quickstart, with its GatewayClass pointing at an EnvoyProxy asking for `replicas`.
fn config(gateway_port: u16, v1: SocketAddr, v2: SocketAddr) -> Vec<(&'static str, String)> {
    let mut files = testing::quickstart(gateway_port, v1, v2);
    let controller = "controllerName: gateway.ferrogate.dev/gatewayclass-controller";
    let gateway = &mut files
        .iter_mut()
        .find(|(name, _)| *name == "gateway.yaml")
        .unwrap()
        .1;
    assert!(gateway.contains(controller));
    *gateway = gateway.replace(
        controller,
        &format!("{controller}\n  parametersRef:\n    group: gateway.ferrogate.dev\n    kind: EnvoyProxy\n    name: proxy\n    namespace: default"),
    );
    files.push(("envoyproxy.yaml", envoy_proxy(2)));
    files
}

fn envoy_proxy(replicas: u32) -> String {
    format!(
        "apiVersion: gateway.ferrogate.dev/v1alpha1\nkind: EnvoyProxy\nmetadata:\n  name: proxy\n  namespace: default\nspec:\n  provider:\n    type: Kubernetes\n    kubernetes:\n      envoyDeployment:\n        replicas: {replicas}\n"
    )
}

/// Pid of each replica whose bootstrap lies under `work` (replica 0 reads `bootstrap.json`,
/// replica r `bootstrap-<r>.json`).
fn replica_pids(work: &Path) -> BTreeMap<u32, u32> {
    let needle = work.to_string_lossy().to_string();
    let mut pids = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let Some(bootstrap) = args.windows(2).find(|w| w[0] == "-c").map(|w| w[1].clone()) else {
            continue;
        };
        if !args[0].contains("envoy") || !bootstrap.starts_with(&needle) {
            continue;
        }
        let file = Path::new(&bootstrap)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let replica = match file.as_str() {
            "bootstrap.json" => 0,
            other => other
                .trim_start_matches("bootstrap-")
                .trim_end_matches(".json")
                .parse()
                .unwrap(),
        };
        pids.insert(replica, pid);
    }
    pids
}

/// Whether the Envoy with admin port `admin` has the Gateway's listener from xDS.
async fn has_listener(admin: u16, gateway_port: u16) -> bool {
    let admin = SocketAddr::from(([127, 0, 0, 1], admin));
    let Ok(r) = client::get(admin, "localhost", "/listeners", &[]).await else {
        return false;
    };
    r.status == 200 && String::from_utf8_lossy(&r.body).contains(&format!(":{gateway_port}"))
}

async fn connected_proxies(metrics: SocketAddr) -> Option<u64> {
    let r = client::get(metrics, "localhost", "/metrics", &[])
        .await
        .ok()?;
    let series = "ferrogate_xds_connected_proxies{gateway=\"quickstart\",namespace=\"default\"} ";
    String::from_utf8_lossy(&r.body)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

async fn two_replicas(extra_args: &[&str], tag: &str, start: u16) {
    let v1 =
        ferrogate_e2e::echo::spawn_for_test(&format!("echo-v1-{tag}"), "default", "echo-v1").await;
    let v2 =
        ferrogate_e2e::echo::spawn_for_test(&format!("echo-v2-{tag}"), "default", "echo-v2").await;
    let Ports {
        base,
        gateway: gateway_port,
        ..
    } = ports(start);
    let fg = Standalone::start(
        env!("CARGO_BIN_EXE_ferrogate"),
        config(gateway_port, v1, v2),
        base,
        extra_args,
    );
    let (work, gateway) = (
        fg.work_dir(),
        SocketAddr::from(([127, 0, 0, 1], gateway_port)),
    );
    // Replica 0's admin port is the slot's first port, replica 1's is 4 further (the
    // Gateway is the only one, so it has slot 0).
    let admin = [base, base + 4];

    // Both replicas run, are configured over xDS and the Gateway answers.
    let pids = eventually("two Envoy replicas", Duration::from_secs(60), || async {
        let pids = replica_pids(&work);
        (pids.len() == 2).then_some(pids)
    })
    .await;
    for port in admin {
        eventually(
            "the Gateway's listener on every replica",
            Duration::from_secs(60),
            || async { has_listener(port, gateway_port).await.then_some(()) },
        )
        .await;
    }
    eventually(
        "two xDS streams for the Gateway",
        Duration::from_secs(30),
        || async { (connected_proxies(fg.metrics).await == Some(2)).then_some(()) },
    )
    .await;
    let (r, _) =
        testing::eventually_response(gateway, HOST, "/", &[], Duration::from_secs(30), |r| {
            r.status == 200
        })
        .await;
    assert_eq!(testing::pod(&r), format!("echo-v1-{tag}"));

    // kill -9 replica 0 while requests on fresh connections keep coming, until it is back
    // with its config. Replica 1 holds the port all along: nothing may be refused.
    let killed = pids[&0];
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &killed.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut ok, mut refused, mut other) = (0u32, 0u32, Vec::new());
    loop {
        match client::get(gateway, HOST, "/", &[]).await {
            Ok(r) if r.status == 200 => ok += 1,
            Ok(r) => other.push(format!("status {}", r.status)),
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == ErrorKind::ConnectionRefused) =>
            {
                refused += 1
            }
            Err(e) => other.push(e.to_string()),
        }
        let back = replica_pids(&work).get(&0).is_some_and(|p| *p != killed)
            && has_listener(admin[0], gateway_port).await;
        if back && ok > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica 0 did not come back with its config; replicas now {:?}, {ok} answered, {refused} refused, other failures {other:?}",
            replica_pids(&work)
        );
    }
    eprintln!(
        "[{tag}] while replica 0 was down: {ok} answered, {refused} refused, other failures: {other:?}"
    );
    assert_eq!(
        refused, 0,
        "connections were refused although replica 1 was running"
    );
    assert_eq!(
        replica_pids(&work)[&1],
        pids[&1],
        "replica 1 was not touched"
    );

    // Scale down to 1: replica 1 stops, replica 0 keeps running and answering.
    let restarted = replica_pids(&work)[&0];
    std::fs::write(fg.dir.path().join("config/envoyproxy.yaml"), envoy_proxy(1)).unwrap();
    eventually("replica 1 to stop", Duration::from_secs(30), || async {
        (replica_pids(&work).len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        replica_pids(&work),
        BTreeMap::from([(0, restarted)]),
        "replica 0 was restarted"
    );
    let r = client::get(gateway, HOST, "/", &[]).await.unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_listener_and_survive_a_kill() {
    two_replicas(&[], "replicas", START_PLAIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_connect_with_the_gateways_certificate_over_xds_tls() {
    two_replicas(&["--xds-tls"], "replicas-tls", START_TLS).await;
}

/// `ferrogate standalone` on `dir` with fixed xDS and metrics ports, so a restarted one
/// renders the same bootstraps and can adopt the running Envoys.
fn spawn_fixed(dir: &Path, xds: u16, metrics: u16, envoy_base: u16) -> Proc {
    let ports = StandalonePorts {
        xds,
        metrics,
        health: free_port(),
        envoy_base,
    };
    Proc(
        testing::standalone_command(env!("CARGO_BIN_EXE_ferrogate"), dir, &ports)
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_control_plane_adopts_each_replica_and_stops_one_no_longer_wanted() {
    let v1 = ferrogate_e2e::echo::spawn_for_test("echo-v1-adopt", "default", "echo-v1").await;
    let v2 = ferrogate_e2e::echo::spawn_for_test("echo-v2-adopt", "default", "echo-v2").await;
    let dir = tempfile::tempdir().unwrap();
    let Ports {
        base,
        gateway: gateway_port,
        xds,
        metrics,
    } = ports(START_ADOPT);
    testing::write_files(&dir.path().join("config"), config(gateway_port, v1, v2));
    let (work, gateway) = (
        dir.path().join("work"),
        SocketAddr::from(([127, 0, 0, 1], gateway_port)),
    );
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], metrics));

    let mut first = spawn_fixed(dir.path(), xds, metrics, base);
    eventually(
        "two replicas with config",
        Duration::from_secs(60),
        || async {
            let both = has_listener(base, gateway_port).await
                && has_listener(base + 4, gateway_port).await;
            (both && replica_pids(&work).len() == 2).then_some(())
        },
    )
    .await;
    let before = replica_pids(&work);

    // kill -9 of the control plane: both replicas keep running and serving.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert_eq!(
        replica_pids(&work),
        before,
        "the replicas outlive the control plane"
    );
    let r = client::get(gateway, HOST, "/", &[]).await.unwrap();
    assert_eq!(r.status, 200);

    // While no control plane runs, the EnvoyProxy goes down to one replica. The next
    // control plane adopts replica 0 (same process) and stops the left-over replica 1.
    std::fs::write(dir.path().join("config/envoyproxy.yaml"), envoy_proxy(1)).unwrap();
    let _second = spawn_fixed(dir.path(), xds, metrics, base);
    eventually(
        "the left-over replica 1 to stop",
        Duration::from_secs(30),
        || async { (replica_pids(&work).len() == 1).then_some(()) },
    )
    .await;
    assert_eq!(
        replica_pids(&work),
        BTreeMap::from([(0, before[&0])]),
        "replica 0 was replaced, not adopted"
    );
    eventually(
        "the adopted replica to reconnect to xDS",
        Duration::from_secs(60),
        || async { (connected_proxies(metrics_addr).await == Some(1)).then_some(()) },
    )
    .await;
    let r = client::get(gateway, HOST, "/", &[]).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(replica_pids(&work), BTreeMap::from([(0, before[&0])]));
}
