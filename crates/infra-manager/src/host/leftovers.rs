//! Envoys a previous control plane recorded and left running (an Envoy outlives a `kill -9`
//! of its control plane) that this one does not want: replicas above a Gateway's current
//! count, and every replica of a Gateway deleted or renamed while no control plane ran.
//! Nothing else would ever stop them: they would keep serving their last config, hold
//! their listener ports (a new Gateway on such a port would share it through
//! `SO_REUSEPORT`) and take a share of the connections.
//!
//! Records are found by name only (`<work_dir>/<ns>/<name>/envoy*.state`, the names this
//! code writes); a recorded process is stopped only when it is verifiably ours (the same
//! checks as adoption), and its record is removed either way. A pid that is no longer the
//! recorded Envoy is never signalled.

use std::path::Path;

use ferrogate_infra_render::HostProcessKey;
use ferrogate_ir::GatewayKey;

use super::process::{Launch, replica_of_state_file};
use super::record::stop_foreign;

/// Gateways with at least one process record under `work_dir`.
pub(super) fn recorded_gateways(work_dir: &Path) -> Vec<GatewayKey> {
    let mut out = Vec::new();
    for ns in subdirectories(work_dir) {
        for name in subdirectories(&work_dir.join(&ns)) {
            let gateway = GatewayKey::new(ns.clone(), name);
            if !recorded_replicas(work_dir, &gateway).is_empty() {
                out.push(gateway);
            }
        }
    }
    out
}

/// The replicas of `gateway` with a process record under `work_dir`.
pub(super) fn recorded_replicas(work_dir: &Path, gateway: &GatewayKey) -> Vec<u32> {
    let dir = work_dir.join(&gateway.namespace).join(&gateway.name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| replica_of_state_file(&e.file_name()))
        .collect()
}

/// Stops the recorded process of each of `keys` that is verifiably ours (highest replica
/// first, as `apply` stops replicas) and removes every one of their records.
pub(super) async fn stop_recorded(
    work_dir: &Path,
    envoy: &Path,
    log_level: &str,
    mut keys: Vec<HostProcessKey>,
) {
    keys.sort_unstable_by(|a, b| b.cmp(a));
    for key in keys {
        // The hash does not matter: nothing of these is kept.
        let launch = Launch::new(work_dir, envoy, log_level, key.clone(), "");
        if let Some((_, found)) = launch.recorded_process() {
            tracing::info!(gateway = %key.gateway, replica = key.replica, pid = found.pid, "stopping an Envoy a previous control plane left running that is no longer wanted");
            stop_foreign(&key, found).await;
        }
        launch.forget_record();
    }
}

/// Names of the directories in `dir` (none when it cannot be read).
fn subdirectories(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect()
}
