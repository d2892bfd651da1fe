//! Failed requests while routes change under steady load: wrk (`-c4`) on a route that never
//! changes, `h0.example.com/r0`, while other routes are edited one at a time
//! ([`route_edits`]) or added and removed in bulk ([`routes_added`]). Failures are what wrk
//! counts: socket errors plus non-2xx answers. Either implementation.

use std::time::{Duration, Instant};

use super::dataplane_impl::{parse_wrk, wrk_command};
use super::{Ctx, world};

/// Routes per bulk of [`routes_added`].
pub const BULK: usize = 100;

/// One-route edits (the convergence probe: add, wait until served, remove, wait until
/// gone) for 8 s under load. Scenario `route-edits`.
pub(super) async fn route_edits(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.world.routes;
    let (host, path) = (world::host(0), world::path(0));
    ctx.log("under load: route edits");
    let load = wrk_command(ctx.launch.ports.listener(), &host, &path, 10, 4).spawn()?;
    let mut edits = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(8) {
        ctx.probe(Duration::from_secs(30)).await?;
        edits += 2;
    }
    let out = load.wait_with_output().await?;
    let r = parse_wrk(&String::from_utf8_lossy(&out.stdout));
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
/// once) under 20 s of load. Scenario `routes-added`.
pub(super) async fn routes_added(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.world.routes;
    let (host, path) = (world::host(0), world::path(0));
    ctx.log(&format!("under load: {BULK} routes added and removed at once"));
    let load = wrk_command(ctx.launch.ports.listener(), &host, &path, 20, 4).spawn()?;
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
        ctx.until_status(&last_host, &last_path, 200, 1, Duration::from_secs(120))
            .await?;
        add_ms.push(t_add.elapsed().as_secs_f64() * 1000.0);
        for name in &names {
            ctx.world.remove_probe(name)?;
        }
        ctx.until_status(&last_host, &last_path, 404, 1, Duration::from_secs(120))
            .await?;
        bulks += 1;
    }
    let loaded = t0.elapsed() < Duration::from_millis(19_500);
    let out = load.wait_with_output().await?;
    let r = parse_wrk(&String::from_utf8_lossy(&out.stdout));
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
    ctx.rec("failed_requests", n, r.socket_errors + r.non_2xx, "count", s);
    // 0 when the bulks outlasted the load (the tail of the last bulk ran without it).
    ctx.rec(
        "bulks_within_load",
        n,
        if loaded { 1.0 } else { 0.0 },
        "bool",
        s,
    );
    Ok(())
}
