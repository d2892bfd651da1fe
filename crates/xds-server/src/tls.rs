//! The xDS server's side of mutual TLS: its certificate and the CA its clients' certificates
//! must chain to. Plain PEM text in, so callers need no TLS library of their own.

use std::time::Duration;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::Error;

/// Longest a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

impl XdsTls {
    /// Checks that each part is PEM of the right kind, so a wrong file gives an error that
    /// says which one rather than a generic TLS failure.
    fn check(&self) -> Result<(), Error> {
        let certificate = |what: &str, pem: &str| {
            let parsed = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                .map_err(|e| Error::TlsMaterial(format!("{what} is not PEM: {e}")))?;
            parsed.1.parse_x509().map_err(|e| {
                Error::TlsMaterial(format!("{what} is not an X.509 certificate: {e}"))
            })?;
            Ok::<(), Error>(())
        };
        certificate("the server certificate", &self.server_cert_pem)?;
        certificate("the client CA", &self.client_ca_pem)?;
        if !self.server_key_pem.contains("PRIVATE KEY-----") {
            return Err(Error::TlsMaterial(
                "the server key is not a PEM private key".into(),
            ));
        }
        Ok(())
    }

    /// tonic's server TLS config: client certificates required, signed by the client CA.
    pub(crate) fn server_config(&self) -> Result<ServerTlsConfig, Error> {
        self.check()?;
        Ok(ServerTlsConfig::new()
            .identity(Identity::from_pem(
                &self.server_cert_pem,
                &self.server_key_pem,
            ))
            .client_ca_root(Certificate::from_pem(&self.client_ca_pem))
            .client_auth_optional(false)
            .timeout(HANDSHAKE_TIMEOUT))
    }
}
