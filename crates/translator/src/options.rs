//! Translation settings that differ between modes. Part of the input: they are data, not
//! environment lookups, so translation stays a pure function.

use std::collections::BTreeMap;

use ferrogate_api::CONTROLLER_NAME;
use ferrogate_ir::GatewayKey;

/// Settings of one translation.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// `GatewayClass.spec.controllerName` we own.
    pub controller_name: String,
    /// Shift listener ports below 1024 by 10000 (in pods, so Envoy needs no privileges).
    /// Standalone mode binds the declared port.
    pub shift_privileged_ports: bool,
    /// Address Envoy binds when a Gateway has none assigned.
    pub default_bind_address: String,
    /// Addresses assigned to Gateways (standalone address pool). A Gateway listed here binds
    /// that address and reports it in `status.addresses`.
    pub assigned_addresses: BTreeMap<GatewayKey, String>,
    /// Gateways whose requested `spec.addresses` cannot be honoured, with why.
    pub unusable_addresses: BTreeMap<GatewayKey, String>,
    /// Kubernetes mode with the load balancer's pools known: the `spec.addresses` IPs of each
    /// Gateway that the controller judged usable. They are the Gateway's addresses from then
    /// on (`status.addresses`), and `Programmed` waits until its Service holds them.
    pub static_addresses: BTreeMap<GatewayKey, Vec<String>>,
    /// Whether `spec.addresses` can be honoured and judged here (a controller told the load
    /// balancer's pools, standalone mode with an address pool): only then does the
    /// GatewayClass claim the `GatewayStaticAddresses` feature.
    pub static_addresses_judged: bool,
    /// Addresses reported for Gateways without an assigned one (e.g. `127.0.0.1` in
    /// standalone mode without a pool). Empty: none reported.
    pub default_status_address: Option<String>,
    /// Kubernetes mode: what the cluster reports about each Gateway's provisioned Envoy
    /// fleet. `Programmed` then waits for an address (`AddressNotAssigned`) and an available
    /// Deployment (`Pending`), and `status.addresses` come from the Service. `None`
    /// (standalone): the data plane is local and programmed as soon as it has config.
    pub provisioned: Option<BTreeMap<GatewayKey, Provisioned>>,
}

/// The observed state of one Gateway's Envoy fleet in a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Load-balancer ingress IPs or host names of its Service, else its cluster IP.
    pub addresses: Vec<String>,
    /// Its Deployment has at least one available replica.
    pub available: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            controller_name: CONTROLLER_NAME.to_string(),
            shift_privileged_ports: true,
            default_bind_address: "0.0.0.0".to_string(),
            assigned_addresses: BTreeMap::new(),
            unusable_addresses: BTreeMap::new(),
            static_addresses: BTreeMap::new(),
            static_addresses_judged: true,
            default_status_address: None,
            provisioned: None,
        }
    }
}

impl Options {
    /// `ferrogate standalone`'s settings: the declared listener ports, `127.0.0.1` reported
    /// for Gateways without an assigned address, and `spec.addresses` judged only when an
    /// address pool is configured.
    pub fn standalone(address_pool: bool) -> Self {
        Self {
            shift_privileged_ports: false,
            default_status_address: Some("127.0.0.1".into()),
            static_addresses_judged: address_pool,
            ..Self::default()
        }
    }
}
