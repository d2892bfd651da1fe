//! A small HTTP/1.1 client for tests: one request per connection, any Host header, the
//! whole response in memory. Built on hyper so it speaks HTTP exactly, with no pooling that
//! could hide which Envoy listener answered.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

/// A response, fully read.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names, values in order.
    pub headers: BTreeMap<String, Vec<String>>,
    /// Body.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body parsed as JSON (the echo backend's answer).
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// Sends `GET path` to `addr` with the given Host and extra headers.
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    request(addr, "GET", host, path, headers).await
}

/// Sends a request without a body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = sender
            .send_request(builder.body(Empty::<Bytes>::new())?)
            .await?;
        let status = response.status().as_u16();
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in response.headers() {
            map.entry(name.as_str().to_string())
                .or_default()
                .push(value.to_str().unwrap_or_default().to_string());
        }
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(HttpResponse {
            status,
            headers: map,
            body,
        })
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("request to {addr}{path} timed out"))?
}
