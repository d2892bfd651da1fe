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
    (format!("{:?}", c.status), c.reason.to_string())
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

/// A fleet-only change (a Deployment became available, a Service got or lost its address)
/// refreshed onto the last statuses gives exactly what a full translation gives, over
/// generated worlds (Gateways rejected, with unusable addresses, of other classes included)
/// and every combination of fleet states: the runtime relies on it to skip translating routes.
#[test]
fn a_fleet_refresh_equals_a_full_translation() {
    use ferrogate_testkit::worlds::{self, Rng};
    let fleets = [
        None,
        Some(Provisioned::default()),
        Some(Provisioned {
            addresses: vec!["192.0.2.1".into()],
            available: false,
        }),
        Some(Provisioned {
            addresses: vec!["192.0.2.1".into(), "lb.example.com".into()],
            available: true,
        }),
    ];
    let mut compared = 0;
    for seed in 0..150u64 {
        let (objects, _) = load_documents("generated", &worlds::world(seed, false));
        let snapshot: Snapshot = objects.into_iter().collect();
        let keys: Vec<GatewayKey> = snapshot
            .gateways
            .iter()
            .map(|(k, _)| GatewayKey::new(k.namespace.clone(), k.name.clone()))
            .collect();
        let mut rng = Rng::new(seed);
        let mut pick = |unusable: bool| {
            let mut options = Options {
                provisioned: Some(BTreeMap::new()),
                ..Options::default()
            };
            for key in &keys {
                if let Some(fleet) = fleets[rng.below(fleets.len() as u64) as usize].clone() {
                    options
                        .provisioned
                        .as_mut()
                        .unwrap()
                        .insert(key.clone(), fleet);
                }
                if unusable && rng.chance(30) {
                    options
                        .unusable_addresses
                        .insert(key.clone(), "192.0.2.77 is outside the pools".into());
                } else if unusable && rng.chance(40) {
                    options
                        .static_addresses
                        .insert(key.clone(), vec!["192.0.2.1".into()]);
                }
            }
            options
        };
        let before = pick(true);
        let mut after = pick(false);
        after.unusable_addresses = before.unusable_addresses.clone();
        after.static_addresses = before.static_addresses.clone();
        let mut refreshed = translate(&snapshot, &before).statuses;
        ferrogate_translator::refresh_fleet_status(&mut refreshed, &after);
        let full = translate(&snapshot, &after).statuses;
        assert_eq!(refreshed, full, "seed {seed}");
        compared += full.gateways.len();
    }
    assert!(compared > 100, "only {compared} Gateway statuses compared");
}

/// `GatewayStaticAddresses` is claimed only where requested addresses are judged.
#[test]
fn static_addresses_are_claimed_only_where_they_are_judged() {
    let (objects, _) = load_documents("input", INPUT);
    let snapshot: Snapshot = objects.into_iter().collect();
    let claims = |judged| {
        let options = Options {
            static_addresses_judged: judged,
            ..Options::default()
        };
        translate(&snapshot, &options).statuses.gateway_classes[0]
            .supported_features
            .iter()
            .any(|f| f.name == "GatewayStaticAddresses")
    };
    assert!(claims(true));
    assert!(!claims(false));
}

/// A Gateway that requests an address while its EnvoyProxy makes its Service a ClusterIP one
/// can never get it (only a load balancer assigns requested addresses): `AddressNotUsable`
/// says so at once, instead of `Pending` forever, and `status.addresses` holds only what the
/// Service has, after a fleet-only refresh too.
#[test]
fn a_requested_address_on_a_cluster_ip_service_is_not_usable() {
    let input = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ferrogate}
spec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}
---
apiVersion: gateway.ferrogate.dev/v1alpha1
kind: EnvoyProxy
metadata: {name: internal, namespace: apps}
spec:
  provider:
    type: Kubernetes
    kubernetes:
      envoyService: {type: ClusterIP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: apps, generation: 3}
spec:
  gatewayClassName: ferrogate
  infrastructure:
    parametersRef: {group: gateway.ferrogate.dev, kind: EnvoyProxy, name: internal}
  addresses: [{type: IPAddress, value: 10.245.0.9}]
  listeners: [{name: http, port: 80, protocol: HTTP}]
";
    let (objects, errors) = load_documents("input", input);
    assert!(errors.is_empty(), "{errors:?}");
    let snapshot: Snapshot = objects.into_iter().collect();
    let key = GatewayKey::new("apps", "web");
    let fleet = |available| {
        Some(BTreeMap::from([(
            key.clone(),
            Provisioned {
                addresses: vec!["10.96.0.20".into()],
                available,
            },
        )]))
    };
    let mut options = Options {
        provisioned: fleet(false),
        // With pools, the controller judged the address usable from the pools alone.
        static_addresses: BTreeMap::from([(key.clone(), vec!["10.245.0.9".into()])]),
        ..Options::default()
    };
    let mut statuses = translate(&snapshot, &options).statuses;
    let check = |status: &GatewayStatus| {
        assert_eq!(
            programmed(status),
            ("False".into(), "AddressNotUsable".into())
        );
        let message = &status
            .conditions
            .iter()
            .find(|c| c.type_ == "Programmed")
            .unwrap()
            .message;
        assert!(
            message.contains("10.245.0.9") && message.contains("ClusterIP"),
            "{message}"
        );
        let addresses: Vec<_> = status.addresses.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(addresses, ["10.96.0.20"]);
    };
    check(&statuses.gateways[0]);
    options.provisioned = fleet(true);
    ferrogate_translator::refresh_fleet_status(&mut statuses, &options);
    check(&statuses.gateways[0]);
    assert_eq!(statuses, translate(&snapshot, &options).statuses);

    // The same Gateway on a LoadBalancer Service waits for the load balancer, as before.
    let (objects, _) = load_documents("input", &input.replace("ClusterIP", "LoadBalancer"));
    let snapshot: Snapshot = objects.into_iter().collect();
    let statuses = translate(&snapshot, &options).statuses;
    assert_eq!(
        programmed(&statuses.gateways[0]),
        ("False".into(), "Pending".into())
    );
}
