//! Simulated proxies: xDS clients that speak the real ADS protocol to the control plane
//! (delta or state-of-the-world) the way Envoy does, for the fleet pass, where one host
//! cannot run ten Envoys for each of a hundred Gateways. A stream subscribes to Listeners
//! and Clusters (wildcard), then to the RouteConfigurations its Listeners name and the
//! endpoints (EDS) its Clusters name; it ACKs every response at once, or NACKs one when told
//! to, as Envoy does with a config it rejects. What it received is published on a `watch`
//! channel, with the time each EDS answer was ACKed, so the bench can wait for the last of
//! a thousand streams to have a change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context as _;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use ferrogate_xds_server::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// Which variant of the protocol a simulated proxy speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Delta,
    Sotw,
}

/// What a simulated proxy has received so far.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Responses received, by type URL.
    pub responses: BTreeMap<String, u64>,
    /// Ports of the endpoints of each ClusterLoadAssignment it holds.
    pub endpoints: BTreeMap<String, BTreeSet<u32>>,
    /// When it ACKed the last EDS response.
    pub eds_acked_at: Option<Instant>,
    /// NACKs it sent.
    pub nacks: u64,
    /// Why the stream ended, if it did.
    pub ended: Option<String>,
}

impl Seen {
    /// Whether some endpoint of some ClusterLoadAssignment listens on `port`.
    pub fn has_endpoint_port(&self, port: u32) -> bool {
        self.endpoints.values().any(|ports| ports.contains(&port))
    }

    /// Responses of every type.
    pub fn total_responses(&self) -> u64 {
        self.responses.values().sum()
    }
}

/// One simulated proxy of a Gateway.
pub struct SimProxy {
    pub gateway: String,
    pub seen: watch::Receiver<Seen>,
    /// NACK the next response of this type (the proxy rejects a config once).
    nack_next: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl SimProxy {
    /// Connects to the ADS server at `addr` as proxy `node_id` of `gateway`
    /// (`<namespace>/<name>`, Envoy's `node.cluster`).
    pub async fn connect(
        addr: SocketAddr,
        gateway: &str,
        node_id: &str,
        protocol: Protocol,
    ) -> anyhow::Result<Self> {
        let client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .with_context(|| format!("xDS connect to {addr}"))?
            // A RouteConfiguration of 1000 routes is far below this; Envoy's own limit is
            // larger still.
            .max_decoding_message_size(64 * 1024 * 1024);
        let node = Node {
            id: node_id.to_string(),
            cluster: gateway.to_string(),
            ..Default::default()
        };
        let (seen_tx, seen) = watch::channel(Seen::default());
        let (nack_next, nack_rx) = mpsc::unbounded_channel();
        let task = match protocol {
            Protocol::Delta => tokio::spawn(delta(client, node, seen_tx, nack_rx)),
            Protocol::Sotw => tokio::spawn(sotw(client, node, seen_tx, nack_rx)),
        };
        Ok(Self {
            gateway: gateway.to_string(),
            seen,
            nack_next,
            task,
        })
    }

    /// The proxy rejects the next response of `type_url` it gets (and ACKs the ones after).
    pub fn nack_next(&self, type_url: &str) {
        let _ = self.nack_next.send(type_url.to_string());
    }
}

impl Drop for SimProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a response's resources ask the proxy to subscribe to next, and what it now holds.
#[derive(Default)]
struct Decoded {
    /// EDS names of EDS clusters (for CDS), route names (for LDS).
    wants: BTreeSet<String>,
    /// Endpoint ports by ClusterLoadAssignment (for EDS).
    endpoints: BTreeMap<String, BTreeSet<u32>>,
}

fn decode(type_url: &str, resources: &[Any]) -> anyhow::Result<Decoded> {
    let mut out = Decoded::default();
    for any in resources {
        let bytes = any.value.as_slice();
        match type_url {
            CLUSTER_TYPE => out.wants.extend(eds_name(Cluster::decode(bytes)?)),
            LISTENER_TYPE => out.wants.extend(route_names(&Listener::decode(bytes)?)?),
            ENDPOINT_TYPE => {
                let cla = ClusterLoadAssignment::decode(bytes)?;
                let ports = endpoint_ports(&cla);
                out.endpoints.insert(cla.cluster_name, ports);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The EDS name of an EDS cluster (its `service_name`, else its own name).
fn eds_name(cluster: Cluster) -> Option<String> {
    let eds = Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
    (cluster.cluster_discovery_type == eds).then(|| {
        cluster
            .eds_cluster_config
            .map(|e| e.service_name)
            .filter(|n| !n.is_empty())
            .unwrap_or(cluster.name)
    })
}

/// The RouteConfigurations a Listener's HTTP connection managers name.
fn route_names(listener: &Listener) -> anyhow::Result<Vec<String>> {
    let chains = listener
        .filter_chains
        .iter()
        .chain(listener.default_filter_chain.as_ref());
    let mut names = Vec::new();
    for filter in chains.flat_map(|c| &c.filters) {
        if let Some(ConfigType::TypedConfig(tc)) = &filter.config_type
            && tc.type_url.ends_with(".HttpConnectionManager")
            && let Some(RouteSpecifier::Rds(rds)) =
                HttpConnectionManager::decode(tc.value.as_slice())?.route_specifier
        {
            names.push(rds.route_config_name);
        }
    }
    Ok(names)
}

/// The ports of a ClusterLoadAssignment's socket-address endpoints.
fn endpoint_ports(cla: &ClusterLoadAssignment) -> BTreeSet<u32> {
    let addresses = cla
        .endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(HostIdentifier::Endpoint(ep)) => ep.address.as_ref(),
            _ => None,
        });
    addresses
        .filter_map(|a| match &a.address {
            Some(AddressKind::SocketAddress(s)) => match s.port_specifier {
                Some(PortSpecifier::PortValue(port)) => Some(port),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The type whose subscription a response of `type_url` feeds.
fn follow_up(type_url: &str) -> Option<&'static str> {
    match type_url {
        CLUSTER_TYPE => Some(ENDPOINT_TYPE),
        LISTENER_TYPE => Some(ROUTE_TYPE),
        _ => None,
    }
}

fn nack_status(type_url: &str) -> RpcStatus {
    RpcStatus {
        code: 3,
        message: format!("simulated proxy rejects this {type_url}"),
        details: vec![],
    }
}

/// What an EDS response says about the endpoints the proxy holds.
enum EdsUpdate<'a> {
    /// State-of-the-world: the response holds every subscribed resource.
    Whole,
    /// Delta: the response's resources replace theirs, and these names are gone.
    Delta { removed: &'a [String] },
}

/// Records one received response in `seen` (for an accepted EDS one, its endpoints and
/// when it was ACKed).
fn record(
    seen: &watch::Sender<Seen>,
    type_url: &str,
    endpoints: BTreeMap<String, BTreeSet<u32>>,
    update: EdsUpdate<'_>,
    nacked: bool,
) {
    seen.send_modify(|s| {
        *s.responses.entry(type_url.to_string()).or_default() += 1;
        if nacked {
            s.nacks += 1;
            return;
        }
        if type_url == ENDPOINT_TYPE {
            match update {
                EdsUpdate::Whole => s.endpoints = endpoints,
                EdsUpdate::Delta { removed } => {
                    for name in removed {
                        s.endpoints.remove(name);
                    }
                    s.endpoints.extend(endpoints);
                }
            }
            s.eds_acked_at = Some(Instant::now());
        }
    });
}

fn end(seen: &watch::Sender<Seen>, why: String) {
    seen.send_modify(|s| s.ended = Some(why));
}

async fn delta(
    mut client: AggregatedDiscoveryServiceClient<tonic::transport::Channel>,
    node: Node,
    seen: watch::Sender<Seen>,
    mut nack_rx: mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::channel::<DeltaDiscoveryRequest>(64);
    // Wildcard subscriptions first, as Envoy starts: Clusters, then Listeners.
    for (i, type_url) in [CLUSTER_TYPE, LISTENER_TYPE].into_iter().enumerate() {
        let _ = tx
            .send(DeltaDiscoveryRequest {
                node: (i == 0).then(|| node.clone()),
                type_url: type_url.into(),
                ..Default::default()
            })
            .await;
    }
    let mut responses = match client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(e) => return end(&seen, format!("open: {e}")),
    };
    let mut subscribed: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut nack: BTreeSet<String> = BTreeSet::new();
    loop {
        let response: DeltaDiscoveryResponse = match responses.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return end(&seen, "server closed the stream".into()),
            Err(e) => return end(&seen, format!("stream error: {e}")),
        };
        while let Ok(t) = nack_rx.try_recv() {
            nack.insert(t);
        }
        let type_url = response.type_url.as_str();
        let resources: Vec<Any> = response
            .resources
            .iter()
            .filter_map(|r| r.resource.clone())
            .collect();
        let mut decoded = match decode(type_url, &resources) {
            Ok(d) => d,
            Err(e) => return end(&seen, format!("undecodable {type_url}: {e}")),
        };
        let nacked = nack.remove(type_url);
        let ack = DeltaDiscoveryRequest {
            type_url: type_url.to_string(),
            response_nonce: response.nonce.clone(),
            error_detail: nacked.then(|| nack_status(type_url)),
            ..Default::default()
        };
        if tx.send(ack).await.is_err() {
            return end(&seen, "request channel closed".into());
        }
        let removed = &response.removed_resources;
        let endpoints = std::mem::take(&mut decoded.endpoints);
        record(
            &seen,
            type_url,
            endpoints,
            EdsUpdate::Delta { removed },
            nacked,
        );
        if let (Some(next), false) = (follow_up(type_url), nacked) {
            let have = subscribed.entry(next).or_default();
            let new: Vec<String> = decoded.wants.difference(have).cloned().collect();
            if !new.is_empty() {
                have.extend(new.iter().cloned());
                let subscribe = DeltaDiscoveryRequest {
                    type_url: next.into(),
                    resource_names_subscribe: new,
                    ..Default::default()
                };
                if tx.send(subscribe).await.is_err() {
                    return end(&seen, "request channel closed".into());
                }
            }
        }
    }
}

async fn sotw(
    mut client: AggregatedDiscoveryServiceClient<tonic::transport::Channel>,
    node: Node,
    seen: watch::Sender<Seen>,
    mut nack_rx: mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::channel::<DiscoveryRequest>(64);
    for (i, type_url) in [CLUSTER_TYPE, LISTENER_TYPE].into_iter().enumerate() {
        let _ = tx
            .send(DiscoveryRequest {
                node: (i == 0).then(|| node.clone()),
                type_url: type_url.into(),
                ..Default::default()
            })
            .await;
    }
    let mut responses = match client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(e) => return end(&seen, format!("open: {e}")),
    };
    // Per type: the names asked for and the version last accepted (a NACK repeats it).
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut accepted: BTreeMap<String, String> = BTreeMap::new();
    // Per type: the nonce of the last response (a changed subscription carries it, as
    // Envoy's does, or the server takes it for an answer to an older response).
    let mut nonces: BTreeMap<String, String> = BTreeMap::new();
    let mut nack: BTreeSet<String> = BTreeSet::new();
    loop {
        let response: DiscoveryResponse = match responses.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return end(&seen, "server closed the stream".into()),
            Err(e) => return end(&seen, format!("stream error: {e}")),
        };
        while let Ok(t) = nack_rx.try_recv() {
            nack.insert(t);
        }
        let type_url = response.type_url.clone();
        let mut decoded = match decode(&type_url, &response.resources) {
            Ok(d) => d,
            Err(e) => return end(&seen, format!("undecodable {type_url}: {e}")),
        };
        let nacked = nack.remove(&type_url);
        nonces.insert(type_url.clone(), response.nonce.clone());
        let version = if nacked {
            accepted.get(&type_url).cloned().unwrap_or_default()
        } else {
            accepted.insert(type_url.clone(), response.version_info.clone());
            response.version_info.clone()
        };
        let ack = DiscoveryRequest {
            type_url: type_url.clone(),
            version_info: version,
            response_nonce: response.nonce.clone(),
            resource_names: names.get(&type_url).cloned().unwrap_or_default(),
            error_detail: nacked.then(|| nack_status(&type_url)),
            ..Default::default()
        };
        if tx.send(ack).await.is_err() {
            return end(&seen, "request channel closed".into());
        }
        let endpoints = std::mem::take(&mut decoded.endpoints);
        record(&seen, &type_url, endpoints, EdsUpdate::Whole, nacked);
        if let (Some(next), false) = (follow_up(&type_url), nacked) {
            let want: Vec<String> = decoded.wants.into_iter().collect();
            if names.get(next) != Some(&want) {
                names.insert(next.to_string(), want.clone());
                let request = DiscoveryRequest {
                    type_url: next.into(),
                    version_info: accepted.get(next).cloned().unwrap_or_default(),
                    response_nonce: nonces.get(next).cloned().unwrap_or_default(),
                    resource_names: want,
                    ..Default::default()
                };
                if tx.send(request).await.is_err() {
                    return end(&seen, "request channel closed".into());
                }
            }
        }
    }
}
