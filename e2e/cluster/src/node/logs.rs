//! The kubelet's log endpoint, so `kubectl logs` works: kube-apiserver answers
//! `pods/{name}/log` by calling `GET /containerLogs/{namespace}/{pod}/{container}` on the
//! node's address and `daemonEndpoints.kubeletEndpoint.Port`, over HTTPS. The local
//! API server is started without `--kubelet-certificate-authority`, so a self-signed
//! certificate is enough; the request's own authentication is not checked (the server
//! listens on the node's private bridge address only).
//!
//! The container log files hold timestamped CRI records ([`crate::cri_log`]); the query's
//! `sinceTime`, `sinceSeconds`, `timestamps`, `tailLines` and `limitBytes` select from them
//! as the kubelet does, and the answer is the containers' text ([`super::log_query`]).
//! Not supported: `follow`, `previous`, `stream` (the answer is what the file holds now).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::kubelet::Pods;
use super::log_query;

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
                let response = match read_request(&mut tls).await {
                    Some(target) => answer(&target, &pods).await,
                    None => respond(400, b"bad request".to_vec()),
                };
                let _ = tls.write_all(&response).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Ok((port, task))
}

/// The request target of the first request line, once the head is complete.
async fn read_request<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut line = text.lines().next()?.split_whitespace();
    (line.next()? == "GET").then(|| line.next().map(str::to_string))?
}

async fn answer(target: &str, pods: &Mutex<Pods>) -> Vec<u8> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["containerLogs", namespace, name, container] = parts[..] else {
        return respond(
            404,
            b"only /containerLogs/{namespace}/{pod}/{container} is served".to_vec(),
        );
    };
    let file = {
        let pods = pods.lock().await;
        pods.by_uid
            .values()
            .find(|p| p.namespace == namespace && p.name == name)
            .and_then(|p| p.log(container))
            .map(|p| p.to_path_buf())
    };
    let Some(file) = file else {
        return respond(
            404,
            format!("container {container} of Pod {namespace}/{name} is not on this node")
                .into_bytes(),
        );
    };
    let options = match log_query::parse(query, time::OffsetDateTime::now_utc()) {
        Ok(o) => o,
        Err(e) => return respond(400, e.into_bytes()),
    };
    let file = std::fs::read(&file).unwrap_or_default();
    let body = log_query::render(&file, &options);
    respond(200, body)
}

fn respond(status: u16, body: Vec<u8>) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
    out.extend(body);
    out
}
