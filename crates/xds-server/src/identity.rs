//! Client identity: which Gateway an xDS client may read, from its TLS client certificate.
//!
//! With mutual TLS on, every Envoy presents a certificate signed by Ferrogate's xDS CA whose
//! URI SAN names one Gateway (`spiffe://gateway.ferrogate.dev/ns/<namespace>/gateway/<name>`,
//! see [`ferrogate_api::xds_identity`]). A stream is served only when that Gateway is the one
//! its `node.cluster` asks for; `node.cluster` alone is a claim anyone can make. Every refusal
//! is counted by [`Rejection`] reason, so an impostor shows up in metrics.

use ferrogate_api::xds_identity::parse_xds_identity;
use tonic::Status;
use tonic::transport::CertificateDer;
use x509_parser::extensions::GeneralName;

/// Why a stream was refused on identity grounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// TLS is on but the connection carries no client certificate (cannot happen with
    /// required client auth; counted in case the transport ever lets one through).
    NoClientCertificate,
    /// The client certificate names no Gateway (no Ferrogate identity URI SAN, several of
    /// them, or it does not parse).
    NoIdentity,
    /// The certificate's Gateway is not the one `node.cluster` asks for.
    WrongGateway,
    /// A later request named another Gateway than the stream's first one.
    NodeChanged,
    /// A request larger than the server decodes (gRPC's message size limit).
    OversizedMessage,
    /// A request that is not a valid protobuf message of the expected type.
    MalformedMessage,
}

impl Rejection {
    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoClientCertificate => "no_client_certificate",
            Self::NoIdentity => "no_identity",
            Self::WrongGateway => "wrong_gateway",
            Self::NodeChanged => "node_changed",
            Self::OversizedMessage => "oversized_message",
            Self::MalformedMessage => "malformed_message",
        }
    }
}

/// The Gateway id (`<namespace>/<name>`) the peer's leaf certificate names.
pub(crate) fn gateway_of_peer(
    certs: Option<&[CertificateDer<'_>]>,
) -> Result<String, (Rejection, Status)> {
    let leaf = certs.and_then(|c| c.first()).ok_or_else(|| {
        (
            Rejection::NoClientCertificate,
            Status::unauthenticated("xDS requires a client certificate"),
        )
    })?;
    let no_identity = |why: &str| {
        (
            Rejection::NoIdentity,
            Status::permission_denied(format!("the client certificate names no Gateway: {why}")),
        )
    };
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|_| no_identity("it does not parse"))?;
    let sans = cert
        .subject_alternative_name()
        .map_err(|_| no_identity("its subjectAltName does not parse"))?
        .ok_or_else(|| no_identity("it has no subjectAltName"))?;
    let mut gateways = sans.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(uri) => parse_xds_identity(uri),
        _ => None,
    });
    let (namespace, name) = gateways.next().ok_or_else(|| {
        no_identity("no spiffe://gateway.ferrogate.dev/ns/<namespace>/gateway/<name> URI SAN")
    })?;
    // Two identities would make the certificate ambiguous; refuse rather than pick one.
    if gateways.next().is_some() {
        return Err(no_identity("it names more than one Gateway"));
    }
    Ok(format!("{namespace}/{name}"))
}

/// Allows a stream for `requested` (its `node.cluster`) only when the peer's identity is
/// that Gateway. `identity` is `None` when the server runs without TLS.
pub(crate) fn authorize(
    identity: Option<&str>,
    requested: &str,
) -> Result<(), (Rejection, Status)> {
    match identity {
        Some(own) if own != requested => Err((
            Rejection::WrongGateway,
            Status::permission_denied(format!(
                "client certificate belongs to Gateway {own}, not to {requested} (node.cluster)"
            )),
        )),
        _ => Ok(()),
    }
}
