//! The objects the benchmark works on: one Gateway (one Envoy Pod), one backend, N routes,
//! and the probe routes it adds and removes.

use std::net::SocketAddr;

use serde_json::{Value, json};

/// The namespace of everything the benchmark creates.
pub const NAMESPACE: &str = "bench";
/// The Gateway.
pub const GATEWAY: &str = "web";
/// Selects the Gateway's Envoy Pods.
pub const ENVOY_SELECTOR: &str = "gateway.networking.k8s.io/gateway-name=web";
/// Envoy's container port for listener port 80 (ports below 1024 map to +10000).
pub const ENVOY_PORT: u16 = 10080;

/// The hostname of standing route `i`.
pub fn route_host(i: usize) -> String {
    format!("r{i}.bench.example")
}

/// The hostname of probe route `name`.
pub fn probe_host(name: &str) -> String {
    format!("{name}.bench.example")
}

/// The namespace, an EnvoyProxy with one replica (one Envoy Pod to probe), the Gateway, the
/// backend Service `echo` whose EndpointSlice names `echo`, and routes `r0..r{routes-1}`.
pub fn yaml(echo: SocketAddr, routes: usize) -> String {
    let (ip, port) = (echo.ip(), echo.port());
    let mut out = format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {NAMESPACE}}}
---
apiVersion: gateway.ferrogate.dev/v1alpha1
kind: EnvoyProxy
metadata: {{name: one, namespace: {NAMESPACE}}}
spec:
  provider:
    type: Kubernetes
    kubernetes:
      envoyDeployment: {{replicas: 1}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {GATEWAY}, namespace: {NAMESPACE}}}
spec:
  gatewayClassName: ferrogate
  infrastructure:
    parametersRef: {{group: gateway.ferrogate.dev, kind: EnvoyProxy, name: one}}
  listeners:
  - {{name: http, port: 80, protocol: HTTP}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: {NAMESPACE}}}
spec:
  ports: [{{name: http, port: 8080, targetPort: {port}, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-1
  namespace: {NAMESPACE}
  labels: {{kubernetes.io/service-name: echo}}
addressType: IPv4
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints:
- addresses: [{ip}]
  conditions: {{ready: true}}
"#
    );
    for i in 0..routes {
        out.push_str(&format!(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r{i}, namespace: {NAMESPACE}}}\n\
             spec:\n  parentRefs: [{{name: {GATEWAY}}}]\n  hostnames: [{host}]\n  rules:\n  - backendRefs: [{{name: echo, port: 8080}}]\n",
            host = route_host(i)
        ));
    }
    out
}

/// Probe route `name` (hostname [`probe_host`]) as JSON for the API.
pub fn probe_route(name: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "parentRefs": [{"name": GATEWAY}],
            "hostnames": [probe_host(name)],
            "rules": [{"backendRefs": [{"name": "echo", "port": 8080}]}],
        },
    })
}

/// Whether a route's status says the Gateway accepted it.
pub fn accepted(route: &Value) -> bool {
    route["status"]["parents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["parentRef"]["name"] == GATEWAY)
        .flat_map(|p| p["conditions"].as_array().into_iter().flatten())
        .any(|c| c["type"] == "Accepted" && c["status"] == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_holds_every_route_once_and_parses() {
        let text = yaml("10.0.0.1:9000".parse().unwrap(), 3);
        let docs: Vec<Value> = text
            .split("\n---\n")
            .map(|d| yaml_serde::from_str(d).unwrap())
            .collect();
        let routes: Vec<&str> = docs
            .iter()
            .filter(|d| d["kind"] == "HTTPRoute")
            .filter_map(|d| d["spec"]["hostnames"][0].as_str())
            .collect();
        assert_eq!(
            routes,
            ["r0.bench.example", "r1.bench.example", "r2.bench.example"]
        );
        let slice = docs.iter().find(|d| d["kind"] == "EndpointSlice").unwrap();
        assert_eq!(slice["endpoints"][0]["addresses"][0], "10.0.0.1");
    }

    #[test]
    fn accepted_reads_the_gateway_parent_condition() {
        let mut route = probe_route("p");
        assert!(!accepted(&route));
        route["status"] = json!({"parents": [{"parentRef": {"name": "web"},
            "conditions": [{"type": "Accepted", "status": "True"}]}]});
        assert!(accepted(&route));
    }
}
