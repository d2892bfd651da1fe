//! The Service CIDR of one local control plane: `10.96.X.0/24`, a different X for every
//! control plane alive on this host.
//!
//! The node serves ClusterIPs by putting them on its bridge, that is on the host, and tests
//! run several clusters at once on one host: two clusters with the same range would both
//! hand out `10.96.0.10`, and one node's forwarder would take the other's traffic. Each X is
//! claimed by an exclusive `flock` on a file of its own, held as long as the control plane
//! lives. The kernel drops the lock when the process exits, also after a crash, so there is
//! nothing to sweep.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use anyhow::Context;

/// The /16 the /24 ranges are taken from (kubeadm's default Service range).
const POOL: [u8; 2] = [10, 96];

/// A claimed range; the claim ends on drop.
#[derive(Debug)]
pub struct ServiceRange {
    /// Third octet of 10.96.X.0/24.
    pub subnet: u8,
    _claim: std::fs::File,
}

impl ServiceRange {
    /// Claims the first range no other live control plane on this host holds.
    pub fn claim() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir();
        for subnet in 0..=255u8 {
            let path = dir.join(format!("ferrogate-service-range-{subnet}.lock"));
            let file = std::fs::File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .with_context(|| format!("{}", path.display()))?;
            // SAFETY: flock on a descriptor we own; the lock lives as long as the file.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Self {
                    subnet,
                    _claim: file,
                });
            }
        }
        anyhow::bail!("every 10.96.X.0/24 Service range is held by a live control plane")
    }

    /// `10.96.X.0/24`, for `--service-cluster-ip-range`.
    pub fn cidr(&self) -> String {
        format!("{}.{}.{}.0/24", POOL[0], POOL[1], self.subnet)
    }

    /// The range's first address: the `kubernetes` Service, named in the serving certificate.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(POOL[0], POOL[1], self.subnet, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_claims_never_share_a_range() {
        let a = ServiceRange::claim().unwrap();
        let b = ServiceRange::claim().unwrap();
        assert_ne!(a.subnet, b.subnet);
        assert_eq!(a.cidr(), format!("10.96.{}.0/24", a.subnet));
        drop(a);
        let c = ServiceRange::claim().unwrap();
        assert_ne!(c.subnet, b.subnet);
    }
}
