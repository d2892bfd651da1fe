//! `make cluster`: a local control plane for a person. Builds (or reuses) etcd,
//! kube-apiserver and kube-controller-manager, starts them, installs upstream's Gateway API
//! CRDs (unless `--no-crds`), prints the kubeconfig path and waits; Ctrl-C stops everything.

use clap::Parser;
use ferrogate_cluster::{ControlPlane, ControlPlaneOptions, install};

/// A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager).
#[derive(Parser, Debug)]
struct Args {
    /// Do not install upstream's Gateway API CRDs.
    #[arg(long)]
    no_crds: bool,
    /// Copy the admin kubeconfig here as well.
    #[arg(long)]
    kubeconfig_out: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = std::time::Instant::now();
    let plane = ControlPlane::start(ControlPlaneOptions {
        controller_manager: true,
        keep_dir: false,
    })
    .await?;
    if !args.no_crds {
        install::gateway_api_crds(&plane, "experimental")?;
    }
    let mut kubeconfig = plane.kubeconfig().to_path_buf();
    if let Some(out) = args.kubeconfig_out {
        std::fs::copy(plane.kubeconfig(), &out)?;
        kubeconfig = out;
    }
    println!(
        "control plane ready in {:.1}s ({})",
        started.elapsed().as_secs_f64(),
        plane.server()
    );
    println!("logs: {}", plane.dir().display());
    println!("export KUBECONFIG={}", kubeconfig.display());
    println!(
        "Ctrl-C stops etcd, kube-apiserver and kube-controller-manager and removes their data."
    );
    tokio::signal::ctrl_c().await?;
    drop(plane);
    Ok(())
}
