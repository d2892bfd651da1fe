//! The benchmark's config directory: one GatewayClass and Gateway with one HTTP listener, one
//! Service `echo` whose EndpointSlices point at local echo backends, and one file per
//! HTTPRoute. Files are written to a scratch directory first and renamed in, so the watcher
//! never sees a half-written file. The same workload is written in Envoy Gateway's terms when
//! the world's [`Dialect`] is the peer's (see [`super::peer_yaml`]).

use std::path::{Path, PathBuf};

use super::peer_yaml;

/// Whose terms the config directory is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Ferrogate: Service `echo` with EndpointSlices.
    Ferrogate,
    /// Envoy Gateway standalone: its `Backend` kind, its GatewayClass parameters.
    EnvoyGateway {
        /// The Envoy version its host infrastructure is told to run.
        envoy_version: &'static str,
    },
}

/// The bench's GatewayClass.
pub const GATEWAY_CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: ferrogate-bench
spec:
  controllerName: gateway.ferrogate.dev/gatewayclass-controller
";

/// The Service every route sends to (its endpoints are the echo backends' slices).
pub const ECHO_SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: default
spec:
  ports:
    - name: http
      port: 8080
";

/// Hostnames the routes are spread over (as in Envoy Gateway's scale test).
pub const HOSTNAMES: usize = 5;

/// Hostname of route `i`.
pub fn host(i: usize) -> String {
    format!("h{}.example.com", i % HOSTNAMES)
}

/// Path prefix of route `i` (each route gets its own so each can be probed).
pub fn path(i: usize) -> String {
    format!("/r{i}")
}

pub struct World {
    pub config_dir: PathBuf,
    scratch: PathBuf,
    /// Routes `r0 .. r{routes}` exist.
    pub routes: usize,
    pub listener_port: u16,
    pub dialect: Dialect,
    /// The first echo's port (the peer's `Backend` lists every endpoint in one object).
    echo_a_port: u16,
}

impl World {
    pub fn new(dir: &Path, listener_port: u16) -> anyhow::Result<Self> {
        Self::with_dialect(dir, listener_port, Dialect::Ferrogate)
    }

    pub fn with_dialect(dir: &Path, listener_port: u16, dialect: Dialect) -> anyhow::Result<Self> {
        let config_dir = dir.join("config");
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(config_dir.join("routes"))?;
        std::fs::create_dir_all(&scratch)?;
        Ok(Self {
            config_dir,
            scratch,
            routes: 0,
            listener_port,
            dialect,
            echo_a_port: 0,
        })
    }

    fn put(&self, rel: &str, text: &str) -> anyhow::Result<()> {
        let tmp = self.scratch.join(rel.replace('/', "_"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, self.config_dir.join(rel))?;
        Ok(())
    }

    fn delete(&self, rel: &str) -> anyhow::Result<()> {
        std::fs::remove_file(self.config_dir.join(rel))?;
        Ok(())
    }

    /// GatewayClass, Gateway, Service and the first echo's EndpointSlice (for the peer: its
    /// GatewayClass, EnvoyProxy, Gateway and a `Backend` with the first echo).
    pub fn write_base(&mut self, echo_a_port: u16) -> anyhow::Result<()> {
        self.echo_a_port = echo_a_port;
        match self.dialect {
            Dialect::Ferrogate => {
                self.put("gateway.yaml", &self.gateway_yaml(""))?;
                self.put("slice-a.yaml", &slice("echo-a", echo_a_port))
            }
            Dialect::EnvoyGateway { envoy_version } => {
                let gateway =
                    peer_yaml::gateway("envoy-gateway-bench", self.listener_port, envoy_version);
                self.put("gateway.yaml", &gateway)?;
                self.put("backend.yaml", &peer_yaml::backend(&[echo_a_port]))
            }
        }
    }

    /// Runs the bench Gateway on `replicas` Envoy processes: an EnvoyProxy with that count,
    /// named by the Gateway's `infrastructure.parametersRef`.
    pub fn set_replicas(&self, replicas: u32) -> anyhow::Result<()> {
        let proxy = format!(
            "apiVersion: gateway.ferrogate.dev/v1alpha1
kind: EnvoyProxy
metadata:
  name: bench-proxy
  namespace: default
spec:
  provider:
    type: Kubernetes
    kubernetes:
      envoyDeployment:
        replicas: {replicas}
"
        );
        self.put("envoyproxy.yaml", &proxy)?;
        let infrastructure = "  infrastructure:
    parametersRef:
      group: gateway.ferrogate.dev
      kind: EnvoyProxy
      name: bench-proxy
";
        self.put("gateway.yaml", &self.gateway_yaml(infrastructure))
    }

    /// GatewayClass, Gateway (with `infrastructure`, YAML at the spec's indentation) and
    /// Service.
    fn gateway_yaml(&self, infrastructure: &str) -> String {
        format!(
            "{GATEWAY_CLASS}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bench
  namespace: default
spec:
  gatewayClassName: ferrogate-bench
{infrastructure}  listeners:
    - name: http
      protocol: HTTP
      port: {}
      allowedRoutes:
        namespaces:
          from: Same
---
{ECHO_SERVICE}",
            self.listener_port
        )
    }

    /// Another Gateway of the same class with one HTTP listener on `port` and no routes.
    pub fn add_gateway(&self, name: &str, port: u16) -> anyhow::Result<()> {
        let gateway = format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {name}
  namespace: default
spec:
  gatewayClassName: ferrogate-bench
  listeners:
    - name: http
      protocol: HTTP
      port: {port}
"
        );
        self.put(&format!("gateway-{name}.yaml"), &gateway)
    }

    pub fn remove_gateway(&self, name: &str) -> anyhow::Result<()> {
        self.delete(&format!("gateway-{name}.yaml"))
    }

    /// Adds the EndpointSlice of the second backend (for the peer: rewrites the `Backend`
    /// with both endpoints).
    pub fn add_slice_b(&self, port: u16) -> anyhow::Result<()> {
        match self.dialect {
            Dialect::Ferrogate => self.put("slice-b.yaml", &slice("echo-b", port)),
            Dialect::EnvoyGateway { .. } => self.put(
                "backend.yaml",
                &peer_yaml::backend(&[self.echo_a_port, port]),
            ),
        }
    }

    pub fn remove_slice_b(&self) -> anyhow::Result<()> {
        match self.dialect {
            Dialect::Ferrogate => self.delete("slice-b.yaml"),
            Dialect::EnvoyGateway { .. } => {
                self.put("backend.yaml", &peer_yaml::backend(&[self.echo_a_port]))
            }
        }
    }

    /// One route file in this world's dialect.
    fn route_text(&self, name: &str, host: &str, path: &str) -> String {
        match self.dialect {
            Dialect::Ferrogate => route(name, host, path),
            Dialect::EnvoyGateway { .. } => peer_yaml::route(name, host, path),
        }
    }

    /// Writes route `r{i}`.
    pub fn add_route(&self, i: usize) -> anyhow::Result<()> {
        self.put(
            &format!("routes/r{i}.yaml"),
            &self.route_text(&format!("r{i}"), &host(i), &path(i)),
        )
    }

    pub fn remove_route(&self, i: usize) -> anyhow::Result<()> {
        self.delete(&format!("routes/r{i}.yaml"))
    }

    /// A probe route (same shape as the others, its own name and path).
    pub fn add_probe(&self, name: &str, host: &str, path: &str) -> anyhow::Result<()> {
        self.put(
            &format!("routes/{name}.yaml"),
            &self.route_text(name, host, path),
        )
    }

    /// A route Ferrogate's validation lets through but Envoy rejects: a path regex of nested
    /// loops, which RE2 compiles past Envoy's default `re2.max_program_size.error_level`
    /// (100) while the translator's estimate stays under it, so Envoy NACKs the
    /// RouteConfiguration and the quarantine has to find the route. (A plainly oversized
    /// regex is refused by the translator.)
    pub fn add_rejected_route(&self, name: &str, host: &str) -> anyhow::Result<()> {
        let text = route(name, host, &format!("/{name}")).replace(
            &format!("type: PathPrefix\n            value: /{name}"),
            &format!("type: RegularExpression\n            value: \"/{name}((x*)*){{14}}\""),
        );
        anyhow::ensure!(
            text.contains("RegularExpression"),
            "rejected route template did not apply"
        );
        self.put(&format!("routes/{name}.yaml"), &text)
    }

    pub fn remove_probe(&self, name: &str) -> anyhow::Result<()> {
        self.delete(&format!("routes/{name}.yaml"))
    }
}

/// An EndpointSlice of Service `echo` with one ready endpoint, 127.0.0.1:`port`.
pub fn slice(name: &str, port: u16) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}
  namespace: default
  labels:
    kubernetes.io/service-name: echo
addressType: IPv4
ports:
  - name: http
    port: {port}
endpoints:
  - addresses: [\"127.0.0.1\"]
    conditions:
      ready: true
"
    )
}

fn route(name: &str, host: &str, path: &str) -> String {
    route_to("bench", name, host, path)
}

/// An HTTPRoute in the bench's shape attached to Gateway `parent`: one hostname, one
/// path prefix, to `echo:8080`.
pub fn route_to(parent: &str, name: &str, host: &str, path: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: default
spec:
  parentRefs:
    - name: {parent}
  hostnames: [\"{host}\"]
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: {path}
      backendRefs:
        - name: echo
          port: 8080
"
    )
}

/// How much of Ferrogate's request handling a hand-written static config repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticFlavour {
    /// Same request semantics as Ferrogate's HCM: RFC 3986 path normalization before
    /// matching, `x-forwarded-for` from the peer address, WebSocket upgrades forwarded. What
    /// a user replacing Ferrogate by hand would have to write to keep behaviour.
    Equivalent,
    /// Routing only: the least work Envoy can do for these routes (Envoy's defaults).
    Minimal,
}

/// A hand-written static Envoy bootstrap for `routes` routes: one listener, one virtual host
/// per hostname, one segment-prefix route per HTTPRoute (longest path first, then by name,
/// as Gateway API precedence orders them), one static cluster to the same echo backend.
pub fn static_bootstrap(
    routes: usize,
    listener: u16,
    admin: u16,
    echo_port: u16,
    flavour: StaticFlavour,
) -> String {
    let semantics = match flavour {
        StaticFlavour::Equivalent => {
            "          normalize_path: true\n          use_remote_address: true\n          upgrade_configs: [{upgrade_type: websocket}]\n"
        }
        StaticFlavour::Minimal => "",
    };
    let mut vhosts = String::new();
    for h in 0..HOSTNAMES {
        let mut idx: Vec<usize> = (0..routes).filter(|i| i % HOSTNAMES == h).collect();
        idx.sort_by(|a, b| {
            path(*b)
                .len()
                .cmp(&path(*a).len())
                .then_with(|| format!("r{a}").cmp(&format!("r{b}")))
        });
        vhosts.push_str(&format!(
            "            - name: h{h}\n              domains: [\"h{h}.example.com\", \"h{h}.example.com:*\"]\n              routes:\n"
        ));
        for i in idx {
            vhosts.push_str(&format!(
                "              - match: {{path_separated_prefix: \"{}\"}}\n                route: {{cluster: echo}}\n",
                path(i)
            ));
        }
    }
    format!(
        "admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: http
    address: {{socket_address: {{address: 0.0.0.0, port_value: {listener}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http
{semantics}          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
          route_config:
            name: static
            virtual_hosts:
{vhosts}  clusters:
  - name: echo
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: echo
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {echo_port}}}}}}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(world: &World, rel: &str) -> String {
        std::fs::read_to_string(world.config_dir.join(rel)).unwrap()
    }

    #[test]
    fn peer_world_writes_backends_instead_of_endpoint_slices() {
        let dir = tempfile::tempdir().unwrap();
        let dialect = Dialect::EnvoyGateway {
            envoy_version: "1.40.0",
        };
        let mut world = World::with_dialect(dir.path(), 31250, dialect).unwrap();
        world.write_base(9001).unwrap();
        assert!(read(&world, "gateway.yaml").contains(peer_yaml::CONTROLLER));
        assert!(!world.config_dir.join("slice-a.yaml").exists());
        assert_eq!(read(&world, "backend.yaml"), peer_yaml::backend(&[9001]));

        world.add_slice_b(9002).unwrap();
        assert_eq!(
            read(&world, "backend.yaml"),
            peer_yaml::backend(&[9001, 9002])
        );
        world.remove_slice_b().unwrap();
        assert_eq!(read(&world, "backend.yaml"), peer_yaml::backend(&[9001]));

        world.add_route(7).unwrap();
        assert_eq!(
            read(&world, "routes/r7.yaml"),
            peer_yaml::route("r7", "h2.example.com", "/r7")
        );
        // Nothing is left half-written in the watched folders.
        assert_eq!(std::fs::read_dir(&world.config_dir).unwrap().count(), 3);
    }

    #[test]
    fn ferrogate_world_keeps_services_and_endpoint_slices() {
        let dir = tempfile::tempdir().unwrap();
        let mut world = World::new(dir.path(), 31050).unwrap();
        world.write_base(9001).unwrap();
        assert!(
            read(&world, "gateway.yaml").contains("gateway.ferrogate.dev/gatewayclass-controller")
        );
        assert!(read(&world, "slice-a.yaml").contains("port: 9001"));
        world.add_slice_b(9002).unwrap();
        assert!(read(&world, "slice-b.yaml").contains("port: 9002"));
        world.remove_slice_b().unwrap();
        assert!(!world.config_dir.join("slice-b.yaml").exists());
        world.add_route(3).unwrap();
        let route = read(&world, "routes/r3.yaml");
        assert!(
            route.contains("- name: echo\n          port: 8080"),
            "{route}"
        );
        assert!(!route.contains("kind: Backend"), "{route}");
    }
}
