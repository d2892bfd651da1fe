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
    dns: bool,
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
        dns: !config.dns_responder.is_empty(),
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
            if self.dns {
                if let Some(reply) = dns_reply(&buf[..n]) {
                    let _ = writeln!(std::io::stdout(), "Answered DNS query from {peer}");
                    let _ = self.socket.send_to(&reply, peer).await;
                }
                continue;
            }
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

/// A DNS reply to a query: same ID and question, QR and RA set, RD copied, NOERROR, no
/// answers. `None` when the datagram is not a standard query.
fn dns_reply(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || query[2] & 0x78 != 0 {
        return None;
    }
    let mut reply = query.to_vec();
    reply[2] = 0x80 | (query[2] & 0x01); // QR, opcode QUERY, RD as asked
    reply[3] = 0x80; // RA, NOERROR
    reply[6..12].fill(0); // no answer, authority or additional records
    // Keep the header and the question section only (drop EDNS records the query carried).
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    let mut at = 12;
    for _ in 0..qdcount {
        while at < query.len() && query[at] != 0 {
            at += 1 + query[at] as usize;
        }
        at += 1 + 4; // root label, QTYPE, QCLASS
    }
    if at > query.len() {
        return None;
    }
    reply.truncate(at);
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::dns_reply;

    #[test]
    fn dns_reply_keeps_id_and_question_and_sets_response_bits() {
        // ID 0x1234, RD, one question: foo.bar.com A IN.
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["foo", "bar", "com"] {
            q.push(label.len() as u8);
            q.extend(label.as_bytes());
        }
        q.extend([0, 0, 1, 0, 1]);
        let r = dns_reply(&q).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2], 0x81);
        assert_eq!(r[3], 0x80);
        assert_eq!(&r[12..], &q[12..]);
        assert!(dns_reply(&r).is_none(), "a response is not answered");
    }
}
