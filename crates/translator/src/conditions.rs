//! Condition types and reasons of the Gateway API, named once.

/// Condition types.
pub mod types {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const CONFLICTED: &str = "Conflicted";
    pub const OVERLAPPING_TLS_CONFIG: &str = "OverlappingTLSConfig";
}

/// Reasons.
pub mod reasons {
    pub const ACCEPTED: &str = "Accepted";
    pub const PROGRAMMED: &str = "Programmed";
    pub const INVALID: &str = "Invalid";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const NO_CONFLICTS: &str = "NoConflicts";
    pub const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
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
