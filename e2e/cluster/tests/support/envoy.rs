//! A real Envoy run from exactly what the controller provisioned for a Gateway: the
//! bootstrap in its ConfigMap and the client certificate in its `<name>-xds` Secret.
//!
//! The only edits stand in for the pod's environment: the xDS Service's name resolves to
//! 127.0.0.1 here (the server certificate is still checked against that name), the Secret's
//! mount path is a temporary directory, and the admin and stats ports are free ports.

use std::process::{Command, Stdio};

use base64::Engine;
use ferrogate_e2e::testing::{Proc, envoy_path, free_port};
use serde_json::Value;

use super::Cluster;

pub struct ProvisionedEnvoy {
    pub process: Proc,
    pub dir: tempfile::TempDir,
}

/// What the controller provisioned for one Gateway's Envoys (read once, so an Envoy can be
/// started from it while the API server is down).
pub struct Provisioned {
    secret: Value,
    config_map: Value,
}

impl Provisioned {
    /// Reads Gateway `namespace/name`'s ConfigMap and xDS Secret (names as the controller
    /// makes them for class `ferrogate`).
    pub fn read(cluster: &Cluster, namespace: &str, gateway: &str) -> Self {
        let object = format!("{gateway}-ferrogate");
        let secret = cluster
            .get("secret", Some(namespace), &format!("{object}-xds"))
            .expect("the Gateway's xDS client Secret");
        let config_map = cluster
            .get("configmap", Some(namespace), &object)
            .expect("the Gateway's bootstrap ConfigMap");
        Self { secret, config_map }
    }

    /// Starts an Envoy from it, dialing the controller's xDS on `xds_port`.
    pub fn start(&self, xds_port: u16) -> ProvisionedEnvoy {
        start_from(&self.secret, &self.config_map, xds_port)
    }
}

/// Reads Gateway `namespace/name`'s provisioned objects and starts an Envoy from them.
pub fn start(cluster: &Cluster, namespace: &str, gateway: &str, xds_port: u16) -> ProvisionedEnvoy {
    Provisioned::read(cluster, namespace, gateway).start(xds_port)
}

fn start_from(secret: &Value, config_map: &Value, xds_port: u16) -> ProvisionedEnvoy {
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in secret["data"].as_object().unwrap() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap();
        std::fs::write(dir.path().join(key), bytes).unwrap();
    }
    let bootstrap = host_bootstrap(config_map, dir.path(), xds_port, free_port(), free_port());
    let path = dir.path().join("bootstrap.json");
    std::fs::write(&path, serde_json::to_vec(&bootstrap).unwrap()).unwrap();
    let log = std::fs::File::create(dir.path().join("envoy.log")).unwrap();
    let process = Proc(
        Command::new(envoy_path())
            .args([
                "-c",
                path.to_str().unwrap(),
                "--disable-hot-restart",
                "-l",
                "warning",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    ProvisionedEnvoy { process, dir }
}

fn host_bootstrap(
    config_map: &Value,
    secret_dir: &std::path::Path,
    xds_port: u16,
    admin_port: u16,
    stats_port: u16,
) -> Value {
    let text = config_map["data"]["bootstrap.json"]
        .as_str()
        .expect("bootstrap in the ConfigMap");
    let text = text.replace("/etc/ferrogate/xds", secret_dir.to_str().unwrap());
    let mut bootstrap: Value = serde_json::from_str(&text).unwrap();
    for cluster in bootstrap["static_resources"]["clusters"]
        .as_array_mut()
        .unwrap()
    {
        if cluster["name"] == "xds_cluster" {
            cluster["type"] = "STATIC".into();
            cluster.as_object_mut().unwrap().remove("dns_lookup_family");
            let address = &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
                ["address"]["socket_address"];
            address["address"] = "127.0.0.1".into();
            address["port_value"] = xds_port.into();
        }
        if cluster["name"] == "admin_local" {
            cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"]["port_value"] = admin_port.into();
        }
    }
    bootstrap["admin"]["address"]["socket_address"]["port_value"] = admin_port.into();
    bootstrap["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] =
        stats_port.into();
    bootstrap
}
