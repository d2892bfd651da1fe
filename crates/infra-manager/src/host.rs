//! Host mode: one supervised local Envoy process per Gateway.
//!
//! Layout under the work directory: `<work_dir>/<namespace>/<name>/bootstrap.json` and
//! `.../envoy.log` (stdout and stderr, appended). Nesting by namespace keeps the paths
//! unique (`a-b/c` and `a/b-c` would collide as `a-b-c`).
//!
//! Envoy runs with `--disable-hot-restart`, so several Envoys share the host without
//! distinct `--base-id`s, and `--drain-time-s 1` so a stop is quick.
//!
//! Adoption: `.../envoy.state` records the running process (pid, its start time from
//! `/proc/<pid>/stat`, the bootstrap hash and the binary). An Envoy outlives a `kill -9` of
//! the control plane and keeps serving its last config; a restarted control plane reads the
//! record and, if that pid is still the same process (same start time, so pid reuse is
//! caught), runs the same binary with the same bootstrap path, and the hash equals the
//! desired one, supervises it instead of starting a second Envoy (which could not bind the
//! ports). The adopted Envoy reconnects to the new xDS server through its own retry. With
//! another hash, the old process is stopped and a fresh one started. An adopted process is
//! not our child, so it is watched by polling `/proc` instead of `waitpid`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
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
/// How often an adopted process (not our child) is checked for having exited.
const ADOPTED_POLL: Duration = Duration::from_millis(200);
/// File name of the per-Gateway process record.
const STATE_FILE: &str = "envoy.state";

/// Supervises local Envoy processes, one per Gateway. Cheap to share behind an `Arc`;
/// [`HostInfra::apply`] calls are serialized.
pub struct HostInfra {
    envoy_path: PathBuf,
    work_dir: PathBuf,
    log_level: String,
    apply_lock: tokio::sync::Mutex<()>,
    procs: Mutex<BTreeMap<GatewayKey, Managed>>,
    /// Cancelled by [`HostInfra::detach`]: supervisors return without stopping anything.
    detach: CancellationToken,
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
    /// The process record, see the module docs.
    state_file: PathBuf,
    hash: String,
}

/// What `envoy.state` holds (as JSON).
struct ProcRecord {
    pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks since boot).
    start_time: u64,
    bootstrap_hash: String,
    envoy: PathBuf,
}

/// A process we did not spawn (or no longer hold as a child): known by pid and start time.
#[derive(Clone, Copy, Debug)]
struct Foreign {
    pid: u32,
    start_time: u64,
}

/// The process a supervisor watches.
enum Running {
    Child(Child),
    Adopted(Foreign),
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
            detach: CancellationToken::new(),
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
            match self.start(&spec, state).await {
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

    /// The admin port in the bootstrap of every Envoy a previous run left recorded under the
    /// work directory (`<ns>/<name>/envoy.state` next to its `bootstrap.json`). A restarted
    /// control plane gives those Gateways the same ports again, so their bootstraps hash the
    /// same and the running Envoys are adopted rather than replaced.
    pub fn recorded_admin_ports(&self) -> BTreeMap<GatewayKey, u16> {
        let mut out = BTreeMap::new();
        let Ok(namespaces) = std::fs::read_dir(&self.work_dir) else {
            return out;
        };
        for ns in namespaces.flatten() {
            let Ok(gateways) = std::fs::read_dir(ns.path()) else {
                continue;
            };
            for gw in gateways.flatten() {
                let dir = gw.path();
                if !dir.join(STATE_FILE).exists() {
                    continue;
                }
                let port = std::fs::read_to_string(dir.join("bootstrap.json"))
                    .ok()
                    .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                    .and_then(|b| {
                        b.pointer("/admin/address/socket_address/port_value")
                            .and_then(|p| p.as_u64())
                    })
                    .and_then(|p| u16::try_from(p).ok());
                if let Some(port) = port {
                    let key = GatewayKey::new(
                        ns.file_name().to_string_lossy().into_owned(),
                        gw.file_name().to_string_lossy().into_owned(),
                    );
                    out.insert(key, port);
                }
            }
        }
        out
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

    /// Stops supervising without stopping the processes, as a crash of the control plane
    /// would (their records stay, so the next `HostInfra` on this work directory adopts
    /// them). For tests and hand-overs.
    pub async fn detach(self) {
        let _serialized = self.apply_lock.lock().await;
        self.detach.cancel();
        let all: Vec<Managed> = std::mem::take(&mut *self.lock_procs())
            .into_values()
            .collect();
        for managed in all {
            let _ = managed.task.await;
        }
    }

    fn lock_procs(&self) -> std::sync::MutexGuard<'_, BTreeMap<GatewayKey, Managed>> {
        self.procs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adopts the Gateway's recorded Envoy if it still runs with this bootstrap; otherwise
    /// writes the bootstrap and spawns the process. Then starts its supervisor. A spawn
    /// failure still yields a supervisor (retrying with backoff) plus the error to report.
    async fn start(
        &self,
        spec: &HostProcessSpec,
        state: Arc<ProcState>,
    ) -> Result<(Managed, Option<InfraError>), InfraError> {
        let dir = self
            .work_dir
            .join(&spec.gateway.namespace)
            .join(&spec.gateway.name);
        let bootstrap = dir.join("bootstrap.json");
        let launch = Launch {
            gateway: spec.gateway.clone(),
            envoy: self.envoy_path.clone(),
            bootstrap: bootstrap.clone(),
            log: dir.join("envoy.log"),
            log_level: self.log_level.clone(),
            state_file: dir.join(STATE_FILE),
            hash: spec.bootstrap_hash.clone(),
        };
        let mut running = None;
        if let Some((record, found)) = launch.recorded_process() {
            if record.bootstrap_hash == spec.bootstrap_hash {
                state.pid.store(found.pid, Ordering::Release);
                tracing::info!(gateway = %spec.gateway, pid = found.pid, hash = %spec.bootstrap_hash, "adopted the running Envoy");
                running = Some(Running::Adopted(found));
            } else {
                tracing::info!(gateway = %spec.gateway, pid = found.pid, old = %record.bootstrap_hash, new = %spec.bootstrap_hash, "running Envoy has another bootstrap; replacing it");
                stop_foreign(&spec.gateway, found).await;
                launch.forget_record();
            }
        }
        let mut spawn_error = None;
        if running.is_none() {
            write_bootstrap(&dir, &bootstrap, &spec.bootstrap).map_err(|source| {
                InfraError::WriteBootstrap {
                    gateway: spec.gateway.clone(),
                    path: bootstrap.clone(),
                    source,
                }
            })?;
            match launch.spawn() {
                Ok(child) => {
                    let pid = child.id().unwrap_or(0);
                    state.pid.store(pid, Ordering::Release);
                    tracing::info!(gateway = %spec.gateway, pid, hash = %spec.bootstrap_hash, "Envoy started");
                    running = Some(Running::Child(child));
                }
                Err(source) => {
                    spawn_error = Some(InfraError::Spawn {
                        gateway: spec.gateway.clone(),
                        envoy: launch.envoy.clone(),
                        source,
                    });
                }
            }
        }
        let cancel = CancellationToken::new();
        let task = tokio::spawn(supervise(
            launch,
            running,
            cancel.clone(),
            self.detach.clone(),
            state.clone(),
        ));
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

impl ProcRecord {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        Some(Self {
            pid: u32::try_from(value["pid"].as_u64()?).ok()?,
            start_time: value["start_time"].as_u64()?,
            bootstrap_hash: value["bootstrap_hash"].as_str()?.to_owned(),
            envoy: PathBuf::from(value["envoy"].as_str()?),
        })
    }
}

/// Writes the process record atomically.
fn write_record(path: &Path, record: &ProcRecord) -> std::io::Result<()> {
    let envoy = record
        .envoy
        .to_str()
        .ok_or_else(|| std::io::Error::other("Envoy path is not UTF-8"))?;
    let value = serde_json::json!({
        "pid": record.pid,
        "start_time": record.start_time,
        "bootstrap_hash": record.bootstrap_hash,
        "envoy": envoy,
    });
    let bytes = serde_json::to_vec(&value).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("state.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
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

fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

impl Foreign {
    /// Still the same process, and not a zombie.
    fn is_running(&self) -> bool {
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
    async fn exited(&self) {
        while self.is_running() {
            tokio::time::sleep(ADOPTED_POLL).await;
        }
    }
}

/// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL, for a process that is not our child.
async fn stop_foreign(gateway: &GatewayKey, process: Foreign) {
    process.signal(libc::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, process.exited())
        .await
        .is_err()
    {
        tracing::warn!(%gateway, grace = ?STOP_GRACE, "Envoy ignored SIGTERM; killing it");
        process.signal(libc::SIGKILL);
        let _ = tokio::time::timeout(STOP_GRACE, process.exited()).await;
    } else {
        tracing::debug!(%gateway, "Envoy terminated");
    }
}

impl Launch {
    /// Spawns Envoy and records it in the state file (a failure to record is logged: the
    /// process runs, only adoption after a crash is lost).
    fn spawn(&self) -> std::io::Result<Child> {
        let child = self.spawn_process()?;
        if let Some(pid) = child.id() {
            let record = start_time(pid).map(|start_time| ProcRecord {
                pid,
                start_time,
                bootstrap_hash: self.hash.clone(),
                envoy: self.envoy.clone(),
            });
            let written = match record {
                Some(record) => write_record(&self.state_file, &record),
                None => Err(std::io::Error::other("no start time in /proc")),
            };
            if let Err(error) = written {
                tracing::warn!(gateway = %self.gateway, %error, path = %self.state_file.display(), "cannot record the Envoy process");
            }
        }
        Ok(child)
    }

    /// The recorded process, if it is still that process (same start time), runs our Envoy
    /// binary and was given our bootstrap path.
    fn recorded_process(&self) -> Option<(ProcRecord, Foreign)> {
        let bytes = std::fs::read(&self.state_file).ok()?;
        let record = ProcRecord::parse(&bytes)?;
        let found = Foreign {
            pid: record.pid,
            start_time: record.start_time,
        };
        if !found.is_running() {
            tracing::debug!(gateway = %self.gateway, pid = record.pid, "recorded Envoy is gone");
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
            tracing::info!(gateway = %self.gateway, pid = record.pid, "recorded pid runs something else now; not adopting it");
            return None;
        }
        Some((record, found))
    }

    fn forget_record(&self) {
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

/// How a watched process ended, or why watching stopped.
enum Event {
    Exited(String),
    Cancelled,
    Detached,
}

/// Keeps one process running until `cancel`, then stops it (and forgets its record); on
/// `detach`, returns leaving it running and recorded.
async fn supervise(
    launch: Launch,
    mut running: Option<Running>,
    cancel: CancellationToken,
    detach: CancellationToken,
    state: Arc<ProcState>,
) {
    let gateway = &launch.gateway;
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
                    tracing::info!(%gateway, pid, "Envoy restarted");
                    started = Instant::now();
                    running = Some(Running::Child(new));
                }
                Err(error) => {
                    tracing::warn!(%gateway, %error, retry_in = ?backoff, "cannot start Envoy")
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
                    Some(Running::Child(mut child)) => stop(gateway, &mut child).await,
                    Some(Running::Adopted(found)) => stop_foreign(gateway, found).await,
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
                tracing::warn!(%gateway, %status, restart_in = ?backoff, "Envoy exited unexpectedly");
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
