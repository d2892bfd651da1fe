//! `ferrogate controller` as a process on this machine, authenticated as the chart's
//! ServiceAccount: the real binary, the real client, the chart's RBAC enforced by the server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::control_plane::ControlPlane;
use crate::install::{self, NAMESPACE, SERVICE_ACCOUNT};
use crate::process::{ManagedProcess, free_port};
use crate::tools;

/// How to run one controller replica.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// Leader-election identity (the Pod name in a cluster).
    pub identity: String,
    /// Extra arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Address the xDS server listens on: loopback for Envoys on this host, a node's bridge
    /// address for Envoy Pods in network namespaces.
    pub xds_ip: std::net::IpAddr,
    /// The xDS port; `None`: a free one. A replica that replaces another on the same port
    /// keeps the provisioned bootstrap (which names the port) unchanged, so Envoy Pods only
    /// reconnect instead of being rolled.
    pub xds_port: Option<u16>,
    /// The `ferrogate` binary; `None`: [`tools::ferrogate_bin`] (the debug build).
    pub binary: Option<PathBuf>,
    /// The kubeconfig to run with; `None`: a fresh one for the chart's ServiceAccount.
    pub kubeconfig: Option<PathBuf>,
    /// `--debounce-ms`: 20 for tests (they wait less), the product's default (100) is for
    /// whoever measures what users get.
    pub debounce_ms: u64,
}

impl ControllerOptions {
    pub fn new(identity: &str) -> Self {
        Self {
            identity: identity.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            xds_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            xds_port: None,
            binary: None,
            kubeconfig: None,
            debounce_ms: 20,
        }
    }
}

/// A running `ferrogate controller`.
pub struct Controller {
    process: ManagedProcess,
    /// xDS port on [`ControllerOptions::xds_ip`].
    pub xds_port: u16,
    /// `/metrics` port on 127.0.0.1.
    pub metrics_port: u16,
    /// `/healthz`, `/readyz` port on 127.0.0.1.
    pub health_port: u16,
    /// The xDS TLS directory (`ferrogate certgen --output-dir`).
    pub tls_dir: PathBuf,
}

/// Makes the xDS CA and server certificate files with `ferrogate certgen` in `dir`.
pub fn certgen(dir: &Path) -> anyhow::Result<()> {
    certgen_with(&tools::ferrogate_bin()?, dir)
}

/// [`certgen`] with the `ferrogate` binary at `binary`.
pub fn certgen_with(binary: &Path, dir: &Path) -> anyhow::Result<()> {
    let status = Command::new(binary)
        .args(["certgen", "--namespace", NAMESPACE, "--output-dir"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "ferrogate certgen failed ({status})");
    Ok(())
}

impl Controller {
    /// Starts a replica as the chart's ServiceAccount, with xDS TLS material from `tls_dir`
    /// (shared by replicas, as the chart's Secret is).
    pub fn start(
        plane: &ControlPlane,
        tls_dir: &Path,
        options: &ControllerOptions,
    ) -> anyhow::Result<Self> {
        let kubeconfig = match &options.kubeconfig {
            Some(path) => path.clone(),
            None => install::service_account_kubeconfig(plane, NAMESPACE, SERVICE_ACCOUNT)?,
        };
        let xds_port = options.xds_port.unwrap_or_else(free_port);
        let (metrics_port, health_port) = (free_port(), free_port());
        let binary = match &options.binary {
            Some(path) => path.clone(),
            None => tools::ferrogate_bin()?,
        };
        let mut cmd = Command::new(binary);
        cmd.env("KUBECONFIG", &kubeconfig)
            .env("FERROGATE_LOG", "info,ferrogate=debug")
            .arg("controller")
            .arg(format!("--namespace={NAMESPACE}"))
            .arg(format!("--pod-name={}", options.identity))
            .arg(format!(
                "--xds-addr={}",
                std::net::SocketAddr::new(options.xds_ip, xds_port)
            ))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .arg(format!("--health-addr=127.0.0.1:{health_port}"))
            .arg("--xds-tls-dir")
            .arg(tls_dir)
            .arg(format!("--debounce-ms={}", options.debounce_ms))
            .args(&options.args);
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let log = plane
            .dir()
            .join(format!("controller-{}.log", options.identity));
        let process = ManagedProcess::spawn(
            &format!("ferrogate controller {}", options.identity),
            cmd,
            &log,
        )?;
        Ok(Self {
            process,
            xds_port,
            metrics_port,
            health_port,
            tls_dir: tls_dir.to_path_buf(),
        })
    }

    /// SIGKILL, as a crash or a node loss would.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        self.process.terminate(Duration::from_secs(10));
    }

    /// The last lines of the controller's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.process.log()).unwrap_or_default()
    }

    /// The process id while it runs (for its CPU time in `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// `Some` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }
}
