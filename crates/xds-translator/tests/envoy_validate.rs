//! Checks that a real Envoy accepts the translated resources (`envoy --mode validate`).
//! Uses the Envoy at `FERROGATE_ENVOY`, else `.tools/bin/envoy` of the repository (`make envoy`
//! installs it); a missing Envoy fails the test.
//!
//! Each golden case becomes a binary-proto bootstrap (`.pb`) holding:
//! - the listeners and EDS clusters exactly as translated, plus an ADS config pointing at a
//!   static `xds` cluster (so RDS/EDS config sources are checked);
//! - every RouteConfiguration inlined into a copy of its listener (`inline-<name>`), so route
//!   contents are checked (Envoy validates inline routes against the cluster names);
//! - every Secret as a static secret; the `inline-<name>` listener copies and the `static-`
//!   cluster copies refer to them instead of SDS over ADS, so certificates and keys are
//!   loaded and checked too (a listener is copied when it has routes or secrets to inline);
//! - every ClusterLoadAssignment as the `load_assignment` of a static copy of its cluster.

use std::fs;
use std::path::Path;
use std::process::Command;

use envoy_types::pb::envoy::config::bootstrap::v3::{
    Bootstrap,
    bootstrap::{DynamicResources, StaticResources},
};
use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, GrpcService, Node, TransportSocket, address,
    api_config_source::ApiType,
    grpc_service::{EnvoyGrpc, TargetSpecifier},
    socket_address::PortSpecifier,
    transport_socket,
};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{Listener, filter::ConfigType};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, UpstreamTlsContext,
};
use envoy_types::pb::google::protobuf::Any;
use ferrogate_ir::{
    AccessLog, AccessLogFormat, AccessLogSink, Backend, BackendProtocol, Endpoint, GatewayIr,
};
use ferrogate_xds_translator::{
    XdsOptions, cluster::cluster, endpoint::load_assignment, translate, type_url,
};
use prost::Message;

/// One access log of each format and sink, so Envoy checks every logger shape we emit.
fn every_access_log() -> Vec<AccessLog> {
    vec![
        AccessLog {
            format: AccessLogFormat::DefaultJson,
            sink: AccessLogSink::Stdout,
        },
        AccessLog {
            format: AccessLogFormat::Json {
                fields: [("code".to_string(), "%RESPONSE_CODE%".to_string())].into(),
            },
            sink: AccessLogSink::Stderr,
        },
        AccessLog {
            format: AccessLogFormat::Text {
                text: "%START_TIME% %RESPONSE_CODE%\n".into(),
            },
            sink: AccessLogSink::File {
                path: "/dev/null".into(),
            },
        },
    ]
}

fn bootstrap(ir: &GatewayIr) -> Bootstrap {
    let res = translate(
        ir,
        &XdsOptions {
            ready_port: 19003,
            access_logs: every_access_log(),
        },
    );
    let mut listeners = res.listeners.clone();
    for l in &res.listeners {
        if let Some(inlined) = inline_listener(l, &res.route_configs) {
            listeners.push(inlined);
        }
    }
    let mut clusters = res.clusters.clone();
    for (c, cla) in res.clusters.iter().zip(&res.endpoints) {
        let mut s = c.clone();
        s.name = format!("static-{}", c.name);
        if let Some(ts) = &mut s.transport_socket {
            edit_any(ts_any(ts), |ctx: &mut UpstreamTlsContext| {
                static_secrets(ctx.common_tls_context.as_mut());
            });
        }
        s.eds_cluster_config = None;
        s.cluster_discovery_type = Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32));
        s.load_assignment = Some(ClusterLoadAssignment {
            cluster_name: s.name.clone(),
            ..cla.clone()
        });
        clusters.push(s);
    }
    let xds = Backend {
        name: "xds".into(),
        protocol: BackendProtocol::Http2,
        endpoints: [Endpoint {
            address: "127.0.0.1".into(),
            port: 18000,
        }]
        .into(),
        tls: None,
    };
    let mut xds_cluster = cluster(&xds);
    xds_cluster.eds_cluster_config = None;
    xds_cluster.cluster_discovery_type =
        Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32));
    xds_cluster.load_assignment = Some(load_assignment(&xds));
    clusters.push(xds_cluster);

    Bootstrap {
        node: Some(Node {
            id: "validate".into(),
            cluster: "default/gw".into(),
            ..Default::default()
        }),
        static_resources: Some(StaticResources {
            listeners,
            clusters,
            secrets: res.secrets.clone(),
        }),
        dynamic_resources: Some(DynamicResources {
            ads_config: Some(ApiConfigSource {
                api_type: ApiType::Grpc as i32,
                transport_api_version: ApiVersion::V3 as i32,
                grpc_services: vec![GrpcService {
                    target_specifier: Some(TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                        cluster_name: "xds".into(),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A copy of a listener with the route configurations of its HCMs inlined and its SDS
/// certificates turned into static secret references, or `None` when there is nothing to
/// inline (the copy would be identical).
fn inline_listener(l: &Listener, routes: &[RouteConfiguration]) -> Option<Listener> {
    let mut l = l.clone();
    let mut changed = false;
    for chain in &mut l.filter_chains {
        for f in &mut chain.filters {
            let Some(ConfigType::TypedConfig(any)) = &mut f.config_type else {
                continue;
            };
            if any.type_url != type_url::HTTP_CONNECTION_MANAGER {
                continue;
            }
            edit_any(any, |hcm: &mut HttpConnectionManager| {
                if let Some(RouteSpecifier::Rds(rds)) = &hcm.route_specifier {
                    let rc = routes
                        .iter()
                        .find(|r| r.name == rds.route_config_name)
                        .unwrap_or_else(|| {
                            panic!("no RouteConfiguration {}", rds.route_config_name)
                        })
                        .clone();
                    hcm.route_specifier = Some(RouteSpecifier::RouteConfig(rc));
                    changed = true;
                }
            });
        }
        if let Some(ts) = &mut chain.transport_socket {
            edit_any(ts_any(ts), |ctx: &mut DownstreamTlsContext| {
                changed |= static_secrets(ctx.common_tls_context.as_mut());
            });
        }
    }
    if !changed {
        return None;
    }
    l.name = format!("inline-{}", l.name);
    // Envoy rejects two listeners on one address: move the copy to another port.
    if let Some(address::Address::SocketAddress(sa)) =
        l.address.as_mut().and_then(|a| a.address.as_mut())
        && let Some(PortSpecifier::PortValue(p)) = &mut sa.port_specifier
    {
        *p += 1;
    }
    Some(l)
}

/// Drops the SDS config source of every certificate reference, so the names refer to
/// static secrets. True when there was any.
fn static_secrets(ctx: Option<&mut CommonTlsContext>) -> bool {
    let Some(ctx) = ctx else { return false };
    for c in &mut ctx.tls_certificate_sds_secret_configs {
        c.sds_config = None;
    }
    !ctx.tls_certificate_sds_secret_configs.is_empty()
}

fn ts_any(ts: &mut TransportSocket) -> &mut Any {
    let Some(transport_socket::ConfigType::TypedConfig(any)) = &mut ts.config_type else {
        panic!("transport socket {} without typed config", ts.name);
    };
    any
}

/// Decodes `any` as `M`, applies `f`, and packs it back.
fn edit_any<M: Message + Default>(any: &mut Any, f: impl FnOnce(&mut M)) {
    let mut m = M::decode(any.value.as_slice()).unwrap();
    f(&mut m);
    any.value = m.encode_to_vec();
}

#[test]
fn envoy_accepts_translated_resources() {
    let envoy = ferrogate_testkit::envoy_path();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".in.yaml").map(str::to_string)
        })
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for case in cases {
        let ir: GatewayIr =
            yaml_serde::from_str(&fs::read_to_string(dir.join(format!("{case}.in.yaml"))).unwrap())
                .unwrap();
        if let Err(e) = validate(&envoy, &bootstrap(&ir), &format!("case-{case}")) {
            failures.push(format!("{case}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "Envoy rejected:\n{}",
        failures.join("\n")
    );
}

/// A sample of generated Gateway API worlds, translated all the way to Envoy resources,
/// must be accepted by Envoy (the property test in the translator covers many more seeds
/// for panics and determinism; Envoy validation is slower, so only a sample runs here).
#[test]
fn envoy_accepts_config_of_generated_worlds() {
    let envoy = ferrogate_testkit::envoy_path();
    let mut failures = Vec::new();
    let mut validated = 0;
    for seed in 0..24u64 {
        let text = ferrogate_testkit::worlds::world(seed, false);
        let snapshot: ferrogate_store::Snapshot =
            ferrogate_store::load_documents("generated", &text)
                .0
                .into_iter()
                .collect();
        let translation =
            ferrogate_translator::translate(&snapshot, &ferrogate_translator::Options::default());
        for (key, ir) in &translation.gateways {
            validated += 1;
            if let Err(e) = validate(&envoy, &bootstrap(ir), &format!("generated-{seed}")) {
                failures.push(format!("seed {seed} gateway {key}: {e}"));
            }
        }
    }
    assert!(
        validated >= 10,
        "only {validated} generated Gateways were validated"
    );
    assert!(
        failures.is_empty(),
        "Envoy rejected:\n{}",
        failures.join("\n")
    );
}

/// `envoy --mode validate` on `bootstrap` (written to a temporary file named after `name`):
/// Envoy's output when it rejects the config.
fn validate(envoy: &Path, bootstrap: &Bootstrap, name: &str) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!(
        "ferrogate-xds-validate-{}-{name}.pb",
        std::process::id()
    ));
    fs::write(&path, bootstrap.encode_to_vec()).unwrap();
    let out = Command::new(envoy)
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "error",
            "-c",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let _ = fs::remove_file(&path);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
