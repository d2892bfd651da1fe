//! The benchmark workload in Envoy Gateway's terms (issue 16), and the peer's own
//! configuration. Pure text rendering, so it is unit-tested.
//!
//! Differences from Ferrogate's world, all forced by the peer's standalone mode:
//! - the GatewayClass names the peer's controller and an `EnvoyProxy` of the peer's group that
//!   selects its host infrastructure and pins the Envoy version its embedded func-e runs (the
//!   harness pre-installs our Envoy binary under that version, so nothing is downloaded);
//! - its file provider reads no Service or EndpointSlice, so backends are its `Backend` kind
//!   (static IP endpoints) and routes reference that kind;
//! - the peer's Envoy access log (stdout, one JSON line per request) is switched off, so that
//!   load does not turn into log I/O that Ferrogate's Envoy does not do.

use std::path::Path;

/// The peer's GatewayClass controller name.
pub const CONTROLLER: &str = "gateway.envoyproxy.io/gatewayclass-controller";
/// API group of the peer's own kinds (`EnvoyProxy`, `Backend`, `EnvoyGateway`).
pub const GROUP: &str = "gateway.envoyproxy.io";

/// Folders of the peer's host infrastructure (func-e's XDG-like homes), all in the scratch
/// directory of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostHomes {
    pub config: String,
    pub data: String,
    pub state: String,
    pub runtime: String,
}

impl HostHomes {
    /// The four homes under `root`.
    pub fn under(root: &Path) -> Self {
        let p = |name: &str| root.join(name).to_string_lossy().into_owned();
        Self {
            config: p("config"),
            data: p("data"),
            state: p("state"),
            runtime: p("run"),
        }
    }
}

/// The `EnvoyGateway` configuration of a standalone run: file resource provider over
/// `paths`, host infrastructure in `homes`, `Backend` enabled, its admin server on
/// 127.0.0.1:`admin_port`, its Prometheus endpoint off (a fixed port other runs may hold;
/// the harness reads `/proc`, not the peer's metrics), logs at `warn` (at `info` it prints
/// every status it computes, one YAML document per object).
pub fn envoy_gateway_config(paths: &[String], homes: &HostHomes, admin_port: u16) -> String {
    let paths = paths
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "apiVersion: {GROUP}/v1alpha1
kind: EnvoyGateway
gateway:
  controllerName: {CONTROLLER}
provider:
  type: Custom
  custom:
    resource:
      type: File
      file:
        paths: [{paths}]
    infrastructure:
      type: Host
      host:
        configHome: \"{}\"
        dataHome: \"{}\"
        stateHome: \"{}\"
        runtimeDir: \"{}\"
logging:
  level:
    default: warn
admin:
  address:
    host: 127.0.0.1
    port: {admin_port}
telemetry:
  metrics:
    prometheus:
      disable: true
extensionApis:
  enableBackend: true
",
        homes.config, homes.data, homes.state, homes.runtime
    )
}

/// GatewayClass (with its `EnvoyProxy`) and the Gateway `bench` with one HTTP listener on
/// `listener_port`; the same names and listener as Ferrogate's world.
pub fn gateway(class: &str, listener_port: u16, envoy_version: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: {class}
spec:
  controllerName: {CONTROLLER}
  parametersRef:
    group: {GROUP}
    kind: EnvoyProxy
    name: bench-host
    namespace: default
---
apiVersion: {GROUP}/v1alpha1
kind: EnvoyProxy
metadata:
  name: bench-host
  namespace: default
spec:
  provider:
    type: Host
    host:
      envoyVersion: \"{envoy_version}\"
  telemetry:
    accessLog:
      disable: true
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bench
  namespace: default
spec:
  gatewayClassName: {class}
  listeners:
    - name: http
      protocol: HTTP
      port: {listener_port}
      allowedRoutes:
        namespaces:
          from: Same
"
    )
}

/// The `Backend` named `echo` with one static endpoint per port on 127.0.0.1 (the peer's
/// stand-in for Service `echo` and its EndpointSlices).
pub fn backend(ports: &[u16]) -> String {
    let endpoints: String = ports
        .iter()
        .map(|p| format!("    - ip:\n        address: 127.0.0.1\n        port: {p}\n"))
        .collect();
    format!(
        "apiVersion: {GROUP}/v1alpha1
kind: Backend
metadata:
  name: echo
  namespace: default
spec:
  endpoints:
{endpoints}"
    )
}

/// One HTTPRoute of the workload: the same shape as Ferrogate's, with the backendRef naming
/// the `Backend` kind.
pub fn route(name: &str, host: &str, path: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: default
spec:
  parentRefs:
    - name: bench
  hostnames: [\"{host}\"]
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: {path}
      backendRefs:
        - group: {GROUP}
          kind: Backend
          name: echo
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<serde_json::Value> {
        text.split("\n---\n")
            .map(|d| yaml_serde::from_str(d).expect("valid YAML"))
            .collect()
    }

    #[test]
    fn config_selects_file_provider_host_infra_and_backend_api() {
        let homes = HostHomes::under(Path::new("/scratch/eg"));
        let text = envoy_gateway_config(
            &["/scratch/config".into(), "/scratch/config/routes".into()],
            &homes,
            31090,
        );
        let v = &docs(&text)[0];
        assert_eq!(v["kind"], "EnvoyGateway");
        let custom = &v["provider"]["custom"];
        assert_eq!(v["provider"]["type"], "Custom");
        assert_eq!(custom["resource"]["type"], "File");
        assert_eq!(
            custom["resource"]["file"]["paths"],
            serde_json::json!(["/scratch/config", "/scratch/config/routes"])
        );
        assert_eq!(custom["infrastructure"]["type"], "Host");
        let host = &custom["infrastructure"]["host"];
        assert_eq!(host["configHome"], "/scratch/eg/config");
        assert_eq!(host["dataHome"], "/scratch/eg/data");
        assert_eq!(host["stateHome"], "/scratch/eg/state");
        assert_eq!(host["runtimeDir"], "/scratch/eg/run");
        assert_eq!(v["extensionApis"]["enableBackend"], true);
        assert_eq!(v["admin"]["address"]["port"], 31090);
        assert_eq!(v["telemetry"]["metrics"]["prometheus"]["disable"], true);
    }

    #[test]
    fn gateway_class_points_at_a_host_envoy_proxy_with_the_pinned_version() {
        let d = docs(&gateway("peer-bench", 31250, "1.40.0"));
        assert_eq!(d.len(), 3);
        let (class, proxy, gw) = (&d[0], &d[1], &d[2]);
        assert_eq!(class["spec"]["controllerName"], CONTROLLER);
        let pref = &class["spec"]["parametersRef"];
        assert_eq!(pref["group"], GROUP);
        assert_eq!(pref["kind"], "EnvoyProxy");
        assert_eq!(pref["name"], proxy["metadata"]["name"]);
        assert_eq!(pref["namespace"], proxy["metadata"]["namespace"]);
        assert_eq!(proxy["spec"]["provider"]["type"], "Host");
        assert_eq!(proxy["spec"]["provider"]["host"]["envoyVersion"], "1.40.0");
        assert_eq!(proxy["spec"]["telemetry"]["accessLog"]["disable"], true);
        assert_eq!(gw["spec"]["gatewayClassName"], "peer-bench");
        assert_eq!(gw["metadata"]["name"], "bench");
        assert_eq!(gw["spec"]["listeners"][0]["port"], 31250);
    }

    #[test]
    fn backend_lists_one_loopback_endpoint_per_port() {
        let v = &docs(&backend(&[9001, 9002]))[0];
        assert_eq!(v["kind"], "Backend");
        assert_eq!(v["metadata"]["name"], "echo");
        let eps = v["spec"]["endpoints"].as_array().expect("endpoints");
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0]["ip"]["address"], "127.0.0.1");
        assert_eq!(eps[0]["ip"]["port"], 9001);
        assert_eq!(eps[1]["ip"]["port"], 9002);
    }

    #[test]
    fn route_has_the_workload_shape_and_references_the_backend_kind() {
        let v = &docs(&route("r7", "h2.example.com", "/r7"))[0];
        assert_eq!(v["metadata"]["name"], "r7");
        assert_eq!(v["spec"]["parentRefs"][0]["name"], "bench");
        assert_eq!(v["spec"]["hostnames"][0], "h2.example.com");
        let rule = &v["spec"]["rules"][0];
        assert_eq!(rule["matches"][0]["path"]["type"], "PathPrefix");
        assert_eq!(rule["matches"][0]["path"]["value"], "/r7");
        let backend_ref = &rule["backendRefs"][0];
        assert_eq!(backend_ref["group"], GROUP);
        assert_eq!(backend_ref["kind"], "Backend");
        assert_eq!(backend_ref["name"], "echo");
        assert!(backend_ref.get("port").is_none());
    }
}
