//! Where the binaries and upstream data of the local cluster come from.
//!
//! Nothing here is downloaded at test time beyond the Go module proxy: the control plane is
//! built (once per version, cached in `.tools/`) by `scripts/cluster/build-control-plane.sh`,
//! and upstream's CRDs come from the `sigs.k8s.io/gateway-api` module in the Go module cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Context;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// Paths of the control-plane binaries.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kubectl: PathBuf,
}

fn version(name: &str) -> anyhow::Result<String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source scripts/cluster/versions.sh && echo ${name}"
        ))
        .current_dir(repo_root())
        .output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// Builds (or finds in the cache) etcd, kube-apiserver, kube-controller-manager and kubectl.
/// A cold build takes tens of minutes on two cores; a warm one returns at once.
pub fn binaries() -> anyhow::Result<Binaries> {
    static CACHE: OnceLock<Result<Binaries, String>> = OnceLock::new();
    CACHE
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn build() -> anyhow::Result<Binaries> {
    let root = repo_root();
    let status = Command::new(root.join("scripts/cluster/build-control-plane.sh"))
        .current_dir(&root)
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run scripts/cluster/build-control-plane.sh")?;
    anyhow::ensure!(
        status.success(),
        "scripts/cluster/build-control-plane.sh failed ({status})"
    );
    let tools = std::env::var_os("TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".tools"));
    let kube = tools.join("kube").join(version("KUBE_VERSION")?);
    let binaries = Binaries {
        etcd: tools
            .join("etcd")
            .join(version("ETCD_VERSION")?)
            .join("etcd"),
        kube_apiserver: kube.join("kube-apiserver"),
        kube_controller_manager: kube.join("kube-controller-manager"),
        kubectl: kube.join("kubectl"),
    };
    for path in [
        &binaries.etcd,
        &binaries.kube_apiserver,
        &binaries.kube_controller_manager,
        &binaries.kubectl,
    ] {
        anyhow::ensure!(
            path.is_file(),
            "{} is missing after the build",
            path.display()
        );
    }
    Ok(binaries)
}

/// The folder of upstream's Gateway API CRDs (`experimental` or `standard` channel) of the
/// release in `scripts/cluster/versions.sh`.
pub fn gateway_api_crds(channel: &str) -> anyhow::Result<PathBuf> {
    let out = Command::new(repo_root().join("scripts/cluster/gateway-api-crds.sh"))
        .arg(channel)
        .output()
        .context("cannot run scripts/cluster/gateway-api-crds.sh")?;
    anyhow::ensure!(
        out.status.success(),
        "gateway-api-crds.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// The Gateway API release installed in the test cluster.
pub fn gateway_api_version() -> String {
    version("GATEWAY_API_VERSION").unwrap_or_default()
}

/// The `ferrogate` binary the tests run: `FERROGATE_BIN`, else the workspace's debug build
/// (`make cluster-test` builds it first).
pub fn ferrogate_bin() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("FERROGATE_BIN") {
        Some(p) => PathBuf::from(p),
        None => target_debug().join("ferrogate"),
    };
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build it with `cargo build --bin ferrogate` (make cluster-test does)",
        path.display()
    );
    Ok(path)
}

/// The workspace's debug build folder (`CARGO_TARGET_DIR`, else `target/`).
pub fn target_debug() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("debug")
}

/// An IPv4 address of this host that is not loopback (the interface of the default route):
/// the API server refuses loopback addresses in EndpointSlices, so backends that tests run on
/// this host listen here.
pub fn host_ip() -> anyhow::Result<std::net::IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the outgoing interface.
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    socket
        .connect("192.0.2.255:9")
        .or_else(|_| socket.connect("10.255.255.255:9"))?;
    let ip = socket.local_addr()?.ip();
    anyhow::ensure!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "this host has no non-loopback IPv4 address ({ip})"
    );
    Ok(ip)
}

/// What `e2e/upstream-conformance/build.sh` builds (once per version, cached in `.tools/`):
/// the upstream conformance suite's test binary and the stand-ins for the images of its base
/// manifests.
#[derive(Clone, Debug)]
pub struct UpstreamConformance {
    pub suite: PathBuf,
    pub echo_basic: PathBuf,
    pub coredns: PathBuf,
}

/// Builds (or finds in the cache) the upstream conformance suite, echo-basic and CoreDNS.
pub fn upstream_conformance() -> anyhow::Result<UpstreamConformance> {
    let script = repo_root().join("e2e/upstream-conformance/build.sh");
    let out = Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run e2e/upstream-conformance/build.sh")?;
    anyhow::ensure!(
        out.status.success(),
        "e2e/upstream-conformance/build.sh failed ({})",
        out.status
    );
    let dir = PathBuf::from(String::from_utf8(out.stdout)?.trim());
    let coredns_dir = dir
        .parent()
        .context("suite folder has a parent")?
        .join(format!("coredns-{}", version("COREDNS_VERSION")?));
    let built = UpstreamConformance {
        suite: dir.join("conformance.test"),
        echo_basic: dir.join("echo-basic"),
        coredns: coredns_dir.join("coredns"),
    };
    for path in [&built.suite, &built.echo_basic, &built.coredns] {
        anyhow::ensure!(
            path.is_file(),
            "{} is missing after the build",
            path.display()
        );
    }
    Ok(built)
}
