//! The Envoy v3 bootstrap, as JSON (Envoy reads JSON or YAML bootstrap files).
//!
//! Contents: `node` (`cluster` = `<namespace>/<name>`, which the xDS server uses to pick the
//! Gateway's snapshot), ADS for LDS and CDS (state-of-the-world or delta), a static
//! `xds_cluster` (HTTP/2, TCP keepalive), a static `stats` listener that forwards only
//! `/stats/prometheus` to the admin interface through the `admin_local` cluster (so
//! Prometheus can scrape without the admin interface being exposed), the admin interface on
//! a loopback address, and an overload manager limiting downstream connections.

use std::net::IpAddr;

use ferrogate_ir::GatewayKey;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Name of the static cluster pointing at the xDS server.
pub const XDS_CLUSTER: &str = "xds_cluster";
/// Name of the static cluster pointing at Envoy's own admin interface.
pub const ADMIN_CLUSTER: &str = "admin_local";
/// Name of the static listener serving `/stats/prometheus`.
pub const STATS_LISTENER: &str = "stats";
/// Path the stats listener forwards to the admin interface.
pub const STATS_PATH: &str = "/stats/prometheus";
/// Downstream connection limit enforced by the overload manager.
pub const MAX_DOWNSTREAM_CONNECTIONS: u64 = 50_000;

/// Everything a bootstrap depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapParams {
    /// The Gateway; becomes `node.cluster` as `<namespace>/<name>`.
    pub gateway: GatewayKey,
    /// `node.id`.
    pub node_id: String,
    /// Host name or IP address of the xDS server. An IP address gives a `STATIC` cluster,
    /// anything else a `STRICT_DNS` one.
    pub xds_host: String,
    /// Port of the xDS server.
    pub xds_port: u16,
    /// Address the admin interface binds (loopback, e.g. `127.0.0.1`).
    pub admin_address: String,
    /// Port the admin interface binds.
    pub admin_port: u16,
    /// Port of the static Prometheus stats listener (binds `0.0.0.0`).
    pub stats_port: u16,
    /// Use delta (incremental) xDS instead of state-of-the-world.
    pub delta: bool,
}

/// Renders the Envoy v3 bootstrap for `p`. Deterministic.
pub fn render_bootstrap(p: &BootstrapParams) -> Value {
    let api_type = if p.delta { "DELTA_GRPC" } else { "GRPC" };
    json!({
        "node": {
            "id": p.node_id,
            "cluster": p.gateway.to_string(),
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "grpc_services": [{ "envoy_grpc": { "cluster_name": XDS_CLUSTER } }],
                "set_node_on_first_message_only": true,
            },
            "lds_config": { "ads": {}, "resource_api_version": "V3" },
            "cds_config": { "ads": {}, "resource_api_version": "V3" },
        },
        "static_resources": {
            "clusters": [xds_cluster(&p.xds_host, p.xds_port), admin_cluster(&p.admin_address, p.admin_port)],
            "listeners": [stats_listener(p.stats_port)],
        },
        "admin": {
            "address": socket_address(&p.admin_address, p.admin_port),
        },
        "overload_manager": {
            "refresh_interval": "0.25s",
            "resource_monitors": [{
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                    "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                },
            }],
        },
        "layered_runtime": {
            "layers": [
                { "name": "static_layer", "static_layer": {} },
                { "name": "admin_layer", "admin_layer": {} },
            ],
        },
    })
}

/// SHA-256 of the canonical JSON form of `v` (object keys sorted, no whitespace), as the
/// first 16 hex digits. Independent of map ordering features of `serde_json`.
pub fn bootstrap_hash(v: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(v, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    hex::encode(&digest[..8])
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn socket_address(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

fn load_assignment(cluster: &str, address: &str, port: u16) -> Value {
    json!({
        "cluster_name": cluster,
        "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket_address(address, port) } }] }],
    })
}

fn xds_cluster(host: &str, port: u16) -> Value {
    let mut cluster = Map::new();
    cluster.insert("name".into(), json!(XDS_CLUSTER));
    if host.parse::<IpAddr>().is_ok() {
        cluster.insert("type".into(), json!("STATIC"));
    } else {
        cluster.insert("type".into(), json!("STRICT_DNS"));
        cluster.insert("dns_lookup_family".into(), json!("V4_PREFERRED"));
    }
    cluster.insert("connect_timeout".into(), json!("1s"));
    cluster.insert(
        "load_assignment".into(),
        load_assignment(XDS_CLUSTER, host, port),
    );
    cluster.insert(
        "typed_extension_protocol_options".into(),
        json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": { "interval": "30s", "timeout": "5s" },
                    },
                },
            },
        }),
    );
    cluster.insert(
        "upstream_connection_options".into(),
        json!({ "tcp_keepalive": { "keepalive_probes": 3, "keepalive_time": 30, "keepalive_interval": 5 } }),
    );
    Value::Object(cluster)
}

fn admin_cluster(address: &str, port: u16) -> Value {
    json!({
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": load_assignment(ADMIN_CLUSTER, address, port),
    })
}

fn stats_listener(port: u16) -> Value {
    json!({
        "name": STATS_LISTENER,
        "address": socket_address("0.0.0.0", port),
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": STATS_LISTENER,
                    "codec_type": "AUTO",
                    "route_config": {
                        "name": STATS_LISTENER,
                        "virtual_hosts": [{
                            "name": STATS_LISTENER,
                            "domains": ["*"],
                            "routes": [{
                                "match": { "prefix": STATS_PATH },
                                "route": { "cluster": ADMIN_CLUSTER },
                            }],
                        }],
                    },
                    "http_filters": [{
                        "name": "envoy.filters.http.router",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                        },
                    }],
                },
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(delta: bool) -> BootstrapParams {
        BootstrapParams {
            gateway: GatewayKey::new("default", "eg"),
            node_id: "node".into(),
            xds_host: "127.0.0.1".into(),
            xds_port: 18000,
            admin_address: "127.0.0.1".into(),
            admin_port: 19000,
            stats_port: 19001,
            delta,
        }
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = render_bootstrap(&params(false));
        assert_eq!(
            bootstrap_hash(&a),
            bootstrap_hash(&render_bootstrap(&params(false)))
        );
        assert_ne!(
            bootstrap_hash(&a),
            bootstrap_hash(&render_bootstrap(&params(true)))
        );
        assert_eq!(bootstrap_hash(&a).len(), 16);
    }

    #[test]
    fn hash_ignores_key_order() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":{"c":[1,"x"],"d":null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":{"d":null,"c":[1,"x"]},"a":1}"#).unwrap();
        assert_eq!(bootstrap_hash(&a), bootstrap_hash(&b));
    }

    #[test]
    fn hostname_gives_strict_dns() {
        let mut p = params(false);
        p.xds_host = "ferrogate.ferrogate-system.svc".into();
        let v = render_bootstrap(&p);
        assert_eq!(v["static_resources"]["clusters"][0]["type"], "STRICT_DNS");
        assert_eq!(v["node"]["cluster"], "default/eg");
        assert_eq!(v["dynamic_resources"]["ads_config"]["api_type"], "GRPC");
    }
}
