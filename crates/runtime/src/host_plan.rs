//! Standalone hosting: where each Gateway's Envoys run on this machine. Everything that
//! exists only because Envoys are local processes lives here, outside the pipeline: port
//! blocks (slots), replicas per Gateway, the address pool, and the paths of the per-Gateway
//! xDS client certificates. It does no I/O: the host sink writes certificates and starts
//! processes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use ferrogate_infra_render::{HostPortPlan, HostProcessSpec, render_host_replica};
use ferrogate_ir::GatewayKey;
use ferrogate_store::Snapshot;
use ferrogate_translator::{Options, Translation};

use crate::address_pool::AddressPool;
use crate::host_replicas::ReplicaWarnings;
use crate::slots::Slots;

/// Where Envoys reach the xDS server, and which xDS variant their bootstrap uses.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct XdsEndpoint {
    pub host: String,
    pub port: u16,
    pub delta: bool,
}

/// What a placement decided for one run.
pub(crate) struct HostPlacement {
    /// Each placed Gateway's readiness port (delivered over xDS). A Gateway missing here
    /// has no port block: it runs nothing and gets no snapshot.
    pub ready_ports: BTreeMap<GatewayKey, u16>,
    /// Every replica of every placed Gateway: the same `Arc` as the last placement's while
    /// no Gateway's port block or replica count changed.
    pub processes: Arc<Vec<HostProcessSpec>>,
}

/// The processes of the last placement and what they were rendered from. A process depends
/// only on its Gateway, slot and replica and the planner's settings, so while those stay the
/// placement hands the same list back: re-rendering (and hashing, and freeing) a bootstrap
/// per Gateway at every run was a tenth of a one-route edit's CPU at 100 Gateways.
struct Rendered {
    /// (Gateway, slot, replicas) of every placed Gateway, in key order.
    shape: Vec<(GatewayKey, u32, u32)>,
    settings: (XdsEndpoint, HostPortPlan, Option<PathBuf>),
    processes: Arc<Vec<HostProcessSpec>>,
}

/// Places the Gateways of each translation on this host.
pub(crate) struct HostPlanner {
    pub xds: XdsEndpoint,
    pub port_plan: HostPortPlan,
    slots: Slots,
    /// Gateways that got no port block in the last run (warned about once).
    unplaced: BTreeSet<GatewayKey>,
    replica_warnings: ReplicaWarnings,
    /// Per-Gateway addresses, with `--address-pool`.
    pub pool: Option<AddressPool>,
    /// With `--xds-tls`: the folder under which each Gateway's client certificate is
    /// written (by the host sink, before its Envoys start).
    pub xds_tls_dir: Option<PathBuf>,
    rendered: Option<Rendered>,
}

impl HostPlanner {
    pub(crate) fn new(xds: XdsEndpoint, port_plan: HostPortPlan) -> Self {
        Self {
            xds,
            port_plan,
            slots: Slots::default(),
            unplaced: BTreeSet::new(),
            replica_warnings: ReplicaWarnings::default(),
            pool: None,
            xds_tls_dir: None,
            rendered: None,
        }
    }

    /// Gives Gateways the slots their admin ports in a previous run's bootstraps imply, so
    /// a restarted control plane renders the same bootstraps and adopts the running Envoys.
    pub(crate) fn seed_slots(&mut self, admin_ports: BTreeMap<GatewayKey, u16>) {
        let plan = &self.port_plan;
        let slots = admin_ports
            .into_iter()
            .filter_map(|(key, port)| {
                let offset = port.checked_sub(plan.base)?;
                (offset % plan.stride.max(1) == 0)
                    .then(|| (key, u32::from(offset / plan.stride.max(1))))
            })
            .collect();
        self.slots = Slots::seeded(slots);
    }

    /// Before translation: each Gateway's address from the pool, if there is one.
    pub(crate) fn assign_addresses(&mut self, snapshot: &Snapshot, options: &mut Options) {
        if let Some(pool) = self.pool.as_mut() {
            let assignment = pool.assign(snapshot);
            options.assigned_addresses = assignment.addresses;
            options.unusable_addresses = assignment.unusable;
        }
    }

    /// After translation: a port block per Gateway while the range lasts (the others get
    /// `Programmed: False` in `translation`'s statuses), and every replica's process.
    pub(crate) fn place(&mut self, translation: &mut Translation) -> HostPlacement {
        let slots = self
            .slots
            .assign(translation.infra.keys(), self.port_plan.max_slots());
        let unplaced: BTreeSet<GatewayKey> = translation
            .gateways
            .keys()
            .chain(translation.infra.keys())
            .filter(|k| !slots.contains_key(*k))
            .cloned()
            .collect();
        if unplaced != self.unplaced {
            for key in unplaced.difference(&self.unplaced) {
                tracing::warn!(gateway = %key, max = self.port_plan.max_slots(), "no free port block for this Gateway: not programmed");
            }
            self.unplaced = unplaced.clone();
        }
        crate::placement::mark_unplaced(&mut translation.statuses, &unplaced, &self.port_plan);

        self.replica_warnings.retain(&translation.infra);
        let no_parameters = ferrogate_api::envoyproxy::EnvoyProxySpec::default();
        let shape: Vec<(GatewayKey, u32, u32)> = translation
            .infra
            .keys()
            .filter_map(|key| {
                let slot = *slots.get(key)?;
                let proxy = translation.parameters.get(key).unwrap_or(&no_parameters);
                let replicas = self
                    .replica_warnings
                    .count(key, proxy, &self.port_plan, slot);
                Some((key.clone(), slot, replicas))
            })
            .collect();
        let settings = (self.xds.clone(), self.port_plan, self.xds_tls_dir.clone());
        let processes = match &self.rendered {
            Some(last) if last.shape == shape && last.settings == settings => {
                Arc::clone(&last.processes)
            }
            _ => {
                let processes = Arc::new(self.render(&shape));
                self.rendered = Some(Rendered {
                    shape,
                    settings,
                    processes: Arc::clone(&processes),
                });
                processes
            }
        };
        let ready_ports = slots
            .iter()
            .filter_map(|(key, slot)| Some((key.clone(), self.port_plan.ready_port(*slot).ok()?)))
            .collect();
        HostPlacement {
            ready_ports,
            processes,
        }
    }

    /// Every replica's process of the placed Gateways in `shape` (Gateway, slot, replicas).
    /// They share the Gateway's xDS snapshot (same node.cluster), client certificate and
    /// readiness port.
    fn render(&self, shape: &[(GatewayKey, u32, u32)]) -> Vec<HostProcessSpec> {
        let mut processes = Vec::new();
        for (key, slot, replicas) in shape {
            let tls = self
                .xds_tls_dir
                .as_deref()
                .map(|dir| crate::host_xds_tls::client_paths(dir, key));
            for replica in 0..*replicas {
                match render_host_replica(
                    key,
                    *slot,
                    replica,
                    &self.port_plan,
                    (&self.xds.host, self.xds.port),
                    self.xds.delta,
                    tls.clone(),
                ) {
                    Ok(spec) => processes.push(spec),
                    // The replica count is capped by the block's room, so this is a bug;
                    // it costs this replica, not the process.
                    Err(e) => tracing::error!(gateway = %key, replica, "{e}"),
                }
            }
        }
        processes
    }
}
