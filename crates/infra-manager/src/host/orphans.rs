//! Envoys of Gateways that were deleted (or renamed) while no control plane ran.
//!
//! Why: an Envoy outlives a `kill -9` of the control plane. A restarted one adopts the
//! Envoys of the Gateways it still wants and stops their surplus replicas, but it would
//! never visit the directory of a Gateway that is gone: that Envoy would keep serving its
//! last config and holding its listener ports (a new Gateway on such a port would share it
//! through `SO_REUSEPORT`). So on the first apply after start, every
//! `<work_dir>/<ns>/<name>/envoy*.state` of a Gateway not wanted is looked at once: a
//! recorded process that is verifiably ours (the same checks as adoption) is stopped, and
//! the record is removed either way. A pid that is no longer the recorded Envoy is never
//! signalled.

use std::collections::BTreeSet;
use std::path::Path;

use ferrogate_infra_render::HostProcessKey;
use ferrogate_ir::GatewayKey;

use super::process::{Launch, replica_of_state_file};
use super::record::{ProcRecord, stop_foreign};

/// Stops the recorded Envoys of every Gateway under `work_dir` that is not in `wanted`, and
/// removes their records. Directories that are not `<ns>/<name>` holding a record are
/// left alone.
pub(super) async fn stop_orphaned_gateways(
    work_dir: &Path,
    envoy: &Path,
    log_level: &str,
    wanted: &BTreeSet<GatewayKey>,
) {
    let mut orphans: Vec<HostProcessKey> = Vec::new();
    let Ok(namespaces) = std::fs::read_dir(work_dir) else {
        return;
    };
    for ns in namespaces.flatten() {
        let Some(namespace) = ns.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !ns.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(gateways) = std::fs::read_dir(ns.path()) else {
            continue;
        };
        for gw in gateways.flatten() {
            let Some(name) = gw.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !gw.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let gateway = GatewayKey::new(namespace.clone(), name);
            if wanted.contains(&gateway) {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(gw.path()) else {
                continue;
            };
            orphans.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| replica_of_state_file(&e.file_name()))
                    .map(|replica| HostProcessKey::new(gateway.clone(), replica)),
            );
        }
    }
    orphans.sort_unstable_by(|a, b| b.cmp(a)); // highest replica first, as in apply
    for key in orphans {
        let (gateway, replica) = (&key.gateway, key.replica);
        // The hash does not matter: a Gateway that is not wanted has no bootstrap to keep.
        let launch = Launch::new(work_dir, envoy, log_level, key.clone(), "");
        if let Some((_, found)) = launch.recorded_process() {
            tracing::info!(%gateway, replica, pid = found.pid, "stopping the Envoy of a Gateway deleted while no control plane ran");
            stop_foreign(&key, found).await;
        } else {
            let pid = std::fs::read(&launch.state_file)
                .ok()
                .and_then(|bytes| ProcRecord::parse(&bytes))
                .map(|r| r.pid);
            tracing::info!(%gateway, replica, pid = ?pid, "removing the record of a deleted Gateway's Envoy that no longer runs (its pid was not signalled)");
        }
        launch.forget_record();
    }
}
