//! Suite-setup certificates (`generate_ca`, `generate_certificate`) with rcgen.
//!
//! Deviation from the suite's `certificate_profile`: keys are ECDSA P-256 (PKCS#8 PEM)
//! instead of RSA 2048 (PKCS#1), because rcgen cannot generate RSA keys with the ring
//! backend. Subjects, SANs, usages, CA flags and validity follow the profile.

use std::collections::BTreeMap;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use serde_json::{Value, json};

/// Generated CAs (kept with their keys to sign leaves) and the Secrets/ConfigMaps made.
#[derive(Default)]
pub struct CertStore {
    cas: BTreeMap<String, (Issuer<'static, KeyPair>, String)>,
}

impl CertStore {
    /// A new CA; returns the ConfigMap holding `ca.crt`.
    pub fn generate_ca(&mut self, configmap: &str) -> anyhow::Result<Value> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "gatewayapi");
        dn.push(DnType::OrganizationName, "Kubernetes Gateway API");
        dn.push(DnType::CountryName, "US");
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from(2024u64));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let pem = cert.pem();
        let (ns, name) = super::util::split_ref(configmap);
        self.cas.insert(
            configmap.to_string(),
            (Issuer::new(params, key), pem.clone()),
        );
        Ok(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            "data": {"ca.crt": pem},
        }))
    }

    /// A new leaf certificate; returns the `kubernetes.io/tls` Secret.
    pub fn generate_certificate(
        &mut self,
        secret: &str,
        hosts: &[String],
        issuer: &Value,
        usage: &str,
    ) -> anyhow::Result<Value> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "default");
        dn.push(DnType::OrganizationName, "Acme Co");
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.extended_key_usages = vec![if usage == "client" {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        params.serial_number = Some(SerialNumber::from(super::util::random_u64() >> 1));
        validity(&mut params);
        if usage != "client" {
            for host in hosts {
                params.subject_alt_names.push(san(host)?);
            }
        }
        let key = KeyPair::generate()?;
        let cert = match issuer.get("ca").and_then(Value::as_str) {
            Some(ca) => {
                let (issuer, _) = self
                    .cas
                    .get(ca)
                    .ok_or_else(|| anyhow::anyhow!("CA {ca} not generated yet"))?;
                params.signed_by(&key, issuer)?
            }
            None => params.self_signed(&key)?,
        };
        let (ns, name) = super::util::split_ref(secret);
        Ok(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": ns},
            "data": {"tls.crt": b64encode(cert.pem().as_bytes()), "tls.key": b64encode(key.serialize_pem().as_bytes())},
        }))
    }
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365);
}

fn san(host: &str) -> anyhow::Result<SanType> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let dns_ok = !bare.is_empty()
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if dns_ok {
        return Ok(SanType::DnsName(host.try_into()?));
    }
    Ok(SanType::URI(host.try_into()?))
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn b64encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 decoding (whitespace ignored).
pub fn b64decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "abcd", "hello world!"] {
            assert_eq!(b64decode(&b64encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64encode(b"ab"), "YWI=");
    }
}
