//! Host mode (standalone): one local Envoy process per Gateway. Several Envoys share the
//! host, so each Gateway gets a slot and its admin, stats and readiness ports come from
//! that slot through a [`HostPortPlan`].

use ferrogate_ir::{GatewayKey, InfraIr};

use crate::bootstrap::{BootstrapParams, XdsTlsPaths, bootstrap_hash, render_bootstrap};

/// Offsets inside a slot's port block, mirroring the pod ports (admin 19000, stats 19001,
/// readiness 19003).
const ADMIN_OFFSET: u16 = 0;
const STATS_OFFSET: u16 = 1;
const READY_OFFSET: u16 = 3;

/// Per-Gateway port blocks: slot `s` owns ports `base + s*stride ..`, with admin at `+0`,
/// Prometheus stats at `+1` and readiness at `+3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPortPlan {
    /// First port of slot 0 (its admin port).
    pub base: u16,
    /// Ports per slot; must be at least 4.
    pub stride: u16,
}

impl Default for HostPortPlan {
    fn default() -> Self {
        Self {
            base: 19100,
            stride: 10,
        }
    }
}

impl HostPortPlan {
    fn port(&self, slot: u32, offset: u16) -> u16 {
        let port = u32::from(self.base) + slot * u32::from(self.stride) + u32::from(offset);
        u16::try_from(port)
            .unwrap_or_else(|_| panic!("host port plan {self:?} has no room for slot {slot}"))
    }

    /// Admin port of `slot` (bound to 127.0.0.1 only).
    ///
    /// # Panics
    /// When the slot's ports do not fit in `u16` (see [`HostPortPlan::max_slots`]).
    pub fn admin_port(&self, slot: u32) -> u16 {
        self.port(slot, ADMIN_OFFSET)
    }

    /// Prometheus stats port of `slot` (`/stats/prometheus`).
    ///
    /// # Panics
    /// As [`HostPortPlan::admin_port`].
    pub fn stats_port(&self, slot: u32) -> u16 {
        self.port(slot, STATS_OFFSET)
    }

    /// Readiness port of `slot` (`/ready`, delivered over xDS).
    ///
    /// # Panics
    /// As [`HostPortPlan::admin_port`].
    pub fn ready_port(&self, slot: u32) -> u16 {
        self.port(slot, READY_OFFSET)
    }

    /// How many slots fit below port 65535.
    pub fn max_slots(&self) -> u32 {
        let room =
            u32::from(u16::MAX).saturating_sub(u32::from(self.base) + u32::from(READY_OFFSET));
        room / u32::from(self.stride.max(1)) + 1
    }
}

/// What standalone mode runs for one Gateway.
#[derive(Clone, Debug, PartialEq)]
pub struct HostProcessSpec {
    /// The Gateway.
    pub gateway: GatewayKey,
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
    /// Readiness port (the listener itself comes over xDS).
    pub ready_port: u16,
}

/// Renders the process spec of the Gateway in `infra`, given its `slot`, the port plan,
/// the xDS server address `(host, port)` and the xDS variant.
///
/// # Panics
/// When `slot` is beyond [`HostPortPlan::max_slots`].
pub fn render_host_process(
    infra: &InfraIr,
    slot: u32,
    ports: &HostPortPlan,
    xds: (&str, u16),
    delta: bool,
) -> HostProcessSpec {
    render_host_process_with_tls(infra, slot, ports, xds, delta, None)
}

/// As [`render_host_process`], with the Envoy connecting to the xDS server over mutual TLS
/// using the files at `xds_tls` (written by the caller before the process starts).
///
/// # Panics
/// When `slot` is beyond [`HostPortPlan::max_slots`].
pub fn render_host_process_with_tls(
    infra: &InfraIr,
    slot: u32,
    ports: &HostPortPlan,
    xds: (&str, u16),
    delta: bool,
    xds_tls: Option<XdsTlsPaths>,
) -> HostProcessSpec {
    let gateway = infra.gateway.clone();
    let (admin_port, stats_port, ready_port) = (
        ports.admin_port(slot),
        ports.stats_port(slot),
        ports.ready_port(slot),
    );
    let params = BootstrapParams {
        node_id: format!("{}/{}/host", gateway.namespace, gateway.name),
        gateway: gateway.clone(),
        xds_host: xds.0.to_string(),
        xds_port: xds.1,
        admin_address: "127.0.0.1".to_string(),
        admin_port,
        stats_port,
        delta,
        xds_tls,
    };
    let bootstrap = render_bootstrap(&params);
    let bootstrap_hash = bootstrap_hash(&bootstrap);
    HostProcessSpec {
        gateway,
        bootstrap,
        bootstrap_hash,
        base_id: slot + 1,
        admin_port,
        stats_port,
        ready_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_get_disjoint_port_blocks() {
        let plan = HostPortPlan::default();
        assert_eq!(
            (plan.admin_port(0), plan.stats_port(0), plan.ready_port(0)),
            (19100, 19101, 19103)
        );
        assert_eq!(
            (plan.admin_port(2), plan.stats_port(2), plan.ready_port(2)),
            (19120, 19121, 19123)
        );
        let last = plan.max_slots() - 1;
        assert!(plan.ready_port(last) >= 65_526);
    }

    #[test]
    #[should_panic(expected = "no room")]
    fn overflowing_slot_panics() {
        HostPortPlan::default().ready_port(HostPortPlan::default().max_slots());
    }

    #[test]
    fn host_process_uses_slot_ports() {
        let infra = InfraIr {
            gateway: GatewayKey::new("ns", "gw"),
            gateway_class: "fg".into(),
            ..InfraIr::default()
        };
        let spec = render_host_process(
            &infra,
            1,
            &HostPortPlan::default(),
            ("127.0.0.1", 18000),
            false,
        );
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
        let again = render_host_process(
            &infra,
            1,
            &HostPortPlan::default(),
            ("127.0.0.1", 18000),
            false,
        );
        assert_eq!(spec, again);
    }
}
