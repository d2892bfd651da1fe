//! `ferrogate-node`: the kubelet's part for this machine against the local control plane,
//! with real processes, so Pods the controller provisions actually run and serve traffic.
//!
//! - registers a Ready Node and keeps its Lease ([`registration`]);
//! - binds Pending Pods that name no node to itself, since the local cluster has no
//!   kube-scheduler ([`kubelet`]);
//! - runs each Pod bound to it in its own network namespace on a bridge with a private /24
//!   ([`network`]), its containers as local processes in their own mount namespaces with
//!   volumes, env and a hosts file ([`pod`], [`container`], [`volumes`], [`env`]), the images
//!   it knows as local binaries ([`images`]);
//! - probes readiness from the host ([`probe`]) and reports Pod status through the API;
//! - writes each container's output to a file of timestamped CRI records ([`Node::log`],
//!   [`crate::cri_log`]) and serves it the way the kubelet does, so `kubectl logs` works
//!   through the API server, `sinceTime` and `timestamps` included ([`logs`], [`log_query`]);
//! - serves Services as kube-proxy would: ClusterIPs on the bridge and NodePorts on the
//!   node's address, traffic forwarded in userspace to ready endpoints; when given an address
//!   pool, LoadBalancer Services as MetalLB would, with addresses from the pool in their
//!   status and on the bridge ([`services`], [`lb_pool`], [`forward`]).
//!
//! Every link and namespace carries the node's process id; a node sweeps those of dead nodes
//! when it starts, and removes its own when dropped. Processes die with the node
//! (parent-death signal).

mod clock;
mod container;
mod env;
mod fields;
mod forward;
pub mod images;
mod kubelet;
mod kubelet_api;
pub mod lb_pool;
mod log_query;
mod logs;
pub mod network;
mod pod;
mod port_forward;
mod probe;
mod registration;
mod services;
mod volumes;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;

pub use images::Images;
pub use lb_pool::Pool;

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The Node's name.
    pub name: String,
    /// Host names that resolve to the node's host address in every Pod's hosts file (the
    /// local cluster has no DNS; e.g. the xDS Service `ferrogate.ferrogate-system.svc`, served
    /// by a controller listening on [`Node::host_ip`]).
    pub host_aliases: Vec<String>,
    /// What runs in place of images.
    pub images: Images,
    /// Where LoadBalancer Services get addresses from; `None`: the node leaves them pending
    /// (a test or another tool plays MetalLB).
    pub load_balancer_pool: Option<PoolSpec>,
}

/// The addresses LoadBalancer Services get.
#[derive(Clone, Debug)]
pub enum PoolSpec {
    /// 10.245.X.0/24 where 10.244.X.0/24 is the node's Pod subnet: private, and distinct for
    /// every node alive on this host (the subnet is), so nodes of concurrent tests never hand
    /// out the same address.
    NodeSubnet,
    /// A pool in MetalLB's notation (`10.245.3.0/24` or `10.245.3.10-10.245.3.20`).
    Range(String),
}

impl PoolSpec {
    fn pool(&self, subnet: u8) -> anyhow::Result<lb_pool::Pool> {
        match self {
            Self::NodeSubnet => lb_pool::Pool::parse(&format!("10.245.{subnet}.0/24")),
            Self::Range(text) => lb_pool::Pool::parse(text),
        }
    }
}

impl NodeOptions {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            host_aliases: Vec::new(),
            images: Images::from_env(),
            load_balancer_pool: None,
        }
    }
}

/// A running node. Dropping it stops its Pods' processes and removes its bridge, namespaces
/// and files (the Node object stays, as a stopped kubelet leaves it).
pub struct Node {
    name: String,
    bridge: Arc<network::Bridge>,
    pods: Arc<Mutex<kubelet::Pods>>,
    task: tokio::task::JoinHandle<()>,
    logs_task: tokio::task::JoinHandle<()>,
    services_task: tokio::task::JoinHandle<()>,
    pool: Option<lb_pool::Pool>,
    dir: tempfile::TempDir,
}

impl Node {
    /// Sweeps leftovers of dead nodes, creates the bridge, registers the Node and starts the
    /// loop on the current Tokio runtime (a multi-threaded one: stopping Pods blocks).
    pub async fn start(client: kube::Client, options: NodeOptions) -> anyhow::Result<Self> {
        let swept = network::sweep_leftovers()?;
        if !swept.is_empty() {
            tracing::info!("removed leftovers of dead nodes: {}", swept.join(", "));
        }
        let bridge = Arc::new(network::Bridge::create()?);
        let base = state_base();
        sweep_dirs(&base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("ferrogate-node-{}-", std::process::id()))
            .tempdir_in(&base)?;
        let pods = Arc::new(Mutex::new(kubelet::Pods::default()));
        let (logs_port, logs_task) =
            kubelet_api::serve(bridge.host_ip().into(), pods.clone()).await?;
        registration::register(
            &client,
            &options.name,
            &bridge.host_ip().to_string(),
            logs_port,
        )
        .await?;
        let hosts = options
            .host_aliases
            .iter()
            .map(|h| (h.clone(), bridge.host_ip().to_string()))
            .collect();
        let pool = match &options.load_balancer_pool {
            Some(spec) => Some(spec.pool(bridge.subnet)?),
            None => None,
        };
        let services_task = tokio::spawn(
            services::ServiceProxy {
                client: client.clone(),
                pool,
                link: bridge.name.clone(),
                node_ip: bridge.host_ip(),
            }
            .run(),
        );
        let kubelet = kubelet::Kubelet {
            client,
            name: options.name.clone(),
            bridge: bridge.clone(),
            images: options.images,
            hosts,
            dir: dir.path().to_path_buf(),
            pods: pods.clone(),
            logs_port,
        };
        let task = tokio::spawn(kubelet.run());
        Ok(Self {
            name: options.name,
            bridge,
            pods,
            task,
            logs_task,
            services_task,
            pool,
            dir,
        })
    }

    /// The Node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's address on the node's bridge: Pods reach servers of this host here.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.bridge.host_ip()
    }

    /// The pool LoadBalancer Services get addresses from, when the node serves them.
    pub fn load_balancer_pool(&self) -> Option<lb_pool::Pool> {
        self.pool
    }

    /// The log file of a container of Pod `namespace/name`, while the Pod runs here: CRI
    /// records, one timestamped line each ([`crate::cri_log`]; [`Node::log_text`] reads it).
    pub async fn log(&self, namespace: &str, name: &str, container: &str) -> Option<PathBuf> {
        let pods = self.pods.lock().await;
        pods.find(namespace, name)
            .and_then(|p| p.log(container))
            .map(PathBuf::from)
    }

    /// The output of a container of Pod `namespace/name` as it wrote it, while the Pod runs
    /// here.
    pub async fn log_text(&self, namespace: &str, name: &str, container: &str) -> Option<String> {
        let file = self.log(namespace, name, container).await?;
        Some(crate::cri_log::text(&file))
    }

    /// The network namespaces this node has now (one per Pod it runs).
    pub fn namespaces(&self) -> anyhow::Result<Vec<String>> {
        let own = self.bridge.namespace_prefix();
        Ok(network::ip(&["netns", "list"])?
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&own))
            .map(str::to_string)
            .collect())
    }

    /// The folder holding every Pod's files and logs.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Where Pod files live: under `/run` when possible, because volume sources must stay
/// visible while the mounts are made, and Pods often mount over `/tmp` (Envoy's emptyDir).
fn state_base() -> PathBuf {
    let run = PathBuf::from("/run/ferrogate-node");
    if std::fs::create_dir_all(&run).is_ok() {
        run
    } else {
        std::env::temp_dir()
    }
}

/// Removes the Pod files of nodes whose process is gone.
fn sweep_dirs(base: &std::path::Path) {
    for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("ferrogate-node-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
        self.logs_task.abort();
        self.services_task.abort();
        // The aborted loop lets go of the lock at its next await; wait for that briefly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let pods = loop {
            if let Ok(mut pods) = self.pods.try_lock() {
                break std::mem::take(&mut pods.by_uid);
            }
            if std::time::Instant::now() > deadline {
                tracing::warn!("node loop still busy; its Pods end with the process");
                break Default::default();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        for (_, mut run) in pods {
            run.stop(std::time::Duration::from_secs(2));
        }
        // The loop's task may still hold the bridge until the runtime drops it; remove the
        // link now so nothing of this node outlives the handle.
        let _ = network::ip(&["link", "delete", &self.bridge.name]);
    }
}
