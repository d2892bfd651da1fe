//! ferrogate-xds-translator: turns one Gateway's IR into Envoy v3 xDS resources
//! (Listeners, RouteConfigurations, Clusters, ClusterLoadAssignments, Secrets).
//!
//! Owns: every Envoy-specific decision (HTTP connection manager options, how Gateway API
//! path/header/query matches, rewrites, redirects and weights map onto Envoy routes, cluster
//! and endpoint shapes, the readiness listener), resource type URLs and content hashes.
//!
//! Layout: one module per Envoy feature: [`listener`] (LDS + HCM), [`access_log`] (access
//! loggers on every proxy filter), [`readiness`] (the `ready`
//! listener), [`route`] (RDS: virtual hosts, routes and matches), [`action`] (route actions:
//! forward, rewrite, redirect, direct response, header modifiers), [`cluster`] (CDS),
//! [`endpoint`] (EDS), [`tls`] (downstream/upstream TLS contexts, SDS secrets),
//! [`version`] (content hashes).
//!
//! Guarantees: output is a pure function of the input. Identical IR gives byte-identical
//! resources: everything is sorted, no `HashMap` is iterated (map-typed Envoy fields hold one
//! entry, except a route's filter configs, which [`canonical`] encodes sorted). Routes are delivered over RDS, certificates over
//! SDS and endpoints over EDS, so an HTTP route change (CORS and mirrors included) or a
//! certificate change never changes a Listener's bytes and an endpoint change never changes
//! a Cluster's bytes. TCP, TLS and UDP listeners proxy to one stream cluster per listener
//! (or TLS chain) whose weighted localities are the route's backends, so a
//! TCPRoute/TLSRoute/UDPRoute backend or weight change is an EDS update, and a stream
//! listener without usable backends still binds and rejects connections.
//!
//! Must not: do I/O, read clocks, use randomness, spawn tasks, or hold Gateway API semantics
//! (precedence, validation, reference resolution belong to the Gateway API translator; the IR
//! arrives already decided).
#![forbid(unsafe_code)]
// Envoy runs with `--ignore-unknown-dynamic-fields`, which also silences its warnings about
// deprecated fields (see `ferrogate_infra_render::IGNORE_UNKNOWN_DYNAMIC_FIELDS`): setting
// one is refused here instead. `envoy-types` marks Envoy's deprecated fields `#[deprecated]`.
#![deny(deprecated)]
#![warn(missing_docs)]

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::google::protobuf::Any;
use ferrogate_ir::{GatewayIr, ListenerKind};
use prost::Message;

pub mod access_log;
pub mod action;
pub mod canonical;
pub mod cluster;
mod common;
pub mod endpoint;
pub mod listener;
pub mod readiness;
pub mod route;
mod route_encodings;
pub mod session;
pub mod tls;
pub mod version;

pub use route_encodings::RouteEncodings;
pub use version::content_hash;

/// Type URLs of the xDS resources this crate produces (and of secrets, for the server).
pub mod type_url {
    /// `envoy.config.listener.v3.Listener` (LDS).
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    /// `envoy.config.route.v3.RouteConfiguration` (RDS).
    pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    /// `envoy.config.route.v3.FilterConfig` (per-route filter flags around a filter's config).
    pub const FILTER_CONFIG: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";
    /// `envoy.config.cluster.v3.Cluster` (CDS).
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    /// `envoy.config.endpoint.v3.ClusterLoadAssignment` (EDS).
    pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    /// `envoy.extensions.transport_sockets.tls.v3.Secret` (SDS).
    pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    /// `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`.
    pub const HTTP_CONNECTION_MANAGER: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
    /// `envoy.extensions.filters.http.router.v3.Router`.
    pub const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
    /// `envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`.
    pub const DOWNSTREAM_TLS_CONTEXT: &str =
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
    /// `envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`.
    pub const UPSTREAM_TLS_CONTEXT: &str =
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
    /// `envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector`.
    pub const TLS_INSPECTOR: &str =
        "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
    /// `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`.
    pub const TCP_PROXY: &str =
        "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
    /// `envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig`.
    pub const UDP_PROXY: &str =
        "type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig";
    /// `envoy.extensions.filters.udp.udp_proxy.v3.Route` (UDP proxy matcher action).
    pub const UDP_PROXY_ROUTE: &str =
        "type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.Route";
    /// `envoy.extensions.filters.http.cors.v3.Cors` (the HTTP filter).
    pub const CORS: &str = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";
    /// `envoy.extensions.filters.http.cors.v3.CorsPolicy` (per-route config).
    pub const CORS_POLICY: &str =
        "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";
    /// `envoy.extensions.access_loggers.stream.v3.StdoutAccessLog`.
    pub const STDOUT_ACCESS_LOG: &str =
        "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
    /// `envoy.extensions.access_loggers.stream.v3.StderrAccessLog`.
    pub const STDERR_ACCESS_LOG: &str =
        "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog";
    /// `envoy.extensions.access_loggers.file.v3.FileAccessLog`.
    pub const FILE_ACCESS_LOG: &str =
        "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
    /// `envoy.extensions.filters.http.stateful_session.v3.StatefulSession`.
    pub const STATEFUL_SESSION: &str =
        "type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession";
    /// `envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute`.
    pub const STATEFUL_SESSION_PER_ROUTE: &str = "type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute";
    /// `envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState`.
    pub const COOKIE_SESSION_STATE: &str = "type.googleapis.com/envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState";
    /// `envoy.extensions.http.stateful_session.header.v3.HeaderBasedSessionState`.
    pub const HEADER_SESSION_STATE: &str = "type.googleapis.com/envoy.extensions.http.stateful_session.header.v3.HeaderBasedSessionState";
    /// `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`.
    pub const HTTP_PROTOCOL_OPTIONS: &str =
        "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
}

/// Per-Gateway settings that are not part of the route graph (they come from the infra IR
/// and the mode).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XdsOptions {
    /// Port of the Envoy readiness listener (`ready`) for this Gateway.
    pub ready_port: u16,
    /// Access logs of every proxy listener (the infra IR's `access_logs`); the `ready`
    /// listener never logs (probes would flood the log).
    pub access_logs: Vec<ferrogate_ir::AccessLog>,
}

/// All Envoy resources of one Gateway. Every list is sorted by resource name and holds
/// each name once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvoyResources {
    /// Listeners (LDS), including the `ready` listener.
    pub listeners: Vec<Listener>,
    /// Route configurations (RDS), one per HTTP listener and per HTTPS chain.
    pub route_configs: Vec<RouteConfiguration>,
    /// Clusters (CDS), one per backend.
    pub clusters: Vec<Cluster>,
    /// Endpoints (EDS), one per backend.
    pub endpoints: Vec<ClusterLoadAssignment>,
    /// Certificates (SDS), one per IR secret.
    pub secrets: Vec<Secret>,
}

impl EnvoyResources {
    /// Packs every resource into an `Any`, grouped by type URL. All five produced types are
    /// present, even when empty (an empty state-of-the-world list means "none").
    pub fn into_any(self) -> BTreeMap<&'static str, Vec<(String, Any)>> {
        let mut out = BTreeMap::new();
        out.insert(
            type_url::LISTENER,
            pack_all(self.listeners, type_url::LISTENER, |l| &l.name),
        );
        out.insert(
            type_url::ROUTE,
            self.route_configs
                .into_iter()
                .map(|rc| {
                    (
                        rc.name.clone(),
                        Any {
                            type_url: type_url::ROUTE.to_string(),
                            value: canonical::route_configuration(rc),
                        },
                    )
                })
                .collect(),
        );
        out.insert(
            type_url::CLUSTER,
            pack_all(self.clusters, type_url::CLUSTER, |c| &c.name),
        );
        out.insert(
            type_url::ENDPOINT,
            pack_all(self.endpoints, type_url::ENDPOINT, |e| &e.cluster_name),
        );
        out.insert(
            type_url::SECRET,
            pack_all(self.secrets, type_url::SECRET, |s| &s.name),
        );
        out
    }
}

fn pack_all<T: Message>(
    items: Vec<T>,
    type_url: &str,
    name: impl Fn(&T) -> &String,
) -> Vec<(String, Any)> {
    items
        .into_iter()
        .map(|item| (name(&item).clone(), common::pack(type_url, &item)))
        .collect()
}

/// Translates one Gateway's IR into its Envoy resources.
pub fn translate(ir: &GatewayIr, opts: &XdsOptions) -> EnvoyResources {
    EnvoyResources {
        route_configs: route_tables(ir)
            .into_iter()
            .map(|(name, virtual_hosts)| route::route_configuration(name, virtual_hosts))
            .collect(),
        ..translate_all_but_routes(ir, opts)
    }
}

/// [`translate`] packed by [`EnvoyResources::into_any`], the same bytes, with the route
/// configurations put together from the routes `encodings` kept from this Gateway's last
/// translation (see `route_encodings`): what the pipeline publishes.
pub fn translate_any(
    ir: &GatewayIr,
    opts: &XdsOptions,
    encodings: &mut RouteEncodings,
) -> BTreeMap<&'static str, Vec<(String, Any)>> {
    let mut out = translate_all_but_routes(ir, opts).into_any();
    let routes = route_tables(ir)
        .into_iter()
        .map(|(name, virtual_hosts)| {
            let value = encodings.route_configuration(name, virtual_hosts);
            (
                name.to_string(),
                Any {
                    type_url: type_url::ROUTE.to_string(),
                    value,
                },
            )
        })
        .collect();
    encodings.finish();
    out.insert(type_url::ROUTE, routes);
    out
}

/// (name, virtual hosts) of every RouteConfiguration, one per HTTP listener and per HTTPS
/// chain, sorted by name, each name once (the first in listener order).
fn route_tables(ir: &GatewayIr) -> Vec<(&str, &[ferrogate_ir::VirtualHost])> {
    let mut tables = Vec::new();
    for l in &ir.listeners {
        match &l.kind {
            ListenerKind::Http(http) => {
                tables.push((http.route_config.as_str(), http.virtual_hosts.as_slice()))
            }
            ListenerKind::Https(https) => tables.extend(
                https
                    .chains
                    .iter()
                    .map(|c| (c.route_config.as_str(), c.virtual_hosts.as_slice())),
            ),
            _ => {}
        }
    }
    tables.sort_by(|a, b| a.0.cmp(b.0));
    tables.dedup_by(|a, b| a.0 == b.0);
    tables
}

/// Every resource but the route configurations.
fn translate_all_but_routes(ir: &GatewayIr, opts: &XdsOptions) -> EnvoyResources {
    let mut listeners = vec![readiness::ready_listener(opts.ready_port)];
    let logs = access_log::access_logs(&opts.access_logs);
    for l in &ir.listeners {
        match &l.kind {
            ListenerKind::Http(http) => listeners.push(listener::http_listener(l, http, &logs)),
            ListenerKind::Https(https) => {
                listeners.extend(listener::https_listener(l, https, &logs))
            }
            ListenerKind::Tls(tls) => listeners.extend(listener::tls_listener(l, tls, &logs)),
            ListenerKind::Tcp(tcp) => listeners.push(listener::tcp_listener(l, tcp, &logs)),
            ListenerKind::Udp(udp) => listeners.push(listener::udp_listener(l, udp, &logs)),
        }
    }
    listeners.sort_by(|a, b| a.name.cmp(&b.name));
    listeners.dedup_by(|a, b| a.name == b.name);

    let mut clusters: Vec<Cluster> = ir.backends.iter().map(cluster::cluster).collect();
    for (name, backends) in stream_clusters(ir) {
        clusters.push(cluster::stream_cluster(&name, backends, &ir.backends));
    }
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    clusters.dedup_by(|a, b| a.name == b.name);

    let mut secrets: Vec<Secret> = ir.secrets.iter().map(tls::secret).collect();
    secrets.sort_by(|a, b| a.name.cmp(&b.name));
    secrets.dedup_by(|a, b| a.name == b.name);

    EnvoyResources {
        listeners,
        route_configs: Vec::new(),
        clusters,
        endpoints: translate_endpoints(ir),
        secrets,
    }
}

/// Translates only the endpoints (the EDS-only path for endpoint changes). Gives exactly the
/// `endpoints` of [`translate`].
pub fn translate_endpoints(ir: &GatewayIr) -> Vec<ClusterLoadAssignment> {
    let mut out: Vec<ClusterLoadAssignment> =
        ir.backends.iter().map(endpoint::load_assignment).collect();
    for (name, backends) in stream_clusters(ir) {
        out.push(endpoint::stream_assignment(&name, backends, &ir.backends));
    }
    out.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    out.dedup_by(|a, b| a.cluster_name == b.cluster_name);
    out
}

/// [`translate_endpoints`], packed as the xDS server holds resources (name, `Any`): what the
/// EDS-only path publishes when only endpoints changed.
pub fn translate_endpoints_any(ir: &GatewayIr) -> Vec<(String, Any)> {
    pack_all(translate_endpoints(ir), type_url::ENDPOINT, |e| {
        &e.cluster_name
    })
}

/// The stream cluster of every TCP and UDP listener and of every TLS chain: (name, backends).
fn stream_clusters(ir: &GatewayIr) -> Vec<(String, &[ferrogate_ir::WeightedBackend])> {
    let mut out = Vec::new();
    for l in &ir.listeners {
        match &l.kind {
            ListenerKind::Tcp(s) | ListenerKind::Udp(s) => out.push((
                cluster::stream_cluster_name(&l.name, None),
                s.backends.as_slice(),
            )),
            ListenerKind::Tls(t) => {
                out.extend(t.chains.iter().map(|c| {
                    (
                        cluster::stream_cluster_name(&l.name, Some(&c.name)),
                        c.backends.as_slice(),
                    )
                }));
            }
            _ => {}
        }
    }
    out
}
