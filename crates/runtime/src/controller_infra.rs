//! What the controller provisions for each Gateway: the rendered objects
//! (`ferrogate-infra-render`, pure) plus the Gateway's xDS client certificate Secret, and
//! the Gateway's observed state for its status (Service addresses, Deployment
//! availability).
//!
//! The client certificate is issued once and kept while the live Secret still chains to
//! the current CA; so reconciling never churns keys (and never restarts Envoys).

use std::collections::BTreeMap;
use std::time::Instant;

use ferrogate_api::envoyproxy::EnvoyProxySpec;
use ferrogate_infra_manager::kubernetes::{ObjectId, OwnedState, WATCH_LAG_ALLOWANCE};
use ferrogate_infra_render::kubernetes::{
    InfraObject, RenderOptions, object_name, render, xds_client_secret_name,
};
use ferrogate_ir::{GatewayKey, InfraIr};
use ferrogate_store::Snapshot;
use ferrogate_translator::Provisioned;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use crate::pki::{CA_CERT_FILE, CERT_FILE, KEY_FILE, XdsCa};

/// Every object to apply for `infra`, as plain values.
pub(crate) fn desired_objects(
    infra: &BTreeMap<GatewayKey, (InfraIr, EnvoyProxySpec)>,
    snapshot: &Snapshot,
    base: &RenderOptions,
    ca: Option<&XdsCa>,
    owned: &OwnedState,
    issued: &mut RecentlyIssued,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (key, (ir, parameters)) in infra {
        let Some(gateway) = snapshot.gateways.get(&key.namespace, &key.name) else {
            continue;
        };
        let Some(uid) = gateway.metadata.uid.clone() else {
            // Without a uid there is no ownerReference, and nothing would clean up after
            // the Gateway: never create such orphans.
            tracing::warn!(gateway = %key, "Gateway has no metadata.uid; not provisioning it");
            continue;
        };
        let options = RenderOptions {
            gateway_uid: uid,
            ..base.clone()
        };
        let objects = render(ir, parameters, &options);
        let mut values: Vec<Value> = objects.iter().map(InfraObject::to_value).collect();
        if let (Some(ca), true) = (ca, options.xds_tls) {
            match client_secret(ir, &objects, ca, owned, issued) {
                Ok(secret) => {
                    roll_on_certificate_change(&mut values, &secret);
                    out.push(secret);
                }
                Err(e) => {
                    tracing::error!(gateway = %key, error = %e, "cannot issue the Gateway's xDS client certificate")
                }
            }
        }
        out.extend(values);
    }
    out
}

/// The Secret `<name>-xds` with the Gateway's client certificate, reusing the live one
/// while it was issued by `ca`.
fn client_secret(
    ir: &InfraIr,
    objects: &[InfraObject],
    ca: &XdsCa,
    owned: &OwnedState,
    issued: &mut RecentlyIssued,
) -> anyhow::Result<Value> {
    let name = xds_client_secret_name(ir);
    let namespace = &ir.gateway.namespace;
    let id = ObjectId::new("Secret", namespace, &name);
    let live = owned
        .get(&id)
        .and_then(|v| serde_json::from_value::<Secret>(v.clone()).ok())
        .and_then(|s| s.data);
    let data = issued.data_for(id, live, ca, &ir.gateway.name, Instant::now())?;
    // Same labels and owner as the rest of the Gateway's objects.
    let template = objects
        .first()
        .map(|o| o.metadata().clone())
        .unwrap_or_default();
    let secret = Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.clone()),
            labels: template.labels,
            owner_references: template.owner_references,
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    let mut value = serde_json::to_value(secret)?;
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    Ok(value)
}

/// A Secret's data: `ca.crt`, `tls.crt` and `tls.key`.
type CertificateData = BTreeMap<String, ByteString>;

/// The client certificates this replica issued lately, by Secret, each with the data it
/// replaced.
///
/// The Secret is the one rendered object that depends on what the watchers show (every
/// other one follows from the IR, and `KubernetesInfra` bridges the watchers' lag for those
/// by the hash it applied); so this bridge is its own.
///
/// The watchers show an applied Secret some time after the apply. A render in that gap sees
/// the replaced (missing, unreadable or expiring) data; issuing again there would roll the
/// Gateway's pods twice, and a restart between the two applies would find a Deployment
/// that names the wrong certificate. Data that is neither what was issued nor what it
/// replaced was written by someone else since, and is answered as usual.
#[derive(Default)]
pub(crate) struct RecentlyIssued(BTreeMap<ObjectId, Issued>);

struct Issued {
    data: CertificateData,
    replaced: Option<CertificateData>,
    at: Instant,
}

impl RecentlyIssued {
    /// The data for the client certificate Secret `id` of Gateway `gateway`, given the
    /// `live` data the watchers show: the live data while it is usable, the data issued
    /// here while the watchers still show what it replaced, else a new certificate.
    fn data_for(
        &mut self,
        id: ObjectId,
        live: Option<CertificateData>,
        ca: &XdsCa,
        gateway: &str,
        now: Instant,
    ) -> anyhow::Result<CertificateData> {
        self.0
            .retain(|_, i| now.saturating_duration_since(i.at) < WATCH_LAG_ALLOWANCE);
        let live = match live {
            Some(data) if usable(&data, ca) => return Ok(data),
            other => other,
        };
        if let Some(recent) = self
            .0
            .get(&id)
            .filter(|i| i.replaced == live && usable(&i.data, ca))
        {
            return Ok(recent.data.clone());
        }
        let issued = ca.issue_gateway_client(&id.namespace, gateway)?;
        let data = BTreeMap::from([
            (
                CA_CERT_FILE.to_string(),
                ByteString(ca.cert_pem().as_bytes().to_vec()),
            ),
            (
                CERT_FILE.to_string(),
                ByteString(issued.cert_pem.into_bytes()),
            ),
            (
                KEY_FILE.to_string(),
                ByteString(issued.key_pem.into_bytes()),
            ),
        ]);
        self.0.insert(
            id,
            Issued {
                data: data.clone(),
                replaced: live,
                at: now,
            },
        );
        Ok(data)
    }
}

/// Whether `data` holds a key and a certificate of `ca` that is not due for renewal.
fn usable(data: &CertificateData, ca: &XdsCa) -> bool {
    data.get(CA_CERT_FILE)
        .is_some_and(|c| c.0 == ca.cert_pem().as_bytes())
        && data
            .get(CERT_FILE)
            .is_some_and(|c| !needs_renewal(&c.0, std::time::SystemTime::now()))
        && data.contains_key(KEY_FILE)
}

/// Client certificates are reissued this long before they expire.
const RENEW_BEFORE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Whether the certificate (PEM) expires within [`RENEW_BEFORE`] of `now`, or cannot be read.
pub(crate) fn needs_renewal(cert_pem: &[u8], now: std::time::SystemTime) -> bool {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert_pem) else {
        return true;
    };
    let Ok(cert) = pem.parse_x509() else {
        return true;
    };
    let not_after = cert.validity().not_after.timestamp();
    let renew_at = now + RENEW_BEFORE;
    let renew_at = renew_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(i64::MAX);
    not_after <= renew_at
}

/// Envoy reads its client certificate once, at start: a renewed certificate must restart
/// the pods (a rolling update, with drain). The certificate's hash as a pod-template
/// annotation does that, and only when the certificate changes.
fn roll_on_certificate_change(objects: &mut [Value], secret: &Value) {
    let cert = secret
        .pointer("/data/tls.crt")
        .and_then(|c| c.as_str())
        .unwrap_or_default();
    let hash = ferrogate_infra_manager::kubernetes::content_hash(&Value::String(cert.to_string()));
    for object in objects.iter_mut().filter(|o| o["kind"] == "Deployment") {
        object["spec"]["template"]["metadata"]["annotations"][XDS_CERT_HASH_ANNOTATION] =
            Value::String(hash.clone());
    }
}

/// Pod-template annotation with the hash of the Gateway's xDS client certificate.
pub(crate) const XDS_CERT_HASH_ANNOTATION: &str = "gateway.ferrogate.dev/xds-certificate-hash";

/// What the cluster says about each Gateway's fleet: the Service's load-balancer ingress
/// (or its cluster IP when it is not a LoadBalancer) and whether the Deployment has an
/// available replica.
pub(crate) fn observe(
    snapshot: &Snapshot,
    owned: Option<&OwnedState>,
) -> BTreeMap<GatewayKey, Provisioned> {
    let mut out = BTreeMap::new();
    let Some(owned) = owned else { return out };
    for (key, gateway) in snapshot.gateways.iter() {
        let name = object_name(&key.name, &gateway.spec.gateway_class_name);
        let service = owned.get(&ObjectId::new("Service", &key.namespace, &name));
        let deployment = owned.get(&ObjectId::new("Deployment", &key.namespace, &name));
        let mut addresses = Vec::new();
        if let Some(svc) = service {
            let is_lb = svc.pointer("/spec/type").and_then(|t| t.as_str()) == Some("LoadBalancer");
            if is_lb {
                for ingress in svc
                    .pointer("/status/loadBalancer/ingress")
                    .and_then(|i| i.as_array())
                    .into_iter()
                    .flatten()
                {
                    if let Some(a) = ingress
                        .get("ip")
                        .or_else(|| ingress.get("hostname"))
                        .and_then(|a| a.as_str())
                    {
                        addresses.push(a.to_string());
                    }
                }
            } else if let Some(ip) = svc
                .pointer("/spec/clusterIP")
                .and_then(|a| a.as_str())
                .filter(|ip| *ip != "None" && !ip.is_empty())
            {
                addresses.push(ip.to_string());
            }
        }
        let available = deployment
            .and_then(|d| d.pointer("/status/availableReplicas"))
            .and_then(|n| n.as_i64())
            .is_some_and(|n| n > 0);
        out.insert(
            GatewayKey::new(key.namespace.clone(), key.name.clone()),
            Provisioned {
                addresses,
                available,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_are_renewed_a_month_before_expiry() {
        let ca = XdsCa::generate().unwrap();
        let cert = ca.issue_gateway_client("apps", "web").unwrap().cert_pem;
        let now = std::time::SystemTime::now();
        let day = std::time::Duration::from_secs(24 * 3600);
        assert!(!needs_renewal(cert.as_bytes(), now));
        assert!(!needs_renewal(cert.as_bytes(), now + 300 * day));
        assert!(
            needs_renewal(cert.as_bytes(), now + 340 * day),
            "within 30 days of the 1-year expiry"
        );
        assert!(needs_renewal(b"not a certificate", now));
    }

    #[test]
    fn a_certificate_is_issued_once_while_the_watchers_lag() {
        let ca = XdsCa::generate().unwrap();
        let id = ObjectId::new("Secret", "apps", "web-ferrogate-xds");
        let mut issued = RecentlyIssued::default();
        let start = Instant::now();
        let first = issued
            .data_for(id.clone(), None, &ca, "web", start)
            .unwrap();
        assert!(usable(&first, &ca));

        // The watchers still show no Secret: the same certificate again.
        let again = issued
            .data_for(id.clone(), None, &ca, "web", start)
            .unwrap();
        assert_eq!(again, first);

        // Once they show it, the live data is used.
        let live = issued
            .data_for(id.clone(), Some(first.clone()), &ca, "web", start)
            .unwrap();
        assert_eq!(live, first);

        // Someone breaks it right after: that is not lag, so a new certificate, once.
        let broken = BTreeMap::from([(CERT_FILE.to_string(), ByteString(b"junk".to_vec()))]);
        let second = issued
            .data_for(id.clone(), Some(broken.clone()), &ca, "web", start)
            .unwrap();
        assert_ne!(second[CERT_FILE], first[CERT_FILE]);
        assert!(usable(&second, &ca));
        let lagging = issued
            .data_for(id.clone(), Some(broken.clone()), &ca, "web", start)
            .unwrap();
        assert_eq!(lagging, second);

        // Still broken after the lag allowance: the apply did not take; issue again.
        let later = start + WATCH_LAG_ALLOWANCE;
        let third = issued
            .data_for(id.clone(), Some(broken), &ca, "web", later)
            .unwrap();
        assert_ne!(third[CERT_FILE], second[CERT_FILE]);

        // A certificate of another CA is never reused.
        let other = XdsCa::generate().unwrap();
        let for_other = issued.data_for(id, None, &other, "web", later).unwrap();
        assert_ne!(for_other[CERT_FILE], third[CERT_FILE]);
        assert!(usable(&for_other, &other));
    }
}
