//! Kubernetes mode: `Programmed` waits for the Gateway's Service address and an available
//! Envoy replica, and `status.addresses` come from the Service.

use std::collections::BTreeMap;

use ferrogate_ir::GatewayKey;
use ferrogate_status::GatewayStatus;
use ferrogate_store::{Snapshot, load_documents};
use ferrogate_translator::{Options, Provisioned, translate};

const INPUT: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ferrogate}
spec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: apps, generation: 3}
spec:
  gatewayClassName: ferrogate
  listeners: [{name: http, port: 80, protocol: HTTP}]
";

fn gateway_status(provisioned: Option<Provisioned>) -> GatewayStatus {
    let (objects, errors) = load_documents("input", INPUT);
    assert!(errors.is_empty(), "{errors:?}");
    let snapshot: Snapshot = objects.into_iter().collect();
    let key = GatewayKey::new("apps", "web");
    let options = Options {
        provisioned: Some(
            provisioned
                .map(|p| BTreeMap::from([(key, p)]))
                .unwrap_or_default(),
        ),
        ..Options::default()
    };
    let translation = translate(&snapshot, &options);
    assert_eq!(
        translation.infra.len(),
        1,
        "the fleet is provisioned whatever its state"
    );
    translation.statuses.gateways.into_iter().next().unwrap()
}

fn programmed(status: &GatewayStatus) -> (String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Programmed")
        .unwrap();
    (format!("{:?}", c.status), c.reason.clone())
}

#[test]
fn waits_for_an_address_then_for_an_available_replica() {
    let none = gateway_status(None);
    assert_eq!(
        programmed(&none),
        ("False".into(), "AddressNotAssigned".into())
    );
    assert!(none.addresses.is_empty());

    let pending = gateway_status(Some(Provisioned {
        addresses: vec!["192.168.50.150".into()],
        available: false,
    }));
    assert_eq!(programmed(&pending), ("False".into(), "Pending".into()));
    assert_eq!(pending.addresses[0].value, "192.168.50.150");

    let ready = gateway_status(Some(Provisioned {
        addresses: vec!["192.168.50.150".into(), "lb.example.net".into()],
        available: true,
    }));
    assert_eq!(programmed(&ready), ("True".into(), "Programmed".into()));
    let addresses: Vec<_> = ready
        .addresses
        .iter()
        .map(|a| (a.type_.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        addresses,
        [
            ("IPAddress", "192.168.50.150"),
            ("Hostname", "lb.example.net")
        ]
    );
}
