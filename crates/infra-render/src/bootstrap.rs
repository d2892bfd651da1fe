//! The Envoy v3 bootstrap, as JSON (Envoy reads JSON or YAML bootstrap files).
//!
//! Contents: `node` (`cluster` = `<namespace>/<name>`, which the xDS server uses to pick the
//! Gateway's snapshot), ADS for LDS and CDS (state-of-the-world or delta), a static
//! `xds_cluster` (HTTP/2, TCP keepalive; mutual TLS when [`BootstrapParams::xds_tls`] names
//! the files, see [`XdsTlsPaths`]), a static `stats` listener that forwards exactly
//! `GET /stats/prometheus` to the admin interface through the `admin_local` cluster (so
//! Prometheus can scrape without the admin interface being exposed), the admin interface on
//! a loopback address, and an overload manager limiting downstream connections.
//!
//! The stats listener binds every address, so it is the one door from the network to the
//! admin interface, which answers `/quitquitquit`, `/drain_listeners`, `/config_dump` (with
//! every private key) and resolves `..` in paths itself. The door therefore lets exactly one
//! request through: method `GET` and, after RFC 3986 normalization with escaped slashes
//! refused, the path `/stats/prometheus` (a query string is the stats handler's own
//! business). Everything else gets a direct 404 or 405 from the listener and never reaches
//! the admin cluster. The readiness path is not on this listener: it arrives over xDS on
//! its own port and is a direct response that reaches nothing (see the xDS translator).

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

/// Where Envoy finds its xDS client TLS files. Envoy reads them itself (filename data
/// sources), so the bootstrap carries paths, never key material, and its hash does not
/// change when a certificate is renewed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdsTlsPaths {
    /// The CA certificate that signed the xDS server's certificate (PEM).
    pub ca: String,
    /// This Gateway's client certificate (PEM), whose URI SAN names the Gateway.
    pub cert: String,
    /// Its private key (PEM).
    pub key: String,
}

impl XdsTlsPaths {
    /// `ca.crt`, `tls.crt` and `tls.key` in directory `dir` (the keys of the per-Gateway
    /// Secret, the names standalone mode writes).
    pub fn in_dir(dir: &str) -> Self {
        let dir = dir.trim_end_matches('/');
        Self {
            ca: format!("{dir}/ca.crt"),
            cert: format!("{dir}/tls.crt"),
            key: format!("{dir}/tls.key"),
        }
    }
}

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
    /// Connect to the xDS server over mutual TLS with these files; plaintext when `None`.
    pub xds_tls: Option<XdsTlsPaths>,
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
            "clusters": [xds_cluster(&p.xds_host, p.xds_port, p.xds_tls.as_ref()), admin_cluster(&p.admin_address, p.admin_port)],
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

fn xds_cluster(host: &str, port: u16, tls: Option<&XdsTlsPaths>) -> Value {
    let mut cluster = Map::new();
    cluster.insert("name".into(), json!(XDS_CLUSTER));
    let is_ip = host.parse::<IpAddr>().is_ok();
    if is_ip {
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
    if let Some(tls) = tls {
        cluster.insert("transport_socket".into(), xds_tls_socket(host, is_ip, tls));
    }
    Value::Object(cluster)
}

/// Mutual TLS to the xDS server: present the Gateway's client certificate, trust only the
/// xDS CA, and check that the server certificate is for `host` (Envoy verifies no name
/// unless told to, and a CA alone would accept any certificate it signed, including
/// another Gateway's client certificate).
fn xds_tls_socket(host: &str, is_ip: bool, tls: &XdsTlsPaths) -> Value {
    let san_type = if is_ip { "IP_ADDRESS" } else { "DNS" };
    let mut context = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "tls_params": { "tls_minimum_protocol_version": "TLSv1_2" },
            "tls_certificates": [{
                "certificate_chain": { "filename": tls.cert },
                "private_key": { "filename": tls.key },
            }],
            "validation_context": {
                "trusted_ca": { "filename": tls.ca },
                "match_typed_subject_alt_names": [{ "san_type": san_type, "matcher": { "exact": host } }],
            },
        },
    });
    // SNI must be a host name (RFC 6066): an IP address goes without.
    if !is_ip {
        context["sni"] = json!(host);
    }
    json!({ "name": "envoy.transport_sockets.tls", "typed_config": context })
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
                    // Envoy's admin server resolves `..` and `%2e%2e` itself: the route
                    // must see the path the admin server will act on, so normalize
                    // before matching, and refuse encoded slashes rather than guess.
                    "normalize_path": true,
                    "merge_slashes": true,
                    "path_with_escaped_slashes_action": "REJECT_REQUEST",
                    "route_config": {
                        "name": STATS_LISTENER,
                        "virtual_hosts": [{
                            "name": STATS_LISTENER,
                            "domains": ["*"],
                            "routes": stats_routes(),
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

/// The stats listener's routes: exactly `GET /stats/prometheus` to the admin cluster; the
/// same path with another method is 405; anything else 404. Order matters (first match
/// wins), and only the first route names a cluster.
fn stats_routes() -> Value {
    json!([
        {
            "name": "prometheus",
            "match": {
                "path": STATS_PATH,
                "headers": [{ "name": ":method", "string_match": { "exact": "GET" } }],
            },
            "route": { "cluster": ADMIN_CLUSTER },
        },
        {
            "name": "method_not_allowed",
            "match": { "path": STATS_PATH },
            "direct_response": { "status": 405 },
        },
        {
            "name": "not_found",
            "match": { "prefix": "/" },
            "direct_response": { "status": 404 },
        },
    ])
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
            xds_tls: None,
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
        assert!(v["static_resources"]["clusters"][0]["transport_socket"].is_null());
    }

    #[test]
    fn xds_tls_uses_the_files_and_checks_the_server_name() {
        let mut p = params(false);
        p.xds_host = "ferrogate.ferrogate-system.svc".into();
        p.xds_tls = Some(XdsTlsPaths::in_dir("/etc/ferrogate/xds/"));
        let v = render_bootstrap(&p);
        let socket = &v["static_resources"]["clusters"][0]["transport_socket"];
        assert_eq!(socket["name"], "envoy.transport_sockets.tls");
        let ctx = &socket["typed_config"];
        assert_eq!(ctx["sni"], "ferrogate.ferrogate-system.svc");
        let common = &ctx["common_tls_context"];
        assert_eq!(
            common["tls_certificates"][0]["private_key"]["filename"],
            "/etc/ferrogate/xds/tls.key"
        );
        assert_eq!(
            common["validation_context"]["trusted_ca"]["filename"],
            "/etc/ferrogate/xds/ca.crt"
        );
        assert_eq!(
            common["validation_context"]["match_typed_subject_alt_names"][0]["san_type"],
            "DNS"
        );

        let mut p = params(false);
        p.xds_tls = Some(XdsTlsPaths::in_dir("/w/ns/gw/xds"));
        let v = render_bootstrap(&p);
        let ctx = &v["static_resources"]["clusters"][0]["transport_socket"]["typed_config"];
        assert!(ctx["sni"].is_null(), "no SNI for an IP address");
        assert_eq!(
            ctx["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0]["san_type"],
            "IP_ADDRESS"
        );
        assert_ne!(
            bootstrap_hash(&v),
            bootstrap_hash(&render_bootstrap(&params(false)))
        );
    }

    #[test]
    fn the_stats_listener_forwards_only_get_of_the_exact_stats_path() {
        let v = render_bootstrap(&params(false));
        let listener = &v["static_resources"]["listeners"][0];
        let hcm = &listener["filter_chains"][0]["filters"][0]["typed_config"];
        assert_eq!(hcm["normalize_path"], true);
        assert_eq!(hcm["merge_slashes"], true);
        assert_eq!(hcm["path_with_escaped_slashes_action"], "REJECT_REQUEST");
        let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap();
        let to_admin: Vec<&Value> = routes.iter().filter(|r| !r["route"].is_null()).collect();
        assert_eq!(to_admin.len(), 1, "one route reaches the admin cluster");
        let m = &to_admin[0]["match"];
        assert_eq!(m["path"], STATS_PATH, "an exact path, never a prefix");
        assert!(m["prefix"].is_null());
        assert_eq!(m["headers"][0]["name"], ":method");
        assert_eq!(m["headers"][0]["string_match"]["exact"], "GET");
        assert!(std::ptr::eq(to_admin[0], &routes[0]), "it is matched first");
    }
}
