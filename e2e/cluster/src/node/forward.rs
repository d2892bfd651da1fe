//! Userspace Service forwarding: what kube-proxy does with NAT rules, done with sockets,
//! because this machine has no iptables. One listener per (address, port, protocol); each new
//! TCP connection or UDP client goes to the next ready endpoint of the current table.
//!
//! The table is shared and replaced whole by [`super::services`]; listeners read it per
//! connection, so endpoint changes apply to the next connection without a restart.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{AbortHandle, JoinSet};

/// Transport of a forwarded port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Where traffic arrives.
pub type Frontend = (SocketAddrV4, Protocol);
/// Frontend -> endpoints (Pod address and target port).
pub type Table = BTreeMap<Frontend, Vec<SocketAddr>>;

/// A UDP flow with no packet for this long is forgotten (conntrack's UDP timeout is similar).
const UDP_IDLE: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The running listeners and the table they read.
#[derive(Default)]
pub struct Forwarder {
    table: Arc<RwLock<Table>>,
    listeners: BTreeMap<Frontend, AbortHandle>,
    /// Dropping the set aborts every listener (the node's end).
    tasks: JoinSet<()>,
    next: Arc<AtomicUsize>,
}

impl Forwarder {
    /// Installs `table`: starts listeners for new frontends, stops those that are gone. The
    /// frontend addresses must already exist on a link of this host. A frontend that cannot
    /// be bound is logged and retried at the next call.
    pub async fn apply(&mut self, table: Table) {
        *self.table.write().expect("table lock") = table.clone();
        self.listeners.retain(|frontend, handle| {
            let keep = table.contains_key(frontend);
            if !keep {
                handle.abort();
            }
            keep
        });
        for frontend in table.keys() {
            if self.listeners.contains_key(frontend) {
                continue;
            }
            match self.listen(*frontend).await {
                Ok(handle) => {
                    tracing::info!("forwarding {:?} {}", frontend.1, frontend.0);
                    self.listeners.insert(*frontend, handle);
                }
                Err(e) => tracing::warn!("cannot listen on {:?} {}: {e}", frontend.1, frontend.0),
            }
        }
    }

    /// The frontends served now.
    #[cfg(test)]
    pub fn frontends(&self) -> Vec<Frontend> {
        self.listeners.keys().copied().collect()
    }

    async fn listen(&mut self, frontend: Frontend) -> std::io::Result<AbortHandle> {
        let (addr, protocol) = frontend;
        let picker = Picker {
            table: self.table.clone(),
            frontend,
            next: self.next.clone(),
        };
        Ok(match protocol {
            Protocol::Tcp => {
                let listener = TcpListener::bind(addr).await?;
                self.tasks.spawn(tcp(listener, picker))
            }
            Protocol::Udp => {
                let socket = UdpSocket::bind(addr).await?;
                self.tasks.spawn(udp(Arc::new(socket), picker))
            }
        })
    }
}

/// Chooses endpoints round-robin from the current table.
#[derive(Clone)]
struct Picker {
    table: Arc<RwLock<Table>>,
    frontend: Frontend,
    next: Arc<AtomicUsize>,
}

impl Picker {
    /// The endpoints in the order to try them.
    fn order(&self) -> Vec<SocketAddr> {
        let table = self.table.read().expect("table lock");
        let endpoints = table.get(&self.frontend).cloned().unwrap_or_default();
        if endpoints.is_empty() {
            return endpoints;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % endpoints.len();
        endpoints[start..]
            .iter()
            .chain(&endpoints[..start])
            .copied()
            .collect()
    }
}

async fn tcp(listener: TcpListener, picker: Picker) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let picker = picker.clone();
        tokio::spawn(async move {
            // A refused endpoint (a Pod that just stopped) is skipped, as a connection to a
            // Service would be retried by a client anyway; no endpoint means a reset.
            for endpoint in picker.order() {
                let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint));
                if let Ok(Ok(mut upstream)) = connect.await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    return;
                }
            }
        });
    }
}

async fn udp(socket: Arc<UdpSocket>, picker: Picker) {
    // One connected upstream socket per client address, so replies find their client.
    let flows: Arc<tokio::sync::Mutex<BTreeMap<SocketAddr, Arc<UdpSocket>>>> = Default::default();
    // The flows' reply tasks hold the frontend socket: they belong to this task, so stopping
    // the listener closes the socket at once. (Detached, they kept the address bound for up
    // to UDP_IDLE after the Service was gone, and a new Service given the same address and
    // port could not bind it.)
    let mut reply_tasks: JoinSet<()> = JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        while reply_tasks.try_join_next().is_some() {}
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let existing = flows.lock().await.get(&client).cloned();
        let upstream = match existing {
            Some(u) => u,
            None => {
                let Some(endpoint) = picker.order().into_iter().next() else {
                    continue;
                };
                let Ok(u) = new_flow(endpoint).await else {
                    continue;
                };
                let u = Arc::new(u);
                flows.lock().await.insert(client, u.clone());
                reply_tasks.spawn(replies(socket.clone(), u.clone(), client, flows.clone()));
                u
            }
        };
        let _ = upstream.send(&buf[..n]).await;
    }
}

async fn new_flow(endpoint: SocketAddr) -> std::io::Result<UdpSocket> {
    let u = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0))).await?;
    u.connect(endpoint).await?;
    Ok(u)
}

async fn replies(
    socket: Arc<UdpSocket>,
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    flows: Arc<tokio::sync::Mutex<BTreeMap<SocketAddr, Arc<UdpSocket>>>>,
) {
    let mut buf = vec![0u8; 65_536];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, upstream.recv(&mut buf)).await {
        let _ = socket.send_to(&buf[..n], client).await;
    }
    flows.lock().await.remove(&client);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn free(protocol: Protocol) -> SocketAddrV4 {
        let port = match protocol {
            Protocol::Tcp => std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port(),
            Protocol::Udp => std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port(),
        };
        SocketAddrV4::new([127, 0, 0, 1].into(), port)
    }

    #[tokio::test]
    async fn tcp_connections_reach_an_endpoint_and_skip_dead_ones() {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = backend.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = backend.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut b = [0u8; 5];
                    s.read_exact(&mut b).await.unwrap();
                    s.write_all(&b).await.unwrap();
                });
            }
        });
        let dead: SocketAddr = free(Protocol::Tcp).into();
        let front = free(Protocol::Tcp);
        let mut f = Forwarder::default();
        f.apply([((front, Protocol::Tcp), vec![dead, live])].into())
            .await;
        for _ in 0..3 {
            let mut c = TcpStream::connect(front).await.unwrap();
            c.write_all(b"hello").await.unwrap();
            let mut b = [0u8; 5];
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(&b, b"hello");
        }
        f.apply(Table::new()).await;
        assert!(f.frontends().is_empty());
    }

    #[tokio::test]
    async fn udp_replies_return_to_their_client() {
        let backend = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let endpoint = backend.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            loop {
                let (n, from) = backend.recv_from(&mut b).await.unwrap();
                let mut reply = b"re:".to_vec();
                reply.extend_from_slice(&b[..n]);
                backend.send_to(&reply, from).await.unwrap();
            }
        });
        let front = free(Protocol::Udp);
        let mut f = Forwarder::default();
        f.apply([((front, Protocol::Udp), vec![endpoint])].into())
            .await;
        for word in ["one", "two"] {
            let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            c.connect(front).await.unwrap();
            c.send(word.as_bytes()).await.unwrap();
            let mut b = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut b))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&b[..n], format!("re:{word}").as_bytes());
        }

        // The Service goes and comes back at once (a new one given the same address): the
        // address can be bound again although the flows above are not idle yet.
        f.apply(Table::new()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        f.apply([((front, Protocol::Udp), vec![endpoint])].into())
            .await;
        assert_eq!(f.frontends(), [(front, Protocol::Udp)]);
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(front).await.unwrap();
        c.send(b"three").await.unwrap();
        let mut b = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b[..n], b"re:three");
    }
}
