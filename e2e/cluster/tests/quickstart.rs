//! docs/quickstart.md, replayed on the local cluster so that it stays true.
//!
//! Every ```sh block of the page is classified below, in order ([`BLOCKS`]). The blocks a test
//! can run are run as written, with `bash -euo pipefail`, KUBECONFIG set to the local cluster
//! and its kubectl on PATH: the GatewayClass and EnvoyProxy (step 4), the backend (step 5),
//! the Gateway with its MetalLB address and the route (step 6), both curls (step 7), the
//! `kubectl wait` after the CRDs and the `kubectl get pods` after the chart. What needs kind,
//! Docker, an image build or a download is replaced by what the other cluster tests do: the
//! local control plane, the project's node serving LoadBalancer Services from the page's
//! own IPAddressPool range, upstream's CRDs from the Go module, the chart's objects applied
//! and `ferrogate controller` run as the chart's ServiceAccount. Each replaced block is named
//! by its exact commands, so a new or changed block fails this test until it is classified.
//! Step 8's `curl | grep` runs against the controller process's metrics address, which
//! stands in for the port-forward.

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ferrogate_cluster::controller::certgen;
use ferrogate_cluster::node::{Node, NodeOptions, Pool, PoolSpec};
use ferrogate_cluster::{
    ControlPlane, ControlPlaneOptions, Controller, ControllerOptions, install,
};
use serde::Deserialize;
use serde_json::Value;
use support::docs::{self, Ran};

/// How the test treats one ```sh block of the page.
enum Use {
    /// Cannot run here; the block must consist of exactly these commands (see
    /// [`docs::command`]), and `instead` is what the test does in their place.
    Replaced {
        commands: &'static [&'static str],
        instead: &'static str,
    },
    /// The MetalLB IPAddressPool and L2Advertisement: not applied (there is no MetalLB), but
    /// the pool's range is the one the node hands out.
    MetalLbPool,
    /// The first commands are replaced as in [`Use::Replaced`]; the rest run as written.
    ReplacedThenRun {
        replaced: &'static [&'static str],
        instead: &'static str,
    },
    /// Runs as written; `marker` only keeps this table in step with the page's order.
    Run { marker: &'static str },
    /// Step 8: the port-forward is replaced by the controller's own metrics address, the
    /// `curl | grep` runs with only that address changed, and `kill %1` has nothing to stop.
    Metrics {
        port_forward: &'static str,
        curl: &'static str,
        kill: &'static str,
    },
}

const BLOCKS: &[Use] = &[
    Use::Replaced {
        commands: &[
            "kind create cluster --name ferrogate",
            "make image",
            "kind load docker-image ferrogate/ferrogate:0.1.0 --name ferrogate",
        ],
        instead: "a local control plane (etcd, kube-apiserver, kube-controller-manager), the \
                  project's node, and `ferrogate controller` from target/debug",
    },
    Use::Replaced {
        commands: &[
            "kubectl apply -f https://raw.githubusercontent.com/metallb/metallb/v0.14.9/config/manifests/metallb-native.yaml",
            "kubectl wait -n metallb-system --for=condition=Available deployment/controller --timeout=180s",
            "kubectl wait -n metallb-system --for=condition=Ready pod -l component=speaker --timeout=180s",
        ],
        instead: "the node serves LoadBalancer Services as MetalLB would",
    },
    Use::Replaced {
        commands: &["docker network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}'"],
        instead: "no Docker network: the test checks that no interface of this host holds an \
                  address of the pool",
    },
    Use::MetalLbPool,
    Use::ReplacedThenRun {
        replaced: &[
            "kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.3/experimental-install.yaml",
        ],
        instead: "upstream's experimental CRDs from the sigs.k8s.io/gateway-api Go module of the \
                  same release",
    },
    Use::ReplacedThenRun {
        replaced: &[
            "helm install ferrogate charts/ferrogate --namespace ferrogate-system --create-namespace --wait",
        ],
        instead: "the chart's CRDs and objects with its default values (certgen hook off: \
                  `ferrogate certgen` writes the xDS certificates), and `ferrogate controller` \
                  as a process with the chart's ServiceAccount",
    },
    Use::Run {
        marker: "kind: GatewayClass",
    },
    Use::Run {
        marker: "image: hashicorp/http-echo:1.0",
    },
    Use::Run {
        marker: "kind: HTTPRoute",
    },
    Use::Run {
        marker: "http://172.18.255.200/",
    },
    Use::Metrics {
        port_forward: "kubectl -n ferrogate-system port-forward svc/ferrogate-metrics 19001:19001 &",
        curl: "curl -s http://127.0.0.1:19001/metrics | grep -E '^ferrogate_(gateways_by_status|xds_connected_proxies)'",
        kill: "kill %1",
    },
    Use::Replaced {
        commands: &["kind delete cluster --name ferrogate"],
        instead: "the control plane, node and controller stop when the test ends",
    },
];

/// The page, checked against [`BLOCKS`]: what the test runs, in the page's order.
struct Page {
    pool: String,
    after_crds: String,
    after_chart: String,
    gateway_class: String,
    backend: String,
    gateway: String,
    traffic: String,
    metrics_curl: String,
}

fn read_page() -> Page {
    let text =
        std::fs::read_to_string(ferrogate_cluster::tools::repo_root().join("docs/quickstart.md"))
            .unwrap();
    let blocks = docs::sh_blocks(&text);
    assert_eq!(
        blocks.len(),
        BLOCKS.len(),
        "docs/quickstart.md has {} sh blocks, this test classifies {}: classify the new ones",
        blocks.len(),
        BLOCKS.len()
    );
    let (mut pool, mut run, mut rest, mut metrics) = (None, Vec::new(), Vec::new(), None);
    for (i, (block, class)) in blocks.iter().zip(BLOCKS).enumerate() {
        let commands = docs::commands(block);
        let which = format!("sh block {} of docs/quickstart.md", i + 1);
        match class {
            Use::Replaced {
                commands: want,
                instead,
            } => {
                assert_eq!(
                    &commands, want,
                    "{which} changed; it was replaced by: {instead}"
                );
            }
            Use::MetalLbPool => pool = Some(metallb_pool(block, &which)),
            Use::ReplacedThenRun { replaced, instead } => {
                assert!(
                    commands.len() > replaced.len() && &commands[..replaced.len()] == *replaced,
                    "{which} changed; its first commands were replaced by: {instead}\n{block}"
                );
                let skip = block
                    .lines()
                    .position(|l| docs::command(l) == *replaced.last().unwrap())
                    .unwrap();
                rest.push(block.lines().skip(skip + 1).collect::<Vec<_>>().join("\n"));
            }
            Use::Run { marker } => {
                assert!(block.contains(marker), "{which} should contain {marker:?}");
                run.push(block.clone());
            }
            Use::Metrics {
                port_forward,
                curl,
                kill,
            } => {
                assert_eq!(commands, [*port_forward, *curl, *kill], "{which} changed");
                let line = block.lines().find(|l| docs::command(l) == *curl).unwrap();
                metrics = Some(line.to_string());
            }
        }
    }
    let [gateway_class, backend, gateway, traffic] = <[String; 4]>::try_from(run).unwrap();
    let [after_crds, after_chart] = <[String; 2]>::try_from(rest).unwrap();
    Page {
        pool: pool.unwrap(),
        after_crds,
        after_chart,
        gateway_class,
        backend,
        gateway,
        traffic,
        metrics_curl: metrics.unwrap(),
    }
}

/// The objects of a block that is one `kubectl apply -f - <<'EOF'` heredoc (and maybe commands
/// after it).
fn heredoc_objects(block: &str, which: &str) -> Vec<Value> {
    let first = block.lines().next().unwrap_or_default();
    assert_eq!(
        docs::command(first),
        "kubectl apply -f - <<'EOF'",
        "{which}"
    );
    let yaml = heredoc(block);
    yaml_serde::Deserializer::from_str(&yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn heredoc(block: &str) -> String {
    block
        .lines()
        .skip(1)
        .take_while(|l| *l != "EOF")
        .collect::<Vec<_>>()
        .join("\n")
}

/// The range of the block's IPAddressPool, checking that the block is that and its
/// L2Advertisement and nothing else.
fn metallb_pool(block: &str, which: &str) -> String {
    let objects = heredoc_objects(block, which);
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(kinds, ["IPAddressPool", "L2Advertisement"], "{which}");
    assert_eq!(
        block.lines().filter(|l| !l.trim().is_empty()).count(),
        heredoc(block)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
            + 2,
        "{which}: nothing but the heredoc"
    );
    let addresses = objects[0]["spec"]["addresses"].as_array().unwrap();
    assert_eq!(addresses.len(), 1, "{which}: one range");
    addresses[0].as_str().unwrap().to_string()
}

/// The node will put the pool's addresses on its bridge; one that an interface here already
/// has would shadow it (or be taken from it), so such a host cannot run this test.
fn assert_pool_is_free(pool: &Pool) {
    let out = ferrogate_cluster::node::network::ip(&["-o", "-4", "addr", "show"]).unwrap();
    for line in out.lines() {
        let Some(address) = line
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        assert!(
            !pool.contains(address),
            "this host already has {address}, inside the quickstart's MetalLB range \
             {}-{}: another run of this test, or a network that uses the range. \
             The test needs the range free.\n{line}",
            pool.first,
            pool.last
        );
    }
}

/// The rows of the table whose header starts with `NAME` and has column `column`, as
/// `kubectl get` prints it.
fn table<'a>(stdout: &'a str, column: &str) -> Vec<Vec<&'a str>> {
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines
        .by_ref()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|h| h.first() == Some(&"NAME") && h.contains(&column))
        .unwrap_or_else(|| panic!("no table with column {column} in:\n{stdout}"));
    lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .take_while(|r| r.first() != Some(&"NAME") && r.len() == header.len())
        .collect()
}

fn column_of(stdout: &str, column: &str) -> usize {
    stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|h| h.first() == Some(&"NAME") && h.contains(&column))
        .and_then(|h| h.iter().position(|c| *c == column))
        .unwrap()
}

#[test]
fn comments_are_not_part_of_a_command() {
    let md = "```sh\na  b   # say\n\nc '#x' \"# y\" # z\n```\n```yaml\nno\n```\n```sh\nd#e\n```\n";
    let blocks = docs::sh_blocks(md);
    assert_eq!(blocks.len(), 2);
    assert_eq!(docs::commands(&blocks[0]), ["a b", "c '#x' \"# y\""]);
    assert_eq!(docs::commands(&blocks[1]), ["d#e"]);
}

/// Step 4's aside: the chart, with the `--set` flags the page names, creates the same
/// EnvoyProxy and GatewayClass as the block (its EnvoyProxy is named after the release).
#[test]
fn the_charts_gateway_class_matches_step_4() {
    let text =
        std::fs::read_to_string(ferrogate_cluster::tools::repo_root().join("docs/quickstart.md"))
            .unwrap();
    let aside = text
        .lines()
        .find(|l| l.starts_with("(The chart can create"))
        .expect("step 4's aside about the chart");
    let flags = aside
        .split('`')
        .find(|s| s.starts_with("--set"))
        .expect("the --set flags in backticks");
    // `--set a.b=c` as values YAML.
    let mut values = serde_json::Map::new();
    for set in flags
        .split("--set")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (path, value) = set.split_once('=').unwrap();
        let mut map = &mut values;
        let keys: Vec<&str> = path.split('.').collect();
        for key in &keys[..keys.len() - 1] {
            map = map
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Default::default()))
                .as_object_mut()
                .unwrap();
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        map.insert(keys[keys.len() - 1].to_string(), value);
    }
    let rendered = install::render_chart(&yaml_serde::to_string(&values).unwrap()).unwrap();
    let chart: Vec<Value> = yaml_serde::Deserializer::from_str(&rendered)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    let page = read_page();
    let step4 = heredoc_objects(&page.gateway_class, "step 4");
    let find = |objects: &[Value], kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("a {kind}"))
    };
    let (proxy, class) = (find(&chart, "EnvoyProxy"), find(&chart, "GatewayClass"));
    assert_eq!(proxy["spec"], find(&step4, "EnvoyProxy")["spec"]);
    let mut want = find(&step4, "GatewayClass");
    want["spec"]["parametersRef"]["name"] = proxy["metadata"]["name"].clone();
    assert_eq!(class["metadata"]["name"], want["metadata"]["name"]);
    assert_eq!(class["spec"], want["spec"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_runs_as_written() {
    let started = Instant::now();
    let page = read_page();
    let pool = Pool::parse(&page.pool).unwrap();
    assert_pool_is_free(&pool);

    // Steps 1 and 2: a cluster, and a load balancer with the page's range.
    let plane = ControlPlane::start(ControlPlaneOptions::default())
        .await
        .expect("control plane");
    let node = Node::start(
        plane.client().await.unwrap(),
        NodeOptions {
            host_aliases: vec!["ferrogate.ferrogate-system.svc".into()],
            load_balancer_pool: Some(PoolSpec::Range(page.pool.clone())),
            ..NodeOptions::new("quickstart")
        },
    )
    .await
    .expect("the node starts");
    let root = ferrogate_cluster::tools::repo_root();
    let kubectl = plane.binaries().kubectl.clone();
    let run = |block: String| {
        let (root, kubeconfig, kubectl) = (
            root.clone(),
            plane.kubeconfig().to_path_buf(),
            kubectl.clone(),
        );
        async move {
            eprintln!("--- running:\n{block}");
            let ran = docs::run(
                &block,
                &root,
                &kubeconfig,
                &kubectl,
                Duration::from_secs(240),
            )
            .await;
            eprint!("{}", ran.stdout);
            ran
        }
    };

    // Step 3: upstream's CRDs, the chart, the controller.
    install::gateway_api_crds(&plane, "experimental").expect("upstream Gateway API CRDs");
    run(page.after_crds.clone()).await;
    install::chart(&plane, "certgen:\n  enabled: false\n")
        .unwrap_or_else(|e| panic!("chart install: {e:#}\n{}", plane.logs(20)));
    let tls = tempfile::tempdir().unwrap();
    certgen(tls.path()).expect("ferrogate certgen");
    let mut options = ControllerOptions::new("quickstart");
    options.xds_ip = node.host_ip().into();
    let controller = Controller::start(&plane, tls.path(), &options).expect("ferrogate controller");
    run(page.after_chart.clone()).await;

    // Steps 4 to 6, as written.
    run(page.gateway_class.clone()).await;
    run(page.backend.clone()).await;
    let Ran { stdout, .. } = run(page.gateway.clone()).await;
    let gateways = table(&stdout, "ADDRESS");
    let address = column_of(&stdout, "ADDRESS");
    assert!(
        gateways.len() == 1 && gateways[0][0] == "demo" && gateways[0][address] == "172.18.255.200",
        "`kubectl get gateway demo` should show ADDRESS 172.18.255.200:\n{stdout}"
    );
    let pods = table(&stdout, "READY");
    assert_eq!(pods.len(), 2, "two Envoy pods for the Gateway:\n{stdout}");

    // Step 7, as written: what each curl prints is what the page says it prints. Programmed
    // means an Envoy replica is available; the load balancer forwards to it once the
    // EndpointSlice lists it and the node has synced (every 500 ms), as kube-proxy lags behind
    // it too. So the block is run again, as written, for up to 10 s, and every early failure
    // is printed.
    let first = Instant::now();
    let mut failures = Vec::new();
    let stdout = loop {
        let attempt = docs::try_run(
            &page.traffic,
            &root,
            plane.kubeconfig(),
            &kubectl,
            Duration::from_secs(30),
        )
        .await;
        match attempt {
            Ok(Ran { stdout, .. }) if stdout == "hello from echo\n404\n" => break stdout,
            other => failures.push(format!("{:.1} s: {other:?}", first.elapsed().as_secs_f64())),
        }
        assert!(
            first.elapsed() < Duration::from_secs(10),
            "the curls of step 7 never printed `hello from echo` and `404`:\n{}",
            failures.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprint!("{stdout}");
    if !failures.is_empty() {
        eprintln!(
            "step 7 passed {:.1} s after Programmed; earlier runs:\n{}",
            first.elapsed().as_secs_f64(),
            failures.join("\n")
        );
    }

    // Both replicas of the EnvoyProxy serve: their Pods turn Ready only with config from xDS.
    let kubeconfig = plane.kubeconfig().to_path_buf();
    let envoys =
        ferrogate_cluster::wait::until("both Envoy Pods Ready", Duration::from_secs(90), || {
            let out = ferrogate_cluster::kubectl::run(
                &kubectl,
                &kubeconfig,
                &[
                    "get",
                    "pods",
                    "-l",
                    "gateway.networking.k8s.io/gateway-name=demo",
                    "-o",
                    "json",
                ],
                None,
            )
            .unwrap_or_default();
            async move {
                let pods: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
                let ready: Vec<std::net::IpAddr> = pods["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| support::condition_is(p, "/status/conditions", "Ready", "True"))
                    .filter_map(|p| p["status"]["podIP"].as_str()?.parse().ok())
                    .collect();
                if ready.len() == 2 {
                    Ok(ready)
                } else {
                    Err(format!("{} Ready", ready.len()))
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", controller.log_tail(30)));
    // Step 8's text: every Envoy pod serves its own stats on 19001 `/stats/prometheus`.
    for ip in envoys {
        let stats =
            ferrogate_e2e::client::get((ip, 19001).into(), "stats", "/stats/prometheus", &[])
                .await
                .unwrap_or_else(|e| panic!("stats of the Envoy pod at {ip}: {e:#}"));
        let body = String::from_utf8_lossy(&stats.body);
        assert!(
            stats.status == 200 && body.contains("envoy_server_live"),
            "Envoy stats on {ip}:19001: {} {}",
            stats.status,
            &body[..body.len().min(300)]
        );
    }

    // Step 8: the Service the port-forward names exists with that port; the controller's own
    // metrics address stands in for the forward.
    let service = plane
        .kubectl_output(&[
            "get",
            "service",
            "ferrogate-metrics",
            "-n",
            "ferrogate-system",
            "-o",
            "json",
        ])
        .expect("the chart's Service ferrogate-metrics");
    let service: Value = serde_json::from_str(&service).unwrap();
    assert_eq!(service["spec"]["ports"][0]["port"], 19001, "{service}");
    let forwarded = "http://127.0.0.1:19001/";
    assert_eq!(page.metrics_curl.matches(forwarded).count(), 1);
    let curl = page.metrics_curl.replace(
        forwarded,
        &format!("http://127.0.0.1:{}/", controller.metrics_port),
    );
    let Ran { stdout, .. } = run(curl).await;
    for name in [
        "ferrogate_gateways_by_status",
        "ferrogate_xds_connected_proxies",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "{name} in the metrics:\n{stdout}"
        );
    }
    let demo_proxies = stdout
        .lines()
        .find(|l| l.starts_with("ferrogate_xds_connected_proxies") && l.contains("\"demo\""));
    assert!(
        demo_proxies.is_some_and(|l| l.ends_with(" 2")),
        "two Envoys of Gateway demo connected over xDS:\n{stdout}"
    );

    eprintln!(
        "docs/quickstart.md replayed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    drop(node);
}
