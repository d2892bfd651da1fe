//! Listeners, the start-up ports line and per-connection serving.
//!
//! The HTTP role's ports use hyper-util's auto builder, so each accepts HTTP/1.1
//! and HTTP/2 with prior knowledge (the HTTPS port picks by ALPN the same way);
//! what differs is the request handling (see `handler`). The other roles live
//! in `grpc`, `tcp` and `udp`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::config::{EchoConfig, Identity, Role};
use super::handler::{self, ConnInfo, Port};
use super::report::{Ports, TlsAssertions};
use super::retry::RetryCounter;
use super::tls::{self, TlsFacts};
use super::{grpc, tcp, udp};

/// State shared by every connection of one backend process.
#[derive(Debug)]
pub(crate) struct EchoState {
    pub(crate) identity: Identity,
    /// Reported as `httpPort`; the bound port, so port 0 reports something useful.
    pub(crate) http_port: String,
    pub(crate) retries: RetryCounter,
}

/// Listeners bound but not yet serving; lets callers learn the ports first.
pub struct BoundEcho {
    role: BoundRole,
}

enum BoundRole {
    Http(BoundHttp),
    Grpc(grpc::BoundGrpc),
    Tcp(tcp::BoundTcp),
    Udp(udp::BoundUdp),
}

struct BoundHttp {
    http: TcpListener,
    h2c: Option<TcpListener>,
    https: Option<(TcpListener, TlsAcceptor)>,
    state: Arc<EchoState>,
}

/// Binds a TCP port (0 = any free port) with a readable error.
pub(crate) async fn bind_tcp(
    config: &EchoConfig,
    port: u16,
    what: &str,
) -> anyhow::Result<TcpListener> {
    TcpListener::bind((config.bind, port))
        .await
        .with_context(|| format!("binding {what} port {}:{port}", config.bind))
}

/// Both paths set (and non-empty), as upstream requires before enabling TLS.
pub(crate) fn cert_and_key<'a>(
    cert: &'a Option<std::path::PathBuf>,
    key: &'a Option<std::path::PathBuf>,
) -> Option<(&'a std::path::Path, &'a std::path::Path)> {
    match (cert, key) {
        (Some(c), Some(k)) if !c.as_os_str().is_empty() && !k.as_os_str().is_empty() => {
            Some((c.as_path(), k.as_path()))
        }
        _ => None,
    }
}

/// Binds the ports of the configured role (0 = any free port).
pub async fn bind(config: &EchoConfig) -> anyhow::Result<BoundEcho> {
    let role = match config.role() {
        Role::Http => BoundRole::Http(bind_http(config).await?),
        Role::Grpc => BoundRole::Grpc(grpc::bind(config).await?),
        Role::Tcp => BoundRole::Tcp(tcp::bind(config).await?),
        Role::Udp => BoundRole::Udp(udp::bind(config).await?),
    };
    Ok(BoundEcho { role })
}

async fn bind_http(config: &EchoConfig) -> anyhow::Result<BoundHttp> {
    let http = bind_tcp(config, config.http_port, "HTTP").await?;
    let h2c = match config.h2c_port {
        Some(port) => Some(bind_tcp(config, port, "H2C").await?),
        None => None,
    };
    let https = match cert_and_key(&config.tls_server_cert, &config.tls_server_privkey) {
        Some((cert, key)) => {
            let ca = config
                .tls_client_cacerts
                .as_deref()
                .filter(|p| !p.as_os_str().is_empty());
            let acceptor = tls::acceptor(cert, key, ca, &[b"h2", b"http/1.1"])?;
            Some((
                bind_tcp(config, config.https_port, "HTTPS").await?,
                acceptor,
            ))
        }
        None => None,
    };
    let state = Arc::new(EchoState {
        identity: config.identity.clone(),
        http_port: http.local_addr()?.port().to_string(),
        retries: RetryCounter::default(),
    });
    Ok(BoundHttp {
        http,
        h2c,
        https,
        state,
    })
}

pub(crate) fn port_of(listener: &TcpListener) -> anyhow::Result<u16> {
    Ok(listener.local_addr()?.port())
}

impl BoundEcho {
    pub fn ports(&self) -> anyhow::Result<Ports> {
        match &self.role {
            BoundRole::Http(b) => Ok(Ports {
                http: port_of(&b.http)?,
                h2c: b.h2c.as_ref().map(port_of).transpose()?,
                https: b.https.as_ref().map(|(l, _)| port_of(l)).transpose()?,
                ..Ports::default()
            }),
            BoundRole::Grpc(b) => b.ports(),
            BoundRole::Tcp(b) => b.ports(),
            BoundRole::Udp(b) => b.ports(),
        }
    }

    /// Serves every port until the process ends.
    pub async fn serve(self) -> anyhow::Result<()> {
        match self.role {
            BoundRole::Http(b) => {
                let mut tasks = vec![tokio::spawn(accept_loop(
                    b.http,
                    Port::Http,
                    None,
                    b.state.clone(),
                ))];
                if let Some(h2c) = b.h2c {
                    tasks.push(tokio::spawn(accept_loop(
                        h2c,
                        Port::H2c,
                        None,
                        b.state.clone(),
                    )));
                }
                if let Some((https, acceptor)) = b.https {
                    tasks.push(tokio::spawn(accept_loop(
                        https,
                        Port::Https,
                        Some(acceptor),
                        b.state,
                    )));
                }
                for task in tasks {
                    task.await?;
                }
                Ok(())
            }
            BoundRole::Grpc(b) => b.serve().await,
            BoundRole::Tcp(b) => b.serve().await,
            BoundRole::Udp(b) => b.serve().await,
        }
    }
}

/// Binds, prints the ports line on stdout, then serves until SIGINT/SIGTERM.
pub async fn run(config: EchoConfig) -> anyhow::Result<()> {
    let bound = bind(&config).await?;
    let line = serde_json::to_string(&bound.ports()?)?;
    {
        // The harness reads this first line to learn the ports, so flush it now.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    tokio::select! {
        res = bound.serve() => res,
        () = shutdown_signal() => Ok(()),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Accepts connections forever; a failed accept (usually fd exhaustion) backs off.
pub(crate) async fn accept_next(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(err) => {
                eprintln!("ferrogate-echo: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    port: Port,
    acceptor: Option<TlsAcceptor>,
    state: Arc<EchoState>,
) {
    loop {
        let (stream, remote) = accept_next(&listener).await;
        let state = state.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let reset = Arc::new(AtomicBool::new(false));
            let io = ResettableStream {
                inner: stream,
                reset: reset.clone(),
            };
            match acceptor {
                None => serve_connection(io, remote, port, None, reset, state).await,
                Some(acceptor) => {
                    let Some(tls) = tls::handshake(&acceptor, io).await else {
                        return;
                    };
                    let facts = Arc::new(TlsFacts::of(tls.get_ref().1).http_assertions());
                    serve_connection(tls, remote, port, Some(facts), reset, state).await;
                }
            }
        });
    }
}

async fn serve_connection<IO>(
    io: IO,
    remote: SocketAddr,
    port: Port,
    tls: Option<Arc<TlsAssertions>>,
    reset: Arc<AtomicBool>,
    state: Arc<EchoState>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let conn = ConnInfo {
            port,
            remote,
            reset: reset.clone(),
            tls: tls.clone(),
        };
        handler::handle(state.clone(), conn, req)
    });
    // Errors here are client disconnects or deliberate retry-simulator aborts.
    // Upgrades are enabled for the `/ws` WebSocket endpoint.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await;
}

/// TCP stream that closes with a RST instead of a FIN when asked to.
///
/// hyper owns the stream while serving, so the handler cannot touch the socket;
/// it sets the shared flag and fails the request, hyper drops the connection,
/// and this drop sets SO_LINGER 0 just before the socket closes, which is what
/// upstream's retry simulator does to provoke a connection reset.
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
