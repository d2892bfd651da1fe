//! The local cluster's key material: a CA that kube-apiserver's serving certificate chains
//! to (tests and kubectl trust it), and the service-account token signing key pair.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

/// Files written by [`write`].
#[derive(Clone, Debug)]
pub struct ClusterPki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub sa_public: PathBuf,
    pub sa_private: PathBuf,
}

fn key() -> anyhow::Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("cannot generate an ECDSA P-256 key")
}

fn validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(30);
}

/// A fresh CA named `common_name`: its certificate's PEM and the issuer that signs with it.
pub fn ca(common_name: &str) -> anyhow::Result<(String, Issuer<'static, KeyPair>)> {
    let ca_key = key()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, common_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca);
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    Ok((ca_pem, Issuer::new(ca, ca_key)))
}

/// Writes a fresh CA, a serving certificate for kube-apiserver (loopback, `localhost`, the
/// `kubernetes` Service names and its first ClusterIP `service_ip`), and an ECDSA key pair for
/// service-account tokens into `dir`.
pub fn write(dir: &Path, service_ip: &str) -> anyhow::Result<ClusterPki> {
    let (ca_pem, issuer) = ca("ferrogate-test-cluster-ca")?;

    let serving_key = key()?;
    let mut serving = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        service_ip.to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ])?;
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    validity(&mut serving);
    let serving_cert = serving.signed_by(&serving_key, &issuer)?;

    let sa = key()?;
    let pki = ClusterPki {
        ca_cert: dir.join("ca.crt"),
        ca_key: dir.join("ca.key"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        sa_public: dir.join("sa.pub"),
        sa_private: dir.join("sa.key"),
    };
    std::fs::write(&pki.ca_cert, &ca_pem)?;
    std::fs::write(&pki.ca_key, issuer.key().serialize_pem())?;
    std::fs::write(&pki.serving_cert, serving_cert.pem())?;
    std::fs::write(&pki.serving_key, serving_key.serialize_pem())?;
    std::fs::write(&pki.sa_public, sa.public_key_pem())?;
    std::fs::write(&pki.sa_private, sa.serialize_pem())?;
    Ok(pki)
}
