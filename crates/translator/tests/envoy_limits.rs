//! Routes carrying what Envoy would NACK (a CR/LF in a redirect hostname, weights over
//! Envoy's total, a regular expression over RE2's program-size limit) are refused with a
//! status naming the problem, and a valid route next to them on the same listener is
//! served: one tenant's mistake must not freeze the Gateway's RouteConfiguration.

use ferrogate_ir::ListenerKind;
use ferrogate_status::ConditionStatus;
use ferrogate_store::{Snapshot, load_documents};
use ferrogate_translator::{Options, translate};

const WORLD: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ferrogate}
spec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: apps}
spec:
  gatewayClassName: ferrogate
  listeners: [{name: http, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: apps}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: crlf, namespace: apps}
spec:
  parentRefs: [{name: web}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /crlf}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: \"evil.example\\r\\nx-injected: 1\"}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: weights, namespace: apps}
spec:
  parentRefs: [{name: web}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /weights}}]
    backendRefs:
    - {name: echo, port: 8080, weight: 2147483647}
    - {name: echo, port: 8080, weight: 2147483647}
    - {name: echo, port: 8080, weight: 2147483647}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: regex, namespace: apps}
spec:
  parentRefs: [{name: web}]
  rules:
  - matches: [{path: {type: RegularExpression, value: \"/r/[a-z]{200}\"}}]
    backendRefs: [{name: echo, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: fine, namespace: apps}
spec:
  parentRefs: [{name: web}]
  rules:
  - matches: [{path: {type: RegularExpression, value: \"/v[0-9]+/users/[^/]+\"}}]
    backendRefs: [{name: echo, port: 8080}]
";

#[test]
fn routes_envoy_would_reject_are_refused_and_a_valid_neighbour_is_served() {
    let (objects, errors) = load_documents("world.yaml", WORLD);
    assert!(errors.is_empty(), "{errors:?}");
    let snapshot: Snapshot = objects.into_iter().collect();
    let translation = translate(&snapshot, &Options::default());

    let accepted = |name: &str| {
        let route = translation
            .statuses
            .routes
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no status for {name}"));
        route.parents[0]
            .conditions
            .iter()
            .find(|c| c.type_ == "Accepted")
            .unwrap()
            .clone()
    };
    for (name, says) in [
        ("crlf", "contains a NUL, CR or LF"),
        ("weights", "outside 0..=1000000"),
        (
            "regex",
            "RE2 program of about 207 instructions; Envoy refuses more than 100",
        ),
    ] {
        let c = accepted(name);
        assert_eq!(
            (c.status, &*c.reason),
            (ConditionStatus::False, "UnsupportedValue"),
            "{name}: {c:?}"
        );
        assert!(c.message.contains(says), "{name}: {}", c.message);
    }
    assert_eq!(accepted("fine").status, ConditionStatus::True);

    // Only the valid route reaches the Gateway's route table.
    let ir = translation
        .gateways
        .values()
        .next()
        .expect("the Gateway is translated");
    let ListenerKind::Http(http) = &ir.listeners[0].kind else {
        panic!("an HTTP listener")
    };
    let routes: Vec<&str> = http
        .virtual_hosts
        .iter()
        .flat_map(|v| v.routes.iter())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(routes[0].contains("fine"), "{routes:?}");
}
