//! UDP role: every datagram on `UDP_PORT` (up to 1024 bytes read) is answered
//! on the same socket with `{"request": <payload>, "namespace", "ingress",
//! "service", "pod"}`.

use std::io::Write as _;

use serde::Serialize;
use tokio::net::UdpSocket;

use super::config::{EchoConfig, Identity};
use super::report::Ports;

/// Go reads into a 1024-byte buffer; longer datagrams are truncated.
const BUFFER: usize = 1024;

#[derive(Debug, Serialize)]
struct UdpEcho<'a> {
    request: &'a str,
    namespace: &'a str,
    ingress: &'a str,
    service: &'a str,
    pod: &'a str,
}

pub(crate) struct BoundUdp {
    socket: UdpSocket,
    identity: Identity,
}

pub(crate) async fn bind(config: &EchoConfig) -> anyhow::Result<BoundUdp> {
    let socket = UdpSocket::bind((config.bind, config.udp_port))
        .await
        .map_err(|e| {
            anyhow::anyhow!("binding UDP port {}:{}: {e}", config.bind, config.udp_port)
        })?;
    Ok(BoundUdp {
        socket,
        identity: config.identity.clone(),
    })
}

impl BoundUdp {
    pub(crate) fn ports(&self) -> anyhow::Result<Ports> {
        Ok(Ports {
            udp: Some(self.socket.local_addr()?.port()),
            ..Ports::default()
        })
    }

    pub(crate) async fn serve(self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; BUFFER];
        let id = &self.identity;
        loop {
            let (n, peer) = match self.socket.recv_from(&mut buf).await {
                Ok(received) => received,
                Err(err) => {
                    // ICMP errors from earlier replies surface here on Linux.
                    eprintln!("ferrogate-echo: UDP read failed: {err}");
                    continue;
                }
            };
            // Go's json.Marshal replaces invalid UTF-8 with U+FFFD too.
            let payload = String::from_utf8_lossy(&buf[..n]);
            let _ = writeln!(std::io::stdout(), "Received UDP {payload} from {peer}");
            let reply = serde_json::to_vec(&UdpEcho {
                request: &payload,
                namespace: &id.namespace,
                ingress: &id.ingress,
                service: &id.service,
                pod: &id.pod,
            })?;
            if let Err(err) = self.socket.send_to(&reply, peer).await {
                eprintln!("ferrogate-echo: UDP write to {peer} failed: {err}");
            }
        }
    }
}
