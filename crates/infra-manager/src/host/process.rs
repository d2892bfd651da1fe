//! One Envoy process: where its files live, how it is spawned, found again after a crash of
//! the control plane, and kept running by its supervisor task.
//!
//! Files of replica `r` of a Gateway, in `<work_dir>/<namespace>/<name>/`: replica 0 uses
//! `bootstrap.json`, `envoy.log` and `envoy.state`, the names from before replicas existed,
//! so a control plane of this version adopts the Envoys an older one left running; replica
//! `r >= 1` uses `bootstrap-<r>.json`, `envoy-<r>.log` and `envoy-<r>.state`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrogate_infra_render::HostProcessKey;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::record::{Foreign, ProcRecord, STOP_GRACE, start_time, stop_foreign};

/// First delay before restarting a process that exited on its own.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest delay between restarts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A process that ran this long before exiting restarts after [`BACKOFF_MIN`] again.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// File name suffix of replica `replica` (none for replica 0, see the module docs).
fn suffix(replica: u32) -> String {
    match replica {
        0 => String::new(),
        r => format!("-{r}"),
    }
}

/// Name of the process record of replica `replica`.
pub(super) fn state_file_name(replica: u32) -> String {
    format!("envoy{}.state", suffix(replica))
}

/// The replica whose process record is named `name`, if it is one.
pub(super) fn replica_of_state_file(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?;
    let replica = match name.strip_prefix("envoy")?.strip_suffix(".state")? {
        "" => 0,
        rest => rest.strip_prefix('-')?.parse().ok()?,
    };
    // Only the name this code writes counts ("envoy-01.state" is no replica's record).
    (state_file_name(replica) == name).then_some(replica)
}

/// Shared between the host manager and a supervisor task.
#[derive(Default)]
pub(super) struct ProcState {
    /// Pid of the running process, 0 when none runs.
    pub(super) pid: AtomicU32,
    /// Restarts after unexpected exits.
    pub(super) restarts: AtomicU64,
}

impl ProcState {
    pub(super) fn with_restarts(restarts: u64) -> Self {
        Self {
            pid: AtomicU32::new(0),
            restarts: AtomicU64::new(restarts),
        }
    }
}

/// What a supervisor needs to (re)start its process.
pub(super) struct Launch {
    pub(super) key: HostProcessKey,
    pub(super) envoy: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) bootstrap: PathBuf,
    log: PathBuf,
    log_level: String,
    /// The process record, see [`super::record`].
    pub(super) state_file: PathBuf,
    hash: String,
}

impl Launch {
    /// Replica `key.replica` of `key.gateway`, with its files under `work_dir`, expected to
    /// run `hash`.
    pub(super) fn new(
        work_dir: &Path,
        envoy: &Path,
        log_level: &str,
        key: HostProcessKey,
        hash: &str,
    ) -> Self {
        let dir = work_dir
            .join(&key.gateway.namespace)
            .join(&key.gateway.name);
        let suffix = suffix(key.replica);
        Self {
            envoy: envoy.to_path_buf(),
            bootstrap: dir.join(format!("bootstrap{suffix}.json")),
            log: dir.join(format!("envoy{suffix}.log")),
            log_level: log_level.to_string(),
            state_file: dir.join(state_file_name(key.replica)),
            hash: hash.to_string(),
            dir,
            key,
        }
    }

    /// Writes the bootstrap atomically (temporary file + rename), creating the directory.
    pub(super) fn write_bootstrap(&self, value: &serde_json::Value) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        let name = self.bootstrap.file_name().unwrap_or_default();
        let tmp = self.dir.join(format!(".{}.tmp", name.to_string_lossy()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.bootstrap)
    }

    /// Spawns Envoy and records it in the state file (a failure to record is logged: the
    /// process runs, only adoption after a crash is lost).
    pub(super) fn spawn(&self) -> std::io::Result<Child> {
        let child = self.spawn_process()?;
        if let Some(pid) = child.id() {
            let record = start_time(pid).map(|start_time| ProcRecord {
                pid,
                start_time,
                bootstrap_hash: self.hash.clone(),
                envoy: self.envoy.clone(),
            });
            let written = match record {
                Some(record) => record.write(&self.state_file),
                None => Err(std::io::Error::other("no start time in /proc")),
            };
            if let Err(error) = written {
                tracing::warn!(gateway = %self.key.gateway, replica = self.key.replica, %error, path = %self.state_file.display(), "cannot record the Envoy process");
            }
        }
        Ok(child)
    }

    /// The recorded process, if it is still that process (same start time), runs our Envoy
    /// binary and was given this replica's bootstrap path.
    pub(super) fn recorded_process(&self) -> Option<(ProcRecord, Foreign)> {
        let (gateway, replica) = (&self.key.gateway, self.key.replica);
        let bytes = std::fs::read(&self.state_file).ok()?;
        let record = ProcRecord::parse(&bytes)?;
        let found = Foreign {
            pid: record.pid,
            start_time: record.start_time,
        };
        if !found.is_running() {
            tracing::debug!(%gateway, replica, pid = record.pid, "recorded Envoy is gone");
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", record.pid)).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let bootstrap = self.bootstrap.as_os_str().as_encoded_bytes();
        let envoy = self.envoy.as_os_str().as_encoded_bytes();
        let ours = record.envoy == self.envoy
            && args.first() == Some(&envoy)
            && args.windows(2).any(|w| w[0] == b"-c" && w[1] == bootstrap);
        if !ours {
            tracing::info!(%gateway, replica, pid = record.pid, "recorded pid runs something else now; not adopting it");
            return None;
        }
        Some((record, found))
    }

    pub(super) fn forget_record(&self) {
        let _ = std::fs::remove_file(&self.state_file);
    }

    fn spawn_process(&self) -> std::io::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let stderr = log.try_clone()?;
        Command::new(&self.envoy)
            .arg("-c")
            .arg(&self.bootstrap)
            .args([
                "--disable-hot-restart",
                // Why: see `ferrogate_infra_render::IGNORE_UNKNOWN_DYNAMIC_FIELDS`.
                ferrogate_infra_render::IGNORE_UNKNOWN_DYNAMIC_FIELDS,
                "--log-level",
                &self.log_level,
                "--drain-time-s",
                "1",
                // Access log lines reach `envoy.log` within a second instead of Envoy's
                // default ten: standalone is where people watch requests as they send them.
                "--file-flush-interval-msec",
                "1000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
    }
}

/// The process a supervisor watches.
pub(super) enum Running {
    Child(Child),
    Adopted(Foreign),
}

/// How a watched process ended, or why watching stopped.
enum Event {
    Exited(String),
    Cancelled,
    Detached,
}

/// Keeps one process running until `cancel`, then stops it (and forgets its record); on
/// `detach`, returns leaving it running and recorded. Each replica has its own supervisor,
/// so a crash of one restarts only that one.
pub(super) async fn supervise(
    launch: Launch,
    mut running: Option<Running>,
    cancel: CancellationToken,
    detach: CancellationToken,
    state: Arc<ProcState>,
) {
    let (gateway, replica) = (&launch.key.gateway, launch.key.replica);
    let mut backoff = BACKOFF_MIN;
    let mut started = Instant::now();
    loop {
        let Some(process) = running.as_mut() else {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = detach.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            match launch.spawn() {
                Ok(new) => {
                    let pid = new.id().unwrap_or(0);
                    state.pid.store(pid, Ordering::Release);
                    state.restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%gateway, replica, pid, "Envoy restarted");
                    started = Instant::now();
                    running = Some(Running::Child(new));
                }
                Err(error) => {
                    tracing::warn!(%gateway, replica, %error, retry_in = ?backoff, "cannot start Envoy")
                }
            }
            continue;
        };
        let event = match process {
            Running::Child(child) => tokio::select! {
                status = child.wait() => Event::Exited(match status {
                    Ok(status) => status.to_string(),
                    Err(error) => format!("lost track of it: {error}"),
                }),
                _ = cancel.cancelled() => Event::Cancelled,
                _ = detach.cancelled() => Event::Detached,
            },
            Running::Adopted(found) => tokio::select! {
                _ = found.exited() => Event::Exited("exited (adopted process)".into()),
                _ = cancel.cancelled() => Event::Cancelled,
                _ = detach.cancelled() => Event::Detached,
            },
        };
        match event {
            Event::Cancelled => {
                match running.take() {
                    Some(Running::Child(mut child)) => stop(&launch.key, &mut child).await,
                    Some(Running::Adopted(found)) => stop_foreign(&launch.key, found).await,
                    None => {}
                }
                launch.forget_record();
                state.pid.store(0, Ordering::Release);
                return;
            }
            Event::Detached => {
                if let Some(Running::Child(child)) = running.take() {
                    // Dropping the handle would kill it (kill_on_drop); a crash would not.
                    std::mem::forget(child);
                }
                return;
            }
            Event::Exited(status) => {
                state.pid.store(0, Ordering::Release);
                running = None;
                if started.elapsed() >= STABLE_AFTER {
                    backoff = BACKOFF_MIN;
                }
                tracing::warn!(%gateway, replica, %status, restart_in = ?backoff, "Envoy exited unexpectedly");
            }
        }
    }
}

/// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL.
async fn stop(key: &HostProcessKey, child: &mut Child) {
    let (gateway, replica) = (&key.gateway, key.replica);
    if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
        // SAFETY: kill(2) has no memory-safety preconditions. The child has not been reaped
        // (we hold it and have not observed its exit), so the pid still names our process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(_) => tracing::debug!(%gateway, replica, "Envoy terminated"),
        Err(_) => {
            tracing::warn!(%gateway, replica, grace = ?STOP_GRACE, "Envoy ignored SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogate_ir::GatewayKey;

    #[test]
    fn replica_zero_keeps_the_file_names_from_before_replicas() {
        let key = |r| HostProcessKey::new(GatewayKey::new("ns", "gw"), r);
        let zero = Launch::new(Path::new("w"), Path::new("envoy"), "info", key(0), "h");
        assert_eq!(zero.bootstrap, Path::new("w/ns/gw/bootstrap.json"));
        assert_eq!(zero.log, Path::new("w/ns/gw/envoy.log"));
        assert_eq!(zero.state_file, Path::new("w/ns/gw/envoy.state"));
        let two = Launch::new(Path::new("w"), Path::new("envoy"), "info", key(2), "h");
        assert_eq!(two.bootstrap, Path::new("w/ns/gw/bootstrap-2.json"));
        assert_eq!(two.log, Path::new("w/ns/gw/envoy-2.log"));
        assert_eq!(two.state_file, Path::new("w/ns/gw/envoy-2.state"));
    }

    #[test]
    fn state_file_names_map_back_to_their_replica() {
        for r in [0, 1, 7, 12] {
            assert_eq!(
                replica_of_state_file(OsStr::new(&state_file_name(r))),
                Some(r)
            );
        }
        for other in [
            "envoy-0.state",
            "envoy-01.state",
            "envoy-+1.state",
            "envoy-x.state",
            "envoy-1.state.tmp",
            "bootstrap.json",
        ] {
            assert_eq!(replica_of_state_file(OsStr::new(other)), None, "{other}");
        }
    }
}
