//! The per-stream driver shared by SotW and delta, and `serve` (the gRPC service in front of
//! it is [`crate::grpc_service`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::Node;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Status, Streaming};

use crate::Error;
use crate::acks::NackRecord;
use crate::cache::{GatewayEntry, SnapshotCache};
use crate::grpc_service::AdsService;
use crate::identity::{self, Rejection};
use crate::snapshot::Snapshot;
use crate::tls::{ServerCert, XdsTls};

/// Responses buffered per stream before the stream task waits for the client to read.
const STREAM_BUFFER: usize = 16;
/// Upper bound on distinct type URLs one stream may subscribe to.
pub(crate) const MAX_TYPES_PER_STREAM: usize = 32;
/// Longest accepted Gateway id (`<namespace>/<name>`): a 63-char namespace, `/`, a 253-char name.
const MAX_GATEWAY_ID_LEN: usize = 63 + 1 + 253;

/// Derives the Gateway a stream belongs to from its Envoy node.
///
/// Together with [`identity::authorize`] this decides which snapshot a client may see:
/// `node.cluster` (which must be `<namespace>/<name>`) names the Gateway, and with mutual
/// TLS on, the client certificate must name the same one.
pub(crate) fn gateway_of(node: Option<&Node>) -> Result<String, Status> {
    let node =
        node.ok_or_else(|| Status::invalid_argument("the first request must carry a node"))?;
    let id = node.cluster.as_str();
    let valid_part = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    match id.split_once('/') {
        Some((ns, name))
            if id.len() <= MAX_GATEWAY_ID_LEN && valid_part(ns) && valid_part(name) =>
        {
            Ok(id.to_string())
        }
        _ => Err(Status::invalid_argument(format!(
            "node.cluster must name the Gateway as <namespace>/<name>, got {id:?}"
        ))),
    }
}

/// What one stream knows about itself; handed to the protocol state machines.
pub(crate) struct Session {
    pub(crate) gateway: String,
    pub(crate) node_id: String,
    entry: Arc<GatewayEntry>,
    cache: SnapshotCache,
    stream_id: u64,
    nonces: u64,
}

impl Session {
    /// A nonce unique per response on this server.
    pub(crate) fn next_nonce(&mut self) -> String {
        self.nonces += 1;
        format!("{}-{}", self.stream_id, self.nonces)
    }

    pub(crate) fn ack(&self, type_url: &str, version: &str) {
        tracing::debug!(gateway = %self.gateway, node = %self.node_id, type_url, version, "xDS ACK");
        let done = self
            .entry
            .propagation
            .acked(self.stream_id, type_url, version, Instant::now());
        self.cache.report(&self.gateway, done);
        let current = self
            .entry
            .snapshot
            .borrow()
            .as_ref()
            .is_some_and(|s| s.version_or_empty(type_url) == version);
        self.entry.counters.record_ack(type_url, version, current);
        self.cache.totals().record_ack(type_url);
    }

    /// After this stream handled `snapshot`: the types it sent nothing of need no ACK from
    /// it for the change to count as propagated.
    pub(crate) fn settle_unsent<'a>(
        &self,
        snapshot: &Snapshot,
        sent: impl Iterator<Item = &'a str>,
    ) {
        let sent: std::collections::BTreeSet<&str> = sent.collect();
        let now = Instant::now();
        let done: Vec<_> = snapshot
            .type_urls()
            .filter(|t| !sent.contains(t))
            .filter_map(|t| {
                self.entry
                    .propagation
                    .settled(self.stream_id, t, snapshot.version_or_empty(t), now)
            })
            .collect();
        self.cache.report(&self.gateway, done);
    }

    pub(crate) fn nack(&self, type_url: &str, rejected: &str, accepted: &str, message: &str) {
        tracing::warn!(
            gateway = %self.gateway, node = %self.node_id, type_url,
            rejected_version = rejected, accepted_version = accepted, error = message,
            "Envoy rejected xDS configuration (NACK); it keeps its last accepted config"
        );
        self.entry.counters.record_nack(NackRecord {
            type_url: type_url.to_string(),
            rejected_version: rejected.to_string(),
            accepted_version: accepted.to_string(),
            message: message.to_string(),
            node_id: self.node_id.clone(),
        });
        self.cache.totals().record_nack(type_url);
    }
}

/// A variant of the ADS protocol (state of the world or delta) as a per-stream state machine.
pub(crate) trait Protocol: Send + 'static {
    type Req: Send + 'static;
    type Resp: prost::Message + Send + 'static;

    fn node(req: &Self::Req) -> Option<&Node>;
    fn type_url(resp: &Self::Resp) -> &str;
    /// Handles one request; pushes the responses to send into `out`.
    fn on_request(
        &mut self,
        req: Self::Req,
        snapshot: Option<&Snapshot>,
        session: &mut Session,
        out: &mut Vec<Self::Resp>,
    ) -> Result<(), Status>;
    /// Handles a new snapshot of the stream's Gateway; pushes the responses into `out`.
    fn on_snapshot(
        &mut self,
        snapshot: &Snapshot,
        session: &mut Session,
        out: &mut Vec<Self::Resp>,
    );
}

/// Keeps a stream registered with its Gateway entry; unregisters on drop.
struct Subscription {
    cache: SnapshotCache,
    entry: Arc<GatewayEntry>,
    rx: Option<watch::Receiver<Option<Arc<Snapshot>>>>,
    gateway: String,
    stream_id: u64,
}

impl Subscription {
    fn new(cache: &SnapshotCache, gateway: &str, stream_id: u64) -> Self {
        let entry = cache.entry(gateway);
        entry.counters.streams.fetch_add(1, Ordering::Relaxed);
        entry.propagation.join(stream_id);
        let rx = Some(entry.snapshot.subscribe());
        Self {
            cache: cache.clone(),
            entry,
            rx,
            gateway: gateway.to_string(),
            stream_id,
        }
    }

    fn rx(&mut self) -> &mut watch::Receiver<Option<Arc<Snapshot>>> {
        self.rx.as_mut().expect("receiver lives until drop")
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.rx = None;
        self.entry.counters.streams.fetch_sub(1, Ordering::Relaxed);
        let done = self.entry.propagation.leave(self.stream_id, Instant::now());
        self.cache.report(&self.gateway, done);
        self.cache.drop_if_idle(&self.gateway);
    }
}

/// Counts and logs a stream refused for `reason`, and ends it with `status`.
async fn reject<T>(
    cache: &SnapshotCache,
    tx: &mpsc::Sender<Result<T, Status>>,
    stream_id: u64,
    (reason, status): (Rejection, Status),
) {
    tracing::warn!(
        stream_id,
        reason = reason.as_str(),
        error = status.message(),
        "xDS stream refused"
    );
    cache.totals().record_rejected_stream(reason.as_str());
    let _ = tx.send(Err(status)).await;
}

/// What to answer a request that could not be decoded: tonic reports a message over the
/// size limit as `OUT_OF_RANGE` (or `RESOURCE_EXHAUSTED`) and bytes that are no protobuf of
/// the request type as `INTERNAL`. Ending the stream quietly would show the client an `OK`
/// status for its own mistake; it gets `RESOURCE_EXHAUSTED` or `INVALID_ARGUMENT` instead,
/// and the refusal is counted. `None` for anything else (the client went away, a reset).
fn bad_request(status: &Status) -> Option<(Rejection, Status)> {
    let message = status.message();
    match status.code() {
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => Some((
            Rejection::OversizedMessage,
            Status::resource_exhausted(format!("xDS request too large: {message}")),
        )),
        tonic::Code::Internal if message.contains("decode") => Some((
            Rejection::MalformedMessage,
            Status::invalid_argument(format!("malformed xDS request: {message}")),
        )),
        _ => None,
    }
}

/// Runs one ADS stream to its end: reads the first request to learn the Gateway, checks that
/// the client's `identity` (the Gateway its certificate names; `None` without TLS) allows
/// it, then serves requests and snapshot changes in turn until the client leaves or the
/// server shuts down.
async fn drive<P, S>(
    mut proto: P,
    mut requests: S,
    tx: mpsc::Sender<Result<P::Resp, Status>>,
    cache: SnapshotCache,
    shutdown: CancellationToken,
    stream_id: u64,
    identity: Option<String>,
) where
    P: Protocol,
    S: Stream<Item = Result<P::Req, Status>> + Unpin + Send,
{
    let first = tokio::select! {
        _ = shutdown.cancelled() => return,
        m = requests.next() => m,
    };
    let first = match first {
        Some(Ok(req)) => req,
        Some(Err(status)) => {
            match bad_request(&status) {
                Some(rejection) => reject(&cache, &tx, stream_id, rejection).await,
                None => {
                    tracing::debug!(stream_id, %status, "xDS stream failed before its first request")
                }
            }
            return;
        }
        None => return,
    };
    let gateway = match gateway_of(P::node(&first)) {
        Ok(g) => g,
        Err(status) => {
            tracing::warn!(stream_id, error = status.message(), "xDS stream rejected");
            let _ = tx.send(Err(status)).await;
            return;
        }
    };
    if let Err(rejection) = identity::authorize(identity.as_deref(), &gateway) {
        reject(&cache, &tx, stream_id, rejection).await;
        return;
    }
    let node_id = P::node(&first).map(|n| n.id.clone()).unwrap_or_default();
    let mut sub = Subscription::new(&cache, &gateway, stream_id);
    let mut session = Session {
        gateway: gateway.clone(),
        node_id,
        entry: sub.entry.clone(),
        cache: cache.clone(),
        stream_id,
        nonces: 0,
    };
    tracing::info!(stream_id, gateway = %session.gateway, node = %session.node_id, "xDS stream opened");
    let mut snapshot = sub.rx().borrow_and_update().clone();
    let mut out = Vec::new();
    let mut next = Some(first);
    loop {
        if let Some(req) = next.take() {
            // A stream stays with the Gateway of its first request: a later node naming
            // another one is an attempt to switch, refused like a wrong identity.
            if let Some(node) = P::node(&req)
                && !node.cluster.is_empty()
                && node.cluster != gateway
            {
                let status = Status::permission_denied(format!(
                    "node.cluster changed during the stream from {gateway} to {}",
                    node.cluster
                ));
                reject(&cache, &tx, stream_id, (Rejection::NodeChanged, status)).await;
                return;
            }
            let result = proto.on_request(req, snapshot.as_deref(), &mut session, &mut out);
            if let Err(status) = result {
                tracing::warn!(stream_id, gateway = %gateway, error = status.message(), "xDS stream closed");
                let _ = tx.send(Err(status)).await;
                return;
            }
        }
        for resp in out.drain(..) {
            cache
                .totals()
                .record_push(P::type_url(&resp), prost::Message::encoded_len(&resp));
            if tx.send(Ok(resp)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let _ = tx.send(Err(Status::unavailable("xDS server is shutting down"))).await;
                return;
            }
            m = requests.next() => match m {
                Some(Ok(req)) => next = Some(req),
                Some(Err(status)) => {
                    match bad_request(&status) {
                        Some(rejection) => reject(&cache, &tx, stream_id, rejection).await,
                        None => tracing::debug!(stream_id, gateway = %gateway, %status, "xDS stream ended with an error"),
                    }
                    return;
                }
                None => {
                    tracing::info!(stream_id, gateway = %gateway, "xDS stream closed by client");
                    return;
                }
            },
            changed = sub.rx().changed() => {
                if changed.is_err() {
                    return;
                }
                snapshot = sub.rx().borrow_and_update().clone();
                if let Some(s) = snapshot.as_deref() {
                    proto.on_snapshot(s, &mut session, &mut out);
                    session.settle_unsent(s, out.iter().map(P::type_url));
                }
            }
        }
    }
}

/// The Aggregated Discovery Service: serves each Envoy the snapshot of its own Gateway,
/// state of the world and delta.
#[derive(Debug, Clone)]
pub struct XdsServer {
    cache: SnapshotCache,
    shutdown: CancellationToken,
    next_stream_id: Arc<AtomicU64>,
    /// Serve a stream only the Gateway its client certificate names (mutual TLS).
    require_identity: bool,
}

impl XdsServer {
    /// A server reading from `cache`.
    pub fn new(cache: SnapshotCache) -> Self {
        Self {
            cache,
            shutdown: CancellationToken::new(),
            next_stream_id: Arc::new(AtomicU64::new(0)),
            require_identity: false,
        }
    }

    /// Requires every stream to come with a client certificate naming the Gateway its
    /// `node.cluster` asks for (see [`Rejection`]). Only meaningful behind a TLS transport
    /// that requires client certificates, as [`serve_tls`] sets up.
    pub fn require_client_identity(mut self) -> Self {
        self.require_identity = true;
        self
    }

    /// Ends every open stream (with `UNAVAILABLE`, so Envoy reconnects elsewhere) and refuses
    /// new ones; used for graceful shutdown.
    pub fn close_streams(&self) {
        self.shutdown.cancel();
    }

    /// The service to add to a `tonic::transport::Server`.
    pub fn into_service(self) -> AdsService {
        AdsService::new(self)
    }

    /// Starts the stream task for `request`. With identities required, a client without a
    /// usable certificate is refused before anything is read.
    pub(crate) fn spawn<P>(
        &self,
        proto: P,
        request: Request<Streaming<P::Req>>,
    ) -> Result<ReceiverStream<Result<P::Resp, Status>>, Status>
    where
        P: Protocol,
        Streaming<P::Req>: Stream<Item = Result<P::Req, Status>>,
    {
        if self.shutdown.is_cancelled() {
            return Err(Status::unavailable("xDS server is shutting down"));
        }
        let stream_id = self.next_stream_id.fetch_add(1, Ordering::Relaxed) + 1;
        let identity = if self.require_identity {
            let certs = request.peer_certs();
            match identity::gateway_of_peer(certs.as_deref().map(Vec::as_slice)) {
                Ok(gateway) => Some(gateway),
                Err((reason, status)) => {
                    tracing::warn!(
                        stream_id,
                        reason = reason.as_str(),
                        error = status.message(),
                        "xDS stream refused"
                    );
                    self.cache.totals().record_rejected_stream(reason.as_str());
                    return Err(status);
                }
            }
        } else {
            None
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(drive(
            proto,
            request.into_inner(),
            tx,
            self.cache.clone(),
            self.shutdown.clone(),
            stream_id,
            identity,
        ));
        Ok(ReceiverStream::new(rx))
    }
}

/// Serves ADS in plaintext on `listener` from `cache` until `shutdown` completes; then
/// closes every stream and returns once the connections are done. Any client may ask for
/// any Gateway: for a trusted network only (standalone mode's loopback); see [`serve_tls`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    cache: SnapshotCache,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_with(listener, cache, None, shutdown).await
}

/// Serves ADS over mutual TLS: the server presents `tls`'s certificate, every client must
/// present a certificate signed by `tls`'s client CA (the handshake fails otherwise), and a
/// stream gets only the snapshot of the Gateway its certificate names. Otherwise as
/// [`serve`]. A bad certificate, key or CA is an [`Error::TlsMaterial`] before anything is served.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    cache: SnapshotCache,
    tls: XdsTls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let cert = tls.server_cert()?;
    serve_tls_with_cert(listener, cache, tls, cert, shutdown).await
}

/// As [`serve_tls`], presenting `cert`, which the caller keeps to renew the server
/// certificate without a restart ([`ServerCert::replace`]); `tls`'s own certificate and key
/// are not used.
pub async fn serve_tls_with_cert(
    listener: tokio::net::TcpListener,
    cache: SnapshotCache,
    tls: XdsTls,
    cert: ServerCert,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let config = tls.server_config(&cert)?;
    let server = XdsServer::new(cache).require_client_identity();
    let incoming = crate::tls::incoming(listener, config);
    serve_incoming(server, incoming, shutdown).await
}

async fn serve_with(
    listener: tokio::net::TcpListener,
    cache: SnapshotCache,
    tls: Option<XdsTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    debug_assert!(tls.is_none(), "TLS goes through serve_tls_with_cert");
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    serve_incoming(XdsServer::new(cache), incoming, shutdown).await
}

async fn serve_incoming<IO, IE>(
    server: XdsServer,
    incoming: impl futures::Stream<Item = Result<IO, IE>> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error>
where
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IO::ConnectInfo: Clone + Send + Sync + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let closer = server.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("xDS server shutting down");
        closer.close_streams();
    };
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(server.into_service())
        .serve_with_incoming_shutdown(incoming, signal)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cluster: &str) -> Node {
        Node {
            id: "envoy-1".into(),
            cluster: cluster.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_namespace_slash_name_cluster_names_the_gateway() {
        assert_eq!(gateway_of(Some(&node("default/eg"))).unwrap(), "default/eg");
        assert_eq!(gateway_of(Some(&node("a-b/x.y-1"))).unwrap(), "a-b/x.y-1");
    }

    #[test]
    fn decode_failures_become_resource_exhausted_or_invalid_argument() {
        let too_large = Status::out_of_range(
            "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
        );
        let (reason, status) = bad_request(&too_large).unwrap();
        assert_eq!(
            (reason, status.code()),
            (Rejection::OversizedMessage, tonic::Code::ResourceExhausted)
        );
        let malformed = Status::internal("failed to decode Protobuf message: invalid wire type");
        let (reason, status) = bad_request(&malformed).unwrap();
        assert_eq!(
            (reason, status.code()),
            (Rejection::MalformedMessage, tonic::Code::InvalidArgument)
        );
        assert!(bad_request(&Status::cancelled("client went away")).is_none());
    }

    #[test]
    fn anything_else_is_an_invalid_argument() {
        for bad in ["", "eg", "/eg", "default/", "a/b/c", "Default/eg", "a b/c"] {
            let err = gateway_of(Some(&node(bad))).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
        assert_eq!(
            gateway_of(None).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
