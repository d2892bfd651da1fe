//! `ferrogate config-dump <gateway>`: the running configuration of a Gateway's Envoy, from
//! its admin API (`/config_dump`), with private keys redacted.
//!
//! Three ways to reach it:
//! - in a cluster (the default): one Ready Envoy Pod of the Gateway, through a port-forward
//!   of the API server to the admin port (127.0.0.1:19000 inside the Pod), as
//!   `kubectl port-forward` would do, but built in;
//! - standalone: the admin port is read from the Gateway's bootstrap in the work directory
//!   (replica 0);
//! - an admin address given directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrogate_api::constants::{
    ENVOY_ADMIN_PORT, LABEL_OWNING_GATEWAY_NAME, LABEL_OWNING_GATEWAY_NAMESPACE,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long the admin API gets to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the dump could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ConfigDumpError {
    /// The Gateway has no Envoy recorded in the work directory.
    #[error(
        "no Envoy of Gateway {gateway} under {work_dir} (is `ferrogate standalone` running with this --work-dir?): {source}"
    )]
    NotRunning {
        /// The Gateway (`<namespace>/<name>`).
        gateway: String,
        /// The work directory searched.
        work_dir: PathBuf,
        /// Reading its bootstrap failed.
        #[source]
        source: std::io::Error,
    },
    /// The bootstrap has no admin port.
    #[error("the bootstrap of {0} has no admin port")]
    NoAdminPort(String),
    /// The admin API did not answer.
    #[error("Envoy admin at {at}: {source}")]
    Admin {
        /// The admin address, or the Pod behind the port-forward.
        at: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The admin API answered something else than a JSON config dump.
    #[error("Envoy admin at {at} answered {what}")]
    BadAnswer {
        /// The admin address, or the Pod behind the port-forward.
        at: String,
        /// What came back.
        what: String,
    },
    /// No Kubernetes client could be built (no kubeconfig and not in a cluster).
    #[error("no Kubernetes credentials: {0}")]
    Config(String),
    /// Listing the Gateway's Pods or opening the port-forward failed.
    #[error("Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The Gateway has no Ready Envoy Pod.
    #[error(
        "Gateway {0} has no Ready Envoy Pod (is it a Gateway of a ferrogate GatewayClass, and Programmed?)"
    )]
    NoPod(String),
}

/// The admin address of replica 0 of `gateway` (`<namespace>/<name>`, or a name in
/// `default`) as recorded under a standalone `work_dir`.
pub fn admin_addr(work_dir: &Path, gateway: &str) -> Result<SocketAddr, ConfigDumpError> {
    let (namespace, name) = gateway.split_once('/').unwrap_or(("default", gateway));
    let path = work_dir.join(namespace).join(name).join("bootstrap.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigDumpError::NotRunning {
        gateway: format!("{namespace}/{name}"),
        work_dir: work_dir.to_path_buf(),
        source,
    })?;
    let bootstrap: Value = serde_json::from_str(&text)
        .map_err(|_| ConfigDumpError::NoAdminPort(path.display().to_string()))?;
    let port = bootstrap
        .pointer("/admin/address/socket_address/port_value")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| ConfigDumpError::NoAdminPort(path.display().to_string()))?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Fetches `/config_dump` (with endpoints when `include_eds`) from the Envoy admin API at
/// `addr` and returns it with every private key redacted.
pub async fn config_dump(addr: SocketAddr, include_eds: bool) -> Result<Value, ConfigDumpError> {
    let at = addr.to_string();
    let dump = tokio::time::timeout(TIMEOUT, async {
        let stream = tokio::net::TcpStream::connect(addr).await;
        let stream = stream.map_err(|source| ConfigDumpError::Admin {
            at: at.clone(),
            source,
        })?;
        fetch(stream, &at, include_eds).await
    })
    .await;
    dump.unwrap_or_else(|_| Err(timed_out(at)))
}

/// Fetches the config dump of `gateway` (`<namespace>/<name>`, or a name in `default`) from
/// one of its Ready Envoy Pods in the cluster of the current kubeconfig, through a
/// port-forward of the API server to the Pod's admin port.
pub async fn config_dump_from_cluster(
    gateway: &str,
    include_eds: bool,
) -> Result<Value, ConfigDumpError> {
    let (namespace, name) = gateway.split_once('/').unwrap_or(("default", gateway));
    let client = kube::Client::try_default()
        .await
        .map_err(|e| ConfigDumpError::Config(e.to_string()))?;
    let selector = format!(
        "{LABEL_OWNING_GATEWAY_NAMESPACE}={namespace},{LABEL_OWNING_GATEWAY_NAME}={}",
        ferrogate_infra_render::kubernetes::label_value(name)
    );
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await?;
    let pod = ready_pod(pods.items)
        .ok_or_else(|| ConfigDumpError::NoPod(format!("{namespace}/{name}")))?;
    let pod_namespace = pod.metadata.namespace.unwrap_or_default();
    let pod_name = pod.metadata.name.unwrap_or_default();
    let at = format!("Pod {pod_namespace}/{pod_name} port {ENVOY_ADMIN_PORT}");
    let dump = tokio::time::timeout(TIMEOUT, async {
        let mut forward = Api::<Pod>::namespaced(client, &pod_namespace)
            .portforward(&pod_name, &[ENVOY_ADMIN_PORT])
            .await?;
        let stream =
            forward
                .take_stream(ENVOY_ADMIN_PORT)
                .ok_or_else(|| ConfigDumpError::BadAnswer {
                    at: at.clone(),
                    what: "no stream for the admin port".into(),
                })?;
        let dump = fetch(stream, &at, include_eds).await;
        forward.abort();
        dump
    })
    .await;
    dump.unwrap_or_else(|_| Err(timed_out(at)))
}

/// The first Ready Pod by name (so repeated dumps ask the same replica).
fn ready_pod(mut pods: Vec<Pod>) -> Option<Pod> {
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods.into_iter().find(|p| {
        p.metadata.deletion_timestamp.is_none()
            && p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
}

fn timed_out(at: String) -> ConfigDumpError {
    ConfigDumpError::Admin {
        at,
        source: std::io::ErrorKind::TimedOut.into(),
    }
}

/// `/config_dump` over `stream` to an Envoy admin API, redacted.
async fn fetch<S>(stream: S, at: &str, include_eds: bool) -> Result<Value, ConfigDumpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let path = if include_eds {
        "/config_dump?include_eds"
    } else {
        "/config_dump"
    };
    let body = get(stream, path)
        .await
        .map_err(|source| ConfigDumpError::Admin {
            at: at.to_string(),
            source,
        })?;
    let mut dump: Value =
        serde_json::from_slice(&body).map_err(|e| ConfigDumpError::BadAnswer {
            at: at.to_string(),
            what: format!("no JSON ({e})"),
        })?;
    redact(&mut dump);
    Ok(dump)
}

/// A plain HTTP/1.1 GET with `Connection: close` (Envoy's admin refuses HTTP/1.0), so no
/// HTTP client stack is needed for one request. Returns the body of a 200.
async fn get<S>(mut stream: S, path: &str) -> std::io::Result<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status_line = head.lines().next().unwrap_or_default().to_string();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(std::io::Error::other(format!("answered {status_line}")));
    }
    let body = response.split_off(split + 4);
    if head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"))
    {
        dechunk(&body)
    } else {
        Ok(body)
    }
}

/// Decodes a chunked HTTP/1.1 body.
fn dechunk(mut rest: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = || std::io::Error::other("malformed chunked body");
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
                .map_err(|_| bad())?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or_else(bad)?);
        rest = rest.get(size + 2..).ok_or_else(bad)?;
    }
}

/// Replaces every private key (and password) anywhere in `value` with `"<redacted>"`. Envoy
/// redacts the keys of its SDS secrets itself, but not every place a key can sit (static
/// bootstrap secrets, extension configs), and a dump is meant to be pasted into issues.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if matches!(
                    key.as_str(),
                    "private_key" | "privateKey" | "password" | "private_key_provider"
                ) {
                    *v = Value::String("<redacted>".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_are_redacted_at_any_depth_and_nothing_else() {
        let mut dump = serde_json::json!({
            "configs": [{ "dynamic_active_secrets": [{ "secret": {
                "tls_certificate": { "certificate_chain": { "inline_string": "CERT" }, "private_key": { "inline_string": "KEY" } }
            }}]}],
            "static": { "privateKey": "KEY", "name": "x" }
        });
        redact(&mut dump);
        let text = dump.to_string();
        assert!(!text.contains("KEY"), "{text}");
        assert!(
            text.contains("CERT") && text.contains("\"name\":\"x\""),
            "{text}"
        );
    }

    #[test]
    fn a_chunked_body_is_reassembled() {
        assert_eq!(
            dechunk(b"4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n").unwrap(),
            b"{\"a\":1}"
        );
        assert!(dechunk(b"zz\r\n").is_err());
    }

    #[test]
    fn the_admin_port_comes_from_the_gateways_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let gw = dir.path().join("apps/web");
        std::fs::create_dir_all(&gw).unwrap();
        std::fs::write(gw.join("bootstrap.json"), r#"{"admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":19100}}}}"#).unwrap();
        assert_eq!(
            admin_addr(dir.path(), "apps/web").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 19100))
        );
        assert!(matches!(
            admin_addr(dir.path(), "web"),
            Err(ConfigDumpError::NotRunning { .. })
        ));
    }
}
