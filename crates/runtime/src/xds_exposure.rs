//! Whether the xDS server may listen where it was told to. Plaintext xDS authenticates no
//! one: any client that reaches it can claim any Gateway's identity and read its whole
//! configuration, for HTTPS Gateways the private keys in SDS included. On a loopback address
//! only local processes reach it, which is standalone mode's default; anywhere else it takes
//! mutual TLS, or an explicit `--xds-insecure-plaintext` from someone who accepts that.

use std::net::SocketAddr;

/// A refused xDS listen address.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing plaintext xDS on non-loopback address {addr}: any client that reaches it could read \
     every Gateway's configuration, private keys included. Use {tls_flag}, listen on a loopback \
     address, or pass --xds-insecure-plaintext to accept the risk"
)]
pub struct PlaintextXdsRefused {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The flag that turns on TLS in this mode.
    pub tls_flag: &'static str,
}

/// Checks the xDS listen address `addr` given whether xDS uses TLS and whether the user
/// accepted plaintext explicitly; warns (once, here) when plaintext is accepted off loopback.
pub(crate) fn check(
    addr: SocketAddr,
    tls: bool,
    insecure_plaintext: bool,
    tls_flag: &'static str,
) -> Result<(), PlaintextXdsRefused> {
    if tls || addr.ip().is_loopback() {
        return Ok(());
    }
    if insecure_plaintext {
        tracing::warn!(%addr, "plaintext xDS on a non-loopback address (--xds-insecure-plaintext): any client that reaches it can read every Gateway's configuration, private keys included");
        return Ok(());
    }
    Err(PlaintextXdsRefused { addr, tls_flag })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plaintext_is_refused_off_loopback_unless_explicitly_accepted() {
        for a in [
            "0.0.0.0:18000",
            "[::]:18000",
            "10.1.2.3:18000",
            "192.0.2.1:1",
        ] {
            let err = check(addr(a), false, false, "--xds-tls").unwrap_err();
            assert!(
                err.to_string().contains("--xds-insecure-plaintext"),
                "{err}"
            );
            assert!(err.to_string().contains("--xds-tls"), "{err}");
            assert!(check(addr(a), false, true, "--xds-tls").is_ok());
            assert!(check(addr(a), true, false, "--xds-tls").is_ok());
        }
        for a in ["127.0.0.1:18000", "127.8.9.1:18000", "[::1]:18000"] {
            assert!(check(addr(a), false, false, "--xds-tls").is_ok(), "{a}");
        }
    }
}
