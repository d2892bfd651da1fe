//! `ferrogate certgen`: the xDS CA and server certificate, as Secrets in the controller's
//! namespace (run by the chart as a pre-install/pre-upgrade hook), or as files.
//!
//! Idempotent: existing Secrets are kept (rotating the CA would cut every Envoy off until
//! its Gateway's client certificate is reissued); a missing server Secret is issued from the
//! existing CA.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::pki::{CA_CERT_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE, XdsCa, xds_service_dns_names};

/// Secret holding the CA (`ca.crt`, `ca.key`).
pub const CA_SECRET: &str = "ferrogate-xds-ca";
/// Secret holding the xDS server certificate (`tls.crt`, `tls.key`, `ca.crt`).
pub const SERVER_SECRET: &str = "ferrogate-xds-server";

/// What [`certgen_in_cluster`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertgenReport {
    /// The CA Secret was created (false: it existed).
    pub created_ca: bool,
    /// The server Secret was created (false: it existed).
    pub created_server: bool,
}

/// [`certgen_in_cluster`] with the in-cluster (or kubeconfig) client.
pub async fn certgen(namespace: &str, xds_service: &str) -> anyhow::Result<CertgenReport> {
    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster or kubeconfig)")?;
    certgen_in_cluster(client, namespace, xds_service).await
}

/// Creates the CA and server Secrets in `namespace` when missing.
pub async fn certgen_in_cluster(
    client: kube::Client,
    namespace: &str,
    xds_service: &str,
) -> anyhow::Result<CertgenReport> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let existing_ca = secrets
        .get_opt(CA_SECRET)
        .await
        .context("reading the CA Secret")?;
    let (ca, created_ca) = match existing_ca {
        Some(secret) => {
            let data = secret.data.unwrap_or_default();
            let text = |k: &str| {
                data.get(k)
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .with_context(|| format!("Secret {CA_SECRET} has no {k}"))
            };
            (
                XdsCa::from_pem(&text(CA_CERT_FILE)?, &text(CA_KEY_FILE)?)?,
                false,
            )
        }
        None => {
            let ca = XdsCa::generate()?;
            let data = [
                (CA_CERT_FILE, ca.cert_pem().to_string()),
                (CA_KEY_FILE, ca.key_pem()),
            ];
            create(&secrets, secret(CA_SECRET, namespace, "Opaque", &data)).await?;
            (ca, true)
        }
    };
    let created_server = if secrets
        .get_opt(SERVER_SECRET)
        .await
        .context("reading the server Secret")?
        .is_some()
    {
        false
    } else {
        let issued = ca.issue_server(&xds_service_dns_names(xds_service, namespace), &[])?;
        let data = [
            (CERT_FILE, issued.cert_pem),
            (KEY_FILE, issued.key_pem),
            (CA_CERT_FILE, ca.cert_pem().to_string()),
        ];
        create(
            &secrets,
            secret(SERVER_SECRET, namespace, "kubernetes.io/tls", &data),
        )
        .await?;
        true
    };
    Ok(CertgenReport {
        created_ca,
        created_server,
    })
}

/// Writes a new CA and a server certificate for `dns_names` into `dir` (the layout of
/// `--xds-tls-dir`), for running the controller outside a cluster.
pub fn certgen_files(dir: &Path, dns_names: &[String]) -> anyhow::Result<()> {
    let ca = XdsCa::generate()?;
    let issued = ca.issue_server(dns_names, &[std::net::Ipv4Addr::LOCALHOST.into()])?;
    crate::pki::write_client_files(dir, ca.cert_pem(), &issued)?;
    let key_path = dir.join(CA_KEY_FILE);
    std::fs::write(&key_path, ca.key_pem())
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn secret(name: &str, namespace: &str, type_: &str, data: &[(&str, String)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(
                ferrogate_api::LABEL_MANAGED_BY.to_string(),
                "ferrogate-certgen".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some(type_.into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}

async fn create(api: &Api<Secret>, secret: Secret) -> anyhow::Result<()> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(secret = %name, "created");
            Ok(())
        }
        // Another certgen run won the race: keep what it made.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating Secret {name}")),
    }
}
