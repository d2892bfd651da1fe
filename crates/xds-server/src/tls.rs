//! The xDS server's side of mutual TLS: its certificate and the CA its clients' certificates
//! must chain to. Plain PEM text in, so callers need no TLS library of their own.
//!
//! The server certificate can be swapped while the server runs ([`ServerCert::replace`]):
//! each handshake asks a resolver for the current certificate, so a renewed certificate
//! serves every new connection at once and established streams are left alone. That is why
//! TLS is terminated here with tokio-rustls rather than by tonic's static `ServerTlsConfig`;
//! tonic still sees the client's certificates (its `Connected` impl for rustls streams), so
//! identities work as before.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::Stream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::Error;

/// Longest a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more wait in the accept queue, so a flood of idle
/// connections cannot exhaust memory.
const MAX_HANDSHAKES: usize = 256;

/// TLS material of the xDS server (all PEM).
#[derive(Clone)]
pub struct XdsTls {
    /// The server certificate (optionally followed by intermediates).
    pub server_cert_pem: String,
    /// The server's private key.
    pub server_key_pem: String,
    /// The CA that signs client certificates; a client whose certificate does not chain to
    /// it fails the handshake.
    pub client_ca_pem: String,
}

impl std::fmt::Debug for XdsTls {
    /// Never prints the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdsTls")
            .field("server_cert_pem", &self.server_cert_pem)
            .field("client_ca_pem", &self.client_ca_pem)
            .finish_non_exhaustive()
    }
}

/// The server certificate a running xDS server presents; clones share it, so the holder of
/// one swaps what the server presents from the next handshake on.
#[derive(Clone)]
pub struct ServerCert {
    current: Arc<ArcSwap<CertifiedKey>>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert").finish_non_exhaustive()
    }
}

impl ServerCert {
    /// A certificate (chain) and its private key, checked to belong together.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        Ok(Self {
            current: Arc::new(ArcSwap::from_pointee(certified_key(cert_pem, key_pem)?)),
        })
    }

    /// Presents `cert_pem` from the next handshake on. On error the current one stays.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), Error> {
        self.current
            .store(Arc::new(certified_key(cert_pem, key_pem)?));
        Ok(())
    }
}

#[derive(Debug)]
struct Resolver(ServerCert);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current.load_full())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(what: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::TlsMaterial(format!("{what} is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::TlsMaterial(format!(
            "{what} holds no PEM certificate"
        )));
    }
    for cert in &certs {
        x509_parser::parse_x509_certificate(cert)
            .map_err(|e| Error::TlsMaterial(format!("{what} is not an X.509 certificate: {e}")))?;
    }
    Ok(certs)
}

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, Error> {
    let chain = certificates("the server certificate", cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| Error::TlsMaterial("the server key is not a PEM private key".into()))?;
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        Error::TlsMaterial(format!(
            "the server certificate and key do not belong together: {e}"
        ))
    })?;
    Ok(certified)
}

impl XdsTls {
    /// The rustls server config: client certificates required, signed by the client CA; the
    /// server certificate from `cert`.
    pub(crate) fn server_config(
        &self,
        cert: &ServerCert,
    ) -> Result<Arc<rustls::ServerConfig>, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in certificates("the client CA", &self.client_ca_pem)? {
            roots
                .add(ca)
                .map_err(|e| Error::TlsMaterial(format!("the client CA is not usable: {e}")))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| Error::TlsMaterial(format!("the client CA is not usable: {e}")))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsMaterial(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(Resolver(cert.clone())));
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A [`ServerCert`] of this material's certificate and key.
    pub fn server_cert(&self) -> Result<ServerCert, Error> {
        ServerCert::from_pem(&self.server_cert_pem, &self.server_key_pem)
    }
}

/// Accepted connections after a successful handshake. Handshakes run concurrently (at most
/// [`MAX_HANDSHAKES`], each within [`HANDSHAKE_TIMEOUT`]); a failed one is logged and dropped.
pub(crate) fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> Pin<Box<dyn Stream<Item = std::io::Result<TlsStream<TcpStream>>> + Send>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = tokio::sync::mpsc::channel(MAX_HANDSHAKES);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (tcp, peer) = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "xDS accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "xDS TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "xDS TLS handshake timed out"),
                }
            });
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
