//! A real Kubernetes control plane on this machine: etcd, kube-apiserver and
//! kube-controller-manager as local processes.
//!
//! - etcd keeps its data on tmpfs (`/dev/shm`) without fsync, as envtest runs it;
//! - kube-apiserver serves TLS with a certificate from the test's own CA, authorizes with
//!   RBAC, authenticates the admin and the controller-manager with static tokens and signs
//!   service-account tokens, so a ServiceAccount's token gets exactly its RBAC;
//! - kube-controller-manager runs the controllers the in-cluster tests rely on (Deployments,
//!   ReplicaSets, EndpointSlices, garbage collection, namespace deletion, ServiceAccounts and
//!   their tokens, the root CA ConfigMap). There is no kubelet: Pods stay Pending unless a
//!   test (or the project's node tool) plays its part.
//!
//! Components can be killed and restarted one by one for fault tests; etcd's data survives.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;

use crate::pki::{self, ClusterPki};
use crate::process::{ManagedProcess, free_port};
use crate::service_range::ServiceRange;
use crate::tools::{self, Binaries};

/// The controllers kube-controller-manager runs.
pub const CONTROLLERS: &[&str] = &[
    "deployment-controller",
    "replicaset-controller",
    "endpointslice-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
];

/// What to start.
#[derive(Clone, Debug)]
pub struct ControlPlaneOptions {
    /// Start kube-controller-manager too.
    pub controller_manager: bool,
    /// Keep the work directory (logs, kubeconfigs) after drop, for a person to read.
    pub keep_dir: bool,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        Self {
            controller_manager: true,
            keep_dir: false,
        }
    }
}

/// A running local control plane. Dropping it stops every process and removes its files.
pub struct ControlPlane {
    dir: tempfile::TempDir,
    etcd_dir: tempfile::TempDir,
    binaries: Binaries,
    pki: ClusterPki,
    /// This cluster's own Service CIDR (the node puts ClusterIPs on the host).
    services: ServiceRange,
    etcd_port: u16,
    etcd_peer_port: u16,
    apiserver_port: u16,
    admin_kubeconfig: PathBuf,
    cm_kubeconfig: PathBuf,
    etcd: Option<ManagedProcess>,
    apiserver: Option<ManagedProcess>,
    controller_manager: Option<ManagedProcess>,
}

fn token() -> String {
    // Loopback-only test cluster: a token unique per start is enough, it guards nothing else.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

/// A kubeconfig for `server` trusting `ca_pem`, authenticated by `token`.
pub fn kubeconfig_yaml(
    server: &str,
    ca_pem: &str,
    user: &str,
    token: &str,
    namespace: &str,
) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
         users:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: {user}@local\n  context:\n    cluster: local\n    user: {user}\n    namespace: {namespace}\n\
         current-context: {user}@local\n"
    )
}

impl ControlPlane {
    /// Builds (or reuses) the binaries, then starts etcd, kube-apiserver and, if asked,
    /// kube-controller-manager, and waits until the API server is ready.
    pub async fn start(options: ControlPlaneOptions) -> anyhow::Result<Self> {
        let binaries = tools::binaries()?;
        let dir = tempfile::Builder::new()
            .prefix("ferrogate-cluster-")
            .tempdir()?;
        let shm = Path::new("/dev/shm");
        let etcd_dir = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("ferrogate-etcd-")
                .tempdir_in(shm)?
        } else {
            tempfile::tempdir()?
        };
        let services = ServiceRange::claim()?;
        let pki = pki::write(dir.path(), &services.kubernetes_service_ip().to_string())?;
        let (admin, cm) = (token(), format!("cm{}", token()));
        std::fs::write(
            dir.path().join("tokens.csv"),
            format!(
                "{admin},admin,admin,\"system:masters\"\n{cm},system:kube-controller-manager,kube-controller-manager,\"system:masters\"\n"
            ),
        )?;
        let apiserver_port = free_port();
        let server = format!("https://127.0.0.1:{apiserver_port}");
        let ca_pem = std::fs::read_to_string(&pki.ca_cert)?;
        let admin_kubeconfig = dir.path().join("admin.kubeconfig");
        std::fs::write(
            &admin_kubeconfig,
            kubeconfig_yaml(&server, &ca_pem, "admin", &admin, "default"),
        )?;
        let cm_kubeconfig = dir.path().join("controller-manager.kubeconfig");
        std::fs::write(
            &cm_kubeconfig,
            kubeconfig_yaml(
                &server,
                &ca_pem,
                "kube-controller-manager",
                &cm,
                "kube-system",
            ),
        )?;
        let mut plane = Self {
            dir,
            etcd_dir,
            binaries,
            pki,
            services,
            etcd_port: free_port(),
            etcd_peer_port: free_port(),
            apiserver_port,
            admin_kubeconfig,
            cm_kubeconfig,
            etcd: None,
            apiserver: None,
            controller_manager: None,
        };
        if options.keep_dir {
            plane.dir.disable_cleanup(true);
        }
        plane.start_etcd()?;
        plane.start_apiserver()?;
        plane.wait_ready(Duration::from_secs(120)).await?;
        if options.controller_manager {
            plane.start_controller_manager()?;
        }
        Ok(plane)
    }

    /// The Service CIDR (`10.96.X.0/24`, distinct for every control plane alive on this host).
    pub fn service_cidr(&self) -> String {
        self.services.cidr()
    }

    /// The admin kubeconfig (`system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// The work directory (logs, kubeconfigs, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver_port)
    }

    /// The CA that signs the API server's certificate (PEM).
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.pki.ca_cert).unwrap_or_default()
    }

    /// The binaries in use (kubectl for tests).
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// A kube-rs client as the admin.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client_from_kubeconfig(&self.admin_kubeconfig).await
    }

    /// Starts etcd (again) on the same data and ports.
    pub fn start_etcd(&mut self) -> anyhow::Result<()> {
        let (client, peer) = (
            format!("http://127.0.0.1:{}", self.etcd_port),
            format!("http://127.0.0.1:{}", self.etcd_peer_port),
        );
        let mut cmd = Command::new(&self.binaries.etcd);
        cmd.arg("--name=default")
            .arg(format!(
                "--data-dir={}",
                self.etcd_dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"))
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        self.etcd = Some(ManagedProcess::spawn(
            "etcd",
            cmd,
            &self.dir.path().join("etcd.log"),
        )?);
        Ok(())
    }

    /// Starts kube-apiserver (again) on the same port.
    pub fn start_apiserver(&mut self) -> anyhow::Result<()> {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.binaries.kube_apiserver);
        cmd.arg(format!(
            "--etcd-servers=http://127.0.0.1:{}",
            self.etcd_port
        ))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", self.apiserver_port))
        .arg(format!(
            "--cert-dir={}",
            d.join("apiserver-certs").display()
        ))
        .arg(format!(
            "--tls-cert-file={}",
            self.pki.serving_cert.display()
        ))
        .arg(format!(
            "--tls-private-key-file={}",
            self.pki.serving_key.display()
        ))
        .arg(format!("--client-ca-file={}", self.pki.ca_cert.display()))
        .arg(format!(
            "--token-auth-file={}",
            d.join("tokens.csv").display()
        ))
        .arg("--authorization-mode=RBAC")
        .arg(format!(
            "--service-cluster-ip-range={}",
            self.services.cidr()
        ))
        .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
        .arg(format!(
            "--service-account-key-file={}",
            self.pki.sa_public.display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            self.pki.sa_private.display()
        ))
        // No node runs the `kubernetes` Service's endpoints on loopback addresses.
        .arg("--endpoint-reconciler-type=none")
        // Stricter than the defaults, as OpenShift is: setting blockOwnerDeletion needs
        // permission to update the owner's finalizers.
        .arg("--enable-admission-plugins=OwnerReferencesPermissionEnforcement")
        .arg("--allow-privileged=true")
        .arg("--profiling=false")
        .arg("--v=1");
        self.apiserver = Some(ManagedProcess::spawn(
            "kube-apiserver",
            cmd,
            &d.join("kube-apiserver.log"),
        )?);
        Ok(())
    }

    /// Starts kube-controller-manager (again).
    pub fn start_controller_manager(&mut self) -> anyhow::Result<()> {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.binaries.kube_controller_manager);
        cmd.arg(format!("--kubeconfig={}", self.cm_kubeconfig.display()))
            .arg(format!(
                "--authentication-kubeconfig={}",
                self.cm_kubeconfig.display()
            ))
            .arg(format!(
                "--authorization-kubeconfig={}",
                self.cm_kubeconfig.display()
            ))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={}", free_port()))
            .arg(format!(
                "--cert-dir={}",
                d.join("controller-manager-certs").display()
            ))
            .arg("--leader-elect=false")
            .arg(format!("--controllers={}", CONTROLLERS.join(",")))
            .arg(format!(
                "--service-account-private-key-file={}",
                self.pki.sa_private.display()
            ))
            .arg(format!("--root-ca-file={}", self.pki.ca_cert.display()))
            .arg(format!(
                "--service-cluster-ip-range={}",
                self.services.cidr()
            ))
            .arg("--v=1");
        self.controller_manager = Some(ManagedProcess::spawn(
            "kube-controller-manager",
            cmd,
            &d.join("kube-controller-manager.log"),
        )?);
        Ok(())
    }

    /// SIGKILLs etcd.
    pub fn kill_etcd(&mut self) {
        if let Some(p) = self.etcd.as_mut() {
            p.kill()
        }
    }

    /// SIGKILLs kube-apiserver.
    pub fn kill_apiserver(&mut self) {
        if let Some(p) = self.apiserver.as_mut() {
            p.kill()
        }
    }

    /// Waits until `/readyz` answers `ok`; fails early with the log when a process died.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            for p in [self.etcd.as_mut(), self.apiserver.as_mut()]
                .into_iter()
                .flatten()
            {
                if let Some(status) = p.exited() {
                    anyhow::bail!(
                        "{} exited ({status}) while starting:\n{}",
                        p.name(),
                        p.log_tail(30)
                    );
                }
            }
            let out = self.kubectl_output(&["get", "--raw", "/readyz"]);
            if out.as_deref().is_ok_and(|o| o.trim() == "ok") {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                let log = self
                    .apiserver
                    .as_ref()
                    .map(|p| p.log_tail(30))
                    .unwrap_or_default();
                anyhow::bail!("kube-apiserver not ready after {timeout:?} ({out:?}):\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs kubectl as the admin and returns its stdout, or its stderr as the error.
    pub fn kubectl_output(&self, args: &[&str]) -> anyhow::Result<String> {
        crate::kubectl::run(&self.binaries.kubectl, &self.admin_kubeconfig, args, None)
    }

    /// The tails of every component's log, for a failing test's message.
    pub fn logs(&self, lines: usize) -> String {
        [&self.etcd, &self.apiserver, &self.controller_manager]
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "--- {} ({})\n{}",
                    p.name(),
                    p.log().display(),
                    p.log_tail(lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // The controller-manager and API server first, so neither logs etcd's disappearance.
        for p in [
            self.controller_manager.as_mut(),
            self.apiserver.as_mut(),
            self.etcd.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            p.terminate(Duration::from_secs(5));
        }
    }
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}
