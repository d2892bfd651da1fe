//! Processes the benchmark drives (echo backends, `ferrogate standalone`, a static Envoy) and
//! what it reads about them: `/proc` memory and CPU, Prometheus text from HTTP endpoints.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One running `ferrogate-echo` (HTTP role only).
pub struct Echo {
    /// The pod name it reports in its answers.
    pub pod: String,
    /// Its HTTP port on 127.0.0.1.
    pub http_port: u16,
    child: Child,
}

impl Echo {
    /// Starts `ferrogate-echo` with every port chosen by the kernel; reads its ports line and
    /// keeps draining stdout (it logs one line per request).
    pub async fn start(binary: &Path, pod: &str, stderr_to: &Path) -> anyhow::Result<Self> {
        let mut cmd = Command::new(binary);
        cmd.args([
            "--http-port",
            "0",
            "--h2c-port",
            "0",
            "--pod",
            pod,
            "--namespace",
            "default",
            "--service",
            "echo",
        ]);
        for var in [
            "HTTP_PORT",
            "H2C_PORT",
            "GRPC_ECHO_SERVER",
            "TCP_ECHO_SERVER",
            "UDP_ECHO_SERVER",
        ] {
            cmd.env_remove(var);
        }
        for var in ["HTTPS_PORT", "TCP_PORT", "TLS_PORT", "UDP_PORT"] {
            cmd.env(var, "0");
        }
        let stderr = std::fs::File::create(stderr_to)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let stdout = child.stdout.take().context("echo stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("echo {pod} printed no ports line within 10s"))??
            .ok_or_else(|| anyhow::anyhow!("echo {pod} exited before printing its ports"))?;
        let parsed: serde_json::Value =
            serde_json::from_str(&first).with_context(|| format!("echo ports line {first:?}"))?;
        let http_port = parsed
            .get("http")
            .and_then(serde_json::Value::as_u64)
            .context("no http port in the ports line")?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            pod: pod.to_string(),
            http_port: u16::try_from(http_port)?,
            child,
        })
    }

    /// Stops it.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Ports of one `ferrogate standalone` run, all from one base.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub base: u16,
}

impl Ports {
    pub fn xds(&self) -> u16 {
        self.base
    }
    pub fn metrics(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base + 1))
    }
    pub fn health(&self) -> u16 {
        self.base + 2
    }
    /// `--envoy-base-port`; the first Gateway's Envoy admin port is this one.
    pub fn envoy_base(&self) -> u16 {
        self.base + 10
    }
    pub fn envoy_admin(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.envoy_base()))
    }
    /// The Gateway's HTTP listener port.
    pub fn listener(&self) -> u16 {
        self.base + 50
    }
    pub fn listener_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.listener()))
    }
    /// Static (hand-written) Envoy: listener and admin.
    pub fn static_listener(&self) -> u16 {
        self.base + 51
    }
    pub fn static_admin(&self) -> u16 {
        self.base + 60
    }
}

/// A `ferrogate standalone` process.
pub struct Ferrogate {
    child: Option<Child>,
    pub pid: u32,
}

/// How to start ferrogate.
#[derive(Clone, Debug)]
pub struct FerrogateLaunch {
    pub binary: PathBuf,
    pub envoy: PathBuf,
    pub dir: PathBuf,
    pub ports: Ports,
    pub xds_mode: String,
    /// More `ferrogate standalone` flags (the fleet pass's `--address-pool`).
    pub extra_args: Vec<String>,
}

impl FerrogateLaunch {
    pub fn config_dir(&self) -> PathBuf {
        self.dir.join("config")
    }
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join("work")
    }
}

impl Ferrogate {
    pub async fn start(l: &FerrogateLaunch) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(l.dir.join("ferrogate.log"))?;
        let mut cmd = Command::new(&l.binary);
        cmd.current_dir(&l.dir)
            .arg("standalone")
            .arg("--config-dir")
            .arg(l.config_dir())
            .arg("--status-dir")
            .arg(l.dir.join("status"))
            .arg("--work-dir")
            .arg(l.work_dir())
            .arg("--envoy")
            .arg(&l.envoy)
            .arg("--xds-mode")
            .arg(&l.xds_mode)
            .arg("--xds-addr")
            .arg(format!("127.0.0.1:{}", l.ports.xds()))
            .arg("--metrics-addr")
            .arg(l.ports.metrics().to_string())
            .arg("--health-addr")
            .arg(format!("127.0.0.1:{}", l.ports.health()))
            .arg("--envoy-base-port")
            .arg(l.ports.envoy_base().to_string())
            .args(&l.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", l.binary.display()))?;
        let pid = child.id().context("ferrogate pid")?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut me = Self {
            child: Some(child),
            pid,
        };
        if let Some(Ok(Some(status))) = me.child.as_mut().map(Child::try_wait) {
            let log = std::fs::read_to_string(l.dir.join("ferrogate.log")).unwrap_or_default();
            anyhow::bail!(
                "ferrogate exited at once ({status}): {}",
                log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
        Ok(me)
    }

    /// SIGTERM (graceful: it stops its Envoys), then kill after 10 s.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(10)).await;
        }
    }

    /// SIGKILL (the control plane dies; its Envoy keeps running).
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// SIGTERM, so the process can stop what it started; SIGKILL if it has not exited after
/// `grace`.
pub async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// `VmRSS` of a process in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `(pid, comm)` of the processes whose parent is `parent`.
pub fn children(parent: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((ppid, comm)) = parent_and_comm(&stat)
            && ppid == parent
        {
            out.push((pid, comm));
        }
    }
    out
}

/// Parent pid and command name from the text of `/proc/<pid>/stat`.
fn parent_and_comm(stat: &str) -> Option<(u32, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    // After ") " come the state (field 3) and the parent pid (field 4).
    let ppid = stat
        .get(close + 2..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ppid, comm))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if unknown).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The pid of the Envoy whose command line mentions `marker` (its bootstrap lives in the
/// work directory, so the work directory identifies it).
pub fn find_envoy(marker: &Path) -> Option<u32> {
    let marker = marker.to_string_lossy().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(&marker) && cmdline.contains("envoy") && cmdline.contains("-c ") {
            return Some(pid);
        }
    }
    None
}

/// Samples the RSS of a process every 20 ms and keeps the maximum until reset.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    pid: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let pid_cell = Arc::new(AtomicU64::new(u64::from(pid)));
        let (p, s, pc) = (peak.clone(), stop.clone(), pid_cell.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes(pc.load(Ordering::Relaxed) as u32) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self {
            peak,
            pid: pid_cell,
            stop,
        }
    }

    /// Maximum since the last reset, and resets it to the current value.
    pub fn take_peak(&self) -> u64 {
        let now = rss_bytes(self.pid.load(Ordering::Relaxed) as u32).unwrap_or(0);
        self.peak.swap(now, Ordering::Relaxed).max(now)
    }

    pub fn set_pid(&self, pid: u32) {
        self.pid.store(u64::from(pid), Ordering::Relaxed);
        self.peak.store(0, Ordering::Relaxed);
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Prometheus text scraped into `series -> value` (series = name plus labels as written).
pub type Scrape = BTreeMap<String, f64>;

/// GETs `path` on `addr` and parses it as Prometheus text.
pub async fn scrape(addr: SocketAddr, path: &str) -> anyhow::Result<Scrape> {
    let r = crate::client::get(addr, &addr.to_string(), path, &[]).await?;
    anyhow::ensure!(r.status == 200, "GET {addr}{path}: {}", r.status);
    let text = String::from_utf8_lossy(&r.body);
    let mut out = Scrape::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((series, value)) = line.rsplit_once(' ')
            && let Ok(v) = value.parse::<f64>()
        {
            out.insert(series.to_string(), v);
        }
    }
    Ok(out)
}

/// Sum of every series whose name (before `{`) is `name`.
pub fn sum(s: &Scrape, name: &str) -> f64 {
    s.iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .map(|(_, v)| v)
        .sum()
}

/// Per-label values of series named `name` (the whole label text as key).
pub fn by_label(s: &Scrape, name: &str) -> BTreeMap<String, f64> {
    s.iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .map(|(k, v)| {
            (
                k.split_once('{')
                    .map(|(_, l)| l.trim_end_matches('}').to_string())
                    .unwrap_or_default(),
                *v,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_gives_parent_and_command_even_with_spaces_and_parens() {
        let stat = "4242 (envoy) S 4100 4242 4100 0 -1 4194560 1 0 0 0 5 3 0 0 20 0 9 0";
        assert_eq!(parent_and_comm(stat), Some((4100, "envoy".to_string())));
        let odd = "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0";
        assert_eq!(parent_and_comm(odd), Some((1, "a (b) c".to_string())));
        assert_eq!(parent_and_comm("garbage"), None);
    }

    #[test]
    fn this_test_is_a_child_of_its_parent() {
        let me = std::process::id();
        let parent = parent_and_comm(&std::fs::read_to_string("/proc/self/stat").unwrap())
            .unwrap()
            .0;
        assert!(children(parent).iter().any(|(pid, _)| *pid == me));
    }
}
