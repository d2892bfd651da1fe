//! Keeps the xDS server certificate valid: renews it from the xDS CA before it expires and
//! swaps it into the running server ([`ServerCert::replace`]), so Envoys keep connecting
//! after the first certificate's year is over, without a controller restart.
//!
//! The first certificate (from `ferrogate certgen`) is renewed when a third of its life, at
//! most [`RENEW_BEFORE_MAX`], is left; renewed ones, whose issue time is known here, after
//! two thirds of `validity`. A failed renewal is retried every [`RETRY_EVERY`].

use std::time::{Duration, SystemTime};

use ferrogate_xds_server::ServerCert;
use tokio_util::sync::CancellationToken;

use crate::pki::XdsCa;

/// The first certificate is renewed at most this long before it expires.
const RENEW_BEFORE_MAX: Duration = Duration::from_secs(30 * 24 * 3600);
/// Wait before retrying a renewal that failed.
const RETRY_EVERY: Duration = Duration::from_secs(60);

/// When to renew the certificate `cert_pem` (now when it cannot be read).
pub(crate) fn first_renewal(cert_pem: &str, now: SystemTime) -> SystemTime {
    let Some((not_before, not_after)) = validity(cert_pem) else {
        return now;
    };
    let life = not_after.duration_since(not_before).unwrap_or_default();
    let before = (life / 3).min(RENEW_BEFORE_MAX);
    not_after.checked_sub(before).unwrap_or(now).max(now)
}

fn validity(cert_pem: &str) -> Option<(SystemTime, SystemTime)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let at = |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
    Some((
        at(cert.validity().not_before.timestamp()),
        at(cert.validity().not_after.timestamp()),
    ))
}

/// Renews `cert` (which currently presents `cert_pem`) for `dns_names` until `cancel`.
pub(crate) async fn run(
    ca: XdsCa,
    dns_names: Vec<String>,
    cert: ServerCert,
    cert_pem: String,
    validity: Duration,
    cancel: CancellationToken,
) {
    let mut renew_at = first_renewal(&cert_pem, SystemTime::now());
    loop {
        let wait = renew_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let life = time::Duration::try_from(validity).unwrap_or(time::Duration::days(365));
        let renewed = ca
            .issue_server_valid_for(&dns_names, &[], life)
            .and_then(|c| {
                cert.replace(&c.cert_pem, &c.key_pem)?;
                Ok(c)
            });
        match renewed {
            Ok(_) => {
                renew_at = SystemTime::now() + validity * 2 / 3;
                tracing::info!(valid_for = ?validity, next_renewal_in = ?(validity * 2 / 3), "xDS server certificate renewed");
            }
            Err(e) => {
                renew_at = SystemTime::now() + RETRY_EVERY;
                tracing::error!(error = %format!("{e:#}"), "cannot renew the xDS server certificate; retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_certificate_is_renewed_with_a_third_of_its_life_left_at_most_a_month() {
        let ca = XdsCa::generate().unwrap();
        let now = SystemTime::now();
        let year = ca.issue_server(&["x".into()], &[]).unwrap();
        let (_, not_after) = validity(&year.cert_pem).unwrap();
        assert_eq!(
            first_renewal(&year.cert_pem, now),
            not_after - RENEW_BEFORE_MAX
        );
        let short = ca
            .issue_server_valid_for(&["x".into()], &[], time::Duration::hours(3))
            .unwrap();
        let at = first_renewal(&short.cert_pem, now);
        assert!(
            at > now && at < now + Duration::from_secs(3 * 3600),
            "within its life"
        );
        assert_eq!(
            first_renewal("not a certificate", now),
            now,
            "unreadable: renew now"
        );
        let (_, not_after) = validity(&short.cert_pem).unwrap();
        assert_eq!(
            first_renewal(&short.cert_pem, not_after + Duration::from_secs(1)),
            not_after + Duration::from_secs(1),
            "expired: now"
        );
    }
}
