//! The xDS server certificate is renewed before it expires and reloaded by the running
//! controller: started with a certificate that lives 20 s, the controller presents a new,
//! valid one before the first expires, again and again, without a restart.

mod support;

use std::time::{Duration, Instant};

use ferrogate_cluster::ControllerOptions;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::Cluster;

/// Issues a server certificate for `ferrogate.ferrogate-system.svc`, valid for `life`, from
/// the CA in `dir`, and writes it as `tls.crt`/`tls.key` there.
fn short_lived_server_cert(dir: &std::path::Path, life: time::Duration) {
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
        ca_key,
    )
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["ferrogate.ferrogate-system.svc".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(1);
    params.not_after = now + life;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
}

/// The certificate the xDS server presents, verified against the CA as Envoy would, with a
/// Gateway client certificate from `dir` (any client identity the CA signed).
async fn presented(port: u16, ca_pem: &str, client: &(String, String)) -> Result<Vec<u8>, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(client.0.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(client.1.as_bytes()).unwrap(),
        )
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            ServerName::try_from("ferrogate.ferrogate-system.svc").unwrap(),
            tcp,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_certificate_is_renewed_and_reloaded_before_it_expires() {
    let cluster = Cluster::start().await;
    short_lived_server_cert(cluster.tls.path(), time::Duration::seconds(20));
    let mut options = ControllerOptions::new("replica-a");
    options
        .args
        .push("--xds-server-cert-validity-secs=60".into());
    let controller = cluster.controller_with(&options);
    // A Gateway's client certificate, as its Envoys present it.
    cluster.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: web, namespace: apps}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n");
    let secret = cluster
        .wait_for(
            "the Gateway's client certificate",
            "secret",
            Some("apps"),
            "web-ferrogate-xds",
            |_| true,
        )
        .await;
    use base64::Engine;
    let decode = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(secret["data"][k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let client = (decode("tls.crt"), decode("tls.key"));
    let ca_pem = std::fs::read_to_string(cluster.tls.path().join("ca.crt")).unwrap();
    let first = std::fs::read_to_string(cluster.tls.path().join("tls.crt")).unwrap();
    let first = CertificateDer::from_pem_slice(first.as_bytes())
        .unwrap()
        .to_vec();

    // Handshakes keep succeeding past the first certificate's expiry (20 s), and the
    // certificate presented changes before then.
    let started = Instant::now();
    let mut renewed_after = None;
    while started.elapsed() < Duration::from_secs(30) {
        let cert = presented(controller.xds_port, &ca_pem, &client)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "handshake failed after {:?}: {e}\n{}",
                    started.elapsed(),
                    controller.log_tail(20)
                )
            });
        if cert != first && renewed_after.is_none() {
            renewed_after = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let renewed_after = renewed_after.expect("the certificate was never renewed");
    assert!(
        renewed_after < Duration::from_secs(20),
        "renewed only after {renewed_after:?}"
    );
    assert!(
        controller.log().contains("xDS server certificate renewed"),
        "the renewal is logged"
    );
}
