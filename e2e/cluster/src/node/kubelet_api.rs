//! The node's HTTPS API: what kube-apiserver calls on a kubelet, on the node's address and
//! `daemonEndpoints.kubeletEndpoint.Port`:
//! - `GET /containerLogs/{namespace}/{pod}/{container}` for `kubectl logs` ([`super::logs`]);
//! - `GET /portForward/{namespace}/{pod}` upgraded to a WebSocket for port-forwards of
//!   WebSocket clients ([`super::port_forward`]).
//!
//! The local API server is started without `--kubelet-certificate-authority`, so a
//! self-signed certificate is enough; the request's own authentication is not checked (the
//! server listens on the node's private bridge address only).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::kubelet::Pods;

/// Longest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// Starts the server on `ip` (a free port); returns the port.
pub async fn serve(
    ip: IpAddr,
    pods: Arc<Mutex<Pods>>,
) -> anyhow::Result<(u16, tokio::task::JoinHandle<()>)> {
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec![ip.to_string()])?.self_signed(&key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, pods) = (acceptor.clone(), pods.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Some(request) = read_request(&mut tls).await else {
                    let _ = tls.write_all(&respond(400, b"bad request".to_vec())).await;
                    return;
                };
                if request.path().starts_with("/portForward/") {
                    // The stream lives as long as the forward does.
                    super::port_forward::serve(tls, &request, &pods).await;
                    return;
                }
                let response = if request.path().starts_with("/containerLogs/") {
                    super::logs::answer(&request, &pods).await
                } else {
                    respond(
                        404,
                        b"served: /containerLogs/{namespace}/{pod}/{container}, /portForward/{namespace}/{pod}"
                            .to_vec(),
                    )
                };
                let _ = tls.write_all(&response).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Ok((port, task))
}

/// A GET request's head.
#[derive(Debug)]
pub struct Request {
    /// The request target, query included.
    pub target: String,
    /// Header names in lower case, values trimmed.
    headers: Vec<(String, String)>,
}

impl Request {
    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query, `""` without one.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a GET request's head (nothing of a body: the API server sends none).
async fn read_request<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte so nothing after the head (a WebSocket's first frame) is consumed.
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > MAX_HEAD {
            return None;
        }
        head.push(byte[0]);
    }
    parse_head(&String::from_utf8_lossy(&head))
}

fn parse_head(text: &str) -> Option<Request> {
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    if first.next()? != "GET" {
        return None;
    }
    let target = first.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Request { target, headers })
}

/// A complete HTTP/1.1 answer with a text body.
pub fn respond(status: u16, body: Vec<u8>) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_gives_target_and_case_insensitive_headers() {
        let r = parse_head("GET /portForward/ns/p?port=19000 HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n\r\n").unwrap();
        assert_eq!(r.path(), "/portForward/ns/p");
        assert_eq!(r.query(), "port=19000");
        assert_eq!(
            r.header("sec-websocket-protocol"),
            Some("v5.channel.k8s.io, v4.channel.k8s.io")
        );
        assert!(parse_head("POST / HTTP/1.1\r\n\r\n").is_none());
    }
}
