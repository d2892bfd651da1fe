//! Ferrogate's xDS PKI: the CA that signs the xDS server certificate and one client
//! certificate per Gateway, and loading those files back from a directory.
//!
//! A Gateway's client certificate carries the URI SAN
//! `spiffe://gateway.ferrogate.dev/ns/<namespace>/gateway/<name>`
//! ([`ferrogate_api::xds_identity`]); the xDS server serves a stream only the snapshot of the
//! Gateway its peer certificate names. The controller issues these certificates into a
//! Secret per Gateway; standalone mode issues them into the work directory at start.
//!
//! Lives in `runtime` because issuing needs randomness (fresh keys) and a clock (validity);
//! every key is ECDSA P-256.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ferrogate_api::xds_identity::xds_identity_uri;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType,
};
use time::{Duration, OffsetDateTime};

/// Validity of the CA.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Validity of server and client certificates.
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Backdating of `notBefore`, so a peer whose clock is slightly behind accepts a fresh
/// certificate.
const CLOCK_SKEW: Duration = Duration::minutes(5);
/// Subject common name of a CA made by [`XdsCa::generate`].
const CA_COMMON_NAME: &str = "ferrogate xDS CA";

/// File names in a directory of xDS TLS material (the keys of the per-Gateway Secret).
pub const CA_CERT_FILE: &str = "ca.crt";
/// CA private key (only where certificates are issued).
pub const CA_KEY_FILE: &str = "ca.key";
/// Certificate (server or client) signed by the CA.
pub const CERT_FILE: &str = "tls.crt";
/// Private key of [`CERT_FILE`].
pub const KEY_FILE: &str = "tls.key";

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its PKCS#8 private key (PEM).
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    /// Never prints the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// The CA of the xDS connection: signs the server certificate and the per-Gateway client
/// certificates. Both sides trust only this CA.
pub struct XdsCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for XdsCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdsCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl XdsCa {
    /// A new self-signed CA with a fresh key, valid for 10 years.
    pub fn generate() -> anyhow::Result<Self> {
        let key = new_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, CA_COMMON_NAME);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "ferrogate");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, CA_VALIDITY);
        let cert = params
            .self_signed(&key)
            .context("cannot self-sign the xDS CA")?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// An existing CA from its certificate and private key (PEM). Fails when either does not
    /// parse or the key does not belong to the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        let key = KeyPair::from_pem(key_pem).context("xDS CA key is not a PEM private key")?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("xDS CA certificate is not PEM: {e}"))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| anyhow::anyhow!("xDS CA certificate does not parse: {e}"))?;
        anyhow::ensure!(
            cert.public_key().raw == key.subject_public_key_info().as_slice(),
            "xDS CA key does not match the CA certificate"
        );
        anyhow::ensure!(
            cert.is_ca(),
            "xDS CA certificate is not a CA (basicConstraints cA is not set)"
        );
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).context("xDS CA certificate cannot sign")?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            issuer,
        })
    }

    /// The CA certificate (PEM), which both sides trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PEM). Keep it where certificates are issued only.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A server certificate for the xDS server, with DNS SANs `dns_names` and IP SANs `ips`
    /// (e.g. the xDS Service's names from [`xds_service_dns_names`], or `localhost` and
    /// `127.0.0.1` in standalone mode).
    pub fn issue_server(
        &self,
        dns_names: &[String],
        ips: &[std::net::IpAddr],
    ) -> anyhow::Result<IssuedCert> {
        self.issue_server_valid_for(dns_names, ips, LEAF_VALIDITY)
    }

    /// As [`Self::issue_server`], valid for `validity` (the controller renews its own
    /// server certificate with this; tests use short lives).
    pub fn issue_server_valid_for(
        &self,
        dns_names: &[String],
        ips: &[std::net::IpAddr],
        validity: Duration,
    ) -> anyhow::Result<IssuedCert> {
        anyhow::ensure!(
            !dns_names.is_empty() || !ips.is_empty(),
            "an xDS server certificate needs at least one name"
        );
        let mut sans = Vec::new();
        for name in dns_names {
            let name = Ia5String::try_from(name.as_str())
                .with_context(|| format!("{name:?} is not a valid DNS name"))?;
            sans.push(SanType::DnsName(name));
        }
        sans.extend(ips.iter().copied().map(SanType::IpAddress));
        let cn = dns_names
            .first()
            .cloned()
            .unwrap_or_else(|| ips[0].to_string());
        self.issue_leaf(&cn, sans, ExtendedKeyUsagePurpose::ServerAuth, validity)
    }

    /// The client certificate of Gateway `namespace/name`: its only SAN is the URI
    /// [`xds_identity_uri`], which the xDS server maps back to the Gateway.
    pub fn issue_gateway_client(&self, namespace: &str, name: &str) -> anyhow::Result<IssuedCert> {
        anyhow::ensure!(
            !namespace.is_empty()
                && !name.is_empty()
                && !namespace.contains('/')
                && !name.contains('/'),
            "invalid Gateway {namespace:?}/{name:?}"
        );
        let uri = xds_identity_uri(namespace, name);
        let san = Ia5String::try_from(uri.as_str())
            .with_context(|| format!("{uri:?} is not a valid URI SAN"))?;
        self.issue_leaf(
            &format!("{namespace}/{name}"),
            vec![SanType::URI(san)],
            ExtendedKeyUsagePurpose::ClientAuth,
            LEAF_VALIDITY,
        )
    }

    fn issue_leaf(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        validity: Duration,
    ) -> anyhow::Result<IssuedCert> {
        let key = new_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        // A Gateway name can be up to 253 characters, more than a CN may hold (64); the SAN
        // is what identifies the peer, the CN is only a label for humans.
        params.distinguished_name.push(
            DnType::CommonName,
            common_name.chars().take(64).collect::<String>(),
        );
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, validity);
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("cannot sign an xDS certificate")?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The DNS names of the xDS Service `service` in `namespace`: `<svc>`, `<svc>.<ns>`,
/// `<svc>.<ns>.svc` and `<svc>.<ns>.svc.cluster.local`.
pub fn xds_service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

fn new_key() -> anyhow::Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("cannot generate an ECDSA P-256 key")
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + validity;
}

/// The xDS server's TLS material, read from a directory holding `ca.crt` (the CA that signs
/// client certificates), `tls.crt` and `tls.key` (the server's), and optionally `ca.key`
/// (needed only to issue certificates).
#[derive(Clone)]
pub struct XdsTlsFiles {
    /// CA certificate (PEM).
    pub ca_cert: String,
    /// Server certificate (PEM).
    pub server_cert: String,
    /// Server private key (PEM).
    pub server_key: String,
    /// CA private key (PEM), when `ca.key` exists.
    pub ca_key: Option<String>,
}

impl std::fmt::Debug for XdsTlsFiles {
    /// Never prints private keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdsTlsFiles")
            .field("ca_cert", &self.ca_cert)
            .field("server_cert", &self.server_cert)
            .field("ca_key", &self.ca_key.is_some())
            .finish_non_exhaustive()
    }
}

impl XdsTlsFiles {
    /// Reads the files from `dir`. A missing or unreadable required file is an error naming
    /// it; so is a file that is not PEM.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| -> anyhow::Result<String> {
            let path: PathBuf = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read xDS TLS file {}", path.display()))?;
            anyhow::ensure!(
                text.contains("-----BEGIN "),
                "xDS TLS file {} is not PEM",
                path.display()
            );
            Ok(text)
        };
        let ca_key_path = dir.join(CA_KEY_FILE);
        let ca_key = if ca_key_path.exists() {
            Some(read(CA_KEY_FILE)?)
        } else {
            None
        };
        Ok(Self {
            ca_cert: read(CA_CERT_FILE)?,
            server_cert: read(CERT_FILE)?,
            server_key: read(KEY_FILE)?,
            ca_key,
        })
    }

    /// The CA, when `ca.key` was present.
    pub fn ca(&self) -> Option<anyhow::Result<XdsCa>> {
        self.ca_key
            .as_deref()
            .map(|key| XdsCa::from_pem(&self.ca_cert, key))
    }
}

/// Writes `ca.crt`, `tls.crt` and `tls.key` into `dir` (created if missing); the key is
/// readable by its owner only. Used by standalone mode for each Gateway's Envoy.
pub fn write_client_files(
    dir: &Path,
    ca_cert_pem: &str,
    issued: &IssuedCert,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_file(&dir.join(CA_CERT_FILE), ca_cert_pem.as_bytes(), 0o644)?;
    write_file(&dir.join(CERT_FILE), issued.cert_pem.as_bytes(), 0o644)?;
    write_file(&dir.join(KEY_FILE), issued.key_pem.as_bytes(), 0o600)
}

/// Writes atomically (temporary file + rename) with `mode`, so a reader never sees half a
/// key and a key is never briefly world-readable.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;

    fn parse(pem: &str) -> (Vec<String>, bool, bool) {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let sans = cert
            .subject_alternative_name()
            .unwrap()
            .map(|s| {
                s.value
                    .general_names
                    .iter()
                    .map(|n| match n {
                        GeneralName::URI(u) => format!("uri:{u}"),
                        GeneralName::DNSName(d) => format!("dns:{d}"),
                        GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
                        other => format!("{other:?}"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        (sans, eku.client_auth, eku.server_auth)
    }

    #[test]
    fn a_gateway_client_certificate_names_its_gateway() {
        let ca = XdsCa::generate().unwrap();
        let issued = ca.issue_gateway_client("default", "eg").unwrap();
        let (sans, client, server) = parse(&issued.cert_pem);
        assert_eq!(
            sans,
            ["uri:spiffe://gateway.ferrogate.dev/ns/default/gateway/eg"]
        );
        assert!(client && !server);
        assert!(issued.key_pem.contains("PRIVATE KEY"));
        assert!(ca.issue_gateway_client("a/b", "c").is_err());
    }

    #[test]
    fn a_server_certificate_has_the_service_names() {
        let ca = XdsCa::generate().unwrap();
        let names = xds_service_dns_names("ferrogate", "ferrogate-system");
        let issued = ca
            .issue_server(&names, &["127.0.0.1".parse().unwrap()])
            .unwrap();
        let (sans, client, server) = parse(&issued.cert_pem);
        assert_eq!(sans[3], "dns:ferrogate.ferrogate-system.svc.cluster.local");
        assert_eq!(sans.len(), 5);
        assert!(server && !client);
        assert!(ca.issue_server(&["bücher.example".into()], &[]).is_err());
    }

    #[test]
    fn a_ca_reloads_from_pem_and_rejects_a_foreign_key() {
        let ca = XdsCa::generate().unwrap();
        let again = XdsCa::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        assert!(again.issue_gateway_client("ns", "gw").is_ok());
        let other = XdsCa::generate().unwrap();
        let err = XdsCa::from_pem(ca.cert_pem(), &other.key_pem()).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        assert!(XdsCa::from_pem("garbage", &ca.key_pem()).is_err());
        assert!(XdsCa::from_pem(ca.cert_pem(), "garbage").is_err());
    }

    #[test]
    fn tls_files_load_and_missing_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = XdsTlsFiles::load(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("ca.crt"), "{err:#}");
        let ca = XdsCa::generate().unwrap();
        let server = ca.issue_server(&["localhost".into()], &[]).unwrap();
        write_client_files(dir.path(), ca.cert_pem(), &server).unwrap();
        let files = XdsTlsFiles::load(dir.path()).unwrap();
        assert_eq!(files.server_cert, server.cert_pem);
        assert!(files.ca().is_none());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join(CA_KEY_FILE), ca.key_pem()).unwrap();
        assert!(XdsTlsFiles::load(dir.path()).unwrap().ca().unwrap().is_ok());
        std::fs::write(dir.path().join(CERT_FILE), "not pem").unwrap();
        let err = XdsTlsFiles::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("tls.crt"), "{err}");
    }
}
