//! What the node runs for the image `hashicorp/http-echo:1.0` (binary `ferrogate-http-echo`):
//! an HTTP/1.1 server that answers every request with the `-text` and a newline and the
//! `-status-code` (200 unless given), except `/health`, which answers 200 `{"status":"ok"}`.
//! Every answer carries `X-App-Name: http-echo` and `X-App-Version`, as http-echo's do, and
//! each request is logged on stdout, so `kubectl logs` shows traffic.
//!
//! Written here rather than built from http-echo's Go module because the behaviour is this
//! small, and a test of the docs should not need another toolchain. [`flags`] holds the
//! command line; the node checks it before starting a Pod ([`crate::node::images`]).

pub mod flags;

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

pub use flags::{FlagError, Flags};

/// The release this stands in for (`X-App-Version`, `-version`).
pub const VERSION: &str = "1.0.0";

/// Serves until the process is killed (http-echo has no other way to stop either).
pub async fn serve(listen: &flags::Listen, text: String, status: u16) -> anyhow::Result<()> {
    let listener = bind(listen).await?;
    eprintln!("[INFO] server is listening on {listen}");
    let text: &'static str = Box::leak(format!("{text}\n").into_boxed_str());
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, peer, text, status));
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                eprintln!("[ERR] connection from {peer}: {e}");
            }
        });
    }
}

/// An empty host is every IPv4 address: the node's Pods have IPv4 only.
async fn bind(listen: &flags::Listen) -> anyhow::Result<tokio::net::TcpListener> {
    let host = if listen.host.is_empty() {
        "0.0.0.0"
    } else {
        listen.host.as_str()
    };
    tokio::net::TcpListener::bind((host, listen.port))
        .await
        .with_context(|| format!("listen on {listen}"))
}

async fn answer(
    req: Request<Incoming>,
    peer: SocketAddr,
    text: &'static str,
    status: u16,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = req.into_parts();
    // Read the whole request body first, as http-echo does, so the connection stays usable.
    let _ = body.collect().await;
    let (status, body) = if head.uri.path() == "/health" {
        (200, "{\"status\":\"ok\"}\n")
    } else {
        (status, text)
    };
    println!(
        "{} {peer} \"{} {} {:?}\" {status} {} {:?}",
        head.headers
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
        head.method,
        head.uri.path(),
        head.version,
        body.len(),
        head.headers
            .get(hyper::header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    );
    let response = Response::builder()
        .status(status)
        .header("X-App-Name", "http-echo")
        .header("X-App-Version", VERSION)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a valid status (checked by the flags) and static headers");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// One request on a new connection; the whole answer as text.
    async fn get(port: u16, path: &str) -> String {
        let mut stream = loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn every_path_gets_the_text_and_the_status_and_health_gets_ok() {
        let port = crate::process::free_port();
        let flags = Flags::parse(&[
            format!("-listen=127.0.0.1:{port}"),
            "-text=hello from echo".into(),
            "-status-code=202".into(),
        ])
        .unwrap();
        let server =
            tokio::spawn(
                async move { serve(&flags.listen, flags.text.unwrap(), flags.status).await },
            );
        let answer = get(port, "/any/path").await;
        assert!(answer.starts_with("HTTP/1.1 202 Accepted\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nhello from echo\n"), "{answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("x-app-name: http-echo\r\n"), "{answer}");
        assert!(lower.contains("x-app-version: 1.0.0\r\n"), "{answer}");
        let health = get(port, "/health").await;
        assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
        assert!(
            health.ends_with("\r\n\r\n{\"status\":\"ok\"}\n"),
            "{health}"
        );
        server.abort();
    }
}
