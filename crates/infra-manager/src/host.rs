//! Host mode: supervised local Envoy processes, one per replica of each Gateway (its
//! EnvoyProxy `replicas`, decided by `ferrogate-infra-render`).
//!
//! Layout under the work directory: `<work_dir>/<namespace>/<name>/` holds each replica's
//! bootstrap, log (stdout and stderr, appended) and process record (see [`process`] for
//! the names). Nesting by namespace keeps the paths unique (`a-b/c` and `a/b-c` would
//! collide as `a-b-c`).
//!
//! Envoy runs with `--disable-hot-restart`, so several Envoys share the host without
//! distinct `--base-id`s, and `--drain-time-s 1` so a stop is quick. A Gateway's replicas
//! bind the same listener ports (Envoy sets `SO_REUSEPORT` on its listeners), so while one
//! is down the others keep accepting; each replica has its own supervisor, so a crash
//! restarts only that one, and each is started, stopped and adopted on its own.
//!
//! Adoption: each replica's record holds its running process (pid, its start time from
//! `/proc/<pid>/stat`, the bootstrap hash and the binary; see [`record`]). An Envoy outlives
//! a `kill -9` of the control plane and keeps serving its last config; a restarted control
//! plane reads the record and, if that pid is still the same process (same start time, so
//! pid reuse is caught), runs the same binary with the same bootstrap path, and the hash
//! equals the desired one, supervises it instead of starting a second Envoy. The adopted
//! Envoy reconnects to the new xDS server through its own retry. With another hash, the old
//! process is stopped and a fresh one started. A recorded replica that is no longer wanted
//! (replicas were reduced while no control plane ran) is stopped, and so, on the first
//! apply, are the recorded Envoys of Gateways that are not wanted at all (deleted while no
//! control plane ran; see [`leftovers`]).

mod leftovers;
mod process;
mod record;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ferrogate_infra_render::{HostProcessKey, HostProcessSpec};
use ferrogate_ir::GatewayKey;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::InfraError;
use process::{Launch, ProcState, Running, state_file_name, supervise};
use record::stop_foreign;

/// Supervises local Envoy processes, one per replica of each Gateway. Cheap to share behind
/// an `Arc`; [`HostInfra::apply`] calls are serialized.
pub struct HostInfra {
    envoy_path: PathBuf,
    work_dir: PathBuf,
    log_level: String,
    apply_lock: tokio::sync::Mutex<()>,
    procs: Mutex<BTreeMap<HostProcessKey, Managed>>,
    /// Gateways whose directory was searched for replicas a previous control plane left
    /// running (see [`HostInfra::stop_unwanted_records`]). Once is enough: every record
    /// written since belongs to a process this supervisor manages, and is removed when it
    /// stops that process.
    swept: Mutex<BTreeSet<GatewayKey>>,
    /// Whether the records of Gateways that are not wanted at all were looked for (see
    /// [`leftovers`]): once, on the first apply, since only a previous control plane can have
    /// left them.
    orphans_swept: AtomicBool,
    /// Cancelled by [`HostInfra::detach`]: supervisors return without stopping anything.
    detach: CancellationToken,
}

/// One supervised process.
struct Managed {
    hash: String,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    state: Arc<ProcState>,
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
            swept: Mutex::new(BTreeSet::new()),
            orphans_swept: AtomicBool::new(false),
            detach: CancellationToken::new(),
        }
    }

    /// Make the running set equal `desired`: start missing, restart those whose
    /// bootstrap_hash changed, stop removed. Never restarts a process for anything else; in
    /// particular a Gateway's replica count changing starts or stops only the replicas
    /// above the smaller count, because each replica's bootstrap depends on its own index
    /// and ports, never on how many replicas there are.
    ///
    /// Every spec is attempted; the first error is returned (the others are logged). A
    /// process that fails to spawn stays supervised and is retried with backoff.
    pub async fn apply(&self, desired: Vec<HostProcessSpec>) -> Result<(), InfraError> {
        let _serialized = self.apply_lock.lock().await;
        let mut wanted = BTreeMap::new();
        for spec in desired {
            let key = spec.key();
            if wanted.insert(key.clone(), spec).is_some() {
                return Err(InfraError::DuplicateProcess(key));
            }
        }

        // Stop removed processes and those whose bootstrap changed, all at once. A reduced
        // replica count still wants replicas 0..n, so exactly the ones above are stopped
        // (signalled highest first: keys sort by Gateway, then replica) and the others keep
        // running untouched.
        let stopping: Vec<(HostProcessKey, Managed)> = {
            let mut procs = self.lock_procs();
            let stale: Vec<HostProcessKey> = procs
                .iter()
                .rev()
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
            let (gateway, replica) = (&key.gateway, key.replica);
            if let Some(spec) = wanted.get(&key) {
                tracing::info!(%gateway, replica, hash = %spec.bootstrap_hash, "Envoy bootstrap changed; restarting");
                let restarts = managed.state.restarts.load(Ordering::Relaxed);
                carried_restarts.insert(key, restarts);
            } else {
                tracing::info!(%gateway, replica, "Envoy stopped");
            }
        }
        self.stop_unwanted_records(&wanted).await;
        if !self.orphans_swept.swap(true, Ordering::AcqRel) {
            // Before anything starts: a deleted Gateway's Envoy may hold ports a new one wants.
            let gateways: BTreeSet<&GatewayKey> = wanted.keys().map(|k| &k.gateway).collect();
            let orphans = leftovers::recorded_gateways(&self.work_dir)
                .into_iter()
                .filter(|g| !gateways.contains(g))
                .flat_map(|g| {
                    leftovers::recorded_replicas(&self.work_dir, &g)
                        .into_iter()
                        .map(move |r| HostProcessKey::new(g.clone(), r))
                })
                .collect();
            self.stop_recorded(orphans).await;
        }

        // Start what is missing.
        let mut first_error = None;
        for (key, spec) in wanted {
            if self.lock_procs().contains_key(&key) {
                continue;
            }
            let restarts = carried_restarts.get(&key).copied().unwrap_or(0);
            let state = Arc::new(ProcState::with_restarts(restarts));
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

    /// The admin port in the bootstrap of every Gateway's replica 0 that a previous run left
    /// recorded under the work directory (`<ns>/<name>/envoy.state` next to its
    /// `bootstrap.json`). A restarted control plane gives those Gateways the same slots
    /// again, so their bootstraps (every replica's ports derive from the slot) hash the
    /// same and the running Envoys are adopted rather than replaced.
    pub fn recorded_admin_ports(&self) -> BTreeMap<GatewayKey, u16> {
        leftovers::recorded_gateways(&self.work_dir)
            .into_iter()
            .filter_map(|gateway| {
                let dir = self.work_dir.join(&gateway.namespace).join(&gateway.name);
                if !dir.join(state_file_name(0)).exists() {
                    return None;
                }
                let text = std::fs::read_to_string(dir.join("bootstrap.json")).ok()?;
                let bootstrap: serde_json::Value = serde_json::from_str(&text).ok()?;
                let port = bootstrap
                    .pointer("/admin/address/socket_address/port_value")?
                    .as_u64()?;
                Some((gateway, u16::try_from(port).ok()?))
            })
            .collect()
    }

    /// Pids of the processes running now (a replica between restarts is absent).
    pub fn pids(&self) -> BTreeMap<HostProcessKey, u32> {
        self.lock_procs()
            .iter()
            .filter_map(|(key, m)| match m.state.pid.load(Ordering::Acquire) {
                0 => None,
                pid => Some((key.clone(), pid)),
            })
            .collect()
    }

    /// Restarts after unexpected exits, per supervised replica (kept across bootstrap
    /// changes, dropped when the replica goes away). For metrics.
    pub fn restarts(&self) -> BTreeMap<HostProcessKey, u64> {
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

    fn lock_procs(&self) -> std::sync::MutexGuard<'_, BTreeMap<HostProcessKey, Managed>> {
        self.procs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn launch(&self, key: HostProcessKey, hash: &str) -> Launch {
        Launch::new(&self.work_dir, &self.envoy_path, &self.log_level, key, hash)
    }

    /// Stops the Envoys that a previous run recorded for replicas of the wanted Gateways
    /// and that are neither wanted nor supervised: replicas left over from a higher count
    /// when the control plane went down (see [`leftovers`]; a Gateway deleted while no
    /// control plane ran is handled once, on the first apply).
    async fn stop_unwanted_records(&self, wanted: &BTreeMap<HostProcessKey, HostProcessSpec>) {
        let unswept: Vec<GatewayKey> = {
            let mut swept = self.swept.lock().unwrap_or_else(PoisonError::into_inner);
            let gateways: BTreeSet<&GatewayKey> = wanted.keys().map(|k| &k.gateway).collect();
            gateways
                .into_iter()
                .filter(|g| swept.insert((*g).clone()))
                .cloned()
                .collect()
        };
        let leftovers: Vec<HostProcessKey> = unswept
            .iter()
            .flat_map(|gateway| {
                leftovers::recorded_replicas(&self.work_dir, gateway)
                    .into_iter()
                    .map(|replica| HostProcessKey::new(gateway.clone(), replica))
            })
            .filter(|key| !wanted.contains_key(key) && !self.lock_procs().contains_key(key))
            .collect();
        self.stop_recorded(leftovers).await;
    }

    async fn stop_recorded(&self, keys: Vec<HostProcessKey>) {
        leftovers::stop_recorded(&self.work_dir, &self.envoy_path, &self.log_level, keys).await;
    }

    /// Adopts the replica's recorded Envoy if it still runs with this bootstrap; otherwise
    /// writes the bootstrap and spawns the process. Then starts its supervisor. A spawn
    /// failure still yields a supervisor (retrying with backoff) plus the error to report.
    async fn start(
        &self,
        spec: &HostProcessSpec,
        state: Arc<ProcState>,
    ) -> Result<(Managed, Option<InfraError>), InfraError> {
        let key = spec.key();
        let (gateway, replica, hash) = (&spec.gateway, spec.replica, &spec.bootstrap_hash);
        let launch = self.launch(key.clone(), hash);
        let mut running = None;
        if let Some((record, found)) = launch.recorded_process() {
            if record.bootstrap_hash == *hash {
                state.pid.store(found.pid, Ordering::Release);
                tracing::info!(%gateway, replica, pid = found.pid, %hash, "adopted the running Envoy");
                running = Some(Running::Adopted(found));
            } else {
                tracing::info!(%gateway, replica, pid = found.pid, old = %record.bootstrap_hash, new = %hash, "running Envoy has another bootstrap; replacing it");
                stop_foreign(&key, found).await;
                launch.forget_record();
            }
        }
        let mut spawn_error = None;
        if running.is_none() {
            launch.write_bootstrap(&spec.bootstrap).map_err(|source| {
                InfraError::WriteBootstrap {
                    gateway: gateway.clone(),
                    path: launch.bootstrap.clone(),
                    source,
                }
            })?;
            match launch.spawn() {
                Ok(child) => {
                    let pid = child.id().unwrap_or(0);
                    state.pid.store(pid, Ordering::Release);
                    tracing::info!(%gateway, replica, pid, %hash, "Envoy started");
                    running = Some(Running::Child(child));
                }
                Err(source) => {
                    spawn_error = Some(InfraError::Spawn {
                        process: key,
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
                hash: hash.clone(),
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
