//! Helpers for integration tests that run ferrogate and Envoy processes (the `ferrogate`
//! crate's `standalone`, `xds_tls` and `metrics` tests, and the in-cluster tests of `e2e/cluster`): a child-process
//! guard, free ports, the Envoy binary, the quickstart example as config files, a
//! `ferrogate standalone` instance, and polling until a condition holds.
//!
//! They panic on failure, as test code does. The ferrogate binary's path is passed in by the
//! caller (`env!("CARGO_BIN_EXE_ferrogate")` is only defined in the ferrogate crate's tests).

use std::ffi::OsStr;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{self, HttpResponse};

/// The repository root (this crate lives in `e2e/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A child process stopped when dropped: SIGTERM (so ferrogate can stop its Envoys), then
/// SIGKILL if it has not exited within 5 s.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1 (chosen by the kernel).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first port of `len` consecutive ports, free on 127.0.0.1 and 0.0.0.0, at or after
/// `start` (offset by the process id so parallel test binaries start apart). Standalone
/// mode gives each Gateway 10 ports from its `--envoy-base-port`.
pub fn free_block(start: u16, len: u16) -> u16 {
    let mut base = start + (std::process::id() % 997) as u16 * len;
    loop {
        let all_free = (base..base + len).all(|p| {
            std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
                && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
        });
        if all_free {
            return base;
        }
        base += len;
    }
}

/// The Envoy binary: `$FERROGATE_ENVOY`, else `.tools/bin/envoy` in the repository. Panics
/// when it does not exist: these tests need Envoy and must not pass without it.
pub fn envoy_path() -> PathBuf {
    let path = std::env::var_os("FERROGATE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/bin/envoy"));
    assert!(
        path.exists(),
        "Envoy not found at {}: run `make envoy` (scripts/install-envoy.sh)",
        path.display()
    );
    path
}

/// The files of `docs/examples/quickstart` (Gateway `default/quickstart` routing to the
/// backends `echo-v1` and `echo-v2`), with the listener on `gateway_port` and the backends'
/// endpoints on `v1` and `v2`.
pub fn quickstart(
    gateway_port: u16,
    v1: SocketAddr,
    v2: SocketAddr,
) -> Vec<(&'static str, String)> {
    let example = repo_root().join("docs/examples/quickstart");
    let read = |f: &str| std::fs::read_to_string(example.join(f)).unwrap();
    vec![
        (
            "gateway.yaml",
            read("gateway.yaml").replace("port: 8080", &format!("port: {gateway_port}")),
        ),
        (
            "backends.yaml",
            read("backends.yaml")
                .replace("port: 9001", &format!("port: {}", v1.port()))
                .replace("port: 9002", &format!("port: {}", v2.port())),
        ),
        ("routes.yaml", read("routes.yaml")),
    ]
}

/// Creates `dir` and writes `files` (name, content) into it.
pub fn write_files(dir: &Path, files: impl IntoIterator<Item = (&'static str, String)>) {
    std::fs::create_dir(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// The ports of a `ferrogate standalone` (all on 127.0.0.1).
#[derive(Clone, Copy, Debug)]
pub struct StandalonePorts {
    pub xds: u16,
    pub metrics: u16,
    pub health: u16,
    /// `--envoy-base-port`.
    pub envoy_base: u16,
}

/// `ferrogate standalone` (the binary at `bin`) on `dir` (`config/`, `status/`, `work/`)
/// with the given ports, output to stderr. A control plane restarted with the same ports
/// renders the same bootstraps (the xDS port is in them), so it can adopt running Envoys.
pub fn standalone_command(bin: impl AsRef<OsStr>, dir: &Path, ports: &StandalonePorts) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("standalone")
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--status-dir")
        .arg(dir.join("status"))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--envoy")
        .arg(envoy_path())
        .args(["--xds-addr", &format!("127.0.0.1:{}", ports.xds)])
        .args(["--metrics-addr", &format!("127.0.0.1:{}", ports.metrics)])
        .args(["--health-addr", &format!("127.0.0.1:{}", ports.health)])
        .args(["--envoy-base-port", &ports.envoy_base.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// A running `ferrogate standalone` in a temporary directory (`config/`, `status/`,
/// `work/`), stopped as a [`Proc`] when dropped, before the directory is removed.
pub struct Standalone {
    // Declared first: fields drop in order, so the process stops before `dir` is removed.
    _proc: Proc,
    /// The temporary directory.
    pub dir: tempfile::TempDir,
    /// Ferrogate's `--metrics-addr`.
    pub metrics: SocketAddr,
    /// The `--envoy-base-port`.
    pub envoy_base: u16,
}

impl Standalone {
    /// Writes `files` to `config/` and starts `ferrogate` (the binary at `bin`) in standalone
    /// mode with free xDS, metrics and health ports, Envoy ports from `envoy_base` and
    /// `extra_args` (e.g. `--xds-mode delta`, `--xds-tls`). Does not wait for readiness.
    pub fn start(
        bin: impl AsRef<OsStr>,
        files: impl IntoIterator<Item = (&'static str, String)>,
        envoy_base: u16,
        extra_args: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        write_files(&config, files);
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let ports = StandalonePorts {
            xds: free_port(),
            metrics: metrics.port(),
            health: free_port(),
            envoy_base,
        };
        let child = standalone_command(bin, dir.path(), &ports)
            .args(extra_args)
            .spawn()
            .unwrap();
        Self {
            _proc: Proc(child),
            dir,
            metrics,
            envoy_base,
        }
    }

    /// `--work-dir`: per-Gateway bootstraps and certificates.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GETs `host` `path` from `gateway` every 20 ms until `check` accepts the response,
/// returning it and how long it took; panics with the last answer after `timeout`.
pub async fn eventually_response(
    gateway: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
    check: impl Fn(&HttpResponse) -> bool,
) -> (HttpResponse, Duration) {
    let started = Instant::now();
    let mut last = String::from("no response");
    while started.elapsed() < timeout {
        match client::get(gateway, host, path, headers).await {
            Ok(r) if check(&r) => return (r, started.elapsed()),
            Ok(r) => last = format!("{} {}", r.status, String::from_utf8_lossy(&r.body)),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path}: condition not met within {timeout:?}; last answer: {last}");
}

/// The `pod` the echo backend reports in its answer, or "" if there is none.
pub fn pod(r: &HttpResponse) -> String {
    r.json()
        .ok()
        .and_then(|j| j["pod"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A scratch directory whose name starts with `prefix`: removed when the returned guard
/// drops, or kept (no guard) when `keep` is set, to be looked at after the run.
pub fn scratch_dir(
    prefix: &str,
    keep: bool,
) -> std::io::Result<(PathBuf, Option<tempfile::TempDir>)> {
    let temp = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let dir = temp.path().to_path_buf();
    if keep {
        let _ = temp.keep();
        return Ok((dir, None));
    }
    Ok((dir, Some(temp)))
}
