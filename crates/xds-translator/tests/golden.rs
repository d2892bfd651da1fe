//! Golden tests: `testdata/<case>.in.yaml` (a GatewayIr) is translated and compared with
//! `testdata/<case>.out.txt`. envoy-types has no serde, so the output is pretty `Debug` text,
//! with the bytes of every packed `Any` replaced by its decoded message.
//!
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p ferrogate-xds-translator --test golden`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter::ConfigType};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_filter,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use ferrogate_ir::GatewayIr;
use ferrogate_xds_translator::{EnvoyResources, XdsOptions, translate, type_url};
use prost::Message;

const READY_PORT: u16 = 19003;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Renders resources as readable, deterministic text.
fn render(res: &EnvoyResources) -> String {
    let mut out = String::new();
    for l in &res.listeners {
        writeln!(out, "=== Listener {}", l.name).unwrap();
        out.push_str(&render_listener(l));
    }
    for r in &res.route_configs {
        writeln!(out, "=== RouteConfiguration {}\n{r:#?}", r.name).unwrap();
    }
    for c in &res.clusters {
        writeln!(out, "=== Cluster {}", c.name).unwrap();
        out.push_str(&render_cluster(c));
    }
    for e in &res.endpoints {
        writeln!(out, "=== ClusterLoadAssignment {}\n{e:#?}", e.cluster_name).unwrap();
    }
    out
}

fn render_listener(l: &Listener) -> String {
    let mut l = l.clone();
    let mut decoded = String::new();
    for chain in &mut l.filter_chains {
        for f in &mut chain.filters {
            let Some(ConfigType::TypedConfig(any)) = &mut f.config_type else {
                continue;
            };
            assert_eq!(any.type_url, type_url::HTTP_CONNECTION_MANAGER);
            let mut hcm = HttpConnectionManager::decode(any.value.as_slice()).unwrap();
            any.value.clear();
            for hf in &mut hcm.http_filters {
                if let Some(http_filter::ConfigType::TypedConfig(a)) = &mut hf.config_type {
                    assert_eq!(a.type_url, type_url::ROUTER);
                    assert_eq!(
                        Router::decode(a.value.as_slice()).unwrap(),
                        Router::default()
                    );
                    a.value.clear();
                }
            }
            writeln!(decoded, "--- {} typed_config (decoded)\n{hcm:#?}", f.name).unwrap();
        }
    }
    format!("{l:#?}\n{decoded}")
}

fn render_cluster(c: &Cluster) -> String {
    let mut c = c.clone();
    let mut decoded = String::new();
    for (key, any) in &mut c.typed_extension_protocol_options {
        assert_eq!(any.type_url, type_url::HTTP_PROTOCOL_OPTIONS);
        let opts = HttpProtocolOptions::decode(any.value.as_slice()).unwrap();
        any.value.clear();
        writeln!(decoded, "--- {key} (decoded)\n{opts:#?}").unwrap();
    }
    format!("{c:#?}\n{decoded}")
}

#[test]
fn golden() {
    let dir = testdata();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".in.yaml").map(str::to_string)
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", dir.display());

    let mut stale = Vec::new();
    for case in &cases {
        let input = fs::read_to_string(dir.join(format!("{case}.in.yaml"))).unwrap();
        let ir: GatewayIr =
            yaml_serde::from_str(&input).unwrap_or_else(|e| panic!("{case}.in.yaml: {e}"));
        let got = render(&translate(
            &ir,
            &XdsOptions {
                ready_port: READY_PORT,
            },
        ));
        let out_path = dir.join(format!("{case}.out.txt"));
        if update {
            fs::write(&out_path, &got).unwrap();
            continue;
        }
        match fs::read_to_string(&out_path) {
            Ok(want) if want == got => {}
            Ok(_) => stale.push(format!("{case}.out.txt (differs)")),
            Err(_) => stale.push(format!("{case}.out.txt (missing)")),
        }
    }
    // Outputs without an input are stale too.
    for e in fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if let Some(case) = name.strip_suffix(".out.txt")
            && !cases.iter().any(|c| c == case)
        {
            if update {
                fs::remove_file(dir.join(&name)).unwrap();
            } else {
                stale.push(format!("{name} (no input)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale golden outputs (regenerate with UPDATE_GOLDEN=1 and review the diff):\n  {}",
        stale.join("\n  ")
    );
}
