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

/// Why a port plan or a slot of it cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostPortError {
    /// The stride leaves no room for the admin, stats and readiness ports.
    #[error(
        "a port block of {stride} ports is too small: each Gateway needs at least {MIN_STRIDE}"
    )]
    StrideTooSmall {
        /// The stride asked for.
        stride: u16,
    },
    /// Not even slot 0 fits below port 65535.
    #[error(
        "base port {base} leaves no room below port 65535 for one Gateway's {MIN_STRIDE} ports (at most {MAX_BASE})"
    )]
    BaseTooHigh {
        /// The base asked for.
        base: u16,
    },
    /// Every slot the port range has room for is taken.
    #[error(
        "no port block left: slot {slot} would start past port 65535 (base {base}, {stride} ports per Gateway: room for {max_slots} Gateways)"
    )]
    NoRoom {
        /// The slot asked for.
        slot: u32,
        /// The plan's base port.
        base: u16,
        /// The plan's stride.
        stride: u16,
        /// How many slots the plan has room for.
        max_slots: u32,
    },
    /// The replica is beyond what the slot's block has room for.
    #[error("the port block of slot {slot} has room for {max} replicas, not replica {replica}")]
    NoRoomForReplica {
        /// The slot.
        slot: u32,
        /// The replica asked for.
        replica: u32,
        /// How many replicas fit.
        max: u32,
    },
}

/// Fewest ports a block can have: admin, stats, (unused), readiness.
pub const MIN_STRIDE: u16 = READY_OFFSET as u16 + 1;
/// Highest base port with room for slot 0 (its readiness port is the block's last needed).
pub const MAX_BASE: u16 = u16::MAX - READY_OFFSET as u16;

/// Per-Gateway port blocks: slot `s` owns ports `base + s*stride ..`, see the module docs.
/// Every port accessor is fallible: a slot past the port range is a Gateway that cannot be
/// placed, which the caller reports on that Gateway, never a reason to stop the process.
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
    /// A plan whose slot 0 fits: `stride` at least [`MIN_STRIDE`], `base` at most
    /// [`MAX_BASE`]. For command-line checks, before anything starts.
    pub fn new(base: u16, stride: u16) -> Result<Self, HostPortError> {
        if stride < MIN_STRIDE {
            return Err(HostPortError::StrideTooSmall { stride });
        }
        if base > MAX_BASE {
            return Err(HostPortError::BaseTooHigh { base });
        }
        Ok(Self { base, stride })
    }

    fn try_port(&self, slot: u32, offset: u32) -> Option<u16> {
        let port =
            u64::from(self.base) + u64::from(slot) * u64::from(self.stride) + u64::from(offset);
        u16::try_from(port).ok()
    }

    fn port(&self, slot: u32, offset: u32) -> Result<u16, HostPortError> {
        self.try_port(slot, offset).ok_or(HostPortError::NoRoom {
            slot,
            base: self.base,
            stride: self.stride,
            max_slots: self.max_slots(),
        })
    }

    /// Admin port of replica 0 of `slot` (bound to 127.0.0.1 only); an error when the
    /// slot's ports do not fit in `u16` (see [`HostPortPlan::max_slots`]).
    pub fn admin_port(&self, slot: u32) -> Result<u16, HostPortError> {
        self.port(slot, ADMIN_OFFSET)
    }

    /// Prometheus stats port of replica 0 of `slot` (`/stats/prometheus`); errors as
    /// [`HostPortPlan::admin_port`].
    pub fn stats_port(&self, slot: u32) -> Result<u16, HostPortError> {
        self.port(slot, STATS_OFFSET)
    }

    /// Readiness port of `slot` (`/ready`, delivered over xDS), shared by its replicas;
    /// errors as [`HostPortPlan::admin_port`].
    pub fn ready_port(&self, slot: u32) -> Result<u16, HostPortError> {
        self.port(slot, READY_OFFSET)
    }

    /// How many slots fit below port 65535 (counting replica 0's ports; see
    /// [`HostPortPlan::max_replicas`] for the others). 0 when not even slot 0 fits.
    pub fn max_slots(&self) -> u32 {
        let Some(room) = u32::from(u16::MAX).checked_sub(u32::from(self.base) + READY_OFFSET)
        else {
            return 0;
        };
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
    /// [`HostPortPlan::stats_port`] and [`HostPortPlan::ready_port`]. An error when the slot
    /// does not fit or `replica` is not below [`HostPortPlan::max_replicas`].
    pub fn replica_ports(&self, slot: u32, replica: u32) -> Result<HostPorts, HostPortError> {
        let ready = self.ready_port(slot)?;
        if replica == 0 {
            return Ok(HostPorts {
                admin: self.admin_port(slot)?,
                stats: self.stats_port(slot)?,
                ready,
            });
        }
        let max = self.max_replicas(slot);
        if replica >= max {
            return Err(HostPortError::NoRoomForReplica { slot, replica, max });
        }
        let admin = extra_offset(replica);
        Ok(HostPorts {
            admin: self.port(slot, admin)?,
            stats: self.port(slot, admin + STATS_OFFSET)?,
            ready,
        })
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
        let ports = |s| {
            (
                plan.admin_port(s).unwrap(),
                plan.stats_port(s).unwrap(),
                plan.ready_port(s).unwrap(),
            )
        };
        assert_eq!(ports(0), (19100, 19101, 19103));
        assert_eq!(ports(2), (19120, 19121, 19123));
        let last = plan.max_slots() - 1;
        assert!(plan.ready_port(last).unwrap() >= 65_526);
    }

    #[test]
    fn a_slot_past_the_port_range_is_an_error_not_a_panic() {
        let plan = HostPortPlan::default();
        let first_too_many = plan.max_slots();
        assert_eq!(first_too_many, 4_644, "(65535 - 19103) / 10 + 1");
        let err = plan.ready_port(first_too_many).unwrap_err();
        assert!(
            matches!(
                err,
                HostPortError::NoRoom {
                    slot: 4_644,
                    max_slots: 4_644,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(plan.replica_ports(first_too_many, 0).is_err());
        assert!(plan.replica_ports(u32::MAX, 0).is_err());
        assert!(err.to_string().contains("room for 4644 Gateways"), "{err}");
    }

    #[test]
    fn a_base_too_high_for_one_gateway_has_no_slot_and_is_refused_by_new() {
        let plan = HostPortPlan {
            base: 65_534,
            stride: 10,
        };
        assert_eq!(plan.max_slots(), 0, "65534 + 3 is past 65535");
        assert!(plan.replica_ports(0, 0).is_err());
        assert_eq!(
            HostPortPlan::new(65_534, 10),
            Err(HostPortError::BaseTooHigh { base: 65_534 })
        );
        assert_eq!(HostPortPlan::new(MAX_BASE, 10).unwrap().max_slots(), 1);
        assert_eq!(
            HostPortPlan::new(19_100, 3),
            Err(HostPortError::StrideTooSmall { stride: 3 })
        );
    }

    #[test]
    fn replicas_get_their_own_admin_and_stats_ports_inside_the_block_and_share_readiness() {
        let plan = HostPortPlan::default();
        assert_eq!(plan.max_replicas(1), 4);
        let ports: Vec<HostPorts> = (0..4).map(|r| plan.replica_ports(1, r).unwrap()).collect();
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
                admin: plan.admin_port(1).unwrap(),
                stats: plan.stats_port(1).unwrap(),
                ready: plan.ready_port(1).unwrap()
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
        assert_eq!(top.replica_ports(0, 1).unwrap().stats, 65_535);
    }

    #[test]
    fn a_replica_beyond_the_cap_is_an_error() {
        assert_eq!(
            HostPortPlan::default().replica_ports(0, 4),
            Err(HostPortError::NoRoomForReplica {
                slot: 0,
                replica: 4,
                max: 4
            })
        );
    }
}
