//! Data-plane comparison (wrk through the Ferrogate-configured Envoy vs the same Envoy binary
//! with a hand-written static config) and faults under steady wrk load.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use super::implementation::ControlPlane;
use super::local_envoy::LocalEnvoy;
use super::procs::{self, Ferrogate, Scrape};
use super::{Ctx, world};

/// What wrk printed.
#[derive(Clone, Debug, Default)]
pub struct WrkResult {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: f64,
    pub socket_errors: f64,
    pub non_2xx: f64,
}

fn parse_latency(s: &str) -> Option<f64> {
    let s = s.trim();
    for (suffix, factor) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)] {
        if let Some(v) = s.strip_suffix(suffix)
            && let Ok(v) = v.parse::<f64>()
        {
            return Some(v * factor);
        }
    }
    None
}

/// Parses wrk's `--latency` output.
pub fn parse_wrk(text: &str) -> WrkResult {
    let mut r = WrkResult::default();
    for line in text.lines() {
        let t = line.trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        if t.starts_with("Requests/sec:") {
            r.rps = words.get(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        } else if t.starts_with("50%") {
            r.p50_ms = words
                .get(1)
                .and_then(|v| parse_latency(v))
                .unwrap_or(f64::NAN);
        } else if t.starts_with("99%") {
            r.p99_ms = words
                .get(1)
                .and_then(|v| parse_latency(v))
                .unwrap_or(f64::NAN);
        } else if t.contains(" requests in ") {
            r.requests = words.first().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        } else if t.starts_with("Socket errors:") {
            r.socket_errors = t
                .trim_start_matches("Socket errors:")
                .split(',')
                .filter_map(|p| {
                    p.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<f64>().ok())
                })
                .sum();
        } else if t.starts_with("Non-2xx or 3xx responses:") {
            r.non_2xx = words.last().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        }
    }
    r
}

/// `wrk -t1 -c{conns} -d{secs}s --latency -H 'Host: host' url`.
pub(super) fn wrk_command(port: u16, host: &str, path: &str, secs: u32, conns: u32) -> Command {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--latency",
        "-H",
        &format!("Host: {host}"),
    ])
    .arg(format!("http://127.0.0.1:{port}{path}"))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    cmd
}

async fn wrk(port: u16, host: &str, path: &str, secs: u32) -> anyhow::Result<WrkResult> {
    wrk_with(port, host, path, secs, 16).await
}

/// wrk over a single connection (for an Envoy running under valgrind).
pub(super) async fn wrk_single(
    port: u16,
    host: &str,
    path: &str,
    secs: u32,
) -> anyhow::Result<WrkResult> {
    wrk_with(port, host, path, secs, 1).await
}

async fn wrk_with(
    port: u16,
    host: &str,
    path: &str,
    secs: u32,
    conns: u32,
) -> anyhow::Result<WrkResult> {
    let out = wrk_command(port, host, path, secs, conns)
        .output()
        .await
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let r = parse_wrk(&text);
    anyhow::ensure!(
        r.rps > 0.0,
        "wrk printed no Requests/sec: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(r)
}

/// One wrk run against one Envoy, with the CPU time that Envoy spent on it.
#[derive(Clone, Debug)]
struct Run {
    wrk: WrkResult,
    /// Envoy's user + system CPU time per request served, in microseconds.
    cpu_us_per_request: f64,
}

async fn measured_wrk(
    port: u16,
    pid: u32,
    host: &str,
    path: &str,
    secs: u32,
) -> anyhow::Result<Run> {
    let before = procs::cpu_ticks(pid).context("reading the Envoy's CPU time")?;
    let wrk = wrk(port, host, path, secs).await?;
    let after = procs::cpu_ticks(pid).context("reading the Envoy's CPU time")?;
    let cpu_s = (after - before) as f64 / procs::clock_ticks();
    let cpu_us_per_request = cpu_s * 1e6 / wrk.requests.max(1.0);
    Ok(Run {
        wrk,
        cpu_us_per_request,
    })
}

/// A hand-written static Envoy (`flavour`) serving the bench routes on `port`.
async fn start_static(
    ctx: &Ctx,
    flavour: world::StaticFlavour,
    port: u16,
    admin: u16,
) -> anyhow::Result<LocalEnvoy> {
    let name = format!("static-{flavour:?}").to_lowercase();
    let bootstrap = ctx.dir.join(format!("{name}.yaml"));
    std::fs::write(
        &bootstrap,
        world::static_bootstrap(ctx.world.routes, port, admin, ctx.echo_a.http_port, flavour),
    )?;
    LocalEnvoy::start(
        ctx,
        &name,
        &[],
        &bootstrap,
        &["--drain-time-s", "1"],
        port,
        Duration::from_secs(10),
    )
    .await
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Rounds of the data-plane comparison; each round runs every Envoy once, in a rotated
/// order, so drifts of the shared machine (wrk, three Envoys and the echo backend on two
/// cores) fall on each Envoy alike.
const DATAPLANE_ROUNDS: usize = 5;

/// Ferrogate's Envoy vs the same Envoy binary with hand-written static configs (same
/// routes, same backend): `static` repeats Ferrogate's request semantics, `minimal` only
/// routes. Throughput is noisy on a shared 2-core machine, so two figures are kept per
/// pair: the median of per-round req/s ratios, and the ratio of Envoy CPU time per request
/// (a capacity ratio: what each config costs the proxy, steadier than req/s).
pub(super) async fn dataplane(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.world.routes;
    ctx.log(&format!("data plane at {n} routes (wrk)"));
    let ports = ctx.launch.ports;
    let fg_pid = ctx
        .envoy_pid()
        .context("Ferrogate's Envoy is not running")?;
    // Both are killed when dropped, also on an early return.
    let equivalent = start_static(
        ctx,
        world::StaticFlavour::Equivalent,
        ports.static_listener(),
        ports.static_admin(),
    )
    .await?;
    let minimal = start_static(
        ctx,
        world::StaticFlavour::Minimal,
        ports.static_listener() + 1,
        ports.static_admin() + 1,
    )
    .await?;
    let envoys: [(&str, u16, u32); 3] = [
        ("ferrogate", ports.listener(), fg_pid),
        ("static", equivalent.port, equivalent.pid),
        ("minimal", minimal.port, minimal.pid),
    ];
    let (host, path) = (world::host(0), world::path(0));
    let secs = ctx.cfg.wrk_seconds;
    let result = async {
        for (_, port, _) in envoys {
            wrk(port, &host, &path, 2).await?; // warm-up
        }
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); envoys.len()];
        for round in 0..DATAPLANE_ROUNDS {
            for k in 0..envoys.len() {
                let i = (round + k) % envoys.len();
                let (_, port, pid) = envoys[i];
                runs[i].push(measured_wrk(port, pid, &host, &path, secs).await?);
            }
        }
        anyhow::Ok(runs)
    }
    .await;
    equivalent.stop().await;
    minimal.stop().await;
    let runs = result?;
    let s = "dataplane";
    let mean = |v: &[Run], f: fn(&Run) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    for ((who, _, _), runs) in envoys.iter().zip(&runs) {
        for (i, r) in runs.iter().enumerate() {
            ctx.log(&format!(
                "wrk {who} round {i}: {:.0} req/s p50 {:.3} ms p99 {:.3} ms, Envoy CPU {:.1} us/request",
                r.wrk.rps, r.wrk.p50_ms, r.wrk.p99_ms, r.cpu_us_per_request
            ));
        }
        ctx.rec(
            &format!("dataplane_rps_{who}"),
            n,
            mean(runs, |r| r.wrk.rps),
            "req/s",
            s,
        );
        ctx.rec(
            &format!("dataplane_p50_ms_{who}"),
            n,
            mean(runs, |r| r.wrk.p50_ms),
            "ms",
            s,
        );
        ctx.rec(
            &format!("dataplane_p99_ms_{who}"),
            n,
            mean(runs, |r| r.wrk.p99_ms),
            "ms",
            s,
        );
        ctx.rec(
            &format!("dataplane_cpu_us_per_request_{who}"),
            n,
            median(runs.iter().map(|r| r.cpu_us_per_request).collect()),
            "us",
            s,
        );
    }
    for (suffix, other) in [("", 1), ("_vs_minimal", 2)] {
        let ratios: Vec<f64> = runs[0]
            .iter()
            .zip(&runs[other])
            .map(|(a, b)| a.wrk.rps / b.wrk.rps)
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        ctx.rec(
            &format!("dataplane_rps_ratio{suffix}"),
            n,
            median(ratios),
            "ratio",
            s,
        );
        ctx.rec(
            &format!("dataplane_rps_ratio{suffix}_min"),
            n,
            lo,
            "ratio",
            s,
        );
        ctx.rec(
            &format!("dataplane_rps_ratio{suffix}_max"),
            n,
            hi,
            "ratio",
            s,
        );
        let cpu = |i: usize| median(runs[i].iter().map(|r| r.cpu_us_per_request).collect());
        ctx.rec(
            &format!("dataplane_cpu_ratio{suffix}"),
            n,
            cpu(other) / cpu(0),
            "ratio",
            s,
        );
    }
    Ok(())
}

/// Faults under steady wrk load through the Ferrogate-configured Envoy.
pub(super) async fn faults(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.world.routes;
    let (host, path) = (world::host(0), world::path(0));
    let port = ctx.launch.ports.listener();

    // 1. Route edits under load (the probes: add + remove), counting failures on a steady route.
    super::under_load::route_edits(ctx).await?;
    // 1b. Gateways added and removed beside the busy one: each gets its own Envoy (admin
    // ports from its slot: slots 1-3 stay below the busy listener's port), which must not
    // disturb the busy Gateway's Envoy.
    ctx.log("fault: add and remove Gateways beside the busy one");
    let busy_before = ctx.envoy_pid();
    let load = wrk_command(port, &host, &path, 14, 4).spawn()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let extra: Vec<(String, u16)> = (0..3u16)
        .map(|k| (format!("extra{k}"), ctx.launch.ports.base + 70 + k))
        .collect();
    let mut added = 0;
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(8) {
        for (name, listener) in &extra {
            ctx.world.add_gateway(name, *listener)?;
            added += 1;
        }
        for (name, listener) in &extra {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], *listener));
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while crate::client::get(addr, "extra.example.com", "/", &[])
                .await
                .is_err()
            {
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "Gateway {name} not serving on {listener} after 30 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for (name, _) in &extra {
            ctx.world.remove_gateway(name)?;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while all_envoys(&ctx.launch.work_dir()).len() > 1 {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "extra Envoys still running 30 s after their Gateways were removed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let out = load.wait_with_output().await?;
    let r = parse_wrk(&String::from_utf8_lossy(&out.stdout));
    let s = "gateways-beside-busy";
    ctx.rec(
        "gateways_added_and_removed",
        n,
        f64::from(added),
        "count",
        s,
    );
    ctx.rec("fault_requests", n, r.requests, "count", s);
    ctx.rec(
        "failed_requests",
        n,
        r.socket_errors + r.non_2xx,
        "count",
        s,
    );
    let unchanged = busy_before.is_some() && ctx.envoy_pid() == busy_before;
    ctx.rec(
        "busy_envoy_pid_unchanged",
        n,
        if unchanged { 1.0 } else { 0.0 },
        "bool",
        s,
    );

    // 1c. A route Envoy rejects: NACK counted, the last good config keeps serving, the
    // route is held out with a status saying so, and a valid route added after it converges
    // as any other (the bad route stays in the config directory meanwhile).
    ctx.log("fault: a route Envoy rejects (NACK) under load");
    let s = "nack";
    let nacks = |m: &Scrape| procs::sum(m, "ferrogate_xds_nacks_total");
    let before = nacks(&ctx.metrics().await);
    let load = wrk_command(port, &host, &path, 12, 4).spawn()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ctx.world.add_rejected_route("nackroute", &host)?;
    let t0 = std::time::Instant::now();
    let mut counted = false;
    while t0.elapsed() < Duration::from_secs(15) {
        if nacks(&ctx.metrics().await) > before {
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let nack_ms = t0.elapsed().as_secs_f64() * 1000.0;
    // The route's status names Envoy's rejection once the quarantine holds it out.
    let status_file = ctx.dir.join("status/httproutes/default/nackroute.yaml");
    let mut status_says = false;
    while counted && t0.elapsed() < Duration::from_secs(15) {
        if std::fs::read_to_string(&status_file).is_ok_and(|t| t.contains("Envoy rejected")) {
            status_says = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let serving = ctx
        .until_status(&host, &path, 200, 3, Duration::from_secs(5))
        .await
        .is_ok();
    // With the bad route still there, a valid new route converges.
    let after_nack = ctx.probe(Duration::from_secs(30)).await.ok();
    let recovered = after_nack.is_some();
    ctx.world.remove_probe("nackroute")?;
    let out = load.wait_with_output().await?;
    let r = parse_wrk(&String::from_utf8_lossy(&out.stdout));
    ctx.rec(
        "nacks_counted",
        n,
        nacks(&ctx.metrics().await) - before,
        "count",
        s,
    );
    if counted {
        ctx.rec("nack_counted_ms", n, nack_ms, "ms", s);
    }
    if let Some((add_ms, _)) = after_nack {
        ctx.rec("route_converge_after_nack_ms", n, add_ms, "ms", s);
    }
    ctx.rec(
        "route_status_shows_rejection",
        n,
        if status_says { 1.0 } else { 0.0 },
        "bool",
        s,
    );
    ctx.rec(
        "serving_during_nack",
        n,
        if serving { 1.0 } else { 0.0 },
        "bool",
        s,
    );
    ctx.rec(
        "edits_apply_after_nack",
        n,
        if recovered { 1.0 } else { 0.0 },
        "bool",
        s,
    );
    ctx.rec("fault_requests", n, r.requests, "count", s);
    ctx.rec(
        "failed_requests",
        n,
        r.socket_errors + r.non_2xx,
        "count",
        s,
    );

    // 2. Envoy crash (kill -9 of the Envoy), the control plane restarts it.
    ctx.log("fault: kill -9 envoy under load");
    let load = wrk_command(port, &host, &path, 12, 4).spawn()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t0 = std::time::Instant::now();
    for pid in all_envoys(&ctx.launch.work_dir()) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status()
            .await;
    }
    let back = ctx
        .until_status(&host, &path, 200, 3, Duration::from_secs(60))
        .await;
    let out = load.wait_with_output().await?;
    let r = parse_wrk(&String::from_utf8_lossy(&out.stdout));
    ctx.rec("fault_requests", n, r.requests, "count", "envoy-crash");
    ctx.rec(
        "failed_requests",
        n,
        r.socket_errors + r.non_2xx,
        "count",
        "envoy-crash",
    );
    if let Ok(at) = back {
        ctx.rec(
            "envoy_recovery_ms",
            n,
            at.duration_since(t0).as_secs_f64() * 1000.0,
            "ms",
            "envoy-crash",
        );
    }
    if let Some(pid) = ctx.envoy_pid()
        && let Some(s) = &ctx.envoy_sampler
    {
        s.set_pid(pid);
    }

    // 3. kill -9 of the control plane, restart 2 s later.
    ctx.log("fault: kill -9 ferrogate under load");
    let envoy_before = ctx.envoy_pid();
    let load = wrk_command(port, &host, &path, 12, 4).spawn()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let ControlPlane::Ferrogate(fg) = &mut ctx.cp {
        fg.kill9().await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    ctx.cp = ControlPlane::Ferrogate(Ferrogate::start(&ctx.launch).await?);
    ctx.sampler.set_pid(ctx.cp.pid());
    let out = load.wait_with_output().await?;
    let r = parse_wrk(&String::from_utf8_lossy(&out.stdout));
    ctx.rec(
        "fault_requests",
        n,
        r.requests,
        "count",
        "kill9-control-plane",
    );
    ctx.rec(
        "failed_requests",
        n,
        r.socket_errors + r.non_2xx,
        "count",
        "kill9-control-plane",
    );
    // What happened to the Envoy the killed control plane started?
    tokio::time::sleep(Duration::from_secs(2)).await;
    let envoys = all_envoys(&ctx.launch.work_dir());
    ctx.log(&format!(
        "envoy before {envoy_before:?}, envoys now {envoys:?}"
    ));
    ctx.rec(
        "envoy_processes_after_restart",
        n,
        envoys.len() as f64,
        "count",
        "kill9-control-plane",
    );
    // The restarted control plane adopts the running Envoy instead of starting another.
    let unchanged =
        envoy_before.is_some() && envoys == envoy_before.into_iter().collect::<Vec<_>>();
    ctx.rec(
        "envoy_pid_unchanged",
        n,
        if unchanged { 1.0 } else { 0.0 },
        "bool",
        "kill9-control-plane",
    );
    // The route still serves after the restart, and so does the last route (the full config
    // is there, not an empty or partial one).
    let ok = ctx
        .until_status(&host, &path, 200, 3, Duration::from_secs(30))
        .await
        .is_ok();
    let last = n.saturating_sub(1);
    let ok = ok
        && ctx
            .until_status(
                &world::host(last),
                &world::path(last),
                200,
                3,
                Duration::from_secs(30),
            )
            .await
            .is_ok();
    ctx.rec(
        "serving_after_restart",
        n,
        if ok { 1.0 } else { 0.0 },
        "bool",
        "kill9-control-plane",
    );

    envoy_crash_with_replicas(ctx).await
}

/// The bench Gateway's Envoy processes: (pid, is replica 0).
fn bench_envoys(ctx: &Ctx) -> Vec<(u32, bool)> {
    let gateway_dir = ctx.launch.work_dir().join("default").join("bench");
    let replica0 = gateway_dir
        .join("bootstrap.json")
        .to_string_lossy()
        .to_string();
    all_envoys(&gateway_dir)
        .into_iter()
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let first = String::from_utf8_lossy(&cmdline)
                .split('\0')
                .any(|a| a == replica0);
            (pid, first)
        })
        .collect()
}

/// Polls until the bench Gateway runs `count` Envoy processes; returns when it did.
async fn until_envoys(
    ctx: &Ctx,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<std::time::Instant> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if bench_envoys(ctx).len() == count {
            return Ok(std::time::Instant::now());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the bench Gateway does not run {count} Envoys after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An Envoy crash with two replicas (EnvoyProxy `replicas: 2`): the kernel spreads new
/// connections over both processes (SO_REUSEPORT), so after a `kill -9` of one, only the
/// requests in flight on it fail; the control plane restarts it.
async fn envoy_crash_with_replicas(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.world.routes;
    let s = "envoy-crash-2-replicas";
    ctx.log("fault: kill -9 of one of two Envoy replicas under load");
    let (host, path) = (world::host(0), world::path(0));
    let port = ctx.launch.ports.listener();
    let first_before = bench_envoys(ctx)
        .into_iter()
        .find(|(_, first)| *first)
        .map(|(pid, _)| pid);
    ctx.world.set_replicas(2)?;
    until_envoys(ctx, 2, Duration::from_secs(60)).await?;
    let first_after = bench_envoys(ctx)
        .into_iter()
        .find(|(_, first)| *first)
        .map(|(pid, _)| pid);
    // Scaling up starts the second replica beside the first, which keeps running.
    let kept = first_before.is_some() && first_before == first_after;
    ctx.rec(
        "replica0_pid_unchanged_on_scale_up",
        n,
        if kept { 1.0 } else { 0.0 },
        "bool",
        s,
    );
    // Both serve (readiness aside: the second answers once it has its config).
    ctx.until_status(&host, &path, 200, 3, Duration::from_secs(30))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let load = wrk_command(port, &host, &path, 12, 4).spawn()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let victim = first_after.context("replica 0 is not running")?;
    let t0 = std::time::Instant::now();
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(victim.to_string())
        .status()
        .await;
    until_envoys(ctx, 1, Duration::from_secs(10)).await?;
    let back = until_envoys(ctx, 2, Duration::from_secs(60)).await;
    let out = load.wait_with_output().await?;
    let r = parse_wrk(&String::from_utf8_lossy(&out.stdout));
    ctx.rec("fault_requests", n, r.requests, "count", s);
    ctx.rec(
        "failed_requests",
        n,
        r.socket_errors + r.non_2xx,
        "count",
        s,
    );
    if let Ok(at) = back {
        ctx.rec(
            "envoy_replica_restart_ms",
            n,
            at.duration_since(t0).as_secs_f64() * 1000.0,
            "ms",
            s,
        );
    }
    // The restarted replica gets its config back: with the survivor stopped, it serves alone.
    ctx.world.set_replicas(1)?;
    until_envoys(ctx, 1, Duration::from_secs(60)).await?;
    let ok = ctx
        .until_status(&host, &path, 200, 3, Duration::from_secs(30))
        .await
        .is_ok();
    ctx.rec(
        "serving_after_replica_restart",
        n,
        if ok { 1.0 } else { 0.0 },
        "bool",
        s,
    );
    Ok(())
}

/// Envoys started for this work directory (by any ferrogate of this run).
pub(super) fn all_envoys(work_dir: &std::path::Path) -> Vec<u32> {
    let marker = work_dir.to_string_lossy().to_string();
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for entry in rd.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmdline.contains(&marker) && cmdline.contains("envoy") && cmdline.contains("-c ") {
                out.push(pid);
            }
        }
    }
    out
}
