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
pub(crate) fn resolve(snapshot: &Snapshot, from_kind: &str, from_ns: &str, r: &CertRef<'_>) -> Result<TlsSecret, CertProblem> {
    let group = r.group.unwrap_or("");
    let kind = r.kind.unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        return Err(CertProblem::Invalid(format!("certificateRef {group}/{kind} {} is not a Secret", r.name)));
    }
    let namespace = r.namespace.unwrap_or(from_ns);
    let from = From { group: GATEWAY_GROUP, kind: from_kind, namespace: from_ns };
    let to = To { group: "", kind: "Secret", namespace, name: r.name };
    if !refs::permitted(snapshot, &from, &to) {
        return Err(CertProblem::NotPermitted(format!(
            "certificateRef to Secret {namespace}/{} is not permitted by any ReferenceGrant",
            r.name
        )));
    }
    let Some(secret) = snapshot.secrets.get(namespace, r.name) else {
        return Err(CertProblem::Invalid(format!("Secret {namespace}/{} does not exist", r.name)));
    };
    validate(secret)
        .map(|(certificate_chain, private_key)| TlsSecret { name: format!("{namespace}/{}", r.name), certificate_chain, private_key })
        .map_err(|why| CertProblem::Invalid(format!("Secret {namespace}/{}: {why}", r.name)))
}

/// Checks a TLS Secret and returns its certificate chain and key as PEM text.
fn validate(secret: &Secret) -> Result<(String, String), String> {
    if secret.type_.as_deref().is_some_and(|t| t != "kubernetes.io/tls") {
        return Err(format!("type {} is not kubernetes.io/tls", secret.type_.as_deref().unwrap_or_default()));
    }
    let get = |key: &str| -> Option<String> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
            .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(key)).cloned())
    };
    let cert = get("tls.crt").ok_or("tls.crt is missing")?;
    let key = get("tls.key").ok_or("tls.key is missing")?;
    let blocks: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(cert.as_bytes()).collect();
    if blocks.is_empty() {
        return Err("tls.crt holds no PEM certificate".into());
    }
    for block in blocks {
        let block = block.map_err(|e| format!("tls.crt is not valid PEM: {e}"))?;
        block.parse_x509().map_err(|e| format!("tls.crt holds an invalid certificate: {e}"))?;
    }
    let key_ok = x509_parser::pem::Pem::iter_from_buffer(key.as_bytes())
        .next()
        .and_then(Result::ok)
        .is_some_and(|p| p.label.ends_with("PRIVATE KEY"));
    if !key_ok {
        return Err("tls.key holds no PEM private key".into());
    }
    Ok((cert, key))
}

/// DNS names (SANs, or the subject CN when there are none) of a PEM chain's first certificate.
pub(crate) fn dns_names(pem: &str) -> Vec<String> {
    let Some(Ok(block)) = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).next() else { return vec![] };
    let Ok(cert) = block.parse_x509() else { return vec![] };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                names.push(n.to_string());
            }
        }
    }
    if names.is_empty() {
        names.extend(cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_string));
    }
    names
}
