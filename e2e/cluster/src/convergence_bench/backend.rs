//! The routes' backend: answers every request 200 with a short body. Quiet on purpose (the
//! echo backends log every request, and a benchmark polls thousands of times).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper_util::rt::TokioIo;

/// Listens on `ip` (a free port) and serves until the runtime ends; returns the address.
pub async fn spawn(ip: IpAddr) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind((ip, 0))
        .await
        .with_context(|| format!("cannot listen on {ip}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
