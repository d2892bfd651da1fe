//! TLS certificates referenced by listeners: Secrets of type `kubernetes.io/tls` holding a
//! parseable certificate chain and private key, in the Gateway's namespace or permitted by
//! a ReferenceGrant.

use ferrogate_api::GATEWAY_GROUP;
use ferrogate_api::k8s::Secret;
use ferrogate_ir::TlsSecret;
use ferrogate_store::Snapshot;

use crate::refs::{self, From, To};

/// A certificateRef as written.
pub(crate) struct CertRef<'a> {
    pub group: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
}

/// Why a certificate reference is unusable.
pub(crate) enum CertProblem {
    /// Cross-namespace without a ReferenceGrant.
    NotPermitted(String),
    /// Missing, wrong kind or type, unreadable.
    Invalid(String),
}

/// Resolves one reference made by a Gateway (or ListenerSet) of `from_kind` in `from_ns`.
pub(crate) fn resolve(
    snapshot: &Snapshot,
    from_kind: &str,
    from_ns: &str,
    r: &CertRef<'_>,
) -> Result<TlsSecret, CertProblem> {
    let group = r.group.unwrap_or("");
    let kind = r.kind.unwrap_or("Secret");
    if !group.is_empty() && group != "core" {
        return Err(CertProblem::Invalid(format!(
            "invalid certificate reference group: {group}"
        )));
    }
    if kind != "Secret" {
        return Err(CertProblem::Invalid(format!(
            "invalid certificate reference kind: {kind}"
        )));
    }
    let namespace = r.namespace.unwrap_or(from_ns);
    let from = From {
        group: GATEWAY_GROUP,
        kind: from_kind,
        namespace: from_ns,
    };
    let to = To {
        group: "",
        kind: "Secret",
        namespace,
        name: r.name,
    };
    if !refs::permitted(snapshot, &from, &to) {
        return Err(CertProblem::NotPermitted(format!(
            "certificateRef to Secret {namespace}/{} is not permitted by any ReferenceGrant",
            r.name
        )));
    }
    let Some(secret) = snapshot.secrets.get(namespace, r.name) else {
        return Err(CertProblem::Invalid(format!(
            "Secret {namespace}/{} does not exist",
            r.name
        )));
    };
    validate(secret)
        .map(|(certificate_chain, private_key)| TlsSecret {
            name: format!("{namespace}/{}", r.name),
            certificate_chain,
            private_key,
        })
        .map_err(|why| CertProblem::Invalid(format!("Secret {namespace}/{}: {why}", r.name)))
}

/// Checks a TLS Secret and returns its certificate chain and key as PEM text.
fn validate(secret: &Secret) -> Result<(String, String), String> {
    if secret
        .type_
        .as_deref()
        .is_some_and(|t| t != "kubernetes.io/tls")
    {
        return Err(format!(
            "type {} is not kubernetes.io/tls",
            secret.type_.as_deref().unwrap_or_default()
        ));
    }
    let get = |key: &str| -> Option<String> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .cloned()
            })
    };
    let cert = get("tls.crt").ok_or("tls.crt is missing")?;
    let key = get("tls.key").ok_or("tls.key is missing")?;
    let blocks: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(cert.as_bytes()).collect();
    if blocks.is_empty() {
        return Err("tls.crt holds no PEM certificate".into());
    }
    for block in blocks {
        let block = block.map_err(|e| format!("tls.crt is not valid PEM: {e}"))?;
        block
            .parse_x509()
            .map_err(|e| format!("tls.crt holds an invalid certificate: {e}"))?;
    }
    let Some(key_block) = x509_parser::pem::Pem::iter_from_buffer(key.as_bytes())
        .next()
        .and_then(Result::ok)
        .filter(|p| p.label.ends_with("PRIVATE KEY"))
    else {
        return Err("tls.key holds no PEM private key".into());
    };
    if !key_matches_certificate(&cert, &key_block.contents) {
        return Err("tls.key does not match the certificate in tls.crt".into());
    }
    Ok((cert, key))
}

/// DNS names (SANs, or the subject CN when there are none) of a PEM chain's first certificate.
pub(crate) fn dns_names(pem: &str) -> Vec<String> {
    let Some(Ok(block)) = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).next() else {
        return vec![];
    };
    let Ok(cert) = block.parse_x509() else {
        return vec![];
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                names.push(n.to_string());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_string),
        );
    }
    names
}

/// Whether a private key (DER: PKCS#8, PKCS#1 RSA or SEC1 EC) belongs to the first
/// certificate of a chain, by comparing public keys. Unknown key encodings are given the
/// benefit of the doubt: Envoy will reject a real mismatch when it loads the pair.
fn key_matches_certificate(chain: &str, key_der: &[u8]) -> bool {
    let Some(Ok(block)) = x509_parser::pem::Pem::iter_from_buffer(chain.as_bytes()).next() else {
        return false;
    };
    let Ok(cert) = block.parse_x509() else {
        return false;
    };
    let cert_public = cert.public_key().subject_public_key.data.to_vec();
    match derived_public_key(key_der) {
        Some(public) => {
            public.len() >= 16
                && cert_public
                    .windows(public.len())
                    .any(|w| w == public.as_slice())
        }
        None => true,
    }
}

/// The public key embedded in a private key, when the encoding carries it.
fn derived_public_key(der: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::der_parser::ber::BerObjectContent;
    use x509_parser::der_parser::der::parse_der;
    let (_, outer) = parse_der(der).ok()?;
    let items = outer.as_sequence().ok()?;
    // PKCS#8: version, algorithm, OCTET STRING(inner key) -> look inside.
    if items.len() >= 3
        && let BerObjectContent::OctetString(inner) = &items[2].content
    {
        return derived_public_key(inner);
    }
    // SEC1 EC key: version, privateKey, [0] params, [1] publicKey BIT STRING.
    for item in items {
        if item.header.raw_tag() == Some(&[0xa1]) {
            let (_, bits) = parse_der(item.as_slice().ok()?).ok()?;
            if let BerObjectContent::BitString(_, b) = &bits.content {
                return Some(b.data.to_vec());
            }
        }
    }
    // PKCS#1 RSA: version, modulus, publicExponent, ... The modulus appears verbatim inside
    // the certificate's RSAPublicKey, so it is what gets compared.
    if items.len() >= 9 {
        return Some(items[1].as_slice().ok()?.to_vec());
    }
    None
}
