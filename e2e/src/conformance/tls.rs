//! TLS client settings of the schema (`server_name`, `trust`, `client_certificate`) as rustls
//! configurations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::util::split_ref;
use super::world::World;

/// What the server must prove.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Exactly this certificate (DER).
    Pin(Vec<u8>),
    /// A chain to one of these CAs, valid for the server name.
    Ca(Vec<CertificateDer<'static>>),
    /// Anything.
    Any,
}

/// Resolved TLS client settings.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// SNI (also the name verified).
    pub server_name: Option<String>,
    /// Server trust.
    pub trust: Trust,
    /// Client certificate chain and key (PEM).
    pub client: Option<(String, String)>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Merges a step-level and a case-level `tls` (case fields win) and resolves secrets.
pub fn settings(
    world: &World,
    step_tls: Option<&Value>,
    case_tls: Option<&Value>,
) -> Result<TlsSettings, String> {
    let mut merged = serde_json::Map::new();
    for v in [step_tls, case_tls].into_iter().flatten() {
        if let Some(m) = v.as_object() {
            for (k, x) in m {
                merged.insert(k.clone(), x.clone());
            }
        }
    }
    let server_name = merged
        .get("server_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let trust = match merged.get("trust") {
        Some(t) if t.get("secret").is_some() => {
            let (ns, name) = split_ref(t.get("secret").and_then(Value::as_str).unwrap_or_default());
            let key = t.get("key").and_then(Value::as_str).unwrap_or("tls.crt");
            let pem = world
                .secret_data(&ns, &name)
                .get(key)
                .cloned()
                .ok_or_else(|| format!("trust: Secret {ns}/{name} has no {key}"))?;
            let der = CertificateDer::pem_slice_iter(&pem)
                .next()
                .and_then(Result::ok)
                .ok_or("trust: no certificate in PEM")?;
            Trust::Pin(der.to_vec())
        }
        Some(t) if t.get("configmap").is_some() => {
            let (ns, name) = split_ref(
                t.get("configmap")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
            let key = t.get("key").and_then(Value::as_str).unwrap_or("ca.crt");
            let cm = world
                .object("ConfigMap", &ns, &name)
                .ok_or_else(|| format!("trust: ConfigMap {ns}/{name} missing"))?;
            let pem = cm
                .pointer(&format!("/data/{key}"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
                .filter_map(Result::ok)
                .collect();
            if certs.is_empty() {
                return Err(format!("trust: ConfigMap {ns}/{name} has no certificate"));
            }
            Trust::Ca(certs)
        }
        _ => Trust::Any,
    };
    let client = match merged
        .get("client_certificate")
        .and_then(|c| c.get("secret"))
        .and_then(Value::as_str)
    {
        Some(r) => {
            let (ns, name) = split_ref(r);
            let data = world.secret_data(&ns, &name);
            let crt = data
                .get("tls.crt")
                .ok_or_else(|| format!("client certificate Secret {ns}/{name} missing"))?;
            let key = data
                .get("tls.key")
                .ok_or_else(|| format!("client certificate Secret {ns}/{name} has no key"))?;
            Some((
                String::from_utf8_lossy(crt).to_string(),
                String::from_utf8_lossy(key).to_string(),
            ))
        }
        None => None,
    };
    Ok(TlsSettings {
        server_name,
        trust,
        client,
    })
}

#[derive(Debug)]
struct Verifier {
    trust: Trust,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Any => Ok(ServerCertVerified::assertion()),
            Trust::Pin(der) => {
                if end_entity.as_ref() == der.as_slice() {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::UnknownIssuer,
                    ))
                }
            }
            Trust::Ca(_) => self
                .webpki
                .as_ref()
                .expect("webpki verifier for CA trust")
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[derive(Debug)]
struct ClientCert {
    key: Option<Arc<CertifiedKey>>,
    requested: Arc<AtomicBool>,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.requested.store(true, Ordering::SeqCst);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A rustls client configuration; the flag records whether the server asked for a client
/// certificate.
pub fn client_config(
    s: &TlsSettings,
    alpn: &[&[u8]],
    min_tls12: bool,
) -> Result<(Arc<ClientConfig>, Arc<AtomicBool>), String> {
    let provider = provider();
    let webpki = match &s.trust {
        Trust::Ca(certs) => {
            let mut roots = RootCertStore::empty();
            for c in certs {
                roots
                    .add(c.clone())
                    .map_err(|e| format!("CA certificate: {e}"))?;
            }
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| e.to_string())?,
            )
        }
        _ => None,
    };
    let verifier = Arc::new(Verifier {
        trust: s.trust.clone(),
        webpki,
        provider: provider.clone(),
    });
    let requested = Arc::new(AtomicBool::new(false));
    let key = match &s.client {
        Some((crt, key)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(crt.as_bytes())
                    .filter_map(Result::ok)
                    .collect();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| format!("client key: {e}"))?;
            let signing = provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| format!("client key: {e}"))?;
            Some(Arc::new(CertifiedKey::new(chain, signing)))
        }
        None => None,
    };
    let _ = min_tls12;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(ClientCert {
            key,
            requested: requested.clone(),
        }));
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok((Arc::new(config), requested))
}

/// The rustls name for an SNI value; IP addresses and empty names send no SNI.
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_string()).map_err(|e| format!("server name {name:?}: {e}"))
}

/// Connects and completes a TLS handshake. The SNI is the settings' `server_name`, else
/// `default_sni`.
pub async fn connect(
    addr: SocketAddr,
    s: &TlsSettings,
    default_sni: &str,
    alpn: &[&[u8]],
) -> Result<(TlsStream<TcpStream>, Arc<AtomicBool>), (std::io::Error, bool)> {
    let (config, requested) =
        client_config(s, alpn, true).map_err(|e| (std::io::Error::other(e), false))?;
    let sni = s
        .server_name
        .clone()
        .unwrap_or_else(|| default_sni.to_string());
    let name = server_name(&sni).map_err(|e| (std::io::Error::other(e), false))?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| (e, false))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match connector.connect(name, tcp).await {
        Ok(stream) => Ok((stream, requested)),
        Err(e) => Err((e, requested.load(Ordering::SeqCst))),
    }
}
