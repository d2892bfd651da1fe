//! TLS: downstream contexts (HTTPS and TLS listeners, certificates over SDS), upstream
//! contexts (BackendTLSPolicy), and the SDS Secrets themselves.

use envoy_types::pb::envoy::config::core::v3::{
    DataSource, TransportSocket, data_source::Specifier, transport_socket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, Secret,
    SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext,
    certificate_validation_context::TrustChainVerification,
    common_tls_context::ValidationContextType, secret, subject_alt_name_matcher::SanType,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};
use envoy_types::pb::google::protobuf::BoolValue;
use ferrogate_ir::{ClientValidation, TlsSecret, UpstreamTls};

use crate::common::{ads_config_source, pack};
use crate::type_url;

/// Name of the TLS transport socket.
pub const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// CA bundle used when a backend asks for the system trust store
/// (`WellKnownCACertificates: System`). This is the Debian/Ubuntu location, which the
/// Envoy images we ship use; `system_root_certs` is not implemented by Envoy yet.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// ALPN offered by HTTPS listeners.
pub const HTTPS_ALPN: [&str; 2] = ["h2", "http/1.1"];

/// A reference to the SDS Secret `name`, fetched over ADS.
pub fn sds_secret(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.to_string(),
        sds_config: Some(ads_config_source()),
    }
}

/// The SDS Secret for a certificate: `tls_certificate` with chain and key inline.
pub fn secret(s: &TlsSecret) -> Secret {
    Secret {
        name: s.name.clone(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(&s.certificate_chain)),
            private_key: Some(inline(&s.private_key)),
            ..Default::default()
        })),
    }
}

/// A DownstreamTlsContext serving `certificates` (SDS names, in the given order; Envoy picks
/// by SNI and key type), offering `alpn`, and, with `client_validation`, asking for client
/// certificates:
/// - strict: `require_client_certificate` and verification against the CA bundle;
/// - `allow_insecure_fallback`: the certificate is requested and checked against the CA, but
///   connections without one, or with an untrusted one, are accepted
///   (`trust_chain_verification: ACCEPT_UNTRUSTED`).
pub fn downstream_tls_context(
    certificates: &[String],
    client_validation: Option<&ClientValidation>,
    alpn: &[&str],
) -> DownstreamTlsContext {
    let mut common = CommonTlsContext {
        tls_certificate_sds_secret_configs: certificates.iter().map(|c| sds_secret(c)).collect(),
        alpn_protocols: alpn.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    };
    let mut require_client_certificate = None;
    if let Some(cv) = client_validation {
        let mut vc = CertificateValidationContext {
            trusted_ca: Some(inline(&cv.ca_certificates)),
            ..Default::default()
        };
        if cv.allow_insecure_fallback {
            vc.trust_chain_verification = TrustChainVerification::AcceptUntrusted as i32;
        } else {
            require_client_certificate = Some(BoolValue { value: true });
        }
        common.validation_context_type = Some(ValidationContextType::ValidationContext(vc));
    }
    DownstreamTlsContext {
        common_tls_context: Some(common),
        require_client_certificate,
        ..Default::default()
    }
}

/// The `envoy.transport_sockets.tls` socket of a listener filter chain.
pub fn downstream_transport_socket(ctx: &DownstreamTlsContext) -> TransportSocket {
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(
            type_url::DOWNSTREAM_TLS_CONTEXT,
            ctx,
        ))),
    }
}

/// The UpstreamTlsContext for a backend:
/// - `sni` sent as given;
/// - server certificate verified against the inline CA bundle, or the system bundle
///   ([`SYSTEM_CA_BUNDLE`]) when none is given;
/// - accepted SANs: each `dns:<name>` / `uri:<uri>` (exact; DNS wildcards follow RFC 6125),
///   or, when none are given, DNS `sni`. Entries without a known prefix are treated as DNS;
/// - the client certificate, when set, over SDS.
pub fn upstream_tls_context(t: &UpstreamTls) -> UpstreamTlsContext {
    let sans = if t.subject_alt_names.is_empty() {
        vec![san(SanType::Dns, &t.sni)]
    } else {
        t.subject_alt_names
            .iter()
            .map(|s| match s.split_once(':') {
                Some(("dns", v)) => san(SanType::Dns, v),
                Some(("uri", v)) => san(SanType::Uri, v),
                _ => san(SanType::Dns, s),
            })
            .collect()
    };
    let trusted_ca = match &t.ca_certificates {
        Some(pem) => inline(pem),
        None => DataSource {
            specifier: Some(Specifier::Filename(SYSTEM_CA_BUNDLE.to_string())),
            ..Default::default()
        },
    };
    UpstreamTlsContext {
        sni: t.sni.clone(),
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: t
                .client_certificate
                .iter()
                .map(|c| sds_secret(c))
                .collect(),
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: Some(trusted_ca),
                    match_typed_subject_alt_names: sans,
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The `envoy.transport_sockets.tls` socket of a cluster.
pub fn upstream_transport_socket(t: &UpstreamTls) -> TransportSocket {
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack(
            type_url::UPSTREAM_TLS_CONTEXT,
            &upstream_tls_context(t),
        ))),
    }
}

fn san(san_type: SanType, value: &str) -> SubjectAltNameMatcher {
    SubjectAltNameMatcher {
        san_type: san_type as i32,
        matcher: Some(StringMatcher {
            ignore_case: false,
            match_pattern: Some(MatchPattern::Exact(value.to_string())),
        }),
        ..Default::default()
    }
}

fn inline(s: &str) -> DataSource {
    DataSource {
        specifier: Some(Specifier::InlineString(s.to_string())),
        ..Default::default()
    }
}
