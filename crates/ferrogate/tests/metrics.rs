//! Metrics end to end: a real `ferrogate standalone` with a real Envoy. Scrapes Ferrogate's
//! `/metrics` and the Envoy's `/stats/prometheus`, sends traffic, edits a route, scrapes again
//! and checks the series exist and move. Also checks that every metric the Grafana dashboard
//! queries exists, and that docs/metrics.md matches the metric definitions
//! (`UPDATE_GOLDEN=1` rewrites it; `make docs` does).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

mod panel_eval;

use ferrogate_e2e::client::{self, HttpResponse};
use ferrogate_e2e::testing::{self, Standalone, free_block, free_port, pod, repo_root};

const HOST: &str = "www.example.com";
/// The quickstart Gateway's labels on per-Gateway series.
const GATEWAY_LABELS: [&str; 2] = ["namespace=\"default\"", "gateway=\"quickstart\""];

// --- a standalone instance ----------------------------------------------------------------

/// The quickstart in a standalone instance; returns it and the Gateway's address.
fn start(v1: SocketAddr, v2: SocketAddr) -> (Standalone, SocketAddr) {
    let gateway_port = free_port();
    let fg = Standalone::start(
        env!("CARGO_BIN_EXE_ferrogate"),
        testing::quickstart(gateway_port, v1, v2),
        free_block(31000, 10),
        &[],
    );
    (fg, SocketAddr::from(([127, 0, 0, 1], gateway_port)))
}

async fn wait_for(gateway: SocketAddr, timeout: Duration, check: impl Fn(&HttpResponse) -> bool) {
    testing::eventually_response(gateway, HOST, "/", &[], timeout, check).await;
}

// --- Prometheus text format ---------------------------------------------------------------

/// A scrape: series (`name{labels}` as written) -> value.
#[derive(Default)]
struct Scrape {
    text: String,
    series: BTreeMap<String, f64>,
}

impl Scrape {
    async fn get(addr: SocketAddr, path: &str) -> Self {
        let r = client::get(addr, "localhost", path, &[]).await.unwrap();
        assert_eq!(r.status, 200, "{path}");
        let text = String::from_utf8_lossy(&r.body).to_string();
        let mut series = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (key, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            series.insert(key.to_string(), value.parse::<f64>().unwrap_or(f64::NAN));
        }
        Self { text, series }
    }

    /// Metric names (the part before `{`).
    fn names(&self) -> BTreeSet<String> {
        self.series
            .keys()
            .map(|k| k.split('{').next().unwrap().to_string())
            .collect()
    }

    /// Sum of the series of `name` whose labels contain every `filter` (`label="value"`).
    fn sum(&self, name: &str, filters: &[&str]) -> f64 {
        self.series
            .iter()
            .filter(|(k, _)| {
                k.split('{').next() == Some(name) && filters.iter().all(|f| k.contains(f))
            })
            .map(|(_, v)| v)
            .sum()
    }

    fn has(&self, name: &str, filters: &[&str]) -> bool {
        self.series
            .keys()
            .any(|k| k.split('{').next() == Some(name) && filters.iter().all(|f| k.contains(f)))
    }

    /// HELP and TYPE lines of every family.
    fn types(&self) -> BTreeMap<String, String> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(n, t)| (n.to_string(), t.to_string()))
            })
            .collect()
    }
}

fn save(name: &str, text: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics-scrapes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrogate_and_envoy_metrics_exist_and_move() {
    let v1 = ferrogate_e2e::echo::spawn_for_test("echo-v1-metrics", "default", "echo-v1").await;
    let v2 = ferrogate_e2e::echo::spawn_for_test("echo-v2-metrics", "default", "echo-v2").await;
    let (fg, gateway) = start(v1, v2);
    wait_for(gateway, Duration::from_secs(60), |r| r.status == 200).await;
    let envoy_stats = SocketAddr::from(([127, 0, 0, 1], fg.envoy_base + 1)); // HostPortPlan: slot 0, stats

    let before = Scrape::get(fg.metrics, "/metrics").await;
    let envoy_before = Scrape::get(envoy_stats, "/stats/prometheus").await;
    let [ns, gw] = GATEWAY_LABELS;
    let gw = gw.to_string();
    for (name, filters) in [
        ("ferrogate_build_info", vec!["version=\"", "git_commit=\""]),
        ("ferrogate_leader", vec![]),
        ("ferrogate_watched_kinds", vec!["kind=\"HTTPRoute\""]),
        ("ferrogate_resources", vec!["kind=\"HTTPRoute\""]),
        ("ferrogate_gateways", vec![]),
        (
            "ferrogate_gateways_by_status",
            vec!["accepted=\"true\"", "programmed=\"true\""],
        ),
        ("ferrogate_translations_total", vec![]),
        ("ferrogate_translation_duration_seconds_count", vec![]),
        (
            "ferrogate_xds_snapshot_build_duration_seconds_count",
            vec![],
        ),
        ("ferrogate_xds_snapshot_updates_total", vec![ns, &gw]),
        (
            "ferrogate_xds_config_acked",
            vec![ns, &gw, "RouteConfiguration"],
        ),
        ("ferrogate_xds_config_acked", vec![ns, &gw, "Listener"]),
        ("ferrogate_xds_connected_proxies", vec![ns, &gw]),
        ("ferrogate_xds_pushes_total", vec!["Listener"]),
        ("ferrogate_xds_acks_total", vec!["RouteConfiguration"]),
        ("ferrogate_xds_sent_bytes_total", vec![]),
        ("ferrogate_status_writes_total", vec![]),
    ] {
        assert!(
            before.has(name, &filters),
            "{name} {filters:?} missing from\n{}",
            before.text
        );
    }
    // A plain-HTTP Gateway has no Secret: no series says it is unacknowledged.
    assert!(
        !before.has("ferrogate_xds_config_acked", &["Secret"]),
        "{}",
        before.text
    );
    // No label whose value changes with every config.
    assert!(
        before
            .series
            .keys()
            .filter(|k| k.contains("version=\""))
            .all(|k| k.starts_with("ferrogate_build_info{")),
        "{}",
        before.text
    );
    // The dashboard's "Rejected or unacknowledged config" panel is quiet on this healthy
    // instance (once its Envoy has ACKed what it serves: polled, ACKs trail the first 200).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = Scrape::get(fg.metrics, "/metrics").await;
        match rejected_or_unacknowledged(&s) {
            Ok(()) => break,
            Err(drawn) => assert!(
                Instant::now() < deadline,
                "the panel draws {drawn:?} on a healthy instance:\n{}",
                s.text
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(before.sum("ferrogate_leader", &[]), 1.0);
    assert_eq!(before.sum("ferrogate_xds_connected_proxies", &[&gw]), 1.0);
    assert_eq!(
        before.sum(
            "ferrogate_gateways_by_status",
            &["accepted=\"true\"", "programmed=\"true\""]
        ),
        1.0
    );
    for name in [
        "envoy_http_downstream_rq_total",
        "envoy_cluster_upstream_rq_total",
        "envoy_http_downstream_rq_time_bucket",
    ] {
        assert!(
            envoy_before.has(name, &[]),
            "{name} missing from Envoy's /stats/prometheus"
        );
    }

    // Traffic, then a route edit (the catch-all moves to echo-v2) and a broken route reference.
    for _ in 0..20 {
        assert_eq!(
            client::get(gateway, HOST, "/", &[]).await.unwrap().status,
            200
        );
    }
    let routes = fg.dir.path().join("config/routes.yaml");
    let text = std::fs::read_to_string(&routes).unwrap();
    let edited = text.replacen(
        "    - backendRefs:\n        - name: echo-v1",
        "    - backendRefs:\n        - name: echo-v2",
        1,
    );
    assert_ne!(text, edited);
    std::fs::write(&routes, edited).unwrap();
    wait_for(gateway, Duration::from_secs(20), |r| {
        pod(r) == "echo-v2-metrics"
    })
    .await;
    std::fs::write(
        fg.dir.path().join("config/dangling.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: dangling, namespace: default}\n\
         spec:\n  parentRefs: [{name: quickstart}]\n  hostnames: [dangling.example.com]\n  rules:\n  - backendRefs: [{name: missing, port: 80}]\n",
    )
    .unwrap();

    // Scrape until the edit's ACK and the broken route are counted.
    let deadline = Instant::now() + Duration::from_secs(20);
    let propagated = |s: &Scrape| {
        s.sum(
            "ferrogate_xds_propagation_duration_seconds_count",
            &["RouteConfiguration"],
        )
    };
    let after = loop {
        let s = Scrape::get(fg.metrics, "/metrics").await;
        let acked =
            s.sum("ferrogate_xds_acks_total", &[]) > before.sum("ferrogate_xds_acks_total", &[]);
        if acked
            && propagated(&s) > propagated(&before)
            && s.has(
                "ferrogate_translation_errors_total",
                &["kind=\"HTTPRoute\""],
            )
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "metrics did not move:\n{}",
            s.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let envoy_after = Scrape::get(envoy_stats, "/stats/prometheus").await;
    save("ferrogate.txt", &after.text);
    save("envoy.txt", &envoy_after.text);

    let grew = |name: &str, filters: &[&str], b: &Scrape, a: &Scrape| {
        assert!(
            a.sum(name, filters) > b.sum(name, filters),
            "{name} {filters:?} did not grow: {} -> {}",
            b.sum(name, filters),
            a.sum(name, filters)
        );
    };
    grew("ferrogate_translations_total", &[], &before, &after);
    grew(
        "ferrogate_translation_duration_seconds_count",
        &[],
        &before,
        &after,
    );
    grew(
        "ferrogate_xds_snapshot_updates_total",
        &[ns, &gw],
        &before,
        &after,
    );
    // The route edit reached every Envoy: one more RouteConfiguration propagation measured,
    // with a latency below the test's own wait.
    grew(
        "ferrogate_xds_propagation_duration_seconds_count",
        &["RouteConfiguration"],
        &before,
        &after,
    );
    let seconds = after.sum(
        "ferrogate_xds_propagation_duration_seconds_sum",
        &["RouteConfiguration"],
    );
    assert!(
        seconds > 0.0 && seconds < 20.0 * propagated(&after),
        "propagation seconds {seconds}"
    );
    grew(
        "ferrogate_status_write_duration_seconds_count",
        &[],
        &before,
        &after,
    );
    // The Envoys were started once; a route edit changes no process, so the host sink is
    // not even handed the (same) process list again.
    let applies = |s: &Scrape| s.sum("ferrogate_infra_apply_duration_seconds_count", &[]);
    assert!(applies(&before) >= 1.0, "no infra apply before the edit");
    assert_eq!(
        applies(&after),
        applies(&before),
        "a route edit applied infra"
    );
    grew(
        "ferrogate_xds_pushes_total",
        &["RouteConfiguration"],
        &before,
        &after,
    );
    grew(
        "ferrogate_xds_acks_total",
        &["RouteConfiguration"],
        &before,
        &after,
    );
    grew("ferrogate_xds_sent_bytes_total", &[], &before, &after);
    grew("ferrogate_status_writes_total", &[], &before, &after);
    assert_eq!(
        after.sum("ferrogate_invalid_objects", &["kind=\"HTTPRoute\""]),
        1.0,
        "{}",
        after.text
    );
    let ingress = "envoy_http_conn_manager_prefix=\"";
    grew(
        "envoy_http_downstream_rq_total",
        &[ingress],
        &envoy_before,
        &envoy_after,
    );
    grew(
        "envoy_cluster_upstream_rq_total",
        &[],
        &envoy_before,
        &envoy_after,
    );

    // Every ferrogate_ family scraped is in the reference, with the same type.
    let reference: BTreeMap<String, &'static str> = ferrogate_runtime::metrics_reference()
        .into_iter()
        .map(|m| (m.name, m.kind))
        .collect();
    for (name, kind) in after
        .types()
        .into_iter()
        .filter(|(n, _)| n.starts_with("ferrogate_"))
    {
        assert_eq!(
            reference.get(&name).copied(),
            Some(kind.as_str()),
            "{name} ({kind}) is not in the reference"
        );
    }

    check_dashboard(&reference, &envoy_after);
}

// --- the dashboard's alarm panel ----------------------------------------------------------

/// Evaluates every query of the dashboard's "Rejected or unacknowledged config" panel over
/// a scrape: `Ok` when none yields a non-zero series. The ACK gauge must have series to
/// look at, or a quiet panel would prove nothing.
fn rejected_or_unacknowledged(scrape: &Scrape) -> Result<(), Vec<String>> {
    let path = repo_root().join("charts/ferrogate/dashboards/ferrogate.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let panel = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Rejected or unacknowledged config")
        .expect("the dashboard has the panel");
    let samples: Vec<panel_eval::Sample> = scrape
        .series
        .iter()
        .map(|(k, v)| panel_eval::sample(k, *v))
        .collect();
    assert!(
        samples
            .iter()
            .filter(|s| s.name == "ferrogate_xds_config_acked")
            .count()
            >= 3,
        "no ACK series to judge"
    );
    let targets = panel["targets"].as_array().unwrap();
    assert_eq!(
        targets.len(),
        2,
        "the panel's queries changed: update this test"
    );
    let drawn: Vec<String> = targets
        .iter()
        .flat_map(|t| {
            let expr = t["expr"].as_str().unwrap();
            panel_eval::eval(expr, &samples)
                .into_iter()
                .filter(|(_, v)| *v != 0.0)
                .map(move |(k, v)| format!("{expr}: {k:?} = {v}"))
        })
        .collect();
    if drawn.is_empty() { Ok(()) } else { Err(drawn) }
}

// --- the dashboard's metric names ---------------------------------------------------------

/// Metric names a PromQL expression uses: `ferrogate_*`, `envoy_*` and `process_*`
/// identifiers outside label matchers (`{...}`) and outside the label lists of `by`,
/// `without`, `on`, `ignoring`, `group_left` and `group_right`.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let mut cleaned = String::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth > 0 => {}
            _ => cleaned.push(c),
        }
    }
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = cleaned.as_str();
    let mut in_label_list = false;
    while !rest.is_empty() {
        let start = rest.find(is_ident).unwrap_or(rest.len());
        if in_label_list && rest[..start].contains(')') {
            in_label_list = false;
        }
        rest = &rest[start..];
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        let token = &rest[..end];
        rest = &rest[end..];
        if matches!(
            token,
            "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
        ) && rest.trim_start().starts_with('(')
        {
            in_label_list = true;
        } else if !in_label_list
            && ["ferrogate_", "envoy_", "process_"]
                .iter()
                .any(|p| token.starts_with(p))
        {
            names.insert(token.to_string());
        }
    }
    names
}

fn check_dashboard(reference: &BTreeMap<String, &'static str>, envoy: &Scrape) {
    let path = repo_root().join("charts/ferrogate/dashboards/ferrogate.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(
        exprs.len() > 20,
        "the dashboard has {} queries",
        exprs.len()
    );
    let envoy_names = envoy.names();
    let mut missing = Vec::new();
    for expr in &exprs {
        for name in promql_metric_names(expr) {
            let ok = if name.starts_with("ferrogate_") || name.starts_with("process_") {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                reference.contains_key(&name) || reference.get(base) == Some(&"histogram")
            } else if name.starts_with("envoy_") {
                envoy_names.contains(&name)
            } else {
                false
            };
            if !ok {
                missing.push(format!("{name} (in `{expr}`)"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics that do not exist:\n{}",
        missing.join("\n")
    );
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::String(s)) if s.starts_with("label_values(") => {
                        out.push(
                            s.trim_start_matches("label_values(")
                                .split(',')
                                .next()
                                .unwrap_or("")
                                .to_string(),
                        )
                    }
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn promql_names_skip_labels_and_functions() {
    let names = promql_metric_names(
        "sum by (envoy_http_conn_manager_prefix, le) (rate(envoy_http_downstream_rq_time_bucket{envoy_cluster_name=\"x\"}[$__rate_interval])) / ignoring(envoy_x) ferrogate_leader",
    );
    assert_eq!(
        names,
        ["envoy_http_downstream_rq_time_bucket", "ferrogate_leader"]
            .map(String::from)
            .into()
    );
}

// --- docs/metrics.md ----------------------------------------------------------------------

fn metrics_doc() -> String {
    let mut out = String::from(
        "# Metrics reference\n\n\
         <!-- Generated from the metric definitions by crates/ferrogate/tests/metrics.rs (`make docs`); do not edit. -->\n\n\
         Ferrogate serves Prometheus metrics on `--metrics-addr` (19001 in a cluster, 127.0.0.1:19001 in\n\
         standalone mode) at `/metrics`. The Helm chart's metrics Service `<fullname>-metrics` exposes it and\n\
         `metrics.serviceMonitor.enabled` creates a ServiceMonitor for it. Histograms add `_bucket`, `_sum`\n\
         and `_count` series. The xDS metrics are read from the xDS server's bookkeeping at scrape time.\n\n\
         In a cluster every replica serves xDS and so exports the xDS metrics for its own streams;\n\
         status, infrastructure and leader metrics move only on the leader. In standalone mode\n\
         `ferrogate_leader` is always 1, every kind is watched, the infrastructure counters have no\n\
         series (local Envoy processes are not Kubernetes objects) and\n\
         `ferrogate_infra_apply_duration_seconds` times starting and stopping the local Envoys.\n\n\
         Per-Gateway series name the Gateway with two labels, `namespace` and `gateway` (its name),\n\
         the pair the chart's PodMonitor gives the Envoy pods' own series, so the two join on\n\
         `(namespace, gateway)`. No label carries a config version (each change would start a new\n\
         series). `ferrogate_xds_config_acked` has series only for the types a Gateway has resources\n\
         of: a plain-HTTP Gateway has no Secret, and Envoy never subscribes to one.\n\n\
         `ferrogate_xds_propagation_duration_seconds` runs from the moment the control plane has a\n\
         change (the provider's new snapshot woke the pipeline; the file provider's debounce comes\n\
         before that) to the ACK of the last Envoy of a Gateway the change touched, per resource\n\
         type. Envoys that need nothing of a type, or leave, are not waited for; a change no Envoy\n\
         ACKed (none connected, or all NACKed) is not measured.\n\n\
         | metric | type | labels | description |\n| --- | --- | --- | --- |\n",
    );
    for m in ferrogate_runtime::metrics_reference() {
        let labels = if m.labels.is_empty() {
            String::from("-")
        } else {
            m.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            m.name, m.kind, labels, m.help
        ));
    }
    out.push_str(
        "\n## Envoy\n\n\
         Every Envoy serves its own statistics in Prometheus format at `/stats/prometheus`: in a cluster\n\
         on container port `metrics` (19001) of every Envoy pod (the pods carry `prometheus.io/scrape`,\n\
         `prometheus.io/port` and `prometheus.io/path` annotations, and the chart's\n\
         `metrics.podMonitor.enabled` creates a PodMonitor for all of them); in standalone mode on\n\
         `--envoy-base-port` + 10 × slot + 1 per Gateway. The dashboard uses\n\
         `envoy_http_downstream_rq_total`, `envoy_http_downstream_rq_xx`, `envoy_http_downstream_rq_time`,\n\
         `envoy_http_downstream_cx_active`, `envoy_cluster_upstream_rq_total` and\n\
         `envoy_cluster_manager_cds_update_*`. The HTTP connection managers with prefixes `stats` and\n\
         `ready` serve the stats and readiness listeners, not traffic.\n\n\
         ## Dashboard\n\n\
         `charts/ferrogate/dashboards/ferrogate.json` (copied to `docs/dashboards/ferrogate.json`) is a\n\
         Grafana dashboard over these metrics; the chart ships it in a ConfigMap when\n\
         `dashboards.enabled` is set. A test checks that every metric it queries exists, and that its\n\
         \"Rejected or unacknowledged config\" panel draws nothing on a healthy standalone instance. The\n\
         \"Propagation latency\" panel shows the p50 and p99 of\n\
         `ferrogate_xds_propagation_duration_seconds` per type.\n",
    );
    out
}

#[test]
fn metrics_reference_is_current() {
    let path = repo_root().join("docs/metrics.md");
    let doc = metrics_doc();
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, doc).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(current == doc, "docs/metrics.md is stale: run `make docs`");
}
