//! Installing what a user installs: upstream's Gateway API CRDs and the Helm chart, with
//! server-side apply, and a kubeconfig for the chart's ServiceAccount.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::control_plane::{ControlPlane, kubeconfig_yaml};
use crate::tools;

/// The chart's release namespace, as the docs install it.
pub const NAMESPACE: &str = "ferrogate-system";
/// The chart's ServiceAccount (release `ferrogate`).
pub const SERVICE_ACCOUNT: &str = "ferrogate";

/// Applies upstream's CRDs (`experimental` or `standard` channel of the release in
/// `scripts/cluster/versions.sh`) and waits until every CRD is Established.
pub fn gateway_api_crds(plane: &ControlPlane, channel: &str) -> anyhow::Result<()> {
    let dir = tools::gateway_api_crds(channel)?;
    let dir = dir.to_string_lossy();
    plane.kubectl_output(&[
        "apply",
        "--server-side",
        "--field-manager=ferrogate-test",
        "-k",
        &dir,
    ])?;
    plane.kubectl_output(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=60s",
    ])?;
    Ok(())
}

/// The chart rendered with `values` (YAML; empty for the defaults) by `scripts/chart.py
/// render --skip-crds`: the release Namespace and the chart's templates, in install order.
pub fn render_chart(values: &str) -> anyhow::Result<String> {
    let values_file = tempfile::NamedTempFile::new()?;
    std::fs::write(values_file.path(), values)?;
    let out = Command::new("python3")
        .arg(tools::repo_root().join("scripts/chart.py"))
        .arg("render")
        .arg("--skip-crds")
        .arg("--values")
        .arg(values_file.path())
        .output()
        .context("cannot run scripts/chart.py render")?;
    anyhow::ensure!(
        out.status.success(),
        "chart.py render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Applies the chart's CRDs (`charts/ferrogate/crds/`, as Helm installs them first), waits
/// until they are Established, then renders the chart with `values` and applies every object
/// with server-side apply.
pub fn chart(plane: &ControlPlane, values: &str) -> anyhow::Result<()> {
    let crds = tools::repo_root().join("charts/ferrogate/crds");
    plane.kubectl_output(&[
        "apply",
        "--server-side",
        "--field-manager=helm",
        "-f",
        &crds.to_string_lossy(),
    ])?;
    plane.kubectl_output(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=60s",
    ])?;
    let rendered = render_chart(values)?;
    crate::kubectl::run(
        &plane.binaries().kubectl,
        plane.kubeconfig(),
        &["apply", "--server-side", "--field-manager=helm", "-f", "-"],
        Some(&rendered),
    )?;
    plane.kubectl_output(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=60s",
    ])?;
    Ok(())
}

/// A kubeconfig authenticated as ServiceAccount `namespace/name` (a TokenRequest token), so
/// whatever uses it gets exactly that ServiceAccount's RBAC.
pub fn service_account_kubeconfig(
    plane: &ControlPlane,
    namespace: &str,
    name: &str,
) -> anyhow::Result<PathBuf> {
    let token =
        plane.kubectl_output(&["create", "token", name, "-n", namespace, "--duration=24h"])?;
    let path = plane.dir().join(format!("{namespace}-{name}.kubeconfig"));
    std::fs::write(
        &path,
        kubeconfig_yaml(
            &plane.server(),
            &plane.ca_pem(),
            &format!("{namespace}-{name}"),
            token.trim(),
            namespace,
        ),
    )?;
    Ok(path)
}
