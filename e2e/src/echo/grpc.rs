//! gRPC role: service `gateway_api_conformance.echo_basic.grpcecho.GrpcEcho`
//! with unary `Echo` and `EchoTwo` (same answer) and `EchoThree` (declared but
//! Unimplemented), plaintext on `HTTP_PORT` and TLS on `HTTPS_PORT` when a
//! certificate and key (`TLS_SERVER_PRIV_KEY`) are set.
//!
//! The messages are written by hand with prost derives (field numbers as in
//! upstream's `grpcecho.proto`) and are public so clients can decode answers.
//! Serving uses hyper's HTTP/2 server with tonic's unary handling for framing,
//! compression and status trailers. Server reflection is not implemented.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::config::{EchoConfig, Identity};
use super::report::Ports;
use super::server::{accept_next, bind_tcp, cert_and_key, port_of};
use super::tls::{self, TlsFacts};

/// Fully qualified service name; methods are `/<SERVICE>/<Method>`.
pub const SERVICE: &str = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho";

#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct EchoRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoResponse {
    #[prost(message, optional, tag = "1")]
    pub assertions: Option<Assertions>,
    #[prost(message, optional, tag = "2")]
    pub request: Option<EchoRequest>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Assertions {
    /// e.g. `/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo`.
    #[prost(string, tag = "1")]
    pub fully_qualified_method: String,
    /// One entry per received metadata value.
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<Header>,
    #[prost(string, tag = "3")]
    pub authority: String,
    #[prost(message, optional, tag = "4")]
    pub context: Option<Context>,
    /// Only on the TLS port.
    #[prost(message, optional, tag = "5")]
    pub tls_assertions: Option<TlsAssertions>,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Header {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Context {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub ingress: String,
    #[prost(string, tag = "3")]
    pub service_name: String,
    #[prost(string, tag = "4")]
    pub pod: String,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct TlsAssertions {
    /// `TLSv1.2`, `TLSv1.3`.
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub negotiated_protocol: String,
    #[prost(string, tag = "3")]
    pub server_name: String,
    /// IANA name.
    #[prost(string, tag = "4")]
    pub cipher_suite: String,
    /// PEM of each client certificate.
    #[prost(string, repeated, tag = "5")]
    pub peer_certificates: Vec<String>,
}

/// Listeners of the gRPC role, bound but not yet serving.
pub(crate) struct BoundGrpc {
    plain: TcpListener,
    secure: Option<(TcpListener, TlsAcceptor)>,
    context: Context,
}

pub(crate) async fn bind(config: &EchoConfig) -> anyhow::Result<BoundGrpc> {
    let plain = bind_tcp(config, config.http_port, "gRPC plaintext (HTTP_PORT)").await?;
    let secure = match cert_and_key(&config.tls_server_cert, &config.tls_server_priv_key) {
        Some((cert, key)) => {
            // grpc-go's server credentials: no client certificates, ALPN h2.
            let acceptor = tls::acceptor(cert, key, None, &[b"h2"])?;
            let listener = bind_tcp(config, config.https_port, "gRPC TLS (HTTPS_PORT)").await?;
            Some((listener, acceptor))
        }
        None => None,
    };
    Ok(BoundGrpc {
        plain,
        secure,
        context: context_of(&config.identity),
    })
}

fn context_of(identity: &Identity) -> Context {
    Context {
        namespace: identity.namespace.clone(),
        ingress: identity.ingress.clone(),
        service_name: identity.service.clone(),
        pod: identity.pod.clone(),
    }
}

impl BoundGrpc {
    pub(crate) fn ports(&self) -> anyhow::Result<Ports> {
        Ok(Ports {
            grpc: Some(port_of(&self.plain)?),
            https: self.secure.as_ref().map(|(l, _)| port_of(l)).transpose()?,
            ..Ports::default()
        })
    }

    pub(crate) async fn serve(self) -> anyhow::Result<()> {
        let context = Arc::new(self.context);
        let plain = tokio::spawn(accept_loop(self.plain, None, context.clone()));
        if let Some((listener, acceptor)) = self.secure {
            tokio::spawn(accept_loop(listener, Some(acceptor), context));
        }
        plain.await?;
        Ok(())
    }
}

async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, context: Arc<Context>) {
    loop {
        let (stream, remote) = accept_next(&listener).await;
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let context = context.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, remote, None, context).await,
                Some(acceptor) => {
                    let Some(tls) = tls::handshake(&acceptor, stream).await else {
                        return;
                    };
                    let facts = TlsFacts::of(tls.get_ref().1);
                    let assertions = TlsAssertions {
                        version: facts.version_v(),
                        negotiated_protocol: facts.alpn,
                        server_name: facts.server_name,
                        cipher_suite: facts.cipher_suite,
                        peer_certificates: facts.peer_certificates,
                    };
                    serve_connection(tls, remote, Some(assertions), context).await;
                }
            }
        });
    }
}

async fn serve_connection<IO>(
    io: IO,
    remote: SocketAddr,
    tls: Option<TlsAssertions>,
    context: Arc<Context>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let tls = tls.clone();
        let context = context.clone();
        async move { Ok::<_, Infallible>(dispatch(req, remote, tls, &context).await) }
    });
    // gRPC is HTTP/2 only (prior knowledge on the plaintext port).
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn dispatch(
    req: hyper::Request<Incoming>,
    remote: SocketAddr,
    tls: Option<TlsAssertions>,
    context: &Context,
) -> hyper::Response<tonic::body::Body> {
    let is_grpc = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if !is_grpc {
        let mut resp = hyper::Response::new(tonic::body::Body::default());
        *resp.status_mut() = hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return resp;
    }
    let path = req.uri().path().to_owned();
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return tonic::Status::unimplemented(format!("malformed method name: {path:?}"))
            .into_http();
    };
    if service != SERVICE {
        return tonic::Status::unimplemented(format!("unknown service {service}")).into_http();
    }
    match method {
        "Echo" | "EchoTwo" => {
            let connection = if tls.is_some() { "TLS" } else { "plaintext" };
            let _ = writeln!(
                std::io::stdout(),
                "Received over {connection}: {method} from {remote}"
            );
            let assertions = Assertions {
                fully_qualified_method: path.clone(),
                headers: metadata_of(&req),
                authority: authority_of(&req),
                context: Some(context.clone()),
                tls_assertions: tls,
            };
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                EchoResponse,
                EchoRequest,
            >::default());
            grpc.unary(Echo(assertions), req).await
        }
        "EchoThree" => tonic::Status::unimplemented("method EchoThree not implemented").into_http(),
        other => {
            tonic::Status::unimplemented(format!("unknown method {other} for service {SERVICE}"))
                .into_http()
        }
    }
}

fn authority_of<B>(req: &hyper::Request<B>) -> String {
    req.uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(hyper::header::HOST)
                .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        })
        .unwrap_or_default()
}

/// The metadata grpc-go hands to a handler: `:authority`, then every header
/// except `te`, the `grpc-*` transport headers (`grpc-accept-encoding` stays)
/// and connection-specific ones; one entry per value.
fn metadata_of<B>(req: &hyper::Request<B>) -> Vec<Header> {
    const RESERVED: &[&str] = &[
        "te",
        "grpc-encoding",
        "grpc-message",
        "grpc-message-type",
        "grpc-status",
        "grpc-status-details-bin",
        "grpc-timeout",
        "connection",
    ];
    let mut headers = Vec::new();
    let authority = authority_of(req);
    if !authority.is_empty() {
        headers.push(Header {
            key: ":authority".to_owned(),
            value: authority,
        });
    }
    for (name, value) in req.headers() {
        if RESERVED.contains(&name.as_str()) || name == hyper::header::HOST {
            continue;
        }
        headers.push(Header {
            key: name.as_str().to_owned(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        });
    }
    headers
}

/// One unary call: the assertions were gathered from the HTTP request already.
struct Echo(Assertions);

impl tonic::server::UnaryService<EchoRequest> for Echo {
    type Response = EchoResponse;
    type Future = std::future::Ready<Result<tonic::Response<EchoResponse>, tonic::Status>>;

    fn call(&mut self, _request: tonic::Request<EchoRequest>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(EchoResponse {
            assertions: Some(self.0.clone()),
            request: None,
        })))
    }
}
