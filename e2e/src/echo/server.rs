//! Listeners, the start-up ports line and per-connection serving.
//!
//! Both ports use hyper-util's auto builder, so each accepts HTTP/1.1 and HTTP/2
//! with prior knowledge; what differs is the request handling (see `handler`).

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

use super::config::{EchoConfig, Identity};
use super::handler::{self, ConnInfo, Port};
use super::report::Ports;
use super::retry::RetryCounter;

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
    http: TcpListener,
    h2c: Option<TcpListener>,
    state: Arc<EchoState>,
}

/// Binds the configured ports (0 = any free port).
pub async fn bind(config: &EchoConfig) -> anyhow::Result<BoundEcho> {
    let http = TcpListener::bind((config.bind, config.http_port))
        .await
        .with_context(|| format!("binding HTTP port {}:{}", config.bind, config.http_port))?;
    let h2c = match config.h2c_port {
        Some(port) => Some(
            TcpListener::bind((config.bind, port))
                .await
                .with_context(|| format!("binding H2C port {}:{port}", config.bind))?,
        ),
        None => None,
    };
    let state = Arc::new(EchoState {
        identity: config.identity.clone(),
        http_port: http.local_addr()?.port().to_string(),
        retries: RetryCounter::default(),
    });
    Ok(BoundEcho { http, h2c, state })
}

impl BoundEcho {
    pub fn ports(&self) -> anyhow::Result<Ports> {
        Ok(Ports {
            http: self.http.local_addr()?.port(),
            h2c: self
                .h2c
                .as_ref()
                .map(|l| l.local_addr().map(|a| a.port()))
                .transpose()?,
        })
    }

    /// Serves both ports until the process ends.
    pub async fn serve(self) -> anyhow::Result<()> {
        let http = tokio::spawn(accept_loop(self.http, Port::Http, self.state.clone()));
        match self.h2c {
            Some(h2c) => {
                let h2c = tokio::spawn(accept_loop(h2c, Port::H2c, self.state));
                tokio::try_join!(http, h2c)?;
            }
            None => http.await?,
        }
        Ok(())
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

async fn accept_loop(listener: TcpListener, port: Port, state: Arc<EchoState>) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Usually fd exhaustion: back off instead of spinning.
                eprintln!("ferrogate-echo: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(serve_connection(stream, remote, port, state.clone()));
    }
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    port: Port,
    state: Arc<EchoState>,
) {
    let _ = stream.set_nodelay(true);
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(ResettableStream {
        inner: stream,
        reset: reset.clone(),
    });
    let service = service_fn(move |req| {
        let conn = ConnInfo {
            port,
            remote,
            reset: reset.clone(),
        };
        handler::handle(state.clone(), conn, req)
    });
    // Errors here are client disconnects or deliberate retry-simulator aborts.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
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
