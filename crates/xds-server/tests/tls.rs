//! ADS over mutual TLS: a client certificate naming a Gateway gets that Gateway's snapshot
//! and nothing else; no certificate, or one from another CA, does not get past the handshake.

mod support;

use std::net::SocketAddr;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use ferrogate_api::xds_identity::xds_identity_uri;
use ferrogate_xds_server::{CLUSTER_TYPE, ENDPOINT_TYPE, Error, SnapshotCache, XdsTls};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType,
};
use support::*;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate and key with `sans` and `usage`.
    fn leaf(&self, sans: Vec<SanType>, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn client(&self, gateway: &str) -> (String, String) {
        let (ns, name) = gateway.split_once('/').unwrap();
        let uri = Ia5String::try_from(xds_identity_uri(ns, name)).unwrap();
        self.leaf(vec![SanType::URI(uri)], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

struct TlsHarness {
    cache: SnapshotCache,
    addr: SocketAddr,
    ca: Ca,
    _stop: oneshot::Sender<()>,
}

impl TlsHarness {
    async fn start() -> Self {
        let ca = Ca::new();
        let (cert, key) = ca.leaf(
            vec![
                SanType::DnsName(Ia5String::try_from("localhost").unwrap()),
                SanType::IpAddress([127, 0, 0, 1].into()),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let tls = XdsTls {
            server_cert_pem: cert,
            server_key_pem: key,
            client_ca_pem: ca.pem.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cache = SnapshotCache::new();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(ferrogate_xds_server::serve_tls(
            listener,
            cache.clone(),
            tls,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            cache,
            addr,
            ca,
            _stop: stop,
        }
    }

    /// A client trusting the server's CA and presenting `identity` (if any).
    async fn client(
        &self,
        identity: Option<(String, String)>,
    ) -> Result<AggregatedDiscoveryServiceClient<Channel>, tonic::transport::Error> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca.pem))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let channel = Endpoint::from_shared(format!("https://{}", self.addr))
            .unwrap()
            .tls_config(tls)?
            .connect()
            .await?;
        Ok(AggregatedDiscoveryServiceClient::new(channel))
    }

    /// Opens a SotW stream with `first` and returns its first message or its error.
    async fn sotw(
        &self,
        identity: Option<(String, String)>,
        first: DiscoveryRequest,
    ) -> Result<Vec<String>, tonic::Status> {
        let resp = self
            .first_answer(identity, first, |mut client, requests| async move {
                client.stream_aggregated_resources(requests).await
            })
            .await?;
        Ok(names_of(&resp.resources))
    }

    async fn delta(
        &self,
        identity: Option<(String, String)>,
        first: DeltaDiscoveryRequest,
    ) -> Result<Vec<String>, tonic::Status> {
        let resp = self
            .first_answer(identity, first, |mut client, requests| async move {
                client.delta_aggregated_resources(requests).await
            })
            .await?;
        Ok(delta_names(&resp))
    }

    /// Connects presenting `identity`, opens a stream with `open` whose first request is
    /// `first`, and returns the first response or the error.
    async fn first_answer<Req, Resp, Fut>(
        &self,
        identity: Option<(String, String)>,
        first: Req,
        open: impl FnOnce(AggregatedDiscoveryServiceClient<Channel>, ReceiverStream<Req>) -> Fut,
    ) -> Result<Resp, tonic::Status>
    where
        Fut: Future<Output = Result<tonic::Response<tonic::Streaming<Resp>>, tonic::Status>>,
    {
        let client = self
            .client(identity)
            .await
            .map_err(|e| tonic::Status::unavailable(format!("connect: {e}")))?;
        let (tx, rx) = mpsc::channel(4);
        tx.send(first).await.unwrap();
        let mut stream = open(client, ReceiverStream::new(rx)).await?.into_inner();
        let resp = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("no answer in time")?
            .expect("stream ended without an answer");
        Ok(resp)
    }

    fn rejected(&self, reason: &str) -> u64 {
        self.cache
            .stats()
            .totals
            .rejected_streams
            .get(reason)
            .copied()
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn a_gateway_certificate_gets_its_own_snapshot() {
    let h = TlsHarness::start().await;
    h.cache.set("default/a", snapshot(&[("a1", 1)]));
    h.cache.set("default/b", snapshot(&[("b1", 1)]));
    let a = h.ca.client("default/a");
    let names = h
        .sotw(Some(a.clone()), sotw_first("default/a", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    assert_eq!(names, ["a1"]);
    let names = h
        .delta(Some(a), delta_first("default/a", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    assert_eq!(names, ["a1"]);
    assert!(h.cache.stats().totals.rejected_streams.is_empty());
}

#[tokio::test]
async fn a_gateway_certificate_asking_for_another_gateway_is_denied() {
    let h = TlsHarness::start().await;
    h.cache.set("default/a", snapshot(&[("a1", 1)]));
    h.cache.set("default/b", snapshot(&[("b1", 1)]));
    let a = h.ca.client("default/a");

    let status = h
        .sotw(Some(a.clone()), sotw_first("default/b", CLUSTER_TYPE, &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("default/a") && status.message().contains("default/b"),
        "{status:?}"
    );
    let status = h
        .delta(Some(a), delta_first("default/b", CLUSTER_TYPE, &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert_eq!(h.rejected("wrong_gateway"), 2);
    assert_eq!(h.cache.stats().gateways["default/b"].connected_streams, 0);
}

#[tokio::test]
async fn a_certificate_without_a_gateway_identity_is_denied() {
    let h = TlsHarness::start().await;
    h.cache.set("default/a", snapshot(&[("a1", 1)]));
    let dns_only = h.ca.leaf(
        vec![SanType::DnsName(
            Ia5String::try_from("envoy.example").unwrap(),
        )],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let status = h
        .sotw(Some(dns_only), sotw_first("default/a", CLUSTER_TYPE, &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert_eq!(h.rejected("no_identity"), 1);
}

fn assert_handshake_refused(status: &tonic::Status, alert: &str) {
    let text = format!("{status:?}");
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unknown | tonic::Code::Unavailable
        ) && text.contains(alert),
        "expected a TLS alert {alert}, got {text}"
    );
}

#[tokio::test]
async fn no_client_certificate_or_one_from_another_ca_fails_the_handshake() {
    let h = TlsHarness::start().await;
    h.cache.set("default/a", snapshot(&[("a1", 1)]));
    let status = h
        .sotw(None, sotw_first("default/a", CLUSTER_TYPE, &[]))
        .await
        .unwrap_err();
    // With TLS 1.3 the client learns of the refusal on its first read, as a transport error.
    assert_handshake_refused(&status, "CertificateRequired");

    let foreign = Ca::new().client("default/a");
    let status = h
        .sotw(Some(foreign), sotw_first("default/a", CLUSTER_TYPE, &[]))
        .await
        .unwrap_err();
    // Both test CAs share a subject, so rustls finds the wrong issuer and its signature check fails.
    assert_handshake_refused(&status, "fatal alert");
    // Refused by the transport: no stream ever reached the server.
    assert_eq!(h.cache.stats().gateways["default/a"].connected_streams, 0);
    assert!(h.cache.stats().totals.pushes.is_empty());
}

#[tokio::test]
async fn a_stream_cannot_switch_gateways_by_changing_its_node() {
    let h = Harness::start().await;
    h.cache.set("default/a", snapshot(&[("a1", 1)]));
    h.cache.set("default/b", snapshot(&[("b1", 1)]));
    let mut s = SotwStream::open(&h, sotw_first("default/a", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let first = s.recv().await;
    let mut switch = sotw_req(ENDPOINT_TYPE, &["b1"], &first.version_info, &first.nonce);
    switch.node = node("default/b");
    s.send(switch).await;
    let status = s.recv_status().await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert_eq!(h.cache.stats().totals.rejected_streams["node_changed"], 1);

    let mut d = DeltaStream::open(&h, delta_first("default/a", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    d.recv().await;
    let mut switch = delta_subscribe(CLUSTER_TYPE, &["b1"]);
    switch.node = node("default/b");
    d.send(switch).await;
    assert_eq!(d.recv_status().await.code(), tonic::Code::PermissionDenied);
    assert_eq!(h.cache.stats().totals.rejected_streams["node_changed"], 2);
}

#[tokio::test]
async fn bad_tls_material_is_an_error_not_a_panic() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ca = Ca::new();
    let tls = XdsTls {
        server_cert_pem: "not a certificate".into(),
        server_key_pem: "not a key".into(),
        client_ca_pem: ca.pem.clone(),
    };
    let err = ferrogate_xds_server::serve_tls(listener, SnapshotCache::new(), tls, async {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TlsMaterial(_)), "{err}");
    assert!(err.to_string().contains("server certificate"), "{err}");
}

/// A renewed server certificate serves the next handshake, without a restart.
#[tokio::test]
async fn the_server_certificate_is_replaced_without_a_restart() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ca = Ca::new();
    let server = || {
        ca.leaf(
            vec![SanType::DnsName(Ia5String::try_from("localhost").unwrap())],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    };
    let first = server();
    let tls = XdsTls {
        server_cert_pem: first.0.clone(),
        server_key_pem: first.1.clone(),
        client_ca_pem: ca.pem.clone(),
    };
    let cert = ferrogate_xds_server::ServerCert::from_pem(&first.0, &first.1).unwrap();
    tokio::spawn(ferrogate_xds_server::serve_tls_with_cert(
        listener,
        SnapshotCache::new(),
        tls,
        cert.clone(),
        std::future::pending(),
    ));

    let client = ca.client("default/a");
    assert_eq!(
        presented_certificate(addr, &ca, &client).await,
        der(&first.0),
        "the first certificate"
    );
    let second = server();
    assert!(
        cert.replace("garbage", &second.1).is_err(),
        "a bad certificate is refused"
    );
    assert_eq!(
        presented_certificate(addr, &ca, &client).await,
        der(&first.0),
        "and the current one stays"
    );
    cert.replace(&second.0, &second.1).unwrap();
    assert_eq!(
        presented_certificate(addr, &ca, &client).await,
        der(&second.0),
        "the renewed certificate, same listener"
    );
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// The certificate the server presents to a client that trusts `ca` and presents `identity`.
async fn presented_certificate(addr: SocketAddr, ca: &Ca, identity: &(String, String)) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(identity.0.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(identity.1.as_bytes()).unwrap(),
        )
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("handshake with the server's current certificate");
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}
