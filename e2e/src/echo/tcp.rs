//! TCP role: a line protocol on `TCP_PORT` and, with certificate and key, on
//! `TLS_PORT` (TLS 1.2 minimum). Each connection first gets the banner
//! `Gateway API Test TCP Server\n`, then: `PING` -> `PONG\n`, `IS_TLS` ->
//! `true\n`/`false\n`, `TEST` -> one JSON line describing backend and
//! connection; anything else is ignored.

use std::sync::Arc;

use serde::Serialize;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::config::EchoConfig;
use super::report::Ports;
use super::server::{accept_next, bind_tcp, cert_and_key, port_of};
use super::tls::{self, TlsFacts};

pub const WELCOME: &str = "Gateway API Test TCP Server\n";

/// Longest command line read, like Go's `bufio.Scanner` default (64 KiB);
/// a longer line ends the connection as the scanner's error does.
const MAX_LINE: usize = 64 * 1024;

/// Answer to `TEST`, fields in upstream's order.
#[derive(Debug, Clone, Serialize)]
struct TcpAssertions {
    namespace: String,
    ingress: String,
    service: String,
    pod: String,
    tcpport: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    tlsport: String,
    #[serde(rename = "isTLS")]
    is_tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TcpTls>,
}

#[derive(Debug, Clone, Serialize)]
struct TcpTls {
    version: String,
    #[serde(rename = "serverName")]
    server_name: String,
    #[serde(
        rename = "negotiatedProtocol",
        skip_serializing_if = "String::is_empty"
    )]
    negotiated_protocol: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    curves: String,
    #[serde(rename = "cipherSuite")]
    cipher_suite: String,
}

pub(crate) struct BoundTcp {
    tcp: TcpListener,
    tls: Option<(TcpListener, TlsAcceptor)>,
    base: TcpAssertions,
}

pub(crate) async fn bind(config: &EchoConfig) -> anyhow::Result<BoundTcp> {
    let tcp = bind_tcp(config, config.tcp_port, "TCP").await?;
    let tls = match cert_and_key(&config.tls_server_cert, &config.tls_server_priv_key) {
        Some((cert, key)) => {
            let acceptor = tls::acceptor(cert, key, None, &[])?;
            Some((bind_tcp(config, config.tls_port, "TLS").await?, acceptor))
        }
        None => None,
    };
    let id = &config.identity;
    // Upstream echoes the configured ports; we report the bound ones so port 0
    // yields something useful (the TLS port is reported even when disabled).
    let tlsport = match &tls {
        Some((listener, _)) => port_of(listener)?,
        None => config.tls_port,
    };
    let base = TcpAssertions {
        namespace: id.namespace.clone(),
        ingress: id.ingress.clone(),
        service: id.service.clone(),
        pod: id.pod.clone(),
        tcpport: port_of(&tcp)?.to_string(),
        tlsport: tlsport.to_string(),
        is_tls: false,
        tls: None,
    };
    Ok(BoundTcp { tcp, tls, base })
}

impl BoundTcp {
    pub(crate) fn ports(&self) -> anyhow::Result<Ports> {
        Ok(Ports {
            tcp: Some(port_of(&self.tcp)?),
            tls: self.tls.as_ref().map(|(l, _)| port_of(l)).transpose()?,
            ..Ports::default()
        })
    }

    pub(crate) async fn serve(self) -> anyhow::Result<()> {
        let base = Arc::new(self.base);
        let plain = tokio::spawn(accept_loop(self.tcp, None, base.clone()));
        if let Some((listener, acceptor)) = self.tls {
            tokio::spawn(accept_loop(listener, Some(acceptor), base));
        }
        plain.await?;
        Ok(())
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    base: Arc<TcpAssertions>,
) {
    loop {
        let (stream, _remote) = accept_next(&listener).await;
        let acceptor = acceptor.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let mut assertions = (*base).clone();
            match acceptor {
                None => {
                    let _ = converse(stream, assertions).await;
                }
                Some(acceptor) => {
                    let Some(tls) = tls::handshake(&acceptor, stream).await else {
                        return;
                    };
                    let facts = TlsFacts::of(tls.get_ref().1);
                    assertions.is_tls = true;
                    assertions.tls = Some(TcpTls {
                        version: facts.version_go(),
                        server_name: facts.server_name.clone(),
                        negotiated_protocol: facts.alpn.clone(),
                        curves: facts.curve.clone(),
                        cipher_suite: facts.cipher_suite.clone(),
                    });
                    let _ = converse(tls, assertions).await;
                }
            }
        });
    }
}

async fn converse<IO>(io: IO, assertions: TcpAssertions) -> std::io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let test_line = {
        let mut line = serde_json::to_vec(&assertions).map_err(std::io::Error::other)?;
        line.push(b'\n');
        line
    };
    let mut io = BufReader::new(io);
    io.get_mut().write_all(WELCOME.as_bytes()).await?;
    io.get_mut().flush().await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut io)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 || (line.len() > MAX_LINE && line.last() != Some(&b'\n')) {
            return Ok(());
        }
        // bufio.ScanLines drops the newline and one trailing CR.
        let mut text = line.as_slice();
        text = text.strip_suffix(b"\n").unwrap_or(text);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        let reply: &[u8] = match text {
            b"TEST" => &test_line,
            b"IS_TLS" if assertions.is_tls => b"true\n",
            b"IS_TLS" => b"false\n",
            b"PING" => b"PONG\n",
            _ => continue,
        };
        io.get_mut().write_all(reply).await?;
        io.get_mut().flush().await?;
    }
}
