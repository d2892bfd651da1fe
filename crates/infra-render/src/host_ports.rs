//! Port blocks of standalone mode. Several Envoys share one host, so each Gateway gets a
//! slot, and slot `s` owns the ports `base + s*stride ..= base + s*stride + stride - 1`.
//! With the default stride of 10 a block is laid out as:
//!
//! | offset | port |
//! | --- | --- |
//! | 0 | admin of replica 0 (127.0.0.1 only) |
//! | 1 | Prometheus stats of replica 0 |
//! | 2 | unused (the offsets mirror the pod ports 19000, 19001, 19003) |
//! | 3 | readiness, shared by every replica |
//! | 4, 5 | admin and stats of replica 1 |
//! | 6, 7 | admin and stats of replica 2 |
//! | 8, 9 | admin and stats of replica 3 |
//!
//! Replica 0 keeps exactly the ports it had before replicas existed, so the bootstraps (and
//! hashes) of running Envoys stay the same and a restarted control plane adopts them.
//!
//! Which ports a replica owns, and why:
//! - **admin** is per replica because it must be: Envoy's admin socket does not set
//!   `SO_REUSEPORT`, so a second process cannot bind it (checked with Envoy 1.40).
//! - **stats** is per replica because counters are per process: behind one shared
//!   (`SO_REUSEPORT`) port each scrape would land on a random replica, a counter would jump
//!   between two processes' values, and Prometheus would read every jump down as a counter
//!   reset. One port per replica is what one scrape target per pod is in a cluster.
//! - **readiness** is shared because it cannot be otherwise and need not be: the ready
//!   listener reaches Envoy over xDS in the Gateway's one snapshot, which every replica
//!   receives, so all replicas bind the same port (xDS listeners set `SO_REUSEPORT`:
//!   `enable_reuse_port` defaults to true on Linux). It answers while at least one replica
//!   has its config, which is the question a readiness probe of the Gateway asks; each
//!   replica's own state is on its admin port (`/ready`).

/// Offsets inside a slot's port block, mirroring the pod ports (admin 19000, stats 19001,
/// readiness 19003).
const ADMIN_OFFSET: u32 = 0;
const STATS_OFFSET: u32 = 1;
const READY_OFFSET: u32 = 3;
/// First offset of the extra replicas' ports: replica `r >= 1` has its admin port at
/// `EXTRA_OFFSET + 2*(r-1)` and its stats port right after it.
const EXTRA_OFFSET: u32 = 4;
/// Ports each replica beyond the first needs (admin and stats).
const PORTS_PER_EXTRA_REPLICA: u32 = 2;

/// Per-Gateway port blocks: slot `s` owns ports `base + s*stride ..`, see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPortPlan {
    /// First port of slot 0 (its admin port).
    pub base: u16,
    /// Ports per slot; must be at least 4. Every 2 ports beyond the first 4 make room for
    /// one more replica (the default, 10, allows 4 replicas per Gateway).
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

/// The ports of one Envoy process: replica `r` of the Gateway in slot `s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPorts {
    /// Admin port (bound to 127.0.0.1 only); unique per process.
    pub admin: u16,
    /// Prometheus stats port (`/stats/prometheus`); unique per process.
    pub stats: u16,
    /// Readiness port (`/ready`, delivered over xDS); shared by the Gateway's replicas.
    pub ready: u16,
}

impl HostPortPlan {
    fn try_port(&self, slot: u32, offset: u32) -> Option<u16> {
        let port =
            u64::from(self.base) + u64::from(slot) * u64::from(self.stride) + u64::from(offset);
        u16::try_from(port).ok()
    }

    fn port(&self, slot: u32, offset: u32) -> u16 {
        self.try_port(slot, offset)
            .unwrap_or_else(|| panic!("host port plan {self:?} has no room for slot {slot}"))
    }

    /// Admin port of replica 0 of `slot` (bound to 127.0.0.1 only).
    ///
    /// # Panics
    /// When the slot's ports do not fit in `u16` (see [`HostPortPlan::max_slots`]).
    pub fn admin_port(&self, slot: u32) -> u16 {
        self.port(slot, ADMIN_OFFSET)
    }

    /// Prometheus stats port of replica 0 of `slot` (`/stats/prometheus`).
    ///
    /// # Panics
    /// As [`HostPortPlan::admin_port`].
    pub fn stats_port(&self, slot: u32) -> u16 {
        self.port(slot, STATS_OFFSET)
    }

    /// Readiness port of `slot` (`/ready`, delivered over xDS), shared by its replicas.
    ///
    /// # Panics
    /// As [`HostPortPlan::admin_port`].
    pub fn ready_port(&self, slot: u32) -> u16 {
        self.port(slot, READY_OFFSET)
    }

    /// How many slots fit below port 65535 (counting replica 0's ports; see
    /// [`HostPortPlan::max_replicas`] for the others).
    pub fn max_slots(&self) -> u32 {
        let room = u32::from(u16::MAX).saturating_sub(u32::from(self.base) + READY_OFFSET);
        room / u32::from(self.stride.max(1)) + 1
    }

    /// How many replicas the Gateway in `slot` can run: as many as the block has room for
    /// (4 with the default stride), fewer only in a last slot cut short by port 65535.
    /// At least 1.
    pub fn max_replicas(&self, slot: u32) -> u32 {
        let in_block =
            1 + u32::from(self.stride).saturating_sub(EXTRA_OFFSET) / PORTS_PER_EXTRA_REPLICA;
        let fits = |replica: &u32| {
            self.try_port(slot, extra_offset(*replica) + STATS_OFFSET)
                .is_some()
        };
        1 + (1..in_block).take_while(fits).count() as u32
    }

    /// The ports of replica `replica` of `slot`; replica 0's are [`HostPortPlan::admin_port`],
    /// [`HostPortPlan::stats_port`] and [`HostPortPlan::ready_port`].
    ///
    /// # Panics
    /// When `replica` is not below [`HostPortPlan::max_replicas`], or as
    /// [`HostPortPlan::admin_port`].
    pub fn replica_ports(&self, slot: u32, replica: u32) -> HostPorts {
        let ready = self.ready_port(slot);
        if replica == 0 {
            return HostPorts {
                admin: self.admin_port(slot),
                stats: self.stats_port(slot),
                ready,
            };
        }
        let max = self.max_replicas(slot);
        assert!(
            replica < max,
            "host port plan {self:?} has room for {max} replicas in slot {slot}, not replica {replica}"
        );
        let admin = extra_offset(replica);
        HostPorts {
            admin: self.port(slot, admin),
            stats: self.port(slot, admin + STATS_OFFSET),
            ready,
        }
    }
}

/// Offset of the admin port of replica `replica >= 1`.
fn extra_offset(replica: u32) -> u32 {
    EXTRA_OFFSET + PORTS_PER_EXTRA_REPLICA * (replica - 1)
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
    fn replicas_get_their_own_admin_and_stats_ports_inside_the_block_and_share_readiness() {
        let plan = HostPortPlan::default();
        assert_eq!(plan.max_replicas(1), 4);
        let ports: Vec<HostPorts> = (0..4).map(|r| plan.replica_ports(1, r)).collect();
        let pairs: Vec<(u16, u16)> = ports.iter().map(|p| (p.admin, p.stats)).collect();
        assert_eq!(
            pairs,
            [
                (19110, 19111),
                (19114, 19115),
                (19116, 19117),
                (19118, 19119)
            ]
        );
        assert!(ports.iter().all(|p| p.ready == 19113));
        // Replica 0 is exactly what the single-process plan gave.
        assert_eq!(
            ports[0],
            HostPorts {
                admin: plan.admin_port(1),
                stats: plan.stats_port(1),
                ready: plan.ready_port(1)
            }
        );
        // Every port of the block belongs to one owner, and none leaks into the next slot.
        let mut used: Vec<u16> = ports.iter().flat_map(|p| [p.admin, p.stats]).collect();
        used.push(19113);
        used.sort_unstable();
        used.dedup();
        assert_eq!(used.len(), 9);
        assert!(used.iter().all(|p| (19110..19120).contains(p)));
    }

    #[test]
    fn the_replica_cap_follows_the_stride_and_the_end_of_the_port_range() {
        let plan = |stride| HostPortPlan {
            base: 19100,
            stride,
        };
        assert_eq!(plan(4).max_replicas(0), 1);
        assert_eq!(plan(5).max_replicas(0), 1);
        assert_eq!(plan(6).max_replicas(0), 2);
        assert_eq!(plan(20).max_replicas(0), 9);
        // A block cut short by port 65535: admin 65530, stats 65531, ready 65533, replica 1
        // at 65534/65535, no room for replica 2.
        let top = HostPortPlan {
            base: 65_530,
            stride: 10,
        };
        assert_eq!(top.max_slots(), 1);
        assert_eq!(top.max_replicas(0), 2);
        assert_eq!(top.replica_ports(0, 1).stats, 65_535);
    }

    #[test]
    #[should_panic(expected = "room for 4 replicas")]
    fn a_replica_beyond_the_cap_panics() {
        HostPortPlan::default().replica_ports(0, 4);
    }
}
