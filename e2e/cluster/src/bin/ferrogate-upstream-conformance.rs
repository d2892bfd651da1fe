//! `make upstream-conformance`: the Gateway API conformance suite, unmodified (built from its
//! module by `e2e/upstream-conformance/build.sh`), against Ferrogate on the local cluster,
//! set up as the in-cluster tests set it up: control plane, upstream's experimental CRDs, the
//! chart, `ferrogate controller` as the chart's ServiceAccount, and the project's node running
//! the provisioned Envoy Pods and the suite's backends, serving LoadBalancer addresses.
//!
//! The supported features passed to the suite are the ones the GatewayClass publishes
//! (`status.supportedFeatures`), so the run checks exactly what Ferrogate claims. Exits
//! non-zero when the suite cannot run or fewer than `--min-passed` tests pass: one flaky test
//! must not block a change, a broken setup must.

use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use ferrogate_cluster::controller::certgen;
use ferrogate_cluster::node::{Node, NodeOptions, PoolSpec};
use ferrogate_cluster::{
    ControlPlane, ControlPlaneOptions, Controller, ControllerOptions, install, tools, upstream,
};

/// Every gateway profile of the suite (v1.6 added GATEWAY-TCP and GATEWAY-UDP); the mesh
/// profiles are left out: Ferrogate is not a mesh.
const PROFILES: &str = "GATEWAY-HTTP,GATEWAY-GRPC,GATEWAY-TLS,GATEWAY-TCP,GATEWAY-UDP";

#[derive(Parser, Debug)]
struct Args {
    /// Where the ConformanceReport is written.
    #[arg(long)]
    report: PathBuf,
    /// The suite's output (and the controller's log beside it).
    #[arg(long, default_value = ".run/upstream-conformance.log")]
    log: PathBuf,
    /// Fail when fewer tests pass.
    #[arg(long, default_value_t = 0)]
    min_passed: usize,
    /// Conformance profiles.
    #[arg(long, default_value = PROFILES)]
    profiles: String,
    /// Tests to skip (comma-separated short names: the suite's --skip-tests).
    #[arg(long, default_value = "")]
    skip_tests: String,
    /// Run only this test (the suite's --run-test).
    #[arg(long, default_value = "")]
    run_test: String,
    /// Leave the cluster up this long after the suite, for a person to look at.
    #[arg(long, default_value_t = 0)]
    linger_secs: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let built = tools::upstream_conformance()?;
    let plane = ControlPlane::start(ControlPlaneOptions::default()).await?;
    install::gateway_api_crds(&plane, "experimental")?;
    let values = std::fs::read_to_string(
        tools::repo_root().join("charts/ferrogate/ci/local-cluster-values.yaml"),
    )?;
    install::chart(&plane, &values)?;
    let tls = tempfile::tempdir()?;
    certgen(tls.path())?;

    let mut options = NodeOptions::new("conformance-node");
    options.host_aliases = vec!["ferrogate.ferrogate-system.svc".into()];
    options.images.echo_basic = Some(built.echo_basic.clone());
    options.images.coredns = Some(built.coredns.clone());
    options.load_balancer_pool = Some(PoolSpec::NodeSubnet);
    let node = Node::start(plane.client().await?, options).await?;
    let pool = node.load_balancer_pool().context("the node has a pool")?;
    let mut controller_options = ControllerOptions::new("conformance");
    controller_options.xds_ip = node.host_ip().into();
    // The controller knows the load balancer's pool, as a user would tell it MetalLB's.
    controller_options.args.push(format!(
        "--static-address-pool={}-{}",
        pool.first, pool.last
    ));
    let mut controller = Controller::start(&plane, tls.path(), &controller_options)?;

    let features = supported_features(&plane).await?;
    eprintln!(
        "setup done in {:.0}s; GatewayClass ferrogate supports {} features; KUBECONFIG={}",
        started.elapsed().as_secs_f64(),
        features.split(',').count(),
        plane.kubeconfig().display()
    );

    // GatewayStaticAddresses: an address of the pool is usable, one outside it is not (the
    // node, like MetalLB, assigns only pool addresses).
    let usable = Ipv4Addr::from(u32::from(pool.last) - 4);
    let unusable = Ipv4Addr::new(192, 0, 2, 77);
    if let Some(dir) = args.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let Some(dir) = args.report.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let report = std::path::absolute(&args.report)?;
    let mut cmd = Command::new(&built.suite);
    cmd.env("KUBECONFIG", plane.kubeconfig())
        .args([
            "-test.v",
            "-test.run",
            "^TestConformance$",
            "-test.timeout",
            "120m",
        ])
        .arg("--gateway-class=ferrogate")
        .arg(format!("--conformance-profiles={}", args.profiles))
        .arg(format!("--supported-features={features}"))
        .arg(format!("--usable-address={usable}"))
        .arg(format!("--unusable-address={unusable}"))
        .arg(format!("--report-output={}", report.display()))
        .args([
            "--organization=ferrogate",
            "--project=ferrogate",
            "--url=https://ferrogate.dev",
        ])
        .arg(format!("--version=v{}", env!("CARGO_PKG_VERSION")))
        .args(["--contact=ferrogate maintainers", "--mode=default"])
        // The suite's base objects live as long as this cluster does.
        .arg("--cleanup-base-resources=false");
    if !args.skip_tests.is_empty() {
        cmd.arg(format!("--skip-tests={}", args.skip_tests));
    }
    if !args.run_test.is_empty() {
        cmd.arg(format!("--run-test={}", args.run_test));
    }
    let suite_started = Instant::now();
    let output = run_logged(cmd, &args.log)?;
    let suite_time = suite_started.elapsed();
    let outcomes = upstream::outcomes(&output);

    std::fs::copy(
        plane.dir().join("controller-conformance.log"),
        args.log.with_extension("controller.log"),
    )
    .ok();
    if let Some(code) = controller.exited() {
        eprintln!("the controller exited during the run ({code}); see its log");
    }
    if args.linger_secs > 0 {
        eprintln!(
            "KUBECONFIG={} for {}s",
            plane.kubeconfig().display(),
            args.linger_secs
        );
        tokio::time::sleep(Duration::from_secs(args.linger_secs)).await;
    }
    controller.stop();
    drop(node);

    println!(
        "upstream conformance: {} passed, {} failed, {} skipped in {:.0}s (suite {:.0}s)",
        outcomes.passed.len(),
        outcomes.failed.len(),
        outcomes.skipped.len(),
        started.elapsed().as_secs_f64(),
        suite_time.as_secs_f64()
    );
    for name in &outcomes.failed {
        println!("  FAIL {name}");
    }
    match std::fs::read_to_string(&report) {
        Ok(text) => {
            for (profile, levels) in upstream::report_summary(&text)? {
                for (level, (result, passed, failed, skipped)) in levels {
                    println!(
                        "  {profile} {level}: {result} ({passed} passed, {failed} failed, {skipped} skipped)"
                    );
                }
            }
            println!("report: {}", args.report.display());
        }
        Err(e) => println!("no report at {} ({e})", args.report.display()),
    }
    anyhow::ensure!(
        outcomes.passed.len() >= args.min_passed,
        "{} tests passed, fewer than the floor of {} (log: {})",
        outcomes.passed.len(),
        args.min_passed,
        args.log.display()
    );
    Ok(())
}

/// The GatewayClass's `status.supportedFeatures` names, comma-separated, once it is Accepted.
async fn supported_features(plane: &ControlPlane) -> anyhow::Result<String> {
    let found = ferrogate_cluster::wait::until(
        "GatewayClass ferrogate Accepted with features",
        Duration::from_secs(120),
        || {
            let out = plane
                .kubectl_output(&[
                    "get",
                    "gatewayclass",
                    "ferrogate",
                    "-o",
                    "jsonpath={.status.supportedFeatures[*].name}",
                ])
                .unwrap_or_default();
            async move {
                let names: Vec<&str> = out.split_whitespace().collect();
                if names.is_empty() {
                    Err("no supportedFeatures yet".to_string())
                } else {
                    Ok(names.join(","))
                }
            }
        },
    )
    .await?;
    Ok(found)
}

/// Runs `cmd`, copying its output to `log` and to stdout as it comes; returns it all.
fn run_logged(mut cmd: Command, log: &std::path::Path) -> anyhow::Result<String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the conformance suite")?;
    let mut file = std::fs::File::create(log)?;
    let mut all = String::new();
    let reader = std::io::BufReader::new(child.stdout.take().expect("piped"));
    for line in reader.lines() {
        let line = line?;
        writeln!(file, "{line}")?;
        // The suite is verbose; a person follows the test verdicts, the log keeps the rest.
        if line.contains("--- ")
            || line.starts_with("=== RUN   TestConformance/") && !line[26..].contains('/')
        {
            println!("{line}");
        }
        all.push_str(&line);
        all.push('\n');
    }
    let status = child.wait()?;
    eprintln!("conformance suite exited: {status}");
    Ok(all)
}
