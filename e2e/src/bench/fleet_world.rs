//! The fleet pass's config directory: the bench's GatewayClass and Service `echo` (used by
//! every route, so one EndpointSlice change concerns every Gateway), G Gateways `g<k>`, each with
//! one HTTP listener on the same port and its own loopback address (`spec.addresses`, from
//! the control plane's `--address-pool`), and R HTTPRoutes per Gateway in the benchmark's
//! shape (route `g<k>-r<i>`: hostname `h<i mod 5>.example.com`, path `/r<i>`). Files are
//! written to a scratch directory first and renamed in, as in [`super::world`].

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::world::{ECHO_SERVICE, GATEWAY_CLASS, host, path, route_to, slice};

/// The address pool the control plane is started with.
pub const ADDRESS_POOL: &str = "127.1.0.0/16";

/// The address Gateway `k` asks for: 127.1.a.b, never .0 or .255 in the last octet.
pub fn address(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (k / 250) as u8, (k % 250 + 1) as u8)
}

/// Name of Gateway `k`.
pub fn gateway(k: usize) -> String {
    format!("g{k}")
}

pub struct FleetWorld {
    pub config_dir: PathBuf,
    scratch: PathBuf,
    listener_port: u16,
}

impl FleetWorld {
    pub fn new(dir: &Path, listener_port: u16) -> anyhow::Result<Self> {
        let config_dir = dir.join("config");
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(config_dir.join("gateways"))?;
        std::fs::create_dir_all(config_dir.join("routes"))?;
        std::fs::create_dir_all(&scratch)?;
        Ok(Self {
            config_dir,
            scratch,
            listener_port,
        })
    }

    fn put(&self, rel: &str, text: &str) -> anyhow::Result<()> {
        let tmp = self.scratch.join(rel.replace('/', "_"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, self.config_dir.join(rel))?;
        Ok(())
    }

    /// The class, the Service and its first EndpointSlice, the Gateways and their routes.
    pub fn write(
        &self,
        gateways: usize,
        routes_per_gateway: usize,
        echo_port: u16,
    ) -> anyhow::Result<()> {
        self.put("base.yaml", &format!("{GATEWAY_CLASS}---\n{ECHO_SERVICE}"))?;
        self.put("slice-a.yaml", &slice("echo-a", echo_port))?;
        for k in 0..gateways {
            self.put(
                &format!("gateways/{}.yaml", gateway(k)),
                &gateway_yaml(k, self.listener_port),
            )?;
            for i in 0..routes_per_gateway {
                self.add_route(k, &format!("r{i}"), &host(i), &path(i))?;
            }
        }
        Ok(())
    }

    /// Route `g<k>-<name>` of Gateway `k`.
    pub fn add_route(&self, k: usize, name: &str, host: &str, path: &str) -> anyhow::Result<()> {
        let name = format!("{}-{name}", gateway(k));
        self.put(
            &format!("routes/{name}.yaml"),
            &route_to(&gateway(k), &name, host, path),
        )
    }

    pub fn remove_route(&self, k: usize, name: &str) -> anyhow::Result<()> {
        std::fs::remove_file(
            self.config_dir
                .join(format!("routes/{}-{name}.yaml", gateway(k))),
        )?;
        Ok(())
    }

    /// The second backend's EndpointSlice for `echo` (used by every Gateway).
    pub fn add_slice_b(&self, port: u16) -> anyhow::Result<()> {
        self.put("slice-b.yaml", &slice("echo-b", port))
    }

    pub fn remove_slice_b(&self) -> anyhow::Result<()> {
        std::fs::remove_file(self.config_dir.join("slice-b.yaml"))?;
        Ok(())
    }
}

fn gateway_yaml(k: usize, port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {}
  namespace: default
spec:
  gatewayClassName: ferrogate-bench
  addresses:
    - type: IPAddress
      value: {}
  listeners:
    - name: http
      protocol: HTTP
      port: {port}
      allowedRoutes:
        namespaces:
          from: Same
",
        gateway(k),
        address(k)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_get_distinct_addresses_inside_the_pool() {
        assert_eq!(ADDRESS_POOL, "127.1.0.0/16");
        let all: std::collections::BTreeSet<Ipv4Addr> = (0..1000).map(address).collect();
        assert_eq!(all.len(), 1000);
        assert!(all.iter().all(|a| {
            let [a, b, _, d] = a.octets();
            (a, b) == (127, 1) && d != 0 && d != 255
        }));
    }

    #[test]
    fn a_fleet_is_written_as_gateways_with_their_own_routes() {
        let dir = tempfile::tempdir().unwrap();
        let world = FleetWorld::new(dir.path(), 31405).unwrap();
        world.write(2, 3, 9001).unwrap();
        let read = |rel: &str| std::fs::read_to_string(world.config_dir.join(rel)).unwrap();
        assert!(read("gateways/g1.yaml").contains("value: 127.1.0.2"));
        let route = read("routes/g1-r2.yaml");
        assert!(
            route.contains("name: g1-r2") && route.contains("- name: g1\n"),
            "{route}"
        );
        assert!(
            route.contains("value: /r2") && route.contains("h2.example.com"),
            "{route}"
        );
        assert_eq!(
            std::fs::read_dir(world.config_dir.join("routes"))
                .unwrap()
                .count(),
            6
        );
        world.remove_route(1, "r2").unwrap();
        assert_eq!(
            std::fs::read_dir(world.config_dir.join("routes"))
                .unwrap()
                .count(),
            5
        );
    }
}
