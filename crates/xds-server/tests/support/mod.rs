//! A real ADS server on 127.0.0.1:0 and tonic clients speaking SotW and delta to it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use envoy_types::util::pack_any;
use ferrogate_xds_server::{
    CLUSTER_TYPE, ENDPOINT_TYPE, Error, LISTENER_TYPE, ROUTE_TYPE, Snapshot, SnapshotCache,
    XdsStats,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

/// How long a test waits for something that must happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be confident that nothing arrives.
pub const QUIET: Duration = Duration::from_millis(300);

pub struct Harness {
    pub cache: SnapshotCache,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub handle: JoinHandle<Result<(), Error>>,
}

impl Harness {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cache = SnapshotCache::new();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(ferrogate_xds_server::serve(
            listener,
            cache.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            cache,
            addr,
            stop: Some(stop),
            handle,
        }
    }

    pub async fn client(&self) -> AggregatedDiscoveryServiceClient<Channel> {
        AggregatedDiscoveryServiceClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Polls stats until `pred` holds.
    pub async fn stats_until(&self, pred: impl Fn(&XdsStats) -> bool) -> XdsStats {
        tokio::time::timeout(WAIT, async {
            loop {
                let s = self.cache.stats();
                if pred(&s) {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "stats never reached the expected state: {:?}",
                self.cache.stats()
            )
        })
    }
}

pub fn node(cluster: &str) -> Option<Node> {
    Some(Node {
        id: "envoy-test".into(),
        cluster: cluster.into(),
        ..Default::default()
    })
}

pub fn cluster(name: &str, rev: u32) -> (String, Any) {
    let c = Cluster {
        name: name.into(),
        alt_stat_name: format!("rev-{rev}"),
        ..Default::default()
    };
    (name.into(), pack_any(c))
}

pub fn endpoints(name: &str) -> (String, Any) {
    (
        name.into(),
        pack_any(ClusterLoadAssignment {
            cluster_name: name.into(),
            ..Default::default()
        }),
    )
}

pub fn listener(name: &str, rev: u32) -> (String, Any) {
    let l = Listener {
        name: name.into(),
        stat_prefix: format!("rev-{rev}"),
        ..Default::default()
    };
    (name.into(), pack_any(l))
}

pub fn route(name: &str) -> (String, Any) {
    (
        name.into(),
        pack_any(RouteConfiguration {
            name: name.into(),
            ..Default::default()
        }),
    )
}

/// A snapshot with the given clusters (name, revision) and one listener, endpoints per cluster
/// and one route configuration.
pub fn snapshot(clusters: &[(&str, u32)]) -> Snapshot {
    Snapshot::new(BTreeMap::from([
        (
            CLUSTER_TYPE.to_string(),
            clusters.iter().map(|(n, r)| cluster(n, *r)).collect(),
        ),
        (
            ENDPOINT_TYPE.to_string(),
            clusters.iter().map(|(n, _)| endpoints(n)).collect(),
        ),
        (LISTENER_TYPE.to_string(), vec![listener("http-80", 1)]),
        (ROUTE_TYPE.to_string(), vec![route("http-80")]),
    ]))
}

pub fn names_of(resources: &[Any]) -> Vec<String> {
    resources.iter().map(resource_name).collect()
}

pub fn resource_name(any: &Any) -> String {
    use prost::Message;
    match any.type_url.as_str() {
        CLUSTER_TYPE => Cluster::decode(any.value.as_slice()).unwrap().name,
        ENDPOINT_TYPE => {
            ClusterLoadAssignment::decode(any.value.as_slice())
                .unwrap()
                .cluster_name
        }
        LISTENER_TYPE => Listener::decode(any.value.as_slice()).unwrap().name,
        ROUTE_TYPE => {
            RouteConfiguration::decode(any.value.as_slice())
                .unwrap()
                .name
        }
        other => panic!("unexpected type {other}"),
    }
}

pub fn nack_status(message: &str) -> Option<RpcStatus> {
    Some(RpcStatus {
        code: 3,
        message: message.into(),
        ..Default::default()
    })
}

/// One SotW ADS stream.
pub struct SotwStream {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: Streaming<DiscoveryResponse>,
}

impl SotwStream {
    /// Opens a stream whose first request (carrying the node) is `first`.
    pub async fn open(h: &Harness, first: DiscoveryRequest) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(16);
        tx.send(first).await.unwrap();
        let rx = h
            .client()
            .await
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Self { tx, rx })
    }

    pub async fn send(&self, req: DiscoveryRequest) {
        self.tx.send(req).await.unwrap();
    }

    pub async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("no response in time")
            .expect("stream failed")
            .expect("stream ended")
    }

    pub async fn recv_status(&mut self) -> tonic::Status {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("no status in time")
            .expect_err("expected the stream to fail")
    }

    pub async fn assert_quiet(&mut self) {
        if let Ok(m) = tokio::time::timeout(QUIET, self.rx.message()).await {
            panic!("expected nothing, got {m:?}");
        }
    }

    /// ACKs `resp` with the same names as in `names`.
    pub async fn ack(&self, resp: &DiscoveryResponse, names: &[&str]) {
        self.send(sotw_req(
            &resp.type_url,
            names,
            &resp.version_info,
            &resp.nonce,
        ))
        .await;
    }
}

pub fn sotw_req(type_url: &str, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: type_url.into(),
        resource_names: names.iter().map(|s| s.to_string()).collect(),
        version_info: version.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

pub fn sotw_first(gateway: &str, type_url: &str, names: &[&str]) -> DiscoveryRequest {
    DiscoveryRequest {
        node: node(gateway),
        ..sotw_req(type_url, names, "", "")
    }
}

/// As [`sotw_first`], from the Envoy whose `node.id` is `node_id` (one of several replicas
/// of the Gateway).
pub fn sotw_first_as(
    gateway: &str,
    node_id: &str,
    type_url: &str,
    names: &[&str],
) -> DiscoveryRequest {
    let mut first = sotw_first(gateway, type_url, names);
    first.node.as_mut().unwrap().id = node_id.into();
    first
}

/// One delta ADS stream.
pub struct DeltaStream {
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    rx: Streaming<DeltaDiscoveryResponse>,
}

impl DeltaStream {
    pub async fn open(h: &Harness, first: DeltaDiscoveryRequest) -> Result<Self, tonic::Status> {
        let (tx, rx) = mpsc::channel(16);
        tx.send(first).await.unwrap();
        let rx = h
            .client()
            .await
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Self { tx, rx })
    }

    pub async fn send(&self, req: DeltaDiscoveryRequest) {
        self.tx.send(req).await.unwrap();
    }

    pub async fn recv(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("no response in time")
            .expect("stream failed")
            .expect("stream ended")
    }

    pub async fn recv_status(&mut self) -> tonic::Status {
        tokio::time::timeout(WAIT, self.rx.message())
            .await
            .expect("no status in time")
            .expect_err("expected the stream to fail")
    }

    pub async fn assert_quiet(&mut self) {
        if let Ok(m) = tokio::time::timeout(QUIET, self.rx.message()).await {
            panic!("expected nothing, got {m:?}");
        }
    }

    pub async fn ack(&self, resp: &DeltaDiscoveryResponse) {
        self.send(DeltaDiscoveryRequest {
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        })
        .await;
    }
}

pub fn delta_first(gateway: &str, type_url: &str, subscribe: &[&str]) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node: node(gateway),
        type_url: type_url.into(),
        resource_names_subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn delta_subscribe(type_url: &str, subscribe: &[&str]) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node: None,
        ..delta_first("", type_url, subscribe)
    }
}

pub fn delta_names(resp: &DeltaDiscoveryResponse) -> Vec<String> {
    resp.resources.iter().map(|r| r.name.clone()).collect()
}
