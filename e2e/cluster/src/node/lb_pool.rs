//! LoadBalancer address allocation the way MetalLB's controller does it, as pure data: a pool
//! of IPv4 addresses, Services ask for specific ones (`metallb.io/loadBalancerIPs`, else
//! `spec.loadBalancerIP`) or get the lowest free one, and keep what they have.
//!
//! The node applies the outcome (status, host addresses, forwarding) in [`super::services`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// MetalLB's annotation naming the addresses a Service wants (comma-separated).
pub const LOAD_BALANCER_IPS: &str = "metallb.io/loadBalancerIPs";

/// An inclusive range of IPv4 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl Pool {
    /// Parses MetalLB's two pool notations: `10.245.3.0/24` (network and broadcast addresses
    /// left out) or `10.245.3.10-10.245.3.20`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        if let Some((a, b)) = text.split_once('-') {
            let (first, last): (Ipv4Addr, Ipv4Addr) = (a.trim().parse()?, b.trim().parse()?);
            anyhow::ensure!(first <= last, "empty pool {text}");
            return Ok(Self { first, last });
        }
        let (net, len) = text
            .split_once('/')
            .ok_or_else(|| anyhow::anyhow!("pool {text}: expected CIDR or first-last"))?;
        let (net, len): (Ipv4Addr, u32) = (net.parse()?, len.parse()?);
        anyhow::ensure!((8..=30).contains(&len), "pool {text}: prefix /8 to /30");
        let mask = u32::MAX << (32 - len);
        let base = u32::from(net) & mask;
        Ok(Self {
            first: (base + 1).into(),
            last: (base | !mask).saturating_sub(1).into(),
        })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.first <= ip && ip <= self.last
    }

    fn iter(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from)
    }
}

/// What a Service asks for, read from its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `namespace/name`.
    pub key: String,
    /// Addresses it names (empty: any one address).
    pub wanted: Vec<String>,
    /// The address its status shows now (kept when still valid, so a restarted node does not
    /// move a Service).
    pub current: Option<Ipv4Addr>,
}

/// The allocator's answer for one Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Assigned(Vec<Ipv4Addr>),
    /// No address, and why (MetalLB's `AllocationFailed` event says the same).
    Failed(String),
}

/// Assigns addresses to every request. Requests naming addresses are served first, so an
/// address a Service asks for is never taken by one that would take any address.
pub fn allocate(pool: &Pool, requests: &[Request]) -> BTreeMap<String, Decision> {
    let mut used: BTreeSet<Ipv4Addr> = BTreeSet::new();
    let mut out = BTreeMap::new();
    let (specific, any): (Vec<&Request>, Vec<&Request>) =
        requests.iter().partition(|r| !r.wanted.is_empty());
    for r in specific {
        let decision = match wanted(pool, &r.wanted) {
            Ok(ips) if ips.iter().any(|ip| used.contains(ip)) => Decision::Failed(format!(
                "an address of {:?} is already in use by another Service",
                r.wanted
            )),
            Ok(ips) => {
                used.extend(&ips);
                Decision::Assigned(ips)
            }
            Err(why) => Decision::Failed(why),
        };
        out.insert(r.key.clone(), decision);
    }
    // Current holders first, so an existing assignment survives a newcomer.
    let mut pending = Vec::new();
    for r in any {
        match r.current {
            Some(ip) if pool.contains(ip) && used.insert(ip) => {
                out.insert(r.key.clone(), Decision::Assigned(vec![ip]));
            }
            _ => pending.push(r),
        }
    }
    for r in pending {
        let decision = match pool.iter().find(|ip| !used.contains(ip)) {
            Some(ip) => {
                used.insert(ip);
                Decision::Assigned(vec![ip])
            }
            None => Decision::Failed("no available IPs in the pool".into()),
        };
        out.insert(r.key.clone(), decision);
    }
    out
}

fn wanted(pool: &Pool, wanted: &[String]) -> Result<Vec<Ipv4Addr>, String> {
    wanted
        .iter()
        .map(|w| match w.trim().parse::<Ipv4Addr>() {
            Ok(ip) if pool.contains(ip) => Ok(ip),
            Ok(ip) => Err(format!(
                "{ip} is not in the pool {}-{}",
                pool.first, pool.last
            )),
            Err(_) => Err(format!("{w:?} is not an IPv4 address")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, wanted: &[&str], current: Option<&str>) -> Request {
        Request {
            key: key.into(),
            wanted: wanted.iter().map(|s| s.to_string()).collect(),
            current: current.map(|c| c.parse().unwrap()),
        }
    }

    #[test]
    fn pools_parse_in_both_notations() {
        let p = Pool::parse("10.245.3.0/24").unwrap();
        assert_eq!(
            (p.first, p.last),
            (
                "10.245.3.1".parse().unwrap(),
                "10.245.3.254".parse().unwrap()
            )
        );
        let p = Pool::parse("10.1.0.5-10.1.0.6").unwrap();
        assert!(
            p.contains("10.1.0.6".parse().unwrap()) && !p.contains("10.1.0.7".parse().unwrap())
        );
        assert!(Pool::parse("10.1.0.6-10.1.0.5").is_err());
    }

    #[test]
    fn named_addresses_win_and_others_get_the_lowest_free_one() {
        let pool = Pool::parse("10.0.0.0/29").unwrap();
        let got = allocate(
            &pool,
            &[req("a/any", &[], None), req("a/named", &["10.0.0.1"], None)],
        );
        assert_eq!(
            got["a/named"],
            Decision::Assigned(vec!["10.0.0.1".parse().unwrap()])
        );
        assert_eq!(
            got["a/any"],
            Decision::Assigned(vec!["10.0.0.2".parse().unwrap()])
        );
    }

    #[test]
    fn current_assignments_are_kept() {
        let pool = Pool::parse("10.0.0.0/29").unwrap();
        let got = allocate(
            &pool,
            &[req("a/new", &[], None), req("a/old", &[], Some("10.0.0.4"))],
        );
        assert_eq!(
            got["a/old"],
            Decision::Assigned(vec!["10.0.0.4".parse().unwrap()])
        );
        assert_eq!(
            got["a/new"],
            Decision::Assigned(vec!["10.0.0.1".parse().unwrap()])
        );
    }

    #[test]
    fn addresses_outside_the_pool_or_taken_fail_with_a_reason() {
        let pool = Pool::parse("10.0.0.0/29").unwrap();
        let got = allocate(
            &pool,
            &[
                req("a/out", &["192.0.2.1"], None),
                req("a/one", &["10.0.0.3"], None),
                req("a/two", &["10.0.0.3"], None),
                req("a/bad", &["not-an-ip"], None),
            ],
        );
        assert!(matches!(&got["a/out"], Decision::Failed(m) if m.contains("not in the pool")));
        assert!(matches!(&got["a/two"], Decision::Failed(m) if m.contains("in use")));
        assert!(matches!(&got["a/bad"], Decision::Failed(m) if m.contains("IPv4")));
        let full = allocate(
            &Pool::parse("10.0.0.1-10.0.0.1").unwrap(),
            &[req("a/x", &[], None), req("a/y", &[], None)],
        );
        assert!(matches!(&full["a/y"], Decision::Failed(m) if m.contains("no available")));
    }
}
