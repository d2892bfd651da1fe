//! ferrogate-infra-render: turns the infra IR of one Gateway into what must run for it.
//!
//! Owns: the Envoy bootstrap ([`render_bootstrap`], [`bootstrap_hash`]) and the host-mode
//! process specs ([`render_host_replica`], [`HostProcessSpec`], [`HostPortPlan`],
//! [`host_replicas()`]) used by standalone mode, which runs one or more local Envoys per
//! Gateway (its EnvoyProxy `replicas`), and the Kubernetes objects of a
//! Gateway's Envoy fleet ([`kubernetes::render`]) used by controller mode. The bootstrap is
//! deliberately minimal (xDS cluster, admin, Prometheus stats listener, overload limits) so
//! that it rarely changes: everything else reaches Envoy over xDS, and a bootstrap change
//! (seen through its hash) is the only thing that restarts an Envoy.
//!
//! Must not: do I/O, spawn tasks, read clocks or randomness, or depend on tokio or a
//! Kubernetes client. Every function is deterministic: the same input gives byte-identical
//! output, so hashes are stable. Applying the output (writing files, starting processes,
//! server-side apply) is `ferrogate-infra-manager`'s job.
#![forbid(unsafe_code)]

/// An Envoy command-line flag both modes run Envoy with.
///
/// By default Envoy walks every dynamic resource it receives by reflection, looking for
/// unknown and deprecated fields to warn about, before and apart from the constraint checks
/// (protoc-gen-validate, durations), which still run. At 10 000 routes that walk was about
/// 15 of the 47 ms from a one-route edit to the route being served (measured on 2 CPUs). The
/// flag skips only that walk. Unknown fields are accepted either way (they would only be
/// warned about), and Ferrogate sets no deprecated field: the xDS translator is built with
/// `deny(deprecated)`, so using one is a compile error rather than an Envoy warning.
pub const IGNORE_UNKNOWN_DYNAMIC_FIELDS: &str = "--ignore-unknown-dynamic-fields";

mod bootstrap;
mod host;
mod host_ports;
mod host_replicas;
pub mod kubernetes;

pub use bootstrap::{
    ADMIN_CLUSTER, BootstrapParams, MAX_DOWNSTREAM_CONNECTIONS, STATS_LISTENER, STATS_PATH,
    XDS_CLUSTER, XdsTlsPaths, bootstrap_hash, render_bootstrap,
};
pub use host::{HostProcessKey, HostProcessSpec, host_node_id, render_host_replica};
pub use host_ports::{HostPortError, HostPortPlan, HostPorts, MAX_BASE, MIN_STRIDE};
pub use host_replicas::{HostReplicas, host_replicas};
