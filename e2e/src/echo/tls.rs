//! TLS set-up shared by the HTTPS, gRPC-TLS and TCP-TLS ports (rustls with the
//! ring provider), and the connection facts each role echoes back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{NamedGroup, ProtocolVersion, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::report::TlsAssertions;

/// A client that stalls its handshake longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds an acceptor from PEM files: TLS 1.2 and 1.3, the given ALPN protocols
/// and, with a CA bundle, optional client-certificate verification (a client
/// offering a certificate must chain to the bundle; none is accepted too, like
/// Go's `VerifyClientCertIfGiven`).
pub(crate) fn acceptor(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for der in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading client CA bundle {}", ca.display()))?
            {
                roots
                    .add(der.with_context(|| format!("parsing {}", ca.display()))?)
                    .with_context(|| format!("adding a CA of {}", ca.display()))?;
            }
            anyhow::ensure!(!roots.is_empty(), "no CA certificate in {}", ca.display());
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Runs the server handshake with a timeout; `None` when it fails.
pub(crate) async fn handshake<IO>(acceptor: &TlsAcceptor, io: IO) -> Option<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(err)) => {
            eprintln!("ferrogate-echo: TLS handshake failed: {err}");
            None
        }
        Err(_) => None,
    }
}

/// What a completed handshake negotiated, before role-specific formatting.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsFacts {
    pub(crate) version: Option<ProtocolVersion>,
    pub(crate) server_name: String,
    pub(crate) alpn: String,
    pub(crate) cipher_suite: String,
    pub(crate) curve: String,
    pub(crate) peer_certificates: Vec<String>,
}

impl TlsFacts {
    pub(crate) fn of(conn: &ServerConnection) -> TlsFacts {
        TlsFacts {
            version: conn.protocol_version(),
            server_name: conn.server_name().unwrap_or_default().to_owned(),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| iana_cipher_name(s.suite()))
                .unwrap_or_default(),
            curve: conn
                .negotiated_key_exchange_group()
                .map(|g| go_curve_name(g.name()))
                .unwrap_or_default(),
            peer_certificates: conn
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|c| pem_certificate(c))
                .collect(),
        }
    }

    /// The HTTP and gRPC roles' spelling: `TLSv1.3`.
    pub(crate) fn version_v(&self) -> String {
        match self.version {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            Some(ProtocolVersion::TLSv1_1) => "TLSv1.1",
            Some(ProtocolVersion::TLSv1_0) => "TLSv1.0",
            _ => "",
        }
        .to_owned()
    }

    /// Go's `tls.VersionName`, used by the TCP role: `TLS 1.3`.
    pub(crate) fn version_go(&self) -> String {
        match self.version {
            Some(ProtocolVersion::TLSv1_3) => "TLS 1.3".to_owned(),
            Some(ProtocolVersion::TLSv1_2) => "TLS 1.2".to_owned(),
            Some(ProtocolVersion::TLSv1_1) => "TLS 1.1".to_owned(),
            Some(ProtocolVersion::TLSv1_0) => "TLS 1.0".to_owned(),
            Some(other) => format!("0x{:04X}", u16::from(other)),
            None => String::new(),
        }
    }

    pub(crate) fn http_assertions(&self) -> TlsAssertions {
        TlsAssertions {
            version: self.version_v(),
            peer_certificates: self.peer_certificates.clone(),
            server_name: self.server_name.clone(),
            negotiated_protocol: self.alpn.clone(),
            cipher_suite: self.cipher_suite.clone(),
        }
    }
}

/// Go's `tls.CipherSuiteName`: IANA names (rustls prefixes TLS 1.3 suites
/// with `TLS13_`), `0x%04X` for unknown ones.
fn iana_cipher_name(suite: rustls::CipherSuite) -> String {
    match suite.as_str() {
        Some(name) => match name.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => name.to_owned(),
        },
        None => format!("0x{:04X}", u16::from(suite)),
    }
}

/// Go's `tls.CurveID.String()`.
fn go_curve_name(group: NamedGroup) -> String {
    match group {
        NamedGroup::X25519 => "X25519".to_owned(),
        NamedGroup::secp256r1 => "CurveP256".to_owned(),
        NamedGroup::secp384r1 => "CurveP384".to_owned(),
        NamedGroup::secp521r1 => "CurveP521".to_owned(),
        NamedGroup::X25519MLKEM768 => "X25519MLKEM768".to_owned(),
        other => format!("CurveID({})", u16::from(other)),
    }
}

/// Go's `pem.Encode` of a `CERTIFICATE` block: 64-column base64 lines.
pub(crate) fn pem_certificate(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_and_curve_names_follow_go() {
        assert_eq!(
            iana_cipher_name(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            iana_cipher_name(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
        assert_eq!(go_curve_name(NamedGroup::secp256r1), "CurveP256");
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let pem = pem_certificate(&[0u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
    }
}
