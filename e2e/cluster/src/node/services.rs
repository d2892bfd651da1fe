//! Services on this node, as kube-proxy (forwarding) and MetalLB (addresses) would serve
//! them: every [`SYNC`] the loop lists Services and EndpointSlices and forwards, in userspace
//! ([`super::forward`]), to the ready endpoints of each Service port
//!
//! - its ClusterIPs (every Service that has one; headless and ExternalName Services have
//!   none), on the node's bridge, so the host and every Pod reach them;
//! - its NodePort on the node's address (NodePort and LoadBalancer Services);
//! - with an address pool, for LoadBalancer Services: addresses allocated from the pool
//!   ([`super::lb_pool`]), written to `status.loadBalancer.ingress` and put on the bridge.
//!
//! ClusterIPs do not collide between the clusters of concurrent tests: each control plane has
//! its own Service range ([`crate::service_range`]). LoadBalancer Services with a
//! `spec.loadBalancerClass` belong to another implementation and get no address, as MetalLB
//! leaves them. Addresses go away with the bridge when the node stops.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use super::forward::{Forwarder, Protocol, Table};
use super::lb_pool::{self, Decision, Pool, Request};
use super::network;

const SYNC: Duration = Duration::from_millis(500);

pub struct ServiceProxy {
    pub client: kube::Client,
    /// Where LoadBalancer Services get addresses; `None`: someone else assigns them.
    pub pool: Option<Pool>,
    /// The link that carries the addresses.
    pub link: String,
    /// The node's address, where NodePorts listen.
    pub node_ip: Ipv4Addr,
}

impl ServiceProxy {
    /// Runs until the task is dropped (the forwarder's listeners end with it).
    pub async fn run(self) {
        let mut state = State::default();
        loop {
            if let Err(e) = self.sync(&mut state).await {
                tracing::warn!("services: {e:#}");
            }
            tokio::time::sleep(SYNC).await;
        }
    }

    async fn sync(&self, state: &mut State) -> anyhow::Result<()> {
        let services: Vec<Service> = Api::<Service>::all(self.client.clone())
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .collect();
        let slices = Api::<EndpointSlice>::all(self.client.clone())
            .list(&ListParams::default().labels("kubernetes.io/service-name"))
            .await?
            .items;
        let decisions = match &self.pool {
            Some(pool) => {
                let requests: Vec<Request> = services
                    .iter()
                    .filter(|s| is_ours(s))
                    .map(request)
                    .collect();
                lb_pool::allocate(pool, &requests)
            }
            None => BTreeMap::new(),
        };

        let mut addresses = BTreeSet::new();
        let mut table = Table::new();
        for service in &services {
            let key = key(service);
            let mut frontends = cluster_ips(service);
            addresses.extend(frontends.iter().copied());
            if self.pool.is_some() && is_ours(service) {
                let ips = self
                    .load_balancer_ips(service, &key, &decisions, state)
                    .await;
                addresses.extend(ips.iter().copied());
                frontends.extend(ips);
            }
            for port in service.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
                let Some(protocol) = protocol(port) else {
                    continue;
                };
                let endpoints = endpoints(service, port, &slices);
                let node_port = port
                    .node_port
                    .filter(|_| has_node_ports(service))
                    .map(|p| SocketAddrV4::new(self.node_ip, p as u16));
                let service_ports = frontends
                    .iter()
                    .map(|ip| SocketAddrV4::new(*ip, port.port as u16));
                for frontend in service_ports.chain(node_port) {
                    table.insert((frontend, protocol), endpoints.clone());
                }
            }
        }
        self.set_addresses(&mut state.addresses, &addresses)?;
        state.forwarder.apply(table).await;
        Ok(())
    }

    /// The pool's addresses for a LoadBalancer Service, written to its status.
    async fn load_balancer_ips(
        &self,
        service: &Service,
        key: &str,
        decisions: &BTreeMap<String, Decision>,
        state: &mut State,
    ) -> Vec<Ipv4Addr> {
        let ips = match decisions.get(key) {
            Some(Decision::Assigned(ips)) => ips.clone(),
            Some(Decision::Failed(why)) => {
                if state.failures.insert(key.to_string(), why.clone()).as_ref() != Some(why) {
                    tracing::warn!("Service {key}: no load-balancer address: {why}");
                }
                Vec::new()
            }
            None => Vec::new(),
        };
        if !ips.is_empty() {
            state.failures.remove(key);
        }
        self.write_status(service, &ips).await;
        ips
    }

    /// `status.loadBalancer.ingress` as the allocation says, written only when it differs.
    async fn write_status(&self, service: &Service, ips: &[Ipv4Addr]) {
        let current: Vec<String> = service
            .status
            .iter()
            .flat_map(|s| s.load_balancer.iter())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|i| i.ip.clone())
            .collect();
        let wanted: Vec<String> = ips.iter().map(Ipv4Addr::to_string).collect();
        if current == wanted {
            return;
        }
        let ingress: Vec<_> = wanted
            .iter()
            .map(|ip| json!({"ip": ip, "ipMode": "VIP"}))
            .collect();
        let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
        let api = Api::<Service>::namespaced(
            self.client.clone(),
            service.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = service.metadata.name.as_deref().unwrap_or_default();
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => tracing::info!("Service {}: load-balancer address {wanted:?}", key(service)),
            Err(e) => tracing::warn!("status of Service {}: {e}", key(service)),
        }
    }

    /// Adds and removes /32 addresses on the link so it holds exactly `wanted`.
    fn set_addresses(
        &self,
        have: &mut BTreeSet<Ipv4Addr>,
        wanted: &BTreeSet<Ipv4Addr>,
    ) -> anyhow::Result<()> {
        for ip in have.difference(wanted) {
            let _ = network::ip(&["addr", "del", &format!("{ip}/32"), "dev", &self.link]);
        }
        have.retain(|ip| wanted.contains(ip));
        for ip in wanted.difference(&have.clone()) {
            network::ip(&["addr", "add", &format!("{ip}/32"), "dev", &self.link])?;
            have.insert(*ip);
        }
        Ok(())
    }
}

#[derive(Default)]
struct State {
    addresses: BTreeSet<Ipv4Addr>,
    forwarder: Forwarder,
    /// Last allocation failure per Service, to log each reason once.
    failures: BTreeMap<String, String>,
}

fn key(service: &Service) -> String {
    format!(
        "{}/{}",
        service.metadata.namespace.as_deref().unwrap_or_default(),
        service.metadata.name.as_deref().unwrap_or_default()
    )
}

/// A LoadBalancer Service this node assigns addresses to.
fn is_ours(service: &Service) -> bool {
    service.spec.as_ref().is_some_and(|s| {
        s.type_.as_deref() == Some("LoadBalancer") && s.load_balancer_class.is_none()
    })
}

/// Whether the Service's ports open on the node (NodePort, and LoadBalancer unless it opts
/// out with `allocateLoadBalancerNodePorts: false`, in which case it has no nodePort anyway).
fn has_node_ports(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .is_some_and(|s| matches!(s.type_.as_deref(), Some("NodePort" | "LoadBalancer")))
}

/// The Service's IPv4 ClusterIPs; none for headless (`None`) and ExternalName Services.
fn cluster_ips(service: &Service) -> Vec<Ipv4Addr> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let listed = spec.cluster_ips.iter().flatten();
    let single = spec.cluster_ip.iter();
    let mut ips: Vec<Ipv4Addr> = listed
        .chain(single)
        .filter_map(|ip| ip.parse().ok())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

fn request(service: &Service) -> Request {
    let annotation = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(lb_pool::LOAD_BALANCER_IPS));
    let wanted = match annotation {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => service
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_ip.clone())
            .filter(|ip| !ip.is_empty())
            .into_iter()
            .collect(),
    };
    let current = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref()?.first()?.ip.as_ref()?.parse().ok());
    Request {
        key: key(service),
        wanted,
        current,
    }
}

fn protocol(port: &ServicePort) -> Option<Protocol> {
    match port.protocol.as_deref().unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        _ => None,
    }
}

/// The ready endpoints of a Service port: addresses of the Service's EndpointSlices whose
/// port has the Service port's name (the EndpointSlice controller resolved `targetPort`).
fn endpoints(service: &Service, port: &ServicePort, slices: &[EndpointSlice]) -> Vec<SocketAddr> {
    let (namespace, name) = (
        service.metadata.namespace.as_deref(),
        service.metadata.name.as_deref().unwrap_or_default(),
    );
    let mut out = Vec::new();
    for slice in slices {
        let owner = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"));
        if slice.metadata.namespace.as_deref() != namespace
            || owner.map(String::as_str) != Some(name)
        {
            continue;
        }
        let Some(target) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port.name.as_deref().unwrap_or("")
                && p.protocol.as_deref().unwrap_or("TCP")
                    == port.protocol.as_deref().unwrap_or("TCP")
        }) else {
            continue;
        };
        let Some(target_port) = target.port else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // As kube-proxy: an endpoint counts unless it says it is not ready.
            if endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<std::net::IpAddr>() {
                    out.push(SocketAddr::new(ip, target_port as u16));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        yaml_serde::from_str(yaml).expect("a Service")
    }

    #[test]
    fn cluster_ips_skip_headless_external_name_and_ipv6() {
        let plain = service(
            "spec: {type: ClusterIP, clusterIP: 10.96.3.7, clusterIPs: [10.96.3.7, 'fd00::7']}",
        );
        assert_eq!(cluster_ips(&plain), vec![Ipv4Addr::new(10, 96, 3, 7)]);
        let headless = service("spec: {clusterIP: None, clusterIPs: [None]}");
        assert!(cluster_ips(&headless).is_empty());
        let external = service("spec: {type: ExternalName, externalName: example.com}");
        assert!(cluster_ips(&external).is_empty());
    }

    #[test]
    fn node_ports_open_for_node_port_and_load_balancer_services_only() {
        assert!(has_node_ports(&service("spec: {type: NodePort}")));
        assert!(has_node_ports(&service("spec: {type: LoadBalancer}")));
        assert!(!has_node_ports(&service("spec: {type: ClusterIP}")));
        assert!(!has_node_ports(&service("spec: {}")));
    }
}
