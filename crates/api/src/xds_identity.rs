//! The xDS client identity of a Gateway: the URI SAN
//! `spiffe://gateway.ferrogate.dev/ns/<namespace>/gateway/<name>` in the client certificate
//! its Envoys present to the xDS server. The certificate issuer builds it with
//! [`xds_identity_uri`]; the xDS server reads it back with [`parse_xds_identity`] and serves
//! a stream only the snapshot of that Gateway. One format, one place, so both sides agree.

use crate::constants::XDS_IDENTITY_PREFIX;

/// Path segment between the namespace and the Gateway name.
const GATEWAY_SEGMENT: &str = "/gateway/";

/// The identity URI of Gateway `namespace/name`.
pub fn xds_identity_uri(namespace: &str, name: &str) -> String {
    format!("{XDS_IDENTITY_PREFIX}{namespace}{GATEWAY_SEGMENT}{name}")
}

/// The Gateway `(namespace, name)` an identity URI names, or `None` when `uri` is not a
/// Ferrogate xDS identity (other prefix, empty parts, extra path segments).
pub fn parse_xds_identity(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix(XDS_IDENTITY_PREFIX)?;
    let (namespace, name) = rest.split_once(GATEWAY_SEGMENT)?;
    let valid = |s: &str| !s.is_empty() && !s.contains('/');
    (valid(namespace) && valid(name)).then_some((namespace, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_round_trips() {
        let uri = xds_identity_uri("default", "eg.v1");
        assert_eq!(
            uri,
            "spiffe://gateway.ferrogate.dev/ns/default/gateway/eg.v1"
        );
        assert_eq!(parse_xds_identity(&uri), Some(("default", "eg.v1")));
    }

    #[test]
    fn other_uris_are_not_identities() {
        for bad in [
            "",
            "spiffe://gateway.ferrogate.dev/ns/default",
            "spiffe://gateway.ferrogate.dev/ns//gateway/eg",
            "spiffe://gateway.ferrogate.dev/ns/default/gateway/",
            "spiffe://gateway.ferrogate.dev/ns/default/gateway/eg/extra",
            "spiffe://cluster.local/ns/default/sa/eg",
            "https://gateway.ferrogate.dev/ns/default/gateway/eg",
        ] {
            assert_eq!(parse_xds_identity(bad), None, "{bad:?}");
        }
    }
}
