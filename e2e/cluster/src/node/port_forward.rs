//! The kubelet's port-forward endpoint, WebSocket flavour. kube-apiserver passes a
//! `pods/{name}/portforward` WebSocket upgrade that does not ask for its SPDY tunnel straight
//! through to `GET /portForward/{namespace}/{pod}?port=P[,P...]` here; kube-rs clients (such
//! as `ferrogate config-dump`) speak that. `kubectl port-forward` speaks SPDY, which this
//! node does not serve: it gets a 400.
//!
//! Protocol `v4.channel.k8s.io`: binary messages whose first byte is a channel; port i has
//! data channel 2i and error channel 2i+1, and the server's first message on each channel is
//! the port (u16, little-endian). Like the kubelet, the node connects to the port on
//! 127.0.0.1 inside the Pod's network namespace (so loopback-only ports, such as Envoy's
//! admin, are reachable), reports a failed connection on the port's error channel, and
//! closes the WebSocket when every connection is done.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::kubelet::Pods;
use super::kubelet_api::{Request, respond};

/// The only subprotocol served.
const PROTOCOL: &str = "v4.channel.k8s.io";
/// How long connecting to a port inside the Pod may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one port-forward request on `stream` (the request head already read).
pub async fn serve<S>(mut stream: S, request: &Request, pods: &Mutex<Pods>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let answer = match accept(request, pods).await {
        Ok(accepted) => accepted,
        Err((status, message)) => {
            let _ = stream
                .write_all(&respond(status, message.into_bytes()))
                .await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let upgrade = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {PROTOCOL}\r\n\r\n",
        answer.accept_key
    );
    if stream.write_all(upgrade.as_bytes()).await.is_err() {
        return;
    }
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
    if let Err(e) = forward(ws, &answer.netns, &answer.ports).await {
        tracing::debug!("port-forward to {}: {e}", answer.pod);
    }
}

/// What an acceptable request asks for.
struct Accepted {
    pod: String,
    netns: String,
    ports: Vec<u16>,
    accept_key: String,
}

async fn accept(request: &Request, pods: &Mutex<Pods>) -> Result<Accepted, (u16, String)> {
    let parts: Vec<&str> = request.path().trim_start_matches('/').split('/').collect();
    let ["portForward", namespace, name] = parts[..] else {
        return Err((404, "expected /portForward/{namespace}/{pod}".into()));
    };
    let ports = ports(request.query()).map_err(|e| (400, e))?;
    let websocket = request
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let offers_v4 = request
        .header("sec-websocket-protocol")
        .is_some_and(|p| p.split(',').any(|p| p.trim() == PROTOCOL));
    let key = request.header("sec-websocket-key");
    let (true, true, Some(key)) = (websocket, offers_v4, key) else {
        return Err((
            400,
            format!(
                "this node serves port-forward only as a WebSocket with protocol {PROTOCOL} (no SPDY)"
            ),
        ));
    };
    let netns = {
        let pods = pods.lock().await;
        pods.find(namespace, name)
            .and_then(|p| p.network.as_ref())
            .map(|n| n.netns.clone())
    };
    let Some(netns) = netns else {
        return Err((
            404,
            format!("Pod {namespace}/{name} is not running on this node"),
        ));
    };
    Ok(Accepted {
        pod: format!("{namespace}/{name}"),
        netns,
        ports,
        accept_key: derive_accept_key(key.as_bytes()),
    })
}

/// The `port` parameters (each a comma-separated list), in order.
fn ports(query: &str) -> Result<Vec<u16>, String> {
    let ports: Vec<u16> = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("port="))
        .flat_map(|list| list.split("%2C").flat_map(|l| l.split(',')))
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid port {p:?}"))
        })
        .collect::<Result<_, _>>()?;
    if ports.is_empty() {
        return Err("no port given".into());
    }
    Ok(ports)
}

/// Pumps bytes between the WebSocket's channels and one connection per port until every
/// connection is closed (or the client goes away).
async fn forward<S>(ws: WebSocketStream<S>, netns: &str, ports: &[u16]) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut to_client, mut from_client) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    let mut writers = Vec::new();
    // The readers of the Pod's side belong to this forward: when the client goes away they
    // end with it (dropped here) instead of holding an idle connection open.
    let mut readers = tokio::task::JoinSet::new();
    for (i, &port) in ports.iter().enumerate() {
        let (data, error) = (2 * i as u8, 2 * i as u8 + 1);
        for channel in [data, error] {
            let [lo, hi] = port.to_le_bytes();
            send(&mut to_client, vec![channel, lo, hi]).await?;
        }
        match connect_in_netns(netns, port).await {
            Ok(tcp) => {
                let (mut reader, writer) = tokio::net::TcpStream::from_std(tcp)?.into_split();
                writers.push(Some(writer));
                let out = out_tx.clone();
                readers.spawn(async move {
                    let mut buf = vec![0u8; 32 * 1024];
                    while let Ok(n) = reader.read(&mut buf[1..]).await {
                        if n == 0 {
                            break;
                        }
                        buf[0] = data;
                        if out.send(buf[..=n].to_vec()).await.is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => {
                writers.push(None);
                let mut message = vec![error];
                message.extend(format!("error forwarding port {port} to pod: {e}").bytes());
                send(&mut to_client, message).await?;
            }
        }
    }
    // Only the readers hold senders now: the channel closes when the last connection does.
    drop(out_tx);
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(message) => send(&mut to_client, message).await?,
                None => break,
            },
            incoming = from_client.next() => match incoming {
                Some(Ok(Message::Binary(bytes))) => {
                    let Some((&channel, payload)) = bytes.split_first() else { continue };
                    let writer = writers.get_mut(usize::from(channel / 2)).and_then(Option::as_mut);
                    if let (0, Some(writer)) = (channel % 2, writer)
                        && writer.write_all(payload).await.is_err()
                    {
                        writers[usize::from(channel / 2)] = None;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = to_client.send(Message::Close(None)).await;
    Ok(())
}

async fn send<S>(
    sink: &mut futures::stream::SplitSink<WebSocketStream<S>, Message>,
    bytes: Vec<u8>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    sink.send(Message::Binary(bytes.into()))
        .await
        .map_err(io::Error::other)
}

/// A TCP connection to 127.0.0.1:`port` inside network namespace `netns`. The socket is made
/// on a thread of its own that enters the namespace and then ends, so no thread of the
/// runtime ever changes namespace; the socket stays in the namespace it was made in.
async fn connect_in_netns(netns: &str, port: u16) -> io::Result<TcpStream> {
    let path = format!("/run/netns/{netns}");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let connect = || -> io::Result<TcpStream> {
            let ns = std::fs::File::open(&path)?;
            // SAFETY: setns on a valid namespace fd affects only this short-lived thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let tcp = TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                CONNECT_TIMEOUT,
            )?;
            tcp.set_nonblocking(true)?;
            Ok(tcp)
        };
        let _ = tx.send(connect());
    });
    rx.await
        .unwrap_or_else(|_| Err(io::Error::other("the connecting thread died")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_every_port_parameter_in_order() {
        assert_eq!(ports("port=19000").unwrap(), [19000]);
        assert_eq!(ports("port=80,443&port=8080").unwrap(), [80, 443, 8080]);
        assert_eq!(ports("port=80%2C81").unwrap(), [80, 81]);
        assert!(ports("").is_err());
        assert!(ports("port=0").is_err());
        assert!(ports("port=http").is_err());
    }
}
