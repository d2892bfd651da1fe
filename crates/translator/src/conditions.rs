//! Condition types and reasons of the Gateway API (and the few of Ferrogate's own), named
//! once, and [`Problem`]: what the code that finds a problem in the input hands on, so it
//! also decides what the user reads.

use ferrogate_status::Condition;
use ferrogate_status::Text;

/// A problem in the input, as the condition it sets to `False`: type, reason and message.
/// Translator problems are values like this, never `Err` of the translation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Problem {
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: Text,
}

impl Problem {
    fn new(type_: &'static str, reason: &'static str, message: impl Into<Text>) -> Self {
        Self {
            type_,
            reason,
            message: message.into(),
        }
    }

    /// `Accepted: False`.
    pub(crate) fn not_accepted(reason: &'static str, message: impl Into<Text>) -> Self {
        Self::new(types::ACCEPTED, reason, message)
    }

    /// `ResolvedRefs: False`.
    pub(crate) fn unresolved(reason: &'static str, message: impl Into<Text>) -> Self {
        Self::new(types::RESOLVED_REFS, reason, message)
    }

    /// `Programmed: False`.
    pub(crate) fn not_programmed(reason: &'static str, message: impl Into<Text>) -> Self {
        Self::new(types::PROGRAMMED, reason, message)
    }

    /// `Conflicted: True`.
    pub(crate) fn conflicted(reason: &'static str, message: impl Into<Text>) -> Self {
        Self::new(types::CONFLICTED, reason, message)
    }

    /// `OverlappingTLSConfig: True`.
    pub(crate) fn overlapping_tls(reason: &'static str, message: impl Into<Text>) -> Self {
        Self::new(types::OVERLAPPING_TLS_CONFIG, reason, message)
    }

    /// The same problem with its message prefixed (`rule 1: ...`).
    pub(crate) fn within(self, context: &str) -> Self {
        Self {
            message: format!("{context}: {}", self.message).into(),
            ..self
        }
    }

    /// The condition: `False` for the types that are `True` when all is well, `True` for
    /// the "abnormal-true" types that name a problem (`Conflicted`, `OverlappingTLSConfig`,
    /// `PartiallyInvalid`).
    pub(crate) fn condition(&self) -> Condition {
        match self.type_ {
            types::CONFLICTED | types::OVERLAPPING_TLS_CONFIG | types::PARTIALLY_INVALID => {
                Condition::ok(self.type_, self.reason, self.message.clone())
            }
            _ => Condition::not(self.type_, self.reason, self.message.clone()),
        }
    }

    /// The same reason and message on a condition of another type, `False`: a listener
    /// conflict also makes the listener `Accepted: False`.
    pub(crate) fn condition_as(&self, type_: &'static str) -> Condition {
        Condition::not(type_, self.reason, self.message.clone())
    }
}

/// Condition types.
pub mod types {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const CONFLICTED: &str = "Conflicted";
    pub const OVERLAPPING_TLS_CONFIG: &str = "OverlappingTLSConfig";
    pub const PARTIALLY_INVALID: &str = "PartiallyInvalid";
    pub const INSECURE_FRONTEND_VALIDATION_MODE: &str = "InsecureFrontendValidationMode";
}

/// Reasons.
pub mod reasons {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const INVALID: &str = "Invalid";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const NO_CONFLICTS: &str = "NoConflicts";
    pub const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
    /// Ferrogate-internal: a second TCP or UDP listener on a port (reported as ProtocolConflict).
    pub const PORT_TAKEN: &str = "PortTaken";
    pub const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    pub const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
    pub const INVALID_ROUTE_KINDS: &str = "InvalidRouteKinds";
    pub const LISTENERS_NOT_VALID: &str = "ListenersNotValid";
    pub const NOT_ALLOWED_BY_LISTENERS: &str = "NotAllowedByListeners";
    pub const NO_MATCHING_LISTENER_HOSTNAME: &str = "NoMatchingListenerHostname";
    pub const NO_MATCHING_PARENT: &str = "NoMatchingParent";
    pub const UNSUPPORTED_VALUE: &str = "UnsupportedValue";
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
    pub const PORT_NOT_SPECIFIED: &str = "PortNotSpecified";
    pub const PORT_NOT_FOUND: &str = "PortNotFound";
    pub const UNSUPPORTED_REF_VALUE: &str = "UnsupportedRefValue";
    pub const INVALID_BACKEND_TLS: &str = "InvalidBackendTLS";
    pub const CONFLICTED: &str = "Conflicted";
    pub const UNSUPPORTED_ADDRESS_TYPE: &str = "UnsupportedAddressType";
    pub const UNSUPPORTED_ADDRESS: &str = "UnsupportedAddress";
    pub const ADDRESS_NOT_USABLE: &str = "AddressNotUsable";
    pub const ADDRESS_NOT_ASSIGNED: &str = "AddressNotAssigned";
    pub const PENDING: &str = "Pending";
    pub const CONFIGURATION_CHANGED: &str = "ConfigurationChanged";
    pub const NO_VALID_CA_CERTIFICATE: &str = "NoValidCACertificate";
    pub const INVALID_CA_CERTIFICATE_REF: &str = "InvalidCACertificateRef";
    pub const INVALID_CLIENT_CERTIFICATE_REF: &str = "InvalidClientCertificateRef";
    pub const INVALID_CA_CERTIFICATE_KIND: &str = "InvalidCACertificateKind";
    pub const REF_NOT_PERMITTED: &str = "RefNotPermitted";
    pub const INVALID_KIND: &str = "InvalidKind";
    pub const INVALID_PARAMETERS: &str = "InvalidParameters";
    pub const INVALID_CERTIFICATE_REF: &str = "InvalidCertificateRef";
    pub const PARTIALLY_INVALID_CERTIFICATE_REF: &str = "PartiallyInvalidCertificateRef";
    pub const UNSUPPORTED_TLS_MODE: &str = "UnsupportedTLSMode";
    pub const NOT_ALLOWED: &str = "NotAllowed";
    pub const INVALID_RULE: &str = "InvalidRule";
    pub const OVERLAPPING_HOSTNAMES: &str = "OverlappingHostnames";
    pub const OVERLAPPING_CERTIFICATES: &str = "OverlappingCertificates";
}
