//! Endpoints (EDS): one ClusterLoadAssignment per backend.

use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint::HostIdentifier,
};
use ferrogate_ir::Backend;

use crate::listener::socket_address;

/// The assignment for a backend: `cluster_name` = backend name, one locality holding every
/// endpoint in the IR's order (sorted by (address, port), each once). No endpoints give an
/// empty assignment (Envoy then answers 503).
pub fn load_assignment(b: &Backend) -> ClusterLoadAssignment {
    let endpoints = if b.endpoints.is_empty() {
        Vec::new()
    } else {
        vec![LocalityLbEndpoints {
            lb_endpoints: b
                .endpoints
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

/// The assignment of a stream cluster ([`crate::cluster::stream_cluster`]): one locality per
/// backend (named after it), with the backend's weight and endpoints. Backends without
/// endpoints are left out (a locality without hosts would only dilute the others' share);
/// without any, the assignment is empty and the listener rejects connections.
pub fn stream_assignment(
    name: &str,
    backends: &[ferrogate_ir::WeightedBackend],
    all: &[Backend],
) -> ClusterLoadAssignment {
    use envoy_types::pb::envoy::config::core::v3::Locality;
    use envoy_types::pb::google::protobuf::UInt32Value;
    let mut endpoints = Vec::new();
    for wb in backends {
        let Some(b) = all.iter().find(|b| b.name == wb.backend) else {
            continue;
        };
        let mut la = load_assignment(b);
        let Some(mut locality) = la.endpoints.pop() else {
            continue;
        };
        locality.locality = Some(Locality {
            sub_zone: wb.backend.clone(),
            ..Default::default()
        });
        locality.load_balancing_weight = Some(UInt32Value {
            value: wb.weight.max(1),
        });
        endpoints.push(locality);
    }
    ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints,
        ..Default::default()
    }
}
