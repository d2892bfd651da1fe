//! The process record (`envoy.state`, one per replica) and processes known only by pid.
//!
//! A record holds the pid, its start time from `/proc/<pid>/stat` (so a reused pid is told
//! apart), the bootstrap hash and the Envoy binary. A process found through a record is
//! not our child, so it is watched by polling `/proc` instead of `waitpid` and signalled
//! only after checking that the pid still names it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrogate_infra_render::HostProcessKey;

/// Time between SIGTERM and SIGKILL when stopping.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often an adopted process (not our child) is checked for having exited.
const ADOPTED_POLL: Duration = Duration::from_millis(200);

/// What a state file holds (as JSON).
pub(super) struct ProcRecord {
    pub(super) pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks since boot).
    pub(super) start_time: u64,
    pub(super) bootstrap_hash: String,
    pub(super) envoy: PathBuf,
}

impl ProcRecord {
    pub(super) fn parse(bytes: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        Some(Self {
            pid: u32::try_from(value["pid"].as_u64()?).ok()?,
            start_time: value["start_time"].as_u64()?,
            bootstrap_hash: value["bootstrap_hash"].as_str()?.to_owned(),
            envoy: PathBuf::from(value["envoy"].as_str()?),
        })
    }

    /// Writes the record to `path` atomically.
    pub(super) fn write(&self, path: &Path) -> std::io::Result<()> {
        let envoy = self
            .envoy
            .to_str()
            .ok_or_else(|| std::io::Error::other("Envoy path is not UTF-8"))?;
        let value = serde_json::json!({
            "pid": self.pid,
            "start_time": self.start_time,
            "bootstrap_hash": self.bootstrap_hash,
            "envoy": envoy,
        });
        let bytes = serde_json::to_vec(&value).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("state.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }
}

/// State (field 3) and start time (field 22) of `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Start time of `pid` (field 22 of `/proc/<pid>/stat`).
pub(super) fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// A process we did not spawn (or no longer hold as a child): known by pid and start time.
#[derive(Clone, Copy, Debug)]
pub(super) struct Foreign {
    pub(super) pid: u32,
    pub(super) start_time: u64,
}

impl Foreign {
    /// Still the same process, and not a zombie.
    pub(super) fn is_running(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, start)) if start == self.start_time && state != 'Z' && state != 'X')
    }

    fn signal(&self, signal: libc::c_int) {
        if !self.is_running() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: kill(2) has no memory-safety preconditions. The pid was checked to be
            // the recorded process (same start time) just before; the window for pid reuse
            // between that check and the signal is a few microseconds.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// Resolves when the process has exited.
    pub(super) async fn exited(&self) {
        while self.is_running() {
            tokio::time::sleep(ADOPTED_POLL).await;
        }
    }
}

/// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL, for a process that is not our child.
pub(super) async fn stop_foreign(key: &HostProcessKey, process: Foreign) {
    let (gateway, replica) = (&key.gateway, key.replica);
    process.signal(libc::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, process.exited())
        .await
        .is_err()
    {
        tracing::warn!(%gateway, replica, grace = ?STOP_GRACE, "Envoy ignored SIGTERM; killing it");
        process.signal(libc::SIGKILL);
        let _ = tokio::time::timeout(STOP_GRACE, process.exited()).await;
    } else {
        tracing::debug!(%gateway, replica, "Envoy terminated");
    }
}
