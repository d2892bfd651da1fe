//! Failed requests while routes change under steady load: wrk (`-c4`) on a route that never
//! changes, `h0.example.com/r0`, while other routes are edited one at a time
//! ([`route_edits`]) or added and removed in bulk ([`routes_added`]). Failures are what wrk
//! counts: socket errors plus non-2xx answers. Either implementation. The load lasts exactly
//! as long as the edits: wrk runs with a long duration and is stopped with SIGINT, on which
//! it prints its figures (the peer may need minutes for a bulk).

use std::time::{Duration, Instant};

use tokio::process::Child;

use super::dataplane_impl::{WrkResult, parse_wrk, wrk_command};
use super::{Ctx, world};

/// wrk `-c4` on the steady route until [`stop_load`].
fn start_load(ctx: &Ctx) -> anyhow::Result<Child> {
    let (host, path) = (world::host(0), world::path(0));
    Ok(wrk_command(ctx.launch.ports.listener(), &host, &path, 3600, 4).spawn()?)
}

/// SIGINT to wrk, then its figures.
async fn stop_load(load: Child) -> anyhow::Result<WrkResult> {
    if let Some(pid) = load.id() {
        let _ = tokio::process::Command::new("kill")
            .arg("-INT")
            .arg(pid.to_string())
            .status()
            .await;
    }
    let out = load.wait_with_output().await?;
    let r = parse_wrk(&String::from_utf8_lossy(&out.stdout));
    anyhow::ensure!(
        r.requests > 0.0,
        "wrk printed no figures: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(r)
}

/// Routes per bulk of [`routes_added`].
pub const BULK: usize = 100;

/// One-route edits (the convergence probe: add, wait until served, remove, wait until
/// gone) for 8 s under load. Scenario `route-edits`.
pub(super) async fn route_edits(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.world.routes;
    ctx.log("under load: route edits");
    let load = start_load(ctx)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut edits = 0;
    let t0 = Instant::now();
    while edits == 0 || t0.elapsed() < Duration::from_secs(8) {
        ctx.probe(ctx.cfg.probe_budget).await?;
        edits += 2;
    }
    let r = stop_load(load).await?;
    ctx.rec("route_edits", n, f64::from(edits), "count", "route-edits");
    ctx.rec("fault_requests", n, r.requests, "count", "route-edits");
    ctx.rec(
        "failed_requests",
        n,
        r.socket_errors + r.non_2xx,
        "count",
        "route-edits",
    );
    Ok(())
}

/// Bulks of [`BULK`] new routes written at once, waited for until the last one serves, then
/// removed at once and waited for until the last one is gone, repeated for 12 s (at least
/// once) under load. Scenario `routes-added`.
pub(super) async fn routes_added(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.world.routes;
    ctx.log(&format!(
        "under load: {BULK} routes added and removed at once"
    ));
    let load = start_load(ctx)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    let mut bulks = 0;
    let mut add_ms = Vec::new();
    while bulks == 0 || t0.elapsed() < Duration::from_secs(12) {
        let names: Vec<String> = (0..BULK).map(|i| format!("bulk{bulks}x{i}")).collect();
        let t_add = Instant::now();
        for (i, name) in names.iter().enumerate() {
            ctx.world
                .add_probe(name, &world::host(i), &format!("/{name}"))?;
        }
        let last = &names[BULK - 1];
        let (last_host, last_path) = (world::host(BULK - 1), format!("/{last}"));
        ctx.until_status(&last_host, &last_path, 200, 1, Duration::from_secs(1200))
            .await?;
        add_ms.push(t_add.elapsed().as_secs_f64() * 1000.0);
        for name in &names {
            ctx.world.remove_probe(name)?;
        }
        ctx.until_status(&last_host, &last_path, 404, 1, Duration::from_secs(1200))
            .await?;
        bulks += 1;
    }
    let r = stop_load(load).await?;
    let s = "routes-added";
    ctx.rec("bulks", n, f64::from(bulks), "count", s);
    add_ms.sort_by(f64::total_cmp);
    ctx.rec(
        "bulk_apply_p50_ms",
        n,
        super::percentile(&add_ms, 50.0),
        "ms",
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
    Ok(())
}
