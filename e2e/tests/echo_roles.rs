//! Runs the real `ferrogate-echo` binary in each of its non-default roles (and
//! the HTTPS and WebSocket parts of the HTTP role) on free ports, talking to it
//! with real clients: rustls + hyper, tungstenite, tonic, plain TCP and UDP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrogate_e2e::echo::grpc::{EchoRequest, EchoResponse, SERVICE};
use ferrogate_e2e::echo::{ENV_VARS, EchoedRequest, Ports, TCP_WELCOME};
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader as TokioBufReader,
};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

const POD: &str = "infra-backend-v1-abc-xyz";
const NAMESPACE: &str = "gateway-conformance-infra";
const SNI: &str = "echo.example.com";

/// One backend process; killed on drop.
struct Echo {
    child: Child,
    ports: Ports,
}

impl Echo {
    fn start(args: &[&str], envs: &[(&str, &Path)]) -> Echo {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrogate-echo"));
        for var in ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.env("POD_NAME", POD).env("NAMESPACE", NAMESPACE);
        for (name, value) in envs {
            cmd.env(name, value);
        }
        let mut child = cmd
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ferrogate-echo");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("read ports line");
        let ports: Ports =
            serde_json::from_str(&first).unwrap_or_else(|e| panic!("ports line {first:?}: {e}"));
        // Keep draining stdout so logging can never block the backend.
        std::thread::spawn(move || for _ in stdout.lines().map_while(Result::ok) {});
        Echo { child, ports }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, a server certificate for `SNI` and a client certificate, as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ferrogate echo test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec![SNI.to_owned(), "localhost".to_owned()]).unwrap();
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server.signed_by(&server_key, &ca).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "echo test client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client.signed_by(&client_key, &ca).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca: write("ca.crt", ca.pem()),
            cert: write("tls.crt", server.pem()),
            key: write("tls.key", server_key.serialize_pem()),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
            _dir: dir,
        }
    }

    /// A connector trusting the test CA, offering `alpn` and optionally the client certificate.
    fn connector(&self, alpn: &[&[u8]], with_client_cert: bool) -> TlsConnector {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(der.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = if with_client_cert {
            let chain =
                vec![CertificateDer::from_pem_slice(self.client_cert_pem.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(self.client_key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }

    async fn connect(
        &self,
        port: u16,
        alpn: &[&[u8]],
        with_client_cert: bool,
    ) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        self.connector(alpn, with_client_cert)
            .connect(ServerName::try_from(SNI).unwrap(), tcp)
            .await
            .expect("TLS handshake")
    }
}

fn timeout<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(20), f)
}

async fn h2_get<IO>(io: IO, uri: &str) -> (hyper::StatusCode, Bytes)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get(uri).body(Full::<Bytes>::default()).unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn h1_get<IO>(io: IO, path: &str) -> (hyper::StatusCode, Bytes)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", SNI)
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

fn https_echo(pki: &Pki) -> Echo {
    Echo::start(
        &["--http-port", "0", "--https-port", "0"],
        &[
            ("TLS_SERVER_CERT", &pki.cert),
            ("TLS_SERVER_PRIVKEY", &pki.key),
            ("TLS_CLIENT_CACERTS", &pki.ca),
        ],
    )
}

#[tokio::test]
async fn https_echo_reports_sni_alpn_and_client_certificate() {
    let pki = Pki::new();
    let echo = https_echo(&pki);
    assert!(echo.ports.http != 0);
    let port = echo.ports.https.expect("https port in the ports line");

    // HTTP/2 by ALPN, with a client certificate.
    let tls = pki.connect(port, &[b"h2", b"http/1.1"], true).await;
    let uri = format!("https://{SNI}/tls?x=1");
    let (status, body) = timeout(h2_get(tls, &uri)).await.unwrap();
    assert_eq!(status, 200);
    let echoed: EchoedRequest = serde_json::from_slice(&body).unwrap();
    assert_eq!(echoed.proto, "HTTP/2.0");
    assert_eq!(echoed.path, "/tls?x=1");
    assert_eq!(echoed.host, SNI);
    assert_eq!(echoed.pod, POD);
    assert_eq!(echoed.http_port, echo.ports.http.to_string());
    let tls = echoed.tls.expect("tls object on the HTTPS port");
    assert_eq!(tls.server_name, SNI);
    assert_eq!(tls.negotiated_protocol, "h2");
    assert_eq!(tls.version, "TLSv1.3");
    assert!(tls.cipher_suite.starts_with("TLS_"), "{}", tls.cipher_suite);
    assert_eq!(tls.peer_certificates.len(), 1);
    assert_eq!(tls.peer_certificates[0].trim(), pki.client_cert_pem.trim());
    // The raw JSON uses upstream's field names.
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(raw["tls"]["serverName"], SNI);
    assert_eq!(raw["tls"]["negotiatedProtocol"], "h2");
    assert!(
        raw["tls"]["peerCertificates"][0]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );

    // HTTP/1.1 by ALPN, without a client certificate (still accepted).
    let tls = pki.connect(port, &[b"http/1.1"], false).await;
    let (status, body) = timeout(h1_get(tls, "/plain")).await.unwrap();
    assert_eq!(status, 200);
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(raw["proto"], "HTTP/1.1");
    assert_eq!(raw["tls"]["negotiatedProtocol"], "http/1.1");
    assert!(raw["tls"].get("peerCertificates").is_none(), "{raw}");

    // The plain HTTP port has no tls object.
    let tcp = TcpStream::connect(("127.0.0.1", echo.ports.http))
        .await
        .unwrap();
    let (_, body) = timeout(h1_get(tcp, "/plain")).await.unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(raw.get("tls").is_none(), "{raw}");
}

async fn ws_round_trip<S>(mut ws: tokio_tungstenite::WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.send(Message::text("hello websocket")).await.unwrap();
    let got = timeout(ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(got, Message::text("hello websocket"));

    let binary = vec![0u8, 1, 2, 0xfe, 0xff];
    ws.send(Message::binary(binary.clone())).await.unwrap();
    let got = timeout(ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(got, Message::binary(binary));

    ws.close(None).await.unwrap();
    // The server completes the close handshake.
    while let Some(Ok(msg)) = timeout(ws.next()).await.unwrap() {
        assert!(msg.is_close(), "{msg:?}");
    }
}

#[tokio::test]
async fn websocket_echoes_text_and_binary_on_http_and_https() {
    let pki = Pki::new();
    let echo = https_echo(&pki);

    let tcp = TcpStream::connect(("127.0.0.1", echo.ports.http))
        .await
        .unwrap();
    let url = format!("ws://127.0.0.1:{}/ws", echo.ports.http);
    let (ws, resp) = timeout(tokio_tungstenite::client_async(url, tcp))
        .await
        .unwrap()
        .expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    ws_round_trip(ws).await;

    let tls = pki
        .connect(echo.ports.https.unwrap(), &[b"http/1.1"], false)
        .await;
    let (ws, _) = timeout(tokio_tungstenite::client_async(
        format!("wss://{SNI}/ws"),
        tls,
    ))
    .await
    .unwrap()
    .expect("websocket handshake over TLS");
    ws_round_trip(ws).await;

    // A plain GET to /ws is not a handshake.
    let tcp = TcpStream::connect(("127.0.0.1", echo.ports.http))
        .await
        .unwrap();
    let (status, _) = timeout(h1_get(tcp, "/ws")).await.unwrap();
    assert_eq!(status, 400);
}

fn grpc_echo(pki: &Pki) -> Echo {
    Echo::start(
        &["--http-port", "0", "--https-port", "0"],
        &[
            ("GRPC_ECHO_SERVER", Path::new("1")),
            ("TLS_SERVER_CERT", &pki.cert),
            ("TLS_SERVER_PRIV_KEY", &pki.key),
        ],
    )
}

#[tokio::test]
async fn grpc_echo_returns_assertions_and_echo_three_is_unimplemented() {
    let pki = Pki::new();
    let echo = grpc_echo(&pki);
    assert_eq!(echo.ports.http, 0, "gRPC role reports its port as grpc");
    let port = echo.ports.grpc.expect("grpc port");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .origin("http://grpc.example.com".parse().unwrap())
        .connect()
        .await
        .expect("connect to the gRPC port");
    let mut client = tonic::client::Grpc::new(channel);

    for method in ["Echo", "EchoTwo"] {
        let mut request = tonic::Request::new(EchoRequest {});
        request
            .metadata_mut()
            .insert("x-custom-header", "custom-value".parse().unwrap());
        request
            .metadata_mut()
            .append("x-multi", "one".parse().unwrap());
        request
            .metadata_mut()
            .append("x-multi", "two".parse().unwrap());
        client.ready().await.unwrap();
        let path: hyper::http::uri::PathAndQuery = format!("/{SERVICE}/{method}").parse().unwrap();
        let response: tonic::Response<EchoResponse> = timeout(client.unary(
            request,
            path,
            tonic_prost::ProstCodec::<EchoRequest, EchoResponse>::default(),
        ))
        .await
        .unwrap()
        .unwrap_or_else(|status| panic!("{method}: {status:?}"));
        let assertions = response.into_inner().assertions.expect("assertions");
        assert_eq!(
            assertions.fully_qualified_method,
            format!("/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/{method}")
        );
        assert_eq!(assertions.authority, "grpc.example.com");
        let values = |key: &str| -> Vec<String> {
            assertions
                .headers
                .iter()
                .filter(|h| h.key == key)
                .map(|h| h.value.clone())
                .collect()
        };
        assert_eq!(values("x-custom-header"), ["custom-value"]);
        assert_eq!(values("x-multi"), ["one", "two"]);
        assert_eq!(values(":authority"), ["grpc.example.com"]);
        assert!(values("te").is_empty());
        let context = assertions.context.expect("context");
        assert_eq!(context.pod, POD);
        assert_eq!(context.namespace, NAMESPACE);
        assert!(assertions.tls_assertions.is_none());
    }

    client.ready().await.unwrap();
    let path: hyper::http::uri::PathAndQuery = format!("/{SERVICE}/EchoThree").parse().unwrap();
    let err = timeout(client.unary(
        tonic::Request::new(EchoRequest {}),
        path,
        tonic_prost::ProstCodec::<EchoRequest, EchoResponse>::default(),
    ))
    .await
    .unwrap()
    .expect_err("EchoThree is unimplemented");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}

/// A unary call by hand over HTTP/2 (length-prefixed frame, trailers), used
/// for the TLS port where tonic's own TLS support is not compiled in.
async fn grpc_call_by_hand<IO>(io: IO, method: &str) -> (Option<String>, Option<EchoResponse>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut frame = vec![0u8];
    let message = EchoRequest {}.encode_to_vec();
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let req = Request::post(format!("https://{SNI}/{SERVICE}/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(frame)))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let collected = resp.into_body().collect().await.unwrap();
    let status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_owned());
    let body = collected.to_bytes();
    let decoded = (body.len() >= 5).then(|| EchoResponse::decode(&body[5..]).unwrap());
    (status, decoded)
}

#[tokio::test]
async fn grpc_tls_port_reports_tls_assertions() {
    let pki = Pki::new();
    let echo = grpc_echo(&pki);
    let port = echo.ports.https.expect("gRPC TLS port");
    let tls = pki.connect(port, &[b"h2"], false).await;
    let (status, response) = timeout(grpc_call_by_hand(tls, "EchoTwo")).await.unwrap();
    assert_eq!(status.as_deref(), Some("0"));
    let assertions = response.unwrap().assertions.unwrap();
    assert_eq!(assertions.authority, SNI);
    let tls = assertions
        .tls_assertions
        .expect("tls assertions on the TLS port");
    assert_eq!(tls.server_name, SNI);
    assert_eq!(tls.negotiated_protocol, "h2");
    assert_eq!(tls.version, "TLSv1.3");
    assert!(tls.cipher_suite.starts_with("TLS_"));
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> String {
    let mut line = String::new();
    timeout(reader.read_line(&mut line)).await.unwrap().unwrap();
    line
}

async fn tcp_conversation<IO>(io: IO, is_tls: bool) -> serde_json::Value
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut io = TokioBufReader::new(io);
    assert_eq!(read_line(&mut io).await, TCP_WELCOME);
    io.get_mut()
        .write_all(b"PING\nignored\r\nIS_TLS\r\n")
        .await
        .unwrap();
    assert_eq!(read_line(&mut io).await, "PONG\n");
    assert_eq!(read_line(&mut io).await, format!("{is_tls}\n"));
    io.get_mut().write_all(b"TEST\n").await.unwrap();
    let line = read_line(&mut io).await;
    assert!(line.ends_with('\n'));
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn tcp_echo_plain_and_tls() {
    let pki = Pki::new();
    let echo = Echo::start(
        &["--tcp-port", "0", "--tls-port", "0", "--service", "tcp-svc"],
        &[
            ("TCP_ECHO_SERVER", Path::new("true")),
            ("TLS_SERVER_CERT", &pki.cert),
            ("TLS_SERVER_PRIV_KEY", &pki.key),
        ],
    );
    let tcp_port = echo.ports.tcp.expect("tcp port");
    let tls_port = echo.ports.tls.expect("tls port");

    let tcp = TcpStream::connect(("127.0.0.1", tcp_port)).await.unwrap();
    let test = tcp_conversation(tcp, false).await;
    assert_eq!(test["pod"], POD);
    assert_eq!(test["namespace"], NAMESPACE);
    assert_eq!(test["service"], "tcp-svc");
    assert_eq!(test["tcpport"], tcp_port.to_string());
    assert_eq!(test["tlsport"], tls_port.to_string());
    assert_eq!(test["isTLS"], false);
    assert!(test.get("tls").is_none());

    let tls = pki.connect(tls_port, &[], false).await;
    let test = tcp_conversation(tls, true).await;
    assert_eq!(test["isTLS"], true);
    assert_eq!(test["tls"]["version"], "TLS 1.3");
    assert_eq!(test["tls"]["serverName"], SNI);
    assert!(test["tls"].get("negotiatedProtocol").is_none());
    assert!(
        test["tls"]["cipherSuite"]
            .as_str()
            .unwrap()
            .starts_with("TLS_")
    );
    assert!(!test["tls"]["curves"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn udp_echo_round_trip() {
    let echo = Echo::start(
        &[
            "--udp-port",
            "0",
            "--service",
            "udp-svc",
            "--ingress",
            "ing",
        ],
        &[("UDP_ECHO_SERVER", Path::new("1"))],
    );
    let port = echo.ports.udp.expect("udp port");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(("127.0.0.1", port)).await.unwrap();
    for payload in ["hello udp", "second \"datagram\""] {
        socket.send(payload.as_bytes()).await.unwrap();
        let mut buf = [0u8; 2048];
        let n = timeout(socket.recv(&mut buf)).await.unwrap().unwrap();
        let reply: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(
            reply,
            serde_json::json!({
                "request": payload,
                "namespace": NAMESPACE,
                "ingress": "ing",
                "service": "udp-svc",
                "pod": POD,
            })
        );
    }
}
