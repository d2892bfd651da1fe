//! One scenario's world: config directory, echo backends, EndpointSlices, the control plane,
//! and the step loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::certs::{CertStore, b64decode};
use super::scenario::{Scenario, object_key, preprocess};
use super::util::{json_patch, random_suffix, split_ref, str_list, substitute};
use super::{CONTROLLER_NAME, GATEWAY_CLASS_NAME, Outcome, RunnerConfig};

/// Step types the runner executes.
pub const IMPLEMENTED_STEPS: &[&str] = &[
    // resource changes
    "apply",
    "apply_manifest",
    "patch",
    "delete",
    "capture",
    "record_generation",
    "generation_changed",
    "sleep",
    "populate_endpoint_slices",
    "generate_ca",
    "generate_certificate",
    // status
    "namespaces_ready",
    "routes_accepted",
    "route_condition",
    "route_parents",
    "route_no_accepted_parents",
    "route_latest_conditions",
    "gateway_condition",
    "gateway_latest_conditions",
    "gateway_address",
    "gateway_listeners",
    "gateway_listener_conditions",
    "gateway_zero_routes",
    "gateway_attached_listener_sets",
    "gateway_status_addresses",
    "gatewayclass_condition",
    "gatewayclass_latest_conditions",
    "listener_set_condition",
    "listener_set_listener_conditions",
    "listener_set_listeners",
    "backend_tls_policy_condition",
    "policy_latest_conditions",
    // traffic
    "http",
    "weighted_distribution",
    "backend_header_consistency",
    "grpc",
    "tcp_echo",
    "tcp_connect",
    "tcp_echo_probe",
    "tcp_samples",
    "tls_connection_rejected",
    "udp_echo",
    "udp_samples",
    "dns_query",
    "mirror_distribution",
    "websocket_echo",
    // rendered infrastructure
    "infrastructure_metadata",
];

/// What the ferrogate binary offers.
#[derive(Clone, Debug, Default)]
pub struct Capabilities {
    /// `standalone --address-pool` exists.
    pub address_pool: bool,
}

impl Capabilities {
    /// Reads `ferrogate standalone --help`.
    pub async fn probe(ferrogate: &Path) -> Self {
        let help = Command::new(ferrogate)
            .args(["standalone", "--help"])
            .output()
            .await;
        let text = help
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        Self {
            address_pool: text.contains("--address-pool"),
        }
    }
}

type Key = (String, String, String);

struct Obj {
    doc: Value,
    generation: i64,
}

/// One running echo process (a "pod").
pub struct Echo {
    /// Deployment namespace.
    pub namespace: String,
    /// Deployment name.
    pub deployment: String,
    /// Pod name.
    pub pod: String,
    /// Ports line of the process (`http`, `h2c`, `https`, `grpc`, `tcp`, `tls`, `udp`, ...).
    pub ports: BTreeMap<String, u16>,
    /// Container port number -> candidate keys of `ports`.
    port_keys: Vec<(i64, Vec<&'static str>)>,
    /// Named container ports.
    named_ports: BTreeMap<String, i64>,
    /// stdout lines after the ports line, with the time each was read (bounded: the oldest
    /// lines are dropped beyond [`ECHO_LOG_CAPACITY`]).
    pub log: EchoLog,
    child: Child,
}

/// Lines an echo process printed, with the time each was read.
pub type EchoLog = Arc<Mutex<VecDeque<(Instant, String)>>>;

/// Lines kept per echo process.
pub const ECHO_LOG_CAPACITY: usize = 200_000;

impl Echo {
    /// stdout lines logged so far.
    #[allow(dead_code)]
    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().map(|(_, s)| s.clone()).collect())
            .unwrap_or_default()
    }

    /// Request targets of the `Echoing back request made to <target> to client (<addr>)`
    /// lines read at or after `since`.
    pub fn echoed_targets_since(&self, since: Instant) -> Vec<String> {
        let Ok(log) = self.log.lock() else {
            return Vec::new();
        };
        log.iter()
            .filter(|(t, _)| *t >= since)
            .filter_map(|(_, line)| echoed_target(line))
            .collect()
    }

    /// The local port serving a container port.
    fn local_port(&self, target: &Value, service_port: i64) -> Option<u16> {
        let container_port = match target {
            Value::Number(n) => n.as_i64()?,
            Value::String(s) => match s.parse::<i64>() {
                Ok(n) => n,
                Err(_) => *self.named_ports.get(s)?,
            },
            _ => service_port,
        };
        let keys = &self.port_keys.iter().find(|(p, _)| *p == container_port)?.1;
        keys.iter().find_map(|k| self.ports.get(*k).copied())
    }
}

/// The world of one scenario.
pub struct World {
    pub(crate) config: RunnerConfig,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    config_dir: PathBuf,
    pub(crate) status_dir: PathBuf,
    objects: BTreeMap<Key, Obj>,
    certs: CertStore,
    pub(crate) echoes: Vec<Echo>,
    ferrogate: Option<Child>,
    pub(crate) captured: BTreeMap<String, String>,
    pub(crate) recorded: BTreeMap<String, i64>,
    pub(crate) pool: bool,
    pub(crate) usable_address: Option<(String, String)>,
    pub(crate) unusable_address: Option<(String, String)>,
}

/// Runs a scenario from start to teardown.
pub async fn run(
    config: &RunnerConfig,
    caps: &Capabilities,
    scenario: &Scenario,
    slot: usize,
    index: usize,
) -> Outcome {
    let mut world = match World::new(config, caps, index) {
        Ok(w) => w,
        Err(e) => return Outcome::Fail(format!("setting up: {e:#}")),
    };
    let result = world.run(scenario, slot, index).await;
    world.teardown().await;
    match result {
        Ok(()) => Outcome::Pass,
        Err(e) => {
            let where_ = if config.keep_temp {
                format!(" [world: {}]", world.dir.display())
            } else {
                String::new()
            };
            Outcome::Fail(format!("{e}{where_}"))
        }
    }
}

impl World {
    fn new(config: &RunnerConfig, caps: &Capabilities, index: usize) -> anyhow::Result<Self> {
        let (dir, temp) = crate::testing::scratch_dir("ferrogate-conformance-", config.keep_temp)?;
        let config_dir = dir.join("config");
        let status_dir = dir.join("status");
        for d in [
            &config_dir,
            &status_dir,
            &dir.join("staging"),
            &dir.join("pods"),
            &dir.join("work"),
        ] {
            std::fs::create_dir_all(d)?;
        }
        let (usable, unusable) = if caps.address_pool {
            let (a, b) = pool_octets(index);
            (
                Some(("IPAddress".to_string(), format!("127.{a}.{b}.200"))),
                Some(("IPAddress".to_string(), "198.51.100.7".to_string())),
            )
        } else {
            (None, None)
        };
        Ok(Self {
            config: config.clone(),
            dir,
            _temp: temp,
            config_dir,
            status_dir,
            objects: BTreeMap::new(),
            certs: CertStore::default(),
            echoes: Vec::new(),
            ferrogate: None,
            captured: BTreeMap::new(),
            recorded: BTreeMap::new(),
            pool: caps.address_pool,
            usable_address: usable,
            unusable_address: unusable,
        })
    }

    fn log(&self, msg: &str) {
        if self.config.verbose {
            eprintln!(
                "  [{}] {msg}",
                self.dir
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            );
        }
    }

    async fn run(&mut self, scenario: &Scenario, slot: usize, index: usize) -> Result<(), String> {
        // 1. base + scenario manifests, our GatewayClass, suite-setup certificates.
        let mut docs = scenario
            .manifest_documents()
            .map_err(|e| format!("{e:#}"))?;
        if let Some(subs) = scenario.doc.get("manifest_substitutions") {
            self.substitute_addresses(&mut docs, subs);
        }
        let class_key = (
            "GatewayClass".to_string(),
            String::new(),
            GATEWAY_CLASS_NAME.to_string(),
        );
        for mut doc in docs {
            preprocess(&mut doc);
            self.put(doc, false).map_err(|e| e.to_string())?;
        }
        if !self.objects.contains_key(&class_key) {
            let class = json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": {"name": GATEWAY_CLASS_NAME},
                "spec": {"controllerName": CONTROLLER_NAME},
            });
            self.put(class, false).map_err(|e| e.to_string())?;
        }
        let setup_steps: Vec<Value> = scenario
            .setup
            .get("steps")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut deferred = Vec::new();
        for step in &setup_steps {
            match step.get("step").and_then(Value::as_str).unwrap_or_default() {
                "generate_ca" | "generate_certificate" => self
                    .resource_step(step)
                    .await
                    .map_err(|e| format!("suite setup: {e}"))?,
                "apply_manifest" => {} // the base manifest is the first of the scenario's manifests
                _ => deferred.push(step.clone()),
            }
        }
        self.sync_backends()
            .await
            .map_err(|e| format!("starting backends: {e:#}"))?;
        self.flush_all()
            .map_err(|e| format!("writing config: {e:#}"))?;
        self.start_ferrogate(slot, index)
            .await
            .map_err(|e| format!("starting ferrogate: {e:#}"))?;

        // 2. suite-setup checks, then the scenario's steps.
        for (i, step) in deferred.iter().enumerate() {
            self.step(step)
                .await
                .map_err(|e| format!("suite setup step {} ({}): {e}", i + 1, step_label(step)))?;
        }
        for (i, step) in scenario.steps().iter().enumerate() {
            self.log(&format!("step {} {}", i + 1, step_label(step)));
            self.step(step)
                .await
                .map_err(|e| format!("step {} ({}): {e}", i + 1, step_label(step)))?;
        }
        Ok(())
    }

    fn substitute_addresses(&self, docs: &mut [Value], subs: &Value) {
        for doc in docs.iter_mut() {
            if doc.get("kind").and_then(Value::as_str) != Some("Gateway") {
                continue;
            }
            let Some(addrs) = doc
                .pointer_mut("/spec/addresses")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for a in addrs.iter_mut() {
                let Some(value) = a.get("value").and_then(Value::as_str) else {
                    continue;
                };
                let Some(var) = subs.get(value).and_then(Value::as_str) else {
                    continue;
                };
                let chosen = match var.trim_start_matches("${").trim_end_matches('}') {
                    "usable_address" => &self.usable_address,
                    "unusable_address" => &self.unusable_address,
                    _ => &None,
                };
                if let Some((t, v)) = chosen {
                    *a = json!({"type": t, "value": v});
                }
            }
        }
    }

    /// Variables known to the world.
    fn lookup(&self, name: &str) -> Option<String> {
        match name {
            "GATEWAY_CLASS_NAME" => Some(GATEWAY_CLASS_NAME.to_string()),
            "CONTROLLER_NAME" => Some(CONTROLLER_NAME.to_string()),
            "usable_address" => self.usable_address.as_ref().map(|a| a.1.clone()),
            "unusable_address" => self.unusable_address.as_ref().map(|a| a.1.clone()),
            _ => {
                if let Some(c) = name.strip_prefix("captured:") {
                    return self.captured.get(c).cloned();
                }
                if let Some(s) = name.strip_prefix("secret:") {
                    let (r, key) = s.rsplit_once(':')?;
                    let (ns, n) = split_ref(r);
                    return self
                        .secret_data(&ns, &n)
                        .get(key)
                        .map(|b| String::from_utf8_lossy(b).to_string());
                }
                None
            }
        }
    }

    /// Decoded data of a Secret (or a ConfigMap when `kind` is ConfigMap).
    pub(crate) fn secret_data(&self, ns: &str, name: &str) -> BTreeMap<String, Vec<u8>> {
        self.object_data("Secret", ns, name)
    }

    fn object_data(&self, kind: &str, ns: &str, name: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let Some(obj) = self
            .objects
            .get(&(kind.to_string(), ns.to_string(), name.to_string()))
        else {
            return out;
        };
        if let Some(data) = obj.doc.get("data").and_then(Value::as_object) {
            for (k, v) in data {
                let s = v.as_str().unwrap_or_default();
                let bytes = if kind == "Secret" {
                    b64decode(s).unwrap_or_default()
                } else {
                    s.as_bytes().to_vec()
                };
                out.insert(k.clone(), bytes);
            }
        }
        for field in ["stringData", "binaryData"] {
            if let Some(data) = obj.doc.get(field).and_then(Value::as_object) {
                for (k, v) in data {
                    let s = v.as_str().unwrap_or_default();
                    let bytes = if field == "binaryData" {
                        b64decode(s).unwrap_or_default()
                    } else {
                        s.as_bytes().to_vec()
                    };
                    out.insert(k.clone(), bytes);
                }
            }
        }
        out
    }

    /// The config directory ferrogate reads.
    pub(crate) fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// An object's manifest.
    pub(crate) fn object(&self, kind: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(kind.to_string(), ns.to_string(), name.to_string()))
            .map(|o| &o.doc)
    }

    /// Current `metadata.generation` of an object.
    pub(crate) fn generation(&self, kind: &str, ns: &str, name: &str) -> Option<i64> {
        self.objects
            .get(&(kind.to_string(), ns.to_string(), name.to_string()))
            .map(|o| o.generation)
    }

    /// Every object of a kind.
    pub(crate) fn objects_of<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects
            .iter()
            .filter(move |(k, _)| k.0 == kind)
            .map(|(k, o)| (k, &o.doc))
    }

    /// Inserts or replaces an object (bumping its generation when more than metadata changed)
    /// and, when `write` is set, writes it to the config directory.
    fn put(&mut self, mut doc: Value, write: bool) -> anyhow::Result<()> {
        let key = object_key(&doc);
        let previous = self.objects.get(&key);
        let generation = match previous {
            None => 1,
            Some(old) => {
                if without_metadata(&old.doc) == without_metadata(&doc) {
                    old.generation
                } else {
                    old.generation + 1
                }
            }
        };
        let created = previous
            .and_then(|o| o.doc.pointer("/metadata/creationTimestamp").cloned())
            .unwrap_or_else(|| {
                rfc3339(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs(),
                )
                .into()
            });
        if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("generation".into(), generation.into());
            meta.insert("creationTimestamp".into(), created);
            if !key.1.is_empty() {
                meta.insert("namespace".into(), key.1.clone().into());
            }
        }
        self.objects.insert(key.clone(), Obj { doc, generation });
        if write {
            self.write_object(&key)?;
        }
        Ok(())
    }

    fn file_for(&self, key: &Key) -> PathBuf {
        let ns = if key.1.is_empty() { "_cluster" } else { &key.1 };
        let mut name = format!("{}--{}--{}", key.0.to_ascii_lowercase(), ns, key.2);
        if name.len() > 180 {
            // Names may be up to 253 characters; keep file names within filesystem limits.
            let hash = name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
            name = format!("{}--{hash:016x}", &name[..120]);
        }
        self.config_dir.join(format!("{name}.yaml"))
    }

    fn write_object(&self, key: &Key) -> anyhow::Result<()> {
        let Some(obj) = self.objects.get(key) else {
            return Ok(());
        };
        if obj.doc.get("kind").and_then(Value::as_str) == Some("Deployment") {
            return Ok(()); // not an input of the control plane
        }
        let text = yaml_serde::to_string(&obj.doc)?;
        let staging = self
            .dir
            .join("staging")
            .join(self.file_for(key).file_name().unwrap_or_default());
        std::fs::write(&staging, text)?;
        std::fs::rename(&staging, self.file_for(key))?;
        Ok(())
    }

    fn remove(&mut self, key: &Key) -> anyhow::Result<()> {
        if self.objects.remove(key).is_some() {
            match std::fs::remove_file(self.file_for(key)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn flush_all(&self) -> anyhow::Result<()> {
        for key in self.objects.keys() {
            self.write_object(key)?;
        }
        Ok(())
    }

    /// Starts echo processes for new Deployments, stops those of removed ones, and rewrites
    /// the EndpointSlices the runner manages.
    async fn sync_backends(&mut self) -> anyhow::Result<()> {
        let deployments: Vec<(Key, Value)> = self
            .objects_of("Deployment")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let wanted: BTreeSet<(String, String)> = deployments
            .iter()
            .map(|(k, _)| (k.1.clone(), k.2.clone()))
            .collect();
        let mut kept = Vec::new();
        for mut e in std::mem::take(&mut self.echoes) {
            if wanted.contains(&(e.namespace.clone(), e.deployment.clone())) {
                kept.push(e);
            } else {
                let _ = e.child.start_kill();
            }
        }
        self.echoes = kept;
        for (key, deployment) in &deployments {
            if self
                .echoes
                .iter()
                .any(|e| e.namespace == key.1 && e.deployment == key.2)
            {
                continue;
            }
            let replicas = deployment
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .max(0);
            let pod_hash = random_suffix(10);
            for _ in 0..replicas {
                let pod = format!("{}-{}-{}", key.2, pod_hash, random_suffix(5));
                let echo = self.start_echo(&key.1, &key.2, &pod, deployment).await?;
                self.echoes.push(echo);
            }
        }
        self.write_endpoint_slices()
    }

    async fn start_echo(
        &self,
        ns: &str,
        deployment: &str,
        pod: &str,
        doc: &Value,
    ) -> anyhow::Result<Echo> {
        let spec = doc
            .pointer("/spec/template/spec")
            .cloned()
            .unwrap_or(Value::Null);
        let container = spec
            .pointer("/containers/0")
            .cloned()
            .unwrap_or(Value::Null);
        let service = self.service_for(ns, doc).unwrap_or_default();
        // Mounted Secrets/ConfigMaps become files under the pod's folder.
        let pod_dir = self.dir.join("pods").join(pod);
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for mount in container
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(path)) = (
                mount.get("name").and_then(Value::as_str),
                mount.get("mountPath").and_then(Value::as_str),
            ) else {
                continue;
            };
            let Some(volume) = spec
                .get("volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
            else {
                continue;
            };
            let (data, items) = if let Some(s) = volume.get("secret") {
                (
                    self.object_data(
                        "Secret",
                        ns,
                        s.get("secretName")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    ),
                    s.get("items"),
                )
            } else if let Some(c) = volume.get("configMap") {
                (
                    self.object_data(
                        "ConfigMap",
                        ns,
                        c.get("name").and_then(Value::as_str).unwrap_or_default(),
                    ),
                    c.get("items"),
                )
            } else {
                continue;
            };
            let dir = pod_dir.join(name);
            std::fs::create_dir_all(&dir)?;
            match items.and_then(Value::as_array) {
                Some(items) => {
                    for item in items {
                        let (Some(k), Some(p)) = (
                            item.get("key").and_then(Value::as_str),
                            item.get("path").and_then(Value::as_str),
                        ) else {
                            continue;
                        };
                        if let Some(bytes) = data.get(k) {
                            std::fs::write(dir.join(p), bytes)?;
                        }
                    }
                }
                None => {
                    for (k, bytes) in &data {
                        std::fs::write(dir.join(k), bytes)?;
                    }
                }
            }
            mounts.push((path.trim_end_matches('/').to_string(), dir));
        }
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for e in container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = e.get("name").and_then(Value::as_str) else {
                continue;
            };
            let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
                v.to_string()
            } else if let Some(field) = e
                .pointer("/valueFrom/fieldRef/fieldPath")
                .and_then(Value::as_str)
            {
                match field {
                    "metadata.name" => pod.to_string(),
                    "metadata.namespace" => ns.to_string(),
                    "status.podIP" => "127.0.0.1".to_string(),
                    _ => String::new(),
                }
            } else {
                String::new()
            };
            let value = mounts
                .iter()
                .find_map(|(m, dir)| {
                    value
                        .strip_prefix(&format!("{m}/"))
                        .map(|rest| dir.join(rest).display().to_string())
                })
                .unwrap_or(value);
            env.insert(name.to_string(), value);
        }
        if deployment == "coredns" {
            // The DNS backend: the echo UDP role answering DNS on the port coredns serves.
            env.insert("UDP_ECHO_SERVER".into(), "1".into());
            env.insert("UDP_PORT".into(), "53".into());
            env.insert("DNS_RESPONDER".into(), "1".into());
        }
        let port_keys = port_keys(&env);
        let named_ports = container
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p.get("name")?.as_str()?.to_string(),
                    p.get("containerPort")?.as_i64()?,
                ))
            })
            .collect();
        let mut cmd = Command::new(&self.config.echo);
        cmd.args([
            "--http-port",
            "0",
            "--h2c-port",
            "0",
            "--pod",
            pod,
            "--namespace",
            ns,
            "--service",
            &service,
        ]);
        for var in [
            "HTTP_PORT",
            "H2C_PORT",
            "HTTPS_PORT",
            "TCP_PORT",
            "TLS_PORT",
            "UDP_PORT",
            "GRPC_PORT",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in &env {
            cmd.env(k, v);
        }
        for var in ["HTTPS_PORT", "TCP_PORT", "TLS_PORT", "UDP_PORT"] {
            cmd.env(var, "0");
        }
        cmd.env("SERVICE_NAME", &service);
        let stderr = std::fs::File::create(self.dir.join("pods").join(format!("{pod}.stderr")))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.config.echo.display()))?;
        let stdout = child.stdout.take().context("echo stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .map_err(|_| anyhow::anyhow!("echo {pod} printed no ports line within 10s"))??
            .ok_or_else(|| anyhow::anyhow!("echo {pod} exited before printing its ports"))?;
        let parsed: Value = serde_json::from_str(&first)
            .with_context(|| format!("echo {pod} ports line {first:?}"))?;
        let ports: BTreeMap<String, u16> = parsed
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), u16::try_from(v.as_u64()?).ok()?)))
            .collect();
        let log: EchoLog = Arc::new(Mutex::new(VecDeque::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let now = Instant::now();
                let Ok(mut l) = sink.lock() else { break };
                if l.len() >= ECHO_LOG_CAPACITY {
                    l.pop_front();
                }
                l.push_back((now, line));
            }
        });
        Ok(Echo {
            namespace: ns.to_string(),
            deployment: deployment.to_string(),
            pod: pod.to_string(),
            ports,
            port_keys,
            named_ports,
            log,
            child,
        })
    }

    /// The first Service whose selector matches the Deployment's pod labels.
    fn service_for(&self, ns: &str, deployment: &Value) -> Option<String> {
        let labels = deployment
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or(Value::Null);
        self.objects_of("Service")
            .find(|(k, s)| k.1 == ns && selector_matches(s, &labels))
            .map(|(k, _)| k.2.clone())
    }

    fn write_endpoint_slices(&mut self) -> anyhow::Result<()> {
        let mut desired: Vec<Value> = Vec::new();
        let services: Vec<(Key, Value)> = self
            .objects_of("Service")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, service) in &services {
            if service
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty())
            {
                continue;
            }
            for echo in &self.echoes {
                if echo.namespace != key.1 {
                    continue;
                }
                let Some(deployment) = self.object("Deployment", &echo.namespace, &echo.deployment)
                else {
                    continue;
                };
                let labels = deployment
                    .pointer("/spec/template/metadata/labels")
                    .cloned()
                    .unwrap_or(Value::Null);
                if !selector_matches(service, &labels) {
                    continue;
                }
                let ports: Vec<Value> = service
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let port = p.get("port").and_then(Value::as_i64)?;
                        let local = echo.local_port(p.get("targetPort").unwrap_or(&Value::Null), port)?;
                        let mut out = json!({"port": local, "protocol": p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")});
                        if let Some(n) = p.get("name").and_then(Value::as_str) {
                            out["name"] = n.into();
                        }
                        if let Some(a) = p.get("appProtocol").and_then(Value::as_str) {
                            out["appProtocol"] = a.into();
                        }
                        Some(out)
                    })
                    .collect();
                if ports.is_empty() {
                    continue;
                }
                desired.push(endpoint_slice(
                    &key.1,
                    &format!("{}-{}", key.2, echo.pod),
                    &key.2,
                    ports,
                    "127.0.0.1",
                ));
            }
        }
        let managed: Vec<Key> = self
            .objects_of("EndpointSlice")
            .filter(|(_, v)| {
                v.pointer("/metadata/labels/endpointslice.kubernetes.io~1managed-by")
                    .and_then(Value::as_str)
                    == Some(MANAGED_BY)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let desired_keys: BTreeSet<Key> = desired.iter().map(object_key).collect();
        for key in managed {
            if !desired_keys.contains(&key) {
                self.remove(&key)?;
            }
        }
        for slice in desired {
            let key = object_key(&slice);
            let same = self
                .objects
                .get(&key)
                .is_some_and(|o| without_metadata(&o.doc) == without_metadata(&slice));
            if !same {
                self.put(slice, true)?;
            }
        }
        Ok(())
    }

    async fn start_ferrogate(&mut self, slot: usize, index: usize) -> anyhow::Result<()> {
        let base = u32::from(self.config.port_base) + (slot as u32) * 200;
        let port = |off: u32| -> anyhow::Result<u16> {
            u16::try_from(base + off).context("port range beyond 65535")
        };
        let envoy =
            std::fs::canonicalize(&self.config.envoy).unwrap_or_else(|_| self.config.envoy.clone());
        let mut cmd = Command::new(&self.config.ferrogate);
        cmd.current_dir(&self.dir)
            .arg("standalone")
            .arg("--config-dir")
            .arg(&self.config_dir)
            .arg("--status-dir")
            .arg(&self.status_dir)
            .arg("--work-dir")
            .arg(self.dir.join("work"))
            .arg("--envoy")
            .arg(&envoy)
            .arg("--xds-addr")
            .arg(format!("127.0.0.1:{}", port(0)?))
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{}", port(1)?))
            .arg("--health-addr")
            .arg(format!("127.0.0.1:{}", port(2)?))
            .arg("--envoy-base-port")
            .arg(port(10)?.to_string());
        if self.pool {
            let (a, b) = pool_octets(index);
            cmd.arg("--address-pool").arg(format!("127.{a}.{b}.0/24"));
        }
        let log = std::fs::File::create(self.dir.join("ferrogate.log"))?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.config.ferrogate.display()))?;
        self.ferrogate = Some(child);
        self.log(&format!("ferrogate started, world {}", self.dir.display()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(Ok(Some(status))) = self.ferrogate.as_mut().map(Child::try_wait) {
            let log = std::fs::read_to_string(self.dir.join("ferrogate.log")).unwrap_or_default();
            anyhow::bail!(
                "ferrogate exited at once ({status}): {}",
                log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
        Ok(())
    }

    async fn teardown(&mut self) {
        if let Some(mut child) = self.ferrogate.take() {
            crate::bench::procs::terminate(&mut child, Duration::from_secs(10)).await;
        }
        for e in &mut self.echoes {
            let _ = e.child.start_kill();
        }
        for e in &mut self.echoes {
            let _ = e.child.wait().await;
        }
    }

    /// Executes one step.
    async fn step(&mut self, raw: &Value) -> Result<(), String> {
        let mut step = raw.clone();
        substitute(&mut step, &|name| self.lookup(name));
        let kind = step
            .get("step")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "apply"
            | "patch"
            | "delete"
            | "capture"
            | "record_generation"
            | "generation_changed"
            | "sleep"
            | "populate_endpoint_slices"
            | "generate_ca"
            | "generate_certificate"
            | "apply_manifest" => self.resource_step(&step).await,
            "http" => super::http::http_step(self, &step).await,
            "weighted_distribution" => super::http::weighted_distribution(self, &step).await,
            "backend_header_consistency" => {
                super::http::backend_header_consistency(self, &step).await
            }
            "grpc" => super::grpc::grpc_step(self, &step).await,
            "mirror_distribution" => super::mirror::mirror_distribution(self, &step).await,
            "websocket_echo" => super::mirror::websocket_echo(self, &step).await,
            "infrastructure_metadata" => super::infra::infrastructure_metadata(self, &step).await,
            "tcp_echo"
            | "tcp_connect"
            | "tcp_echo_probe"
            | "tcp_samples"
            | "tls_connection_rejected"
            | "udp_echo"
            | "udp_samples"
            | "dns_query" => super::l4::l4_step(self, &step).await,
            _ => super::status::status_step(self, &step).await,
        }
    }

    async fn resource_step(&mut self, step: &Value) -> Result<(), String> {
        let kind = step.get("step").and_then(Value::as_str).unwrap_or_default();
        let s = |k: &str| {
            step.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match kind {
            "apply" => {
                for doc in step
                    .get("resources")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let mut doc = doc.clone();
                    preprocess(&mut doc);
                    self.put(doc, true).map_err(|e| e.to_string())?;
                }
                self.sync_backends().await.map_err(|e| format!("{e:#}"))
            }
            "apply_manifest" => {
                let path = self.config.data_dir.join("manifests").join(s("manifest"));
                for mut doc in
                    super::scenario::read_yaml_stream(&path).map_err(|e| format!("{e:#}"))?
                {
                    preprocess(&mut doc);
                    self.put(doc, true).map_err(|e| e.to_string())?;
                }
                self.sync_backends().await.map_err(|e| format!("{e:#}"))
            }
            "patch" => {
                let (ns, name) = split_ref(&s("ref"));
                let key = (s("kind"), ns, name);
                let mut doc = self
                    .objects
                    .get(&key)
                    .map(|o| o.doc.clone())
                    .ok_or_else(|| format!("patch: {key:?} does not exist"))?;
                let ops = step
                    .get("json_patch")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                json_patch(&mut doc, &ops)?;
                self.put(doc, true).map_err(|e| e.to_string())?;
                self.sync_backends().await.map_err(|e| format!("{e:#}"))
            }
            "delete" => {
                let (ns, name) = split_ref(&s("ref"));
                self.remove(&(s("kind"), ns, name))
                    .map_err(|e| e.to_string())?;
                self.sync_backends().await.map_err(|e| format!("{e:#}"))
            }
            "capture" => {
                let from = step.get("from").cloned().unwrap_or(Value::Null);
                let (ns, name) =
                    split_ref(from.get("ref").and_then(Value::as_str).unwrap_or_default());
                let k = from.get("kind").and_then(Value::as_str).unwrap_or_default();
                let path = from.get("path").and_then(Value::as_str).unwrap_or_default();
                let obj = self
                    .object(k, &ns, &name)
                    .ok_or_else(|| format!("capture: {k} {ns}/{name} does not exist"))?;
                let v = obj
                    .pointer(path)
                    .ok_or_else(|| format!("capture: {path} missing"))?;
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                self.captured.insert(s("as"), text);
                Ok(())
            }
            "record_generation" => {
                let (ns, name) = split_ref(&s("ref"));
                let g = self
                    .generation(&s("kind"), &ns, &name)
                    .ok_or("record_generation: object does not exist")?;
                self.recorded.insert(s("as"), g);
                Ok(())
            }
            "generation_changed" => {
                let (ns, name) = split_ref(&s("ref"));
                let g = self
                    .generation(&s("kind"), &ns, &name)
                    .ok_or("generation_changed: object does not exist")?;
                let since = self
                    .recorded
                    .get(&s("since"))
                    .copied()
                    .ok_or("generation_changed: nothing recorded")?;
                if g == since {
                    Err(format!("generation still {g}"))
                } else {
                    Ok(())
                }
            }
            "sleep" => {
                let secs = step.get("seconds").and_then(Value::as_f64).unwrap_or(1.0);
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                Ok(())
            }
            "generate_ca" => {
                let cm = self
                    .certs
                    .generate_ca(&s("configmap"))
                    .map_err(|e| format!("{e:#}"))?;
                self.put(cm, self.ferrogate.is_some())
                    .map_err(|e| e.to_string())
            }
            "generate_certificate" => {
                let hosts = str_list(step.get("hosts"));
                let issuer = step.get("issuer").cloned().unwrap_or(Value::Null);
                let secret = self
                    .certs
                    .generate_certificate(&s("secret"), &hosts, &issuer, &s("usage"))
                    .map_err(|e| format!("{e:#}"))?;
                self.put(secret, self.ferrogate.is_some())
                    .map_err(|e| e.to_string())
            }
            "populate_endpoint_slices" => {
                let (dns, dname) = split_ref(&s("from_pods_of"));
                let pods: Vec<usize> = (0..self.echoes.len())
                    .filter(|&i| {
                        self.echoes[i].namespace == dns && self.echoes[i].deployment == dname
                    })
                    .collect();
                for r in step
                    .get("endpoint_slices")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (ns, name) = split_ref(r.as_str().unwrap_or_default());
                    let key = ("EndpointSlice".to_string(), ns.clone(), name.clone());
                    let base = self
                        .objects
                        .get(&key)
                        .map(|o| o.doc.clone())
                        .ok_or_else(|| format!("EndpointSlice {ns}/{name} does not exist"))?;
                    let ipv4 = base
                        .get("addressType")
                        .and_then(Value::as_str)
                        .unwrap_or("IPv4")
                        == "IPv4";
                    if !ipv4 {
                        continue; // the local backends have IPv4 addresses only: the slice stays empty
                    }
                    for (n, &i) in pods.iter().enumerate() {
                        let echo = &self.echoes[i];
                        let mut slice = base.clone();
                        if n > 0 {
                            slice["metadata"]["name"] = format!("{name}-replica-{n}").into();
                        }
                        // One slice per replica: each local replica listens on its own ports.
                        if let Some(ports) = slice.get_mut("ports").and_then(Value::as_array_mut) {
                            for p in ports.iter_mut() {
                                let container = p.get("port").cloned().unwrap_or(Value::Null);
                                if let Some(local) =
                                    echo.local_port(&container, container.as_i64().unwrap_or(0))
                                {
                                    p["port"] = local.into();
                                }
                            }
                        }
                        slice["endpoints"] = json!([{"addresses": ["127.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false}}]);
                        self.put(slice, true).map_err(|e| e.to_string())?;
                    }
                }
                Ok(())
            }
            other => Err(format!("unknown resource step {other}")),
        }
    }
}

const MANAGED_BY: &str = "ferrogate-conformance";

/// The request target of an echo log line `Echoing back request made to <target> to client (<addr>)`.
pub fn echoed_target(line: &str) -> Option<String> {
    let rest = line.split_once("Echoing back request made to ")?.1;
    let (target, _) = rest.rsplit_once(" to client (")?;
    Some(target.to_string())
}

fn endpoint_slice(ns: &str, name: &str, service: &str, ports: Vec<Value>, address: &str) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": name, "namespace": ns,
            "labels": {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": MANAGED_BY},
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": [{"addresses": [address], "conditions": {"ready": true, "serving": true, "terminating": false}}],
    })
}

fn selector_matches(service: &Value, labels: &Value) -> bool {
    let Some(selector) = service.pointer("/spec/selector").and_then(Value::as_object) else {
        return false;
    };
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn without_metadata(doc: &Value) -> Value {
    let mut d = doc.clone();
    if let Some(m) = d.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    d
}

/// Container port number -> ports-line keys, by the echo role the environment selects.
fn port_keys(env: &BTreeMap<String, String>) -> Vec<(i64, Vec<&'static str>)> {
    let set = |k: &str| env.get(k).is_some_and(|v| !v.is_empty());
    let num = |k: &str, d: i64| env.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    if set("GRPC_ECHO_SERVER") {
        vec![
            (num("HTTP_PORT", 3000), vec!["grpc", "http"]),
            (num("HTTPS_PORT", 8443), vec!["grpcs", "https", "tls"]),
        ]
    } else if set("TCP_ECHO_SERVER") {
        vec![
            (num("TCP_PORT", 3000), vec!["tcp"]),
            (num("TLS_PORT", 8443), vec!["tls"]),
        ]
    } else if set("UDP_ECHO_SERVER") {
        vec![(num("UDP_PORT", 8080), vec!["udp"])]
    } else {
        vec![
            (num("HTTP_PORT", 3000), vec!["http"]),
            (num("H2C_PORT", 3001), vec!["h2c"]),
            (num("HTTPS_PORT", 8443), vec!["https"]),
        ]
    }
}

/// Second and third octet of a scenario's `/24` loopback pool.
fn pool_octets(index: usize) -> (usize, usize) {
    (100 + (index / 250) % 100, index % 250)
}

fn step_label(step: &Value) -> String {
    let kind = step.get("step").and_then(Value::as_str).unwrap_or("?");
    match step.get("name").and_then(Value::as_str) {
        Some(n) => format!("{kind} \"{n}\""),
        None => kind.to_string(),
    }
}

/// RFC 3339 UTC timestamp (seconds) of a Unix time.
pub fn rfc3339(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
