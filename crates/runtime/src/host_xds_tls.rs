//! Standalone mode's xDS mutual TLS (`--xds-tls`): a CA made in memory at start (never
//! written to disk), a server certificate for `localhost`/`127.0.0.1`, and per Gateway a
//! client certificate written to `<work-dir>/<namespace>/<name>/xds/` (next to the
//! bootstrap infra-manager writes) before that Gateway's Envoy starts.
//!
//! A new CA per run means files left by an earlier run are never trusted: every Gateway
//! gets fresh files the first time this run renders it.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferrogate_infra_render::XdsTlsPaths;
use ferrogate_ir::GatewayKey;
use ferrogate_xds_server::XdsTls;

use crate::pki::{IssuedCert, XdsCa, write_client_files};

fn client_dir(work_dir: &Path, gateway: &GatewayKey) -> PathBuf {
    work_dir
        .join(&gateway.namespace)
        .join(&gateway.name)
        .join("xds")
}

/// Where [`HostXdsTls::client_files`] puts `gateway`'s files under `work_dir` (no I/O).
pub(crate) fn client_paths(work_dir: &Path, gateway: &GatewayKey) -> XdsTlsPaths {
    XdsTlsPaths::in_dir(&client_dir(work_dir, gateway).to_string_lossy())
}

/// The CA, the server's certificate and which Gateways already have their files.
pub(crate) struct HostXdsTls {
    ca: XdsCa,
    server: IssuedCert,
    work_dir: PathBuf,
    written: BTreeSet<GatewayKey>,
}

impl HostXdsTls {
    /// A fresh CA and server certificate; client files will go under `work_dir` (created
    /// and made absolute here, so bootstraps name files that do not depend on Envoy's
    /// working directory).
    pub(crate) fn new(work_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(work_dir)
            .with_context(|| format!("work directory {}", work_dir.display()))?;
        let work_dir = std::fs::canonicalize(work_dir)
            .with_context(|| format!("work directory {}", work_dir.display()))?;
        let ca = XdsCa::generate()?;
        let server = ca.issue_server(
            &["localhost".to_string()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        )?;
        Ok(Self {
            ca,
            server,
            work_dir,
            written: BTreeSet::new(),
        })
    }

    /// What the xDS server needs: its certificate and the CA clients must chain to.
    pub(crate) fn server_tls(&self) -> XdsTls {
        XdsTls {
            server_cert_pem: self.server.cert_pem.clone(),
            server_key_pem: self.server.key_pem.clone(),
            client_ca_pem: self.ca.cert_pem().to_string(),
        }
    }

    /// The folder under which each Gateway's files go (see [`client_paths`]).
    pub(crate) fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    fn dir(&self, gateway: &GatewayKey) -> PathBuf {
        client_dir(&self.work_dir, gateway)
    }

    /// The files of `gateway`'s Envoy, issuing and writing them the first time. A write
    /// failure is logged and retried on the next run; the paths are returned anyway, so the
    /// bootstrap stays TLS (an Envoy without its files fails to start and is retried, rather
    /// than falling back to plaintext).
    pub(crate) fn client_files(&mut self, gateway: &GatewayKey) -> XdsTlsPaths {
        let dir = self.dir(gateway);
        if !self.written.contains(gateway) {
            let result = self
                .ca
                .issue_gateway_client(&gateway.namespace, &gateway.name)
                .and_then(|issued| write_client_files(&dir, self.ca.cert_pem(), &issued));
            match result {
                Ok(()) => {
                    tracing::info!(%gateway, dir = %dir.display(), "issued xDS client certificate");
                    self.written.insert(gateway.clone());
                }
                Err(e) => {
                    tracing::error!(%gateway, error = format!("{e:#}"), "cannot write the xDS client certificate")
                }
            }
        }
        XdsTlsPaths::in_dir(&dir.to_string_lossy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_files_are_written_once_per_gateway_with_a_private_key() {
        let tmp = tempfile::tempdir().unwrap();
        let mut tls = HostXdsTls::new(&tmp.path().join("work")).unwrap();
        let gw = GatewayKey::new("default", "eg");
        let paths = tls.client_files(&gw);
        assert!(
            paths.cert.ends_with("default/eg/xds/tls.crt"),
            "{}",
            paths.cert
        );
        assert!(Path::new(&paths.cert).is_absolute());
        let first = std::fs::read_to_string(&paths.cert).unwrap();
        assert_eq!(
            std::fs::read_to_string(&paths.ca).unwrap(),
            tls.server_tls().client_ca_pem
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&paths.key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(tls.client_files(&gw), paths);
        assert_eq!(
            std::fs::read_to_string(&paths.cert).unwrap(),
            first,
            "not re-issued"
        );
    }
}
