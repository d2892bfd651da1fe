//! Host mode (standalone): local Envoy processes, one or more per Gateway (its replicas, see
//! [`crate::host_replicas()`]). Several Envoys share the host, so each Gateway gets a slot and
//! each replica's ports come from that slot through a [`HostPortPlan`].

use std::fmt;

use ferrogate_ir::GatewayKey;

use crate::bootstrap::{BootstrapParams, XdsTlsPaths, bootstrap_hash, render_bootstrap};
use crate::host_ports::{HostPortError, HostPortPlan};

/// Names one Envoy process of standalone mode: replica `replica` of `gateway`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostProcessKey {
    /// The Gateway.
    pub gateway: GatewayKey,
    /// The replica, from 0.
    pub replica: u32,
}

impl HostProcessKey {
    /// Replica `replica` of `gateway`.
    pub fn new(gateway: GatewayKey, replica: u32) -> Self {
        Self { gateway, replica }
    }
}

impl fmt::Display for HostProcessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} replica {}", self.gateway, self.replica)
    }
}

/// What standalone mode runs for one replica of a Gateway.
#[derive(Clone, Debug, PartialEq)]
pub struct HostProcessSpec {
    /// The Gateway.
    pub gateway: GatewayKey,
    /// Which of the Gateway's Envoy processes this is, from 0.
    pub replica: u32,
    /// The Envoy bootstrap (JSON).
    pub bootstrap: serde_json::Value,
    /// [`bootstrap_hash`] of `bootstrap`; a change means the process must restart.
    pub bootstrap_hash: String,
    /// Distinct `--base-id` for hot restart; only needed when hot restart is enabled (the
    /// host manager runs Envoy with `--disable-hot-restart`).
    pub base_id: u32,
    /// Admin port (127.0.0.1 only).
    pub admin_port: u16,
    /// Prometheus stats port.
    pub stats_port: u16,
    /// Readiness port (the listener itself comes over xDS); shared by the replicas.
    pub ready_port: u16,
}

impl HostProcessSpec {
    /// The process this spec describes.
    pub fn key(&self) -> HostProcessKey {
        HostProcessKey::new(self.gateway.clone(), self.replica)
    }
}

/// `node.id` of replica `replica` of `gateway`. Replica 0 keeps the id it had before
/// replicas existed (`<ns>/<name>/host`), so running Envoys keep their bootstrap hash.
/// Every replica has the same `node.cluster` (the Gateway), which is what the xDS server
/// serves and authorizes by; the id tells the replicas apart in its logs and NACK records.
pub fn host_node_id(gateway: &GatewayKey, replica: u32) -> String {
    match replica {
        0 => format!("{}/{}/host", gateway.namespace, gateway.name),
        r => format!("{}/{}/host-{r}", gateway.namespace, gateway.name),
    }
}

/// Renders the process spec of replica `replica` of `gateway`, given its
/// `slot`, the port plan, the xDS server address `(host, port)`, the xDS variant and, for
/// mutual TLS to the xDS server, the client certificate files (written by the caller before
/// the process starts). Each replica has its own admin and stats ports and `node.id`
/// ([`HostPortPlan::replica_ports`], [`host_node_id`]); the readiness port, the xDS server
/// and the client certificate (the Gateway's identity) are the Gateway's.
///
/// An error when `slot` is beyond [`HostPortPlan::max_slots`] or `replica` is not below
/// [`HostPortPlan::max_replicas`] (take the count from [`crate::host_replicas()`]).
pub fn render_host_replica(
    gateway: &GatewayKey,
    slot: u32,
    replica: u32,
    ports: &HostPortPlan,
    xds: (&str, u16),
    delta: bool,
    xds_tls: Option<XdsTlsPaths>,
) -> Result<HostProcessSpec, HostPortError> {
    let gateway = gateway.clone();
    let own = ports.replica_ports(slot, replica)?;
    let params = BootstrapParams {
        node_id: host_node_id(&gateway, replica),
        gateway: gateway.clone(),
        xds_host: xds.0.to_string(),
        xds_port: xds.1,
        admin_address: "127.0.0.1".to_string(),
        admin_port: own.admin,
        stats_port: own.stats,
        delta,
        xds_tls,
    };
    let bootstrap = render_bootstrap(&params);
    let bootstrap_hash = bootstrap_hash(&bootstrap);
    Ok(HostProcessSpec {
        gateway,
        replica,
        bootstrap,
        bootstrap_hash,
        // Replica 0 keeps `slot + 1`; slots stay far below 2^16 (a stride of at least 4
        // over 16-bit ports), so the replica in the high bits keeps every id distinct.
        base_id: (replica << 16) + slot + 1,
        admin_port: own.admin,
        stats_port: own.stats,
        ready_port: own.ready,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogate_ir::InfraIr;

    fn infra() -> InfraIr {
        InfraIr {
            gateway: GatewayKey::new("ns", "gw"),
            gateway_class: "fg".into(),
            ..InfraIr::default()
        }
    }

    fn replica(r: u32, tls: Option<XdsTlsPaths>) -> HostProcessSpec {
        let plan = HostPortPlan::default();
        render_host_replica(
            &infra().gateway,
            1,
            r,
            &plan,
            ("127.0.0.1", 18000),
            false,
            tls,
        )
        .unwrap()
    }

    #[test]
    fn a_slot_past_the_port_range_renders_an_error() {
        let plan = HostPortPlan::default();
        let err = render_host_replica(
            &infra().gateway,
            plan.max_slots(),
            0,
            &plan,
            ("127.0.0.1", 18000),
            false,
            None,
        );
        assert!(matches!(err, Err(HostPortError::NoRoom { .. })), "{err:?}");
    }

    #[test]
    fn host_process_uses_slot_ports() {
        let spec = replica(0, None);
        assert_eq!(
            (
                spec.admin_port,
                spec.stats_port,
                spec.ready_port,
                spec.base_id
            ),
            (19110, 19111, 19113, 2)
        );
        assert_eq!(
            spec.bootstrap["admin"]["address"]["socket_address"]["port_value"],
            19110
        );
        assert_eq!(spec.bootstrap_hash, bootstrap_hash(&spec.bootstrap));
        let again = replica(0, None);
        assert_eq!(spec, again);
    }

    #[test]
    fn replica_zero_is_the_single_process_of_before() {
        let spec = replica(0, None);
        assert_eq!(spec.replica, 0);
        assert_eq!(spec.bootstrap["node"]["id"], "ns/gw/host");
        // The slot's ports, as the single process had before replicas existed (the golden
        // bootstraps in tests/ pin its whole bootstrap).
        assert_eq!(
            (spec.admin_port, spec.stats_port, spec.ready_port),
            (19110, 19111, 19113)
        );
    }

    #[test]
    fn a_replica_has_its_own_node_id_admin_and_stats_ports_and_shares_the_rest() {
        let (first, second) = (replica(0, None), replica(1, None));
        assert_eq!(second.key(), HostProcessKey::new(first.gateway.clone(), 1));
        assert_eq!(second.bootstrap["node"]["id"], "ns/gw/host-1");
        assert_eq!(second.bootstrap["node"]["cluster"], "ns/gw");
        assert_eq!(
            (second.admin_port, second.stats_port, second.ready_port),
            (19114, 19115, 19113)
        );
        assert_eq!(
            second.bootstrap["admin"]["address"]["socket_address"]["port_value"],
            19114
        );
        let stats = &second.bootstrap["static_resources"]["listeners"][0];
        assert_eq!(stats["address"]["socket_address"]["port_value"], 19115);
        let admin_cluster = &second.bootstrap["static_resources"]["clusters"][1];
        assert_eq!(
            admin_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"]["port_value"],
            19114,
            "the stats listener forwards to this replica's own admin"
        );
        assert_ne!(first.bootstrap_hash, second.bootstrap_hash);
        assert_ne!(first.base_id, second.base_id);
        assert_eq!(
            first.bootstrap["static_resources"]["clusters"][0],
            second.bootstrap["static_resources"]["clusters"][0],
            "the same xDS cluster"
        );
    }

    #[test]
    fn every_replica_presents_the_gateways_client_certificate() {
        let tls = XdsTlsPaths::in_dir("/w/ns/gw/xds");
        let (first, third) = (replica(0, Some(tls.clone())), replica(2, Some(tls)));
        let socket = |s: &HostProcessSpec| {
            s.bootstrap["static_resources"]["clusters"][0]["transport_socket"].clone()
        };
        assert!(!socket(&first).is_null());
        assert_eq!(socket(&first), socket(&third));
    }

    #[test]
    fn node_ids_keep_replica_zero_as_it_was() {
        let gw = GatewayKey::new("apps", "web");
        assert_eq!(host_node_id(&gw, 0), "apps/web/host");
        assert_eq!(host_node_id(&gw, 3), "apps/web/host-3");
        assert_eq!(HostProcessKey::new(gw, 2).to_string(), "apps/web replica 2");
    }
}
