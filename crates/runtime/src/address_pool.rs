//! Standalone mode's local analogue of MetalLB: a pool of IPv4 addresses (e.g.
//! `127.0.1.0/24`) from which each Gateway gets its own bind address. A Gateway keeps its
//! address while it exists; `spec.addresses` IPAddress values request a specific one.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ferrogate_ir::GatewayKey;
use ferrogate_store::Snapshot;
use ipnet::Ipv4Net;

/// The pool and its assignments.
#[derive(Debug)]
pub(crate) struct AddressPool {
    net: Ipv4Net,
    assigned: BTreeMap<GatewayKey, Ipv4Addr>,
}

/// Assignments of one round.
#[derive(Debug, Default)]
pub(crate) struct Assignment {
    pub addresses: BTreeMap<GatewayKey, String>,
    /// Gateways whose requested address cannot be given (outside the pool, taken, not IPv4).
    pub unusable: BTreeMap<GatewayKey, String>,
}

impl AddressPool {
    pub(crate) fn new(net: Ipv4Net) -> Self {
        Self {
            net,
            assigned: BTreeMap::new(),
        }
    }

    /// Assigns an address to every Gateway of the snapshot (others are released).
    pub(crate) fn assign(&mut self, snapshot: &Snapshot) -> Assignment {
        let mut out = Assignment::default();
        let gateways: Vec<(GatewayKey, Vec<String>)> = snapshot
            .gateways
            .in_order()
            .into_iter()
            .map(|(k, g)| {
                let requested = g
                    .spec
                    .addresses
                    .iter()
                    .flatten()
                    .filter(|a| a.r#type.as_deref().unwrap_or("IPAddress") == "IPAddress")
                    .filter_map(|a| a.value.clone())
                    .collect();
                (
                    GatewayKey::new(k.namespace.clone(), k.name.clone()),
                    requested,
                )
            })
            .collect();
        self.assigned
            .retain(|k, _| gateways.iter().any(|(g, _)| g == k));
        // Requests first, so a requested address is not handed to someone else.
        for (key, requested) in &gateways {
            let Some(wanted) = requested.first() else {
                continue;
            };
            match wanted.parse::<Ipv4Addr>() {
                Ok(ip)
                    if self.net.contains(&ip)
                        && self.assigned.iter().all(|(k, a)| k == key || *a != ip) =>
                {
                    self.assigned.insert(key.clone(), ip);
                }
                _ => {
                    out.unusable.insert(
                        key.clone(),
                        format!("address {wanted} is not available in the pool {}", self.net),
                    );
                }
            }
        }
        for (key, requested) in &gateways {
            if !requested.is_empty() || self.assigned.contains_key(key) {
                continue;
            }
            let free = self
                .net
                .hosts()
                .find(|ip| !self.assigned.values().any(|a| a == ip));
            match free {
                Some(ip) => {
                    self.assigned.insert(key.clone(), ip);
                }
                None => {
                    out.unusable.insert(
                        key.clone(),
                        format!("the address pool {} is exhausted", self.net),
                    );
                }
            }
        }
        out.addresses = self
            .assigned
            .iter()
            .map(|(k, a)| (k.clone(), a.to_string()))
            .collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use ferrogate_store::load_documents;

    use super::*;

    fn snapshot(text: &str) -> Snapshot {
        let mut s = Snapshot::default();
        for o in load_documents("t", text).0 {
            s.apply(o);
        }
        s
    }

    #[test]
    fn gateways_get_distinct_addresses_and_requests_are_honoured() {
        let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: a, namespace: n}\nspec: {gatewayClassName: c, listeners: []}\n---\n\
                    apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: b, namespace: n}\nspec: {gatewayClassName: c, listeners: [], addresses: [{type: IPAddress, value: 127.0.1.1}]}\n---\n\
                    apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: c, namespace: n}\nspec: {gatewayClassName: c, listeners: [], addresses: [{value: 10.9.9.9}]}\n";
        let mut pool = AddressPool::new("127.0.1.0/24".parse().unwrap());
        let got = pool.assign(&snapshot(text));
        assert_eq!(got.addresses[&GatewayKey::new("n", "b")], "127.0.1.1");
        assert_eq!(got.addresses[&GatewayKey::new("n", "a")], "127.0.1.2");
        assert!(got.unusable.contains_key(&GatewayKey::new("n", "c")));
    }
}
