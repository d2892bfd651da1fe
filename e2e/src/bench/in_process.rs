//! The translate step alone, in this process, at sizes one host cannot run with a real Envoy
//! per Gateway: G Gateways x R HTTPRoutes (100 x 1000 = 100 000 routes), each Gateway with
//! its own Service and the benchmark's route shape. What one route edit costs the
//! control plane's translation (incremental, as the pipeline runs it, next to a full
//! translation of the same world), how many Gateways' IR it changes, and the xDS
//! translation of those Gateways (packed, with the route encodings kept between edits, as
//! the pipeline runs it). No file reads, no xDS push, no Envoy: the standalone
//! passes measure those end to end. Wall time on one thread, so the machine's load (in the
//! run line) matters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ferrogate_ir::GatewayKey;
use ferrogate_store::{Kind, Object, ObjectKey, ObjectRef, Snapshot, load_documents};
use ferrogate_translator::{Incremental, Options, Translation, translate};
use ferrogate_xds_translator::{RouteEncodings, XdsOptions};

use super::{Record, percentile, world};

/// One world size: Gateways and routes per Gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub gateways: usize,
    pub routes_per_gateway: usize,
}

impl Size {
    /// Parses `GxR` (e.g. `100x1000`).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (g, r) = text
            .split_once('x')
            .ok_or_else(|| anyhow::anyhow!("{text:?}: expected GATEWAYSxROUTES, e.g. 100x1000"))?;
        Ok(Self {
            gateways: g.trim().parse()?,
            routes_per_gateway: r.trim().parse()?,
        })
    }

    fn routes(self) -> usize {
        self.gateways * self.routes_per_gateway
    }

    fn scenario(self) -> String {
        format!(
            "in-process, {} Gateway{} x {} routes",
            self.gateways,
            if self.gateways == 1 { "" } else { "s" },
            self.routes_per_gateway
        )
    }
}

fn objects(text: &str) -> anyhow::Result<Vec<Object>> {
    let (objects, problems) = load_documents("in-process", text);
    anyhow::ensure!(problems.is_empty(), "generated YAML: {problems:?}");
    Ok(objects)
}

/// The world: one class, G Gateways `g<j>` (one HTTP listener each), a Service per
/// Gateway, and R routes per Gateway in the benchmark's shape.
fn world_of(size: Size) -> anyhow::Result<Snapshot> {
    let mut text = String::from(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ferrogate}\nspec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}\n",
    );
    for g in 0..size.gateways {
        text.push_str(&format!("---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: g{g}, namespace: default}}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{{name: http, port: 80, protocol: HTTP}}]\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: echo{g}, namespace: default}}\nspec: {{ports: [{{port: 8080}}]}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: echo{g}-1, namespace: default, labels: {{kubernetes.io/service-name: echo{g}}}}}\naddressType: IPv4\nports: [{{port: 9000}}]\nendpoints: [{{addresses: [\"127.0.0.1\"]}}]\n"));
    }
    let mut snapshot: Snapshot = objects(&text)?.into_iter().collect();
    for g in 0..size.gateways {
        let mut routes = String::new();
        for i in 0..size.routes_per_gateway {
            routes.push_str(&route(g, &format!("g{g}-r{i}"), i));
        }
        snapshot.extend(objects(&routes)?);
    }
    Ok(snapshot)
}

fn route(gateway: usize, name: &str, i: usize) -> String {
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: g{gateway}}}]\n  hostnames: [\"{}\"]\n  rules: [{{matches: [{{path: {{type: PathPrefix, value: {}}}}}], backendRefs: [{{name: echo{gateway}, port: 8080}}]}}]\n",
        world::host(i),
        world::path(i)
    )
}

/// The xDS translation of the Gateways whose IR changed from `before` to `after`, as the
/// pipeline runs it: packed, with each Gateway's route encodings kept from its last
/// translation (`encodings`). Returns how many Gateways changed.
fn changed_gateways(
    before: Option<&Translation>,
    after: &Translation,
    encodings: &mut HashMap<GatewayKey, RouteEncodings>,
) -> usize {
    let options = XdsOptions {
        ready_port: 19003,
        access_logs: Vec::new(),
    };
    let mut changed = 0;
    for (key, ir) in &after.gateways {
        let unchanged = before.and_then(|b| b.gateways.get(key));
        if unchanged.is_some_and(|b| Arc::ptr_eq(b, ir)) {
            continue;
        }
        changed += 1;
        let memo = encodings.entry(key.clone()).or_default();
        std::hint::black_box(ferrogate_xds_translator::translate_any(ir, &options, memo));
    }
    changed
}

/// Full translations measured per size (after one that warms the heap).
const FULL_SAMPLES: usize = 5;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Measures one size with `edits` route edits (half adds, half removals) on Gateway `g0`.
pub fn measure(size: Size, edits: usize, out: &mut Vec<Record>) -> anyhow::Result<()> {
    let scenario = size.scenario();
    let n = size.routes();
    let mut rec = |name: &str, value: f64, unit: &str| {
        println!("  {name} = {value:.3} {unit} (routes {n}, {scenario})");
        out.push(Record {
            name: name.into(),
            routes: n,
            value,
            unit: unit.into(),
            scenario: Some(scenario.clone()),
            implementation: Some("ferrogate".into()),
            run: None,
        });
    };
    let options = Options::default();
    let mut world = world_of(size)?;
    let snapshot = Arc::new(world.clone());
    // A full translation, as every edit cost before translation was incremental: the
    // median of a few, the first one warming the heap.
    let mut full_ms = Vec::new();
    let mut full = translate(&snapshot, &options);
    for _ in 0..FULL_SAMPLES {
        let started = Instant::now();
        full = translate(&snapshot, &options);
        full_ms.push(ms(started));
    }
    full_ms.sort_by(f64::total_cmp);
    rec(
        "in_process_translate_full_p50_ms",
        percentile(&full_ms, 50.0),
        "ms",
    );
    anyhow::ensure!(
        full.gateways.len() == size.gateways,
        "{} of {} Gateways translated",
        full.gateways.len(),
        size.gateways
    );
    let mut incremental = Incremental::default();
    let mut last = incremental.translate(&snapshot, &options);
    // The first xDS translation fills the route encodings, as the pipeline's first run does.
    let mut encodings = HashMap::new();
    changed_gateways(None, &last, &mut encodings);
    let (mut translate_ms, mut xds_ms, mut changed) = (Vec::new(), 0.0, 0usize);
    for e in 0..edits {
        let name = format!("probe-{}", e / 2);
        if e % 2 == 0 {
            world.extend(objects(&route(0, &name, size.routes_per_gateway + e))?);
        } else {
            let probe = ObjectRef {
                kind: Kind::HttpRoute,
                key: ObjectKey::new("default", name),
            };
            anyhow::ensure!(world.delete(&probe), "{probe} was not in the world");
        }
        // Publishing a snapshot is the store's work, outside the translate step.
        let snapshot = Arc::new(world.clone());
        let started = Instant::now();
        let next = incremental.translate(&snapshot, &options);
        translate_ms.push(ms(started));
        let started = Instant::now();
        changed += changed_gateways(Some(&last), &next, &mut encodings);
        xds_ms += ms(started);
        last = next;
    }
    anyhow::ensure!(
        last == translate(&world, &options),
        "the incremental translation differs from a full one after the edits"
    );
    translate_ms.sort_by(f64::total_cmp);
    rec(
        "in_process_translate_edit_p50_ms",
        percentile(&translate_ms, 50.0),
        "ms",
    );
    rec(
        "in_process_translate_edit_p99_ms",
        percentile(&translate_ms, 99.0),
        "ms",
    );
    rec("in_process_xds_edit_ms", xds_ms / edits as f64, "ms");
    rec(
        "in_process_gateways_changed_per_edit",
        changed as f64 / edits as f64,
        "count",
    );
    Ok(())
}
