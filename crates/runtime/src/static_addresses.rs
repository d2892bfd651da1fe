//! Controller mode: which `Gateway.spec.addresses` the cluster's load balancer can give.
//!
//! A static address reaches the Gateway's Service (`loadBalancerIP` and MetalLB's
//! `metallb.io/loadBalancerIPs`), and the load balancer either assigns it or leaves the
//! Service pending; MetalLB reports a refusal only as an Event on the Service. Told the load
//! balancer's pools (`--static-address-pool`), the controller answers at once instead:
//! an address outside every pool, or one another of our Gateways asked for first, gives
//! `Programmed: False` with reason `AddressNotUsable` and says why, as GEP-1762 asks. The
//! addresses it judges usable are the Gateway's from then on: `status.addresses` lists them
//! at once (as it would a Service's `externalIPs`), and `Programmed` waits until the Service
//! holds them. Without pools nothing is judged here and such a Gateway waits with
//! `AddressNotAssigned` until its Service gets an address.
//!
//! Pure: the snapshot and the pools in, the unusable Gateways out.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ferrogate_ir::GatewayKey;
use ferrogate_store::Snapshot;

/// One pool: a CIDR (`10.245.0.0/24`) or an inclusive range (`10.245.0.10-10.245.0.20`), as
/// MetalLB's IPAddressPool writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRange {
    first: IpAddr,
    last: IpAddr,
    text: String,
}

impl AddressRange {
    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.first.is_ipv4() && self.first <= ip && ip <= self.last
    }
}

impl FromStr for AddressRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim().to_string();
        let (first, last) = if let Some((a, b)) = text.split_once('-') {
            let parse = |v: &str| {
                v.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{v:?} is not an IP address"))
            };
            (parse(a)?, parse(b)?)
        } else {
            let net = text
                .parse::<ipnet::IpNet>()
                .map_err(|_| format!("{text:?} is neither a CIDR nor a range FIRST-LAST"))?;
            (net.network(), net.broadcast())
        };
        if first.is_ipv4() != last.is_ipv4() || first > last {
            return Err(format!(
                "{text:?}: the range must go up within one address family"
            ));
        }
        Ok(Self { first, last, text })
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What [`StaticAddressPools::judge`] found.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Judgement {
    /// Gateways whose requested IP addresses the load balancer cannot give, with why.
    pub unusable: BTreeMap<GatewayKey, String>,
    /// Gateways whose requested IP addresses are all usable: those addresses.
    pub assigned: BTreeMap<GatewayKey, Vec<String>>,
}

/// The load balancer's pools; empty when the controller was not told them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticAddressPools(pub Vec<AddressRange>);

impl StaticAddressPools {
    /// Judges the requested IP addresses of the Gateways of `controller_name`'s classes.
    /// Gateways are taken in creation order, so the first to ask for an address keeps it.
    pub(crate) fn judge(&self, snapshot: &Snapshot, controller_name: &str) -> Judgement {
        let mut out = Judgement::default();
        if self.0.is_empty() {
            return out;
        }
        let ours = |class: &str| {
            snapshot
                .gateway_classes
                .get("", class)
                .is_some_and(|c| c.spec.controller_name == controller_name)
        };
        let mut taken: BTreeMap<IpAddr, GatewayKey> = BTreeMap::new();
        for (key, gateway) in snapshot.gateways.in_order() {
            if !ours(&gateway.spec.gateway_class_name) {
                continue;
            }
            let gateway_key = GatewayKey::new(key.namespace.clone(), key.name.clone());
            let requested = gateway
                .spec
                .addresses
                .iter()
                .flatten()
                .filter(|a| a.r#type.as_deref().unwrap_or("IPAddress") == "IPAddress")
                .filter_map(|a| a.value.as_deref());
            let mut problems = Vec::new();
            let mut usable = Vec::new();
            for value in requested {
                let Ok(ip) = value.parse::<IpAddr>() else {
                    problems.push(format!("{value} is not an IP address"));
                    continue;
                };
                if !self.0.iter().any(|pool| pool.contains(ip)) {
                    problems.push(format!(
                        "{ip} is outside the load balancer's address pools ({})",
                        self.list()
                    ));
                } else if let Some(holder) = taken.get(&ip).filter(|h| **h != gateway_key) {
                    problems.push(format!(
                        "{ip} is already requested by Gateway {}/{}",
                        holder.namespace, holder.name
                    ));
                } else {
                    taken.insert(ip, gateway_key.clone());
                    usable.push(value.to_string());
                }
            }
            if !problems.is_empty() {
                out.unusable.insert(
                    gateway_key,
                    format!("Cannot use the requested address: {}", problems.join("; ")),
                );
            } else if !usable.is_empty() {
                out.assigned.insert(gateway_key, usable);
            }
        }
        out
    }

    fn list(&self) -> String {
        self.0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogate_store::load_documents;

    fn world(gateways: &str) -> Snapshot {
        let text = format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: ours}}
spec: {{controllerName: {}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: theirs}}
spec: {{controllerName: example.com/other}}
{gateways}",
            ferrogate_api::CONTROLLER_NAME
        );
        let (objects, errors) = load_documents("test", &text);
        assert!(errors.is_empty(), "{errors:?}");
        objects.into_iter().collect()
    }

    fn gateway(name: &str, class: &str, addresses: &[(&str, &str)]) -> String {
        let addresses: Vec<String> = addresses
            .iter()
            .map(|(t, v)| format!("{{type: {t}, value: \"{v}\"}}"))
            .collect();
        format!(
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: apps}}
spec:
  gatewayClassName: {class}
  addresses: [{}]
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
",
            addresses.join(", ")
        )
    }

    fn pools(list: &[&str]) -> StaticAddressPools {
        StaticAddressPools(list.iter().map(|p| p.parse().unwrap()).collect())
    }

    #[test]
    fn pools_parse_as_cidrs_or_ranges_and_refuse_the_rest() {
        let range: AddressRange = "10.245.0.10-10.245.0.20".parse().unwrap();
        assert!(range.contains("10.245.0.10".parse().unwrap()));
        assert!(range.contains("10.245.0.20".parse().unwrap()));
        assert!(!range.contains("10.245.0.21".parse().unwrap()));
        let cidr: AddressRange = "fd00::/120".parse().unwrap();
        assert!(cidr.contains("fd00::ff".parse().unwrap()));
        assert!(!cidr.contains("10.0.0.1".parse().unwrap()));
        for bad in [
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-fd00::1",
            "pool-a",
            "10.0.0.0/33",
        ] {
            assert!(bad.parse::<AddressRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_address_outside_every_pool_is_not_usable() {
        let snapshot = world(&gateway(
            "web",
            "ours",
            &[("IPAddress", "192.0.2.77"), ("IPAddress", "10.245.0.5")],
        ));
        let got = pools(&["10.245.0.0/24"])
            .judge(&snapshot, ferrogate_api::CONTROLLER_NAME)
            .unusable;
        assert_eq!(
            got.get(&GatewayKey::new("apps", "web")).map(String::as_str),
            Some(
                "Cannot use the requested address: 192.0.2.77 is outside the load balancer's \
                 address pools (10.245.0.0/24)"
            )
        );
    }

    #[test]
    fn the_first_gateway_to_ask_keeps_an_address() {
        let snapshot = world(&format!(
            "{}{}{}",
            gateway("first", "ours", &[("IPAddress", "10.245.0.5")]),
            gateway("second", "ours", &[("IPAddress", "10.245.0.5")]),
            // Another controller's Gateway neither holds nor is judged.
            gateway("elsewhere", "theirs", &[("IPAddress", "192.0.2.1")]),
        ));
        let got = pools(&["10.245.0.0/24"])
            .judge(&snapshot, ferrogate_api::CONTROLLER_NAME)
            .unusable;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[&GatewayKey::new("apps", "second")]
                .contains("already requested by Gateway apps/first")
        );
    }

    #[test]
    fn without_pools_or_with_hostnames_nothing_is_judged() {
        let snapshot = world(&format!(
            "{}{}",
            gateway("ip", "ours", &[("IPAddress", "192.0.2.77")]),
            gateway("named", "ours", &[("Hostname", "lb.example.com")]),
        ));
        assert!(
            StaticAddressPools::default().judge(&snapshot, ferrogate_api::CONTROLLER_NAME)
                == Judgement::default()
        );
        let got = pools(&["10.245.0.0/24"])
            .judge(&snapshot, ferrogate_api::CONTROLLER_NAME)
            .unusable;
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            [&GatewayKey::new("apps", "ip")]
        );
    }
}
