//! Host mode: one supervised local Envoy process per Gateway.
//!
//! Layout under the work directory: `<work_dir>/<namespace>/<name>/bootstrap.json` and
//! `.../envoy.log` (stdout and stderr, appended). Nesting by namespace keeps the paths
//! unique (`a-b/c` and `a/b-c` would collide as `a-b-c`).
//!
//! Envoy runs with `--disable-hot-restart`, so several Envoys share the host without
//! distinct `--base-id`s, and `--drain-time-s 1` so a stop is quick.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferrogate_infra_render::HostProcessSpec;
use ferrogate_ir::GatewayKey;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::InfraError;

/// First delay before restarting a process that exited on its own.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest delay between restarts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A process that ran this long before exiting restarts after [`BACKOFF_MIN`] again.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Time between SIGTERM and SIGKILL when stopping.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Supervises local Envoy processes, one per Gateway. Cheap to share behind an `Arc`;
/// [`HostInfra::apply`] calls are serialized.
pub struct HostInfra {
    envoy_path: PathBuf,
    work_dir: PathBuf,
    log_level: String,
    apply_lock: tokio::sync::Mutex<()>,
    procs: Mutex<BTreeMap<GatewayKey, Managed>>,
}

/// One supervised Gateway process.
struct Managed {
    hash: String,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    state: Arc<ProcState>,
}

/// Shared between [`HostInfra`] and a supervisor task.
#[derive(Default)]
struct ProcState {
    /// Pid of the running process, 0 when none runs.
    pid: AtomicU32,
    /// Restarts after unexpected exits.
    restarts: AtomicU64,
}

/// What a supervisor needs to (re)start its process.
struct Launch {
    gateway: GatewayKey,
    envoy: PathBuf,
    bootstrap: PathBuf,
    log: PathBuf,
    log_level: String,
}

impl HostInfra {
    /// A supervisor running `envoy_path`, keeping bootstrap files and logs under `work_dir`,
    /// with Envoy's `--log-level` set to `log_level`.
    pub fn new(envoy_path: PathBuf, work_dir: PathBuf, log_level: String) -> Self {
        Self {
            envoy_path,
            work_dir,
            log_level,
            apply_lock: tokio::sync::Mutex::new(()),
            procs: Mutex::new(BTreeMap::new()),
        }
    }

    /// Make the running set equal `desired`: start missing, restart those whose
    /// bootstrap_hash changed, stop removed. Never restarts a process for anything else.
    ///
    /// Every spec is attempted; the first error is returned (the others are logged). A
    /// process that fails to spawn stays supervised and is retried with backoff.
    pub async fn apply(&self, desired: Vec<HostProcessSpec>) -> Result<(), InfraError> {
        let _serialized = self.apply_lock.lock().await;
        let mut wanted = BTreeMap::new();
        for spec in desired {
            let key = spec.gateway.clone();
            if wanted.insert(key.clone(), spec).is_some() {
                return Err(InfraError::DuplicateGateway(key));
            }
        }

        // Stop removed processes and those whose bootstrap changed, all at once.
        let stopping: Vec<(GatewayKey, Managed)> = {
            let mut procs = self.lock_procs();
            let stale: Vec<GatewayKey> = procs
                .iter()
                .filter(|(key, m)| {
                    wanted
                        .get(*key)
                        .is_none_or(|spec| spec.bootstrap_hash != m.hash)
                })
                .map(|(key, _)| key.clone())
                .collect();
            stale
                .into_iter()
                .filter_map(|key| procs.remove(&key).map(|m| (key, m)))
                .collect()
        };
        for (_, managed) in &stopping {
            managed.cancel.cancel();
        }
        let mut carried_restarts = BTreeMap::new();
        for (key, managed) in stopping {
            let _ = managed.task.await;
            if wanted.contains_key(&key) {
                tracing::info!(gateway = %key, hash = %wanted[&key].bootstrap_hash, "Envoy bootstrap changed; restarting");
                carried_restarts.insert(key, managed.state.restarts.load(Ordering::Relaxed));
            } else {
                tracing::info!(gateway = %key, "Envoy stopped");
            }
        }

        // Start what is missing.
        let mut first_error = None;
        for (key, spec) in wanted {
            if self.lock_procs().contains_key(&key) {
                continue;
            }
            let state = Arc::new(ProcState {
                pid: AtomicU32::new(0),
                restarts: AtomicU64::new(carried_restarts.get(&key).copied().unwrap_or(0)),
            });
            match self.start(&spec, state) {
                Ok((managed, spawn_error)) => {
                    self.lock_procs().insert(key, managed);
                    if let Some(e) = spawn_error {
                        record(&mut first_error, e);
                    }
                }
                Err(e) => record(&mut first_error, e),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Pids of the processes running now (a Gateway whose Envoy is between restarts is absent).
    pub fn pids(&self) -> BTreeMap<GatewayKey, u32> {
        self.lock_procs()
            .iter()
            .filter_map(|(key, m)| match m.state.pid.load(Ordering::Acquire) {
                0 => None,
                pid => Some((key.clone(), pid)),
            })
            .collect()
    }

    /// Restarts after unexpected exits, per supervised Gateway (kept across bootstrap
    /// changes, dropped when the Gateway goes away). For metrics.
    pub fn restarts(&self) -> BTreeMap<GatewayKey, u64> {
        self.lock_procs()
            .iter()
            .map(|(key, m)| (key.clone(), m.state.restarts.load(Ordering::Relaxed)))
            .collect()
    }

    /// Stops every process: SIGTERM, then SIGKILL after a grace period.
    pub async fn shutdown(&self) {
        let _serialized = self.apply_lock.lock().await;
        let all: Vec<Managed> = std::mem::take(&mut *self.lock_procs())
            .into_values()
            .collect();
        for managed in &all {
            managed.cancel.cancel();
        }
        for managed in all {
            let _ = managed.task.await;
        }
    }

    fn lock_procs(&self) -> std::sync::MutexGuard<'_, BTreeMap<GatewayKey, Managed>> {
        self.procs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the bootstrap, spawns the process and its supervisor. A spawn failure still
    /// yields a supervisor (retrying with backoff) plus the error to report.
    fn start(
        &self,
        spec: &HostProcessSpec,
        state: Arc<ProcState>,
    ) -> Result<(Managed, Option<InfraError>), InfraError> {
        let dir = self
            .work_dir
            .join(&spec.gateway.namespace)
            .join(&spec.gateway.name);
        let bootstrap = dir.join("bootstrap.json");
        write_bootstrap(&dir, &bootstrap, &spec.bootstrap).map_err(|source| {
            InfraError::WriteBootstrap {
                gateway: spec.gateway.clone(),
                path: bootstrap.clone(),
                source,
            }
        })?;
        let launch = Launch {
            gateway: spec.gateway.clone(),
            envoy: self.envoy_path.clone(),
            bootstrap,
            log: dir.join("envoy.log"),
            log_level: self.log_level.clone(),
        };
        let (child, spawn_error) = match launch.spawn() {
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                state.pid.store(pid, Ordering::Release);
                tracing::info!(gateway = %spec.gateway, pid, hash = %spec.bootstrap_hash, "Envoy started");
                (Some(child), None)
            }
            Err(source) => {
                let error = InfraError::Spawn {
                    gateway: spec.gateway.clone(),
                    envoy: launch.envoy.clone(),
                    source,
                };
                (None, Some(error))
            }
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(supervise(launch, child, cancel.clone(), state.clone()));
        Ok((
            Managed {
                hash: spec.bootstrap_hash.clone(),
                cancel,
                task,
                state,
            },
            spawn_error,
        ))
    }
}

impl Drop for HostInfra {
    /// Safety net when [`HostInfra::shutdown`] was not awaited: supervisors stop their
    /// processes (and `kill_on_drop` covers a runtime that is going away).
    fn drop(&mut self) {
        for managed in self.lock_procs().values() {
            managed.cancel.cancel();
        }
    }
}

fn record(first: &mut Option<InfraError>, error: InfraError) {
    if first.is_none() {
        *first = Some(error);
    } else {
        tracing::error!(%error, "cannot start Envoy");
    }
}

/// Writes `value` to `path` atomically (temporary file + rename), creating `dir`.
fn write_bootstrap(dir: &Path, path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    let tmp = dir.join(".bootstrap.json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl Launch {
    fn spawn(&self) -> std::io::Result<Child> {
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
                "--log-level",
                &self.log_level,
                "--drain-time-s",
                "1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
    }
}

/// Keeps one process running until `cancel`, then stops it.
async fn supervise(
    launch: Launch,
    mut child: Option<Child>,
    cancel: CancellationToken,
    state: Arc<ProcState>,
) {
    let gateway = &launch.gateway;
    let mut backoff = BACKOFF_MIN;
    let mut started = Instant::now();
    loop {
        let Some(running) = child.as_mut() else {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            match launch.spawn() {
                Ok(new) => {
                    let pid = new.id().unwrap_or(0);
                    state.pid.store(pid, Ordering::Release);
                    state.restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%gateway, pid, "Envoy restarted");
                    started = Instant::now();
                    child = Some(new);
                }
                Err(error) => {
                    tracing::warn!(%gateway, %error, retry_in = ?backoff, "cannot start Envoy")
                }
            }
            continue;
        };
        let exited: Option<std::io::Result<ExitStatus>> = tokio::select! {
            status = running.wait() => Some(status),
            _ = cancel.cancelled() => None,
        };
        match exited {
            None => {
                stop(gateway, running).await;
                state.pid.store(0, Ordering::Release);
                return;
            }
            Some(status) => {
                state.pid.store(0, Ordering::Release);
                child = None;
                if started.elapsed() >= STABLE_AFTER {
                    backoff = BACKOFF_MIN;
                }
                match status {
                    Ok(status) => {
                        tracing::warn!(%gateway, %status, restart_in = ?backoff, "Envoy exited unexpectedly")
                    }
                    Err(error) => {
                        tracing::warn!(%gateway, %error, restart_in = ?backoff, "lost track of Envoy")
                    }
                }
            }
        }
    }
}

/// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL.
async fn stop(gateway: &GatewayKey, child: &mut Child) {
    if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
        // SAFETY: kill(2) has no memory-safety preconditions. The child has not been reaped
        // (we hold it and have not observed its exit), so the pid still names our process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(_) => tracing::debug!(%gateway, "Envoy terminated"),
        Err(_) => {
            tracing::warn!(%gateway, grace = ?STOP_GRACE, "Envoy ignored SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }
}
