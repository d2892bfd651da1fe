//! The `/ws` endpoint: an RFC 6455 handshake over an HTTP/1.1 upgrade, then
//! every text or binary message is sent back with its type unchanged.

use std::io::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::handler::Resp;

/// Answers a valid handshake with 101 and echoes on the upgraded connection in
/// a task of its own; `None` when the request is not a WebSocket handshake.
pub(crate) fn upgrade(req: Request<Incoming>, remote: SocketAddr) -> Option<Resp> {
    let has_token = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if req.method() != Method::GET
        || req.version() != Version::HTTP_11
        || !has_token(UPGRADE, "websocket")
        || !has_token(CONNECTION, "upgrade")
        || req
            .headers()
            .get("sec-websocket-version")
            .is_none_or(|v| v.as_bytes() != b"13")
    {
        return None;
    }
    let accept = derive_accept_key(req.headers().get(SEC_WEBSOCKET_KEY)?.as_bytes());
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let _ = writeln!(
            std::io::stdout(),
            "established websocket connection {remote}"
        );
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        echo(ws).await;
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).ok()?);
    Some(resp)
}

/// Echoes data messages until the peer closes; pings are answered and the
/// close handshake completed by tungstenite itself.
async fn echo<S>(mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Text(_) | Message::Binary(_) => {
                if ws.send(msg).await.is_err() {
                    break;
                }
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            Message::Close(_) => {
                // Flush the automatic close reply.
                let _ = ws.flush().await;
            }
        }
    }
}
