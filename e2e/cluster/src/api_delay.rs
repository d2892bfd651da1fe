//! A slow API server on purpose: a TLS reverse proxy in front of kube-apiserver that holds
//! the start of every request for a fixed delay before forwarding it.
//!
//! It answers the question "does a slow API server slow down xDS?": a controller whose
//! kubeconfig points here (see [`ApiDelayProxy::kubeconfig_through`]) pays the delay on every
//! list, watch, status write and apply, while the events of a watch already open still flow
//! through as they come, since only the start of a request is held and response bodies are
//! streamed, never buffered. The caller's `Authorization` header passes through unchanged,
//! so the real server still authenticates and authorizes the caller itself.
//!
//! Each client connection gets its own upstream connection (HTTP/1.1 is one request at a
//! time per connection, so the pair needs no pool). Protocol upgrades (exec, port-forward)
//! are not forwarded: the controller makes none.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Headers that describe one connection, not the message: never copied across the proxy.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What went through the proxy so far; every request counted here was delayed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    /// Every request.
    pub requests: u64,
    /// Requests that change something (any method but GET and HEAD): status writes,
    /// applies, Lease renewals, Events.
    pub writes: u64,
    /// Watch requests (`watch=true` or `watch=1` in the query).
    pub watches: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    writes: AtomicU64,
    watches: AtomicU64,
}

impl Counters {
    fn record<B>(&self, request: &Request<B>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !matches!(request.method().as_str(), "GET" | "HEAD") {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        let query = request.uri().query().unwrap_or("");
        if query
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
        {
            self.watches.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> ProxyCounts {
        ProxyCounts {
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            watches: self.watches.load(Ordering::Relaxed),
        }
    }
}

/// A running delaying proxy. Dropping it stops it and every connection through it.
pub struct ApiDelayProxy {
    addr: SocketAddr,
    ca_pem: String,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiDelayProxy {
    /// Listens on 127.0.0.1 (a free port) with a certificate of its own CA and forwards to
    /// `upstream` (`https://host:port`, trusted through `upstream_ca_pem`), each request
    /// `delay` after it arrived.
    pub async fn start(
        upstream: &str,
        upstream_ca_pem: &str,
        delay: Duration,
    ) -> anyhow::Result<Self> {
        let upstream = Upstream::new(upstream, upstream_ca_pem).await?;
        let (ca_pem, server_config) = serving_tls()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot listen on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            upstream,
            delay,
            counters: counters.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, shared));
        Ok(Self {
            addr,
            ca_pem,
            counters,
            task,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA of the proxy's serving certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The requests delayed so far.
    pub fn counts(&self) -> ProxyCounts {
        self.counters.snapshot()
    }

    /// Writes to `to` the kubeconfig at `from` with every cluster pointed at this proxy and
    /// trusting its CA; users (tokens) stay as they are, so the caller keeps its identity.
    pub fn kubeconfig_through(&self, from: &Path, to: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(from)
            .with_context(|| format!("cannot read kubeconfig {}", from.display()))?;
        let mut config: serde_json::Value = yaml_serde::from_str(&text)
            .with_context(|| format!("kubeconfig {} is not YAML", from.display()))?;
        let clusters = config
            .get_mut("clusters")
            .and_then(|c| c.as_array_mut())
            .with_context(|| format!("kubeconfig {} has no clusters", from.display()))?;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        for entry in clusters {
            let cluster = entry
                .get_mut("cluster")
                .and_then(|c| c.as_object_mut())
                .with_context(|| format!("a cluster of {} has no `cluster`", from.display()))?;
            cluster.remove("certificate-authority");
            cluster.insert("server".into(), self.server().into());
            cluster.insert("certificate-authority-data".into(), ca.clone().into());
        }
        std::fs::write(to, yaml_serde::to_string(&config)?)
            .with_context(|| format!("cannot write kubeconfig {}", to.display()))?;
        Ok(())
    }
}

impl Drop for ApiDelayProxy {
    fn drop(&mut self) {
        // The accept loop owns the connection tasks (a JoinSet), so they end with it.
        self.task.abort();
    }
}

/// A CA and a certificate for 127.0.0.1 and `localhost` signed by it; returns the CA's PEM and
/// the server configuration. Clients verify a chain to a CA (a self-signed leaf as its own
/// trust anchor is refused by webpki), hence the two certificates.
fn serving_tls() -> anyhow::Result<(String, rustls::ServerConfig)> {
    let (ca_pem, issuer) = crate::pki::ca("ferrogate-api-delay-proxy-ca")?;
    let key = KeyPair::generate().context("cannot generate the proxy's key")?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?
        .signed_by(&key, &issuer)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    // HTTP/1.1 only: its one-request-at-a-time connections map onto upstream ones 1:1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca_pem, config))
}

/// The real API server: where it is and how to reach it over TLS.
struct Upstream {
    addr: SocketAddr,
    authority: HeaderValue,
    server_name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl Upstream {
    async fn new(server: &str, ca_pem: &str) -> anyhow::Result<Self> {
        let uri: Uri = server
            .parse()
            .with_context(|| format!("upstream {server:?} is not a URL"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("https"),
            "upstream {server} is not https"
        );
        let host = uri.host().context("upstream has no host")?.to_string();
        let port = uri.port_u16().unwrap_or(443);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.context("the upstream CA is not PEM")?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            addr,
            authority: HeaderValue::from_str(&format!("{host}:{port}"))?,
            server_name: ServerName::try_from(host)?,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Incoming>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("cannot connect to the API server at {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .context("TLS handshake with the API server")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("api-delay proxy: upstream connection ended: {e}");
            }
        });
        Ok(sender)
    }
}

/// What every connection shares.
struct Shared {
    upstream: Upstream,
    delay: Duration,
    counters: Arc<Counters>,
}

/// One client connection's upstream connection, opened at its first request.
type Slot = Mutex<Option<SendRequest<Incoming>>>;

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let (acceptor, shared) = (acceptor.clone(), shared.clone());
                    connections.spawn(serve_connection(tcp, acceptor, shared));
                }
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!("api-delay proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow with every one ever served.
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(e) => {
            tracing::debug!("api-delay proxy: TLS handshake failed: {e}");
            return;
        }
    };
    let slot: Arc<Slot> = Arc::new(Mutex::new(None));
    let service = hyper::service::service_fn(move |request| {
        let (shared, slot) = (shared.clone(), slot.clone());
        async move { Ok::<_, Infallible>(shared.forward(request, &slot).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!("api-delay proxy: client connection ended: {e}");
    }
}

impl Shared {
    /// Counts `request`, holds it for the delay, then forwards it; the response's body is
    /// passed on as it arrives.
    async fn forward(&self, request: Request<Incoming>, slot: &Slot) -> Response<ProxyBody> {
        self.counters.record(&request);
        tokio::time::sleep(self.delay).await;
        match self.send(request, slot).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => {
                tracing::warn!("api-delay proxy: {e:#}");
                let mut response = Response::new(
                    Full::new(Bytes::from(format!("api-delay proxy: {e:#}\n")))
                        .map_err(|never| match never {})
                        .boxed(),
                );
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
            }
        }
    }

    async fn send(
        &self,
        request: Request<Incoming>,
        slot: &Slot,
    ) -> anyhow::Result<Response<Incoming>> {
        let (mut parts, body) = request.into_parts();
        // Origin form on the upstream connection, with the upstream's own authority.
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        parts.uri = path.parse()?;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(HOST, self.upstream.authority.clone());
        let request = Request::from_parts(parts, body);

        let mut slot = slot.lock().await;
        let reusable = match slot.as_mut() {
            // A kept-alive connection the server closed meanwhile is replaced.
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            *slot = Some(self.upstream.connect().await?);
        }
        let sender = slot
            .as_mut()
            .context("an upstream connection was just opened")?;
        sender
            .ready()
            .await
            .context("upstream connection not ready")?;
        sender
            .send_request(request)
            .await
            .context("forwarding to the API server")
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_kind() {
        let counters = Counters::default();
        let get = |uri: &str| Request::get(uri).body(()).unwrap();
        counters.record(&get("/api/v1/namespaces"));
        counters.record(&get("/apis/x/v1/things?watch=true&resourceVersion=5"));
        counters.record(&get("/apis/x/v1/things?watch=1"));
        counters.record(&get("/apis/x/v1/things?watchy=true"));
        counters.record(
            &Request::patch("/apis/x/v1/namespaces/a/things/b/status")
                .body(())
                .unwrap(),
        );
        assert_eq!(
            counters.snapshot(),
            ProxyCounts {
                requests: 5,
                writes: 1,
                watches: 2
            }
        );
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["authorization"]);
    }
}
