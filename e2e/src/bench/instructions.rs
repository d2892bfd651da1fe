//! Data-plane work per request, counted rather than timed: Envoy's instructions per request
//! under callgrind (valgrind), for Ferrogate's configuration and for the hand-written static
//! ones. Requests per second on a 2-core machine shared by wrk, three Envoys and the echo
//! backend move by ±10% between runs; instruction counts move by well under 1%.
//!
//! Ferrogate's configuration is taken from its running Envoy (`/config_dump?include_eds`)
//! and replayed as a static bootstrap, so every Envoy is measured the same way (one worker,
//! started under valgrind). Per request, Envoy does the same work for a route table it got
//! over RDS as for the same table inlined.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::process::Command;

use super::local_envoy::LocalEnvoy;
use super::{Ctx, world};

/// What one callgrind measurement counted.
struct Counted {
    instructions: f64,
    requests: f64,
}

/// Ferrogate's running configuration as a static bootstrap: its Gateway listeners (the
/// `ready` listener left out) with their route tables inlined, its clusters with their
/// endpoints inlined; `listener_port` and `admin_port` replace the originals.
pub fn static_from_config_dump(
    dump: &Value,
    listener_port: u16,
    admin_port: u16,
) -> anyhow::Result<Value> {
    let configs = dump["configs"]
        .as_array()
        .context("config_dump has no configs")?;
    // By the full type name: `ScopedRoutesConfigDump` also ends in `RoutesConfigDump`.
    let section = |kind: &str| {
        let type_url = format!("type.googleapis.com/envoy.admin.v3.{kind}");
        configs
            .iter()
            .find(|c| c["@type"] == type_url.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    };
    let strip = |mut v: Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("@type");
        }
        v
    };
    let mut routes = std::collections::BTreeMap::new();
    for r in section("RoutesConfigDump")["dynamic_route_configs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let rc = strip(r["route_config"].clone());
        routes.insert(rc["name"].as_str().unwrap_or_default().to_string(), rc);
    }
    let mut listeners = Vec::new();
    for l in section("ListenersConfigDump")["dynamic_listeners"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut listener = strip(l["active_state"]["listener"].clone());
        if listener["name"] == "ready" {
            continue;
        }
        listener["address"]["socket_address"]["port_value"] = json!(listener_port);
        for chain in listener["filter_chains"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            for filter in chain["filters"].as_array_mut().into_iter().flatten() {
                let hcm = &mut filter["typed_config"];
                if let Some(name) = hcm
                    .get("rds")
                    .and_then(|rds| rds["route_config_name"].as_str())
                    .map(str::to_string)
                {
                    let rc = routes
                        .get(&name)
                        .with_context(|| format!("route configuration {name} not in the dump"))?;
                    hcm.as_object_mut()
                        .context("HCM config is not an object")?
                        .remove("rds");
                    hcm["route_config"] = rc.clone();
                }
            }
        }
        listeners.push(listener);
    }
    anyhow::ensure!(
        !listeners.is_empty(),
        "no Gateway listener in the config dump"
    );
    let mut endpoints = std::collections::BTreeMap::new();
    for e in section("EndpointsConfigDump")["dynamic_endpoint_configs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut cla = strip(e["endpoint_config"].clone());
        // The dump prints unset locality weights as 0, which a config may not say.
        for locality in cla["endpoints"].as_array_mut().into_iter().flatten() {
            if locality["load_balancing_weight"] == 0 {
                locality
                    .as_object_mut()
                    .map(|o| o.remove("load_balancing_weight"));
            }
        }
        endpoints.insert(
            cla["cluster_name"].as_str().unwrap_or_default().to_string(),
            cla,
        );
    }
    let mut clusters = Vec::new();
    for c in section("ClustersConfigDump")["dynamic_active_clusters"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut cluster = strip(c["cluster"].clone());
        let name = cluster["name"].as_str().unwrap_or_default().to_string();
        let o = cluster
            .as_object_mut()
            .context("cluster is not an object")?;
        if o.remove("eds_cluster_config").is_some() {
            o.insert("type".into(), json!("STATIC"));
            let cla = endpoints
                .get(&name)
                .with_context(|| format!("endpoints of cluster {name} not in the dump"))?;
            o.insert("load_assignment".into(), cla.clone());
        }
        clusters.push(cluster);
    }
    Ok(json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }))
}

async fn callgrind_control(args: &[&str], pid: u32) -> anyhow::Result<()> {
    let status = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .context("running callgrind_control (apt-get install valgrind)")?;
    anyhow::ensure!(status.success(), "callgrind_control {args:?} {pid} failed");
    Ok(())
}

/// Sum of the `totals:` lines of every callgrind dump of `pid` in `dir`.
fn callgrind_totals(dir: &Path, prefix: &str) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for entry in std::fs::read_dir(dir)?.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        for line in std::fs::read_to_string(entry.path())?.lines() {
            if let Some(v) = line.strip_prefix("totals:") {
                total += v.trim().parse::<f64>().unwrap_or(0.0);
            }
        }
    }
    Ok(total)
}

/// Starts Envoy on `bootstrap` under callgrind with instrumentation off, waits until it
/// serves, then counts the instructions of `secs` seconds of single-connection wrk load.
async fn count(
    ctx: &Ctx,
    who: &str,
    bootstrap: &Path,
    port: u16,
    secs: u32,
) -> anyhow::Result<Counted> {
    let out_prefix = format!("callgrind.{who}.");
    let valgrind = [
        "valgrind".to_string(),
        "--tool=callgrind".to_string(),
        "--instr-atstart=no".to_string(),
        format!(
            "--callgrind-out-file={}",
            ctx.dir.join(format!("{out_prefix}%p")).display()
        ),
    ];
    // Uninstrumented, Envoy under valgrind starts in a few seconds; instrumented, far slower.
    let envoy = LocalEnvoy::start(
        ctx,
        &format!("callgrind-{who}"),
        &valgrind,
        bootstrap,
        &["--concurrency", "1"],
        port,
        Duration::from_secs(120),
    )
    .await
    .context("Envoy under valgrind (apt-get install valgrind)")?;
    let pid = envoy.pid;
    let (host, path) = (world::host(0), world::path(0));
    let result = async {
        let warm = super::dataplane_impl::wrk_single(port, &host, &path, 1).await?;
        anyhow::ensure!(warm.requests > 0.0, "warm-up served nothing");
        callgrind_control(&["-i", "on"], pid).await?;
        let run = super::dataplane_impl::wrk_single(port, &host, &path, secs).await;
        callgrind_control(&["-i", "off"], pid).await?;
        callgrind_control(&["-d"], pid).await?;
        let run = run?;
        anyhow::ensure!(
            run.socket_errors + run.non_2xx == 0.0,
            "{who}: failed requests under valgrind"
        );
        anyhow::Ok(run.requests)
    }
    .await;
    envoy.stop().await;
    let requests = result?;
    let instructions = callgrind_totals(&ctx.dir, &format!("{out_prefix}{pid}"))?;
    anyhow::ensure!(
        instructions > 0.0 && requests > 0.0,
        "{who}: callgrind counted nothing"
    );
    Ok(Counted {
        instructions,
        requests,
    })
}

/// Instructions per request of Ferrogate's, the equivalent static and the minimal static
/// configuration, and their ratios (static / Ferrogate: 1 = the same work per request).
pub(super) async fn instructions(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.world.routes;
    ctx.log(&format!(
        "data plane at {n} routes: instructions per request (callgrind)"
    ));
    let ports = ctx.launch.ports;
    let (port, admin) = (ports.static_listener() + 2, ports.static_admin() + 2);
    let dump = admin_json(ports.envoy_admin(), "/config_dump?include_eds").await?;
    let ferrogate = static_from_config_dump(&dump, port, admin)?;
    let mut bootstraps = vec![("ferrogate", serde_json::to_string_pretty(&ferrogate)?)];
    for (who, flavour) in [
        ("static", world::StaticFlavour::Equivalent),
        ("minimal", world::StaticFlavour::Minimal),
    ] {
        bootstraps.push((
            who,
            world::static_bootstrap(n, port, admin, ctx.echo_a.http_port, flavour),
        ));
    }
    let mut per_request = Vec::new();
    for (who, text) in bootstraps {
        let path = ctx.dir.join(format!("callgrind-{who}.yaml"));
        std::fs::write(&path, text)?;
        let c = count(ctx, who, &path, port, 3).await?;
        let v = c.instructions / c.requests;
        ctx.log(&format!(
            "{who}: {:.0} instructions over {:.0} requests",
            c.instructions, c.requests
        ));
        ctx.rec(
            &format!("dataplane_instructions_per_request_{who}"),
            n,
            v,
            "instructions",
            "dataplane",
        );
        per_request.push(v);
    }
    ctx.rec(
        "dataplane_instructions_ratio",
        n,
        per_request[1] / per_request[0],
        "ratio",
        "dataplane",
    );
    ctx.rec(
        "dataplane_instructions_ratio_vs_minimal",
        n,
        per_request[2] / per_request[0],
        "ratio",
        "dataplane",
    );
    Ok(())
}

/// GET `path` from an Envoy admin address as JSON.
async fn admin_json(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<Value> {
    let r = crate::client::get(addr, "localhost", path, &[]).await?;
    anyhow::ensure!(r.status == 200, "GET {path} from {addr}: {}", r.status);
    r.json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_dump_becomes_a_static_bootstrap_with_inlined_routes_and_endpoints() {
        let dump = json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.ScopedRoutesConfigDump"},
            {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": [
                {"active_state": {"listener": {"@type": "L", "name": "http-8080",
                    "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
                    "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {"@type": "HCM",
                        "rds": {"route_config_name": "http-8080"}, "stat_prefix": "http"}}]}]}}},
                {"active_state": {"listener": {"@type": "L", "name": "ready"}}}]},
            {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [
                {"route_config": {"@type": "R", "name": "http-8080", "virtual_hosts": []}}]},
            {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": [
                {"cluster": {"@type": "C", "name": "default/echo/8080", "type": "EDS", "eds_cluster_config": {}}}]},
            {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", "dynamic_endpoint_configs": [
                {"endpoint_config": {"@type": "E", "cluster_name": "default/echo/8080", "endpoints": []}}]},
        ]});
        let b = static_from_config_dump(&dump, 9000, 9001).unwrap();
        let listeners = b["static_resources"]["listeners"].as_array().unwrap();
        assert_eq!(listeners.len(), 1, "the ready listener is left out");
        assert_eq!(
            listeners[0]["address"]["socket_address"]["port_value"],
            9000
        );
        assert!(listeners[0].get("@type").is_none());
        let hcm = &listeners[0]["filter_chains"][0]["filters"][0]["typed_config"];
        assert!(hcm.get("rds").is_none());
        assert_eq!(hcm["@type"], "HCM", "the HCM's Any type stays");
        assert_eq!(
            hcm["route_config"],
            json!({"name": "http-8080", "virtual_hosts": []})
        );
        let cluster = &b["static_resources"]["clusters"][0];
        assert_eq!(cluster["type"], "STATIC");
        assert!(cluster.get("eds_cluster_config").is_none());
        assert_eq!(
            cluster["load_assignment"],
            json!({"cluster_name": "default/echo/8080", "endpoints": []})
        );
        assert_eq!(b["admin"]["address"]["socket_address"]["port_value"], 9001);
    }
}
