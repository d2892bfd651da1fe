//! Endpoints (EDS): one ClusterLoadAssignment per backend.

use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};
use ferrogate_ir::Backend;

use crate::listener::socket_address;

/// The assignment for a backend: `cluster_name` = backend name, one locality holding every
/// endpoint sorted by (address, port). No endpoints give an empty assignment (Envoy then
/// answers 503).
pub fn load_assignment(b: &Backend) -> ClusterLoadAssignment {
    let mut eps = b.endpoints.clone();
    eps.sort();
    eps.dedup();
    let endpoints = if eps.is_empty() {
        Vec::new()
    } else {
        vec![LocalityLbEndpoints {
            lb_endpoints: eps
                .iter()
                .map(|e| LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket_address(&e.address, e.port)),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }]
    };
    ClusterLoadAssignment {
        cluster_name: b.name.clone(),
        endpoints,
        ..Default::default()
    }
}
