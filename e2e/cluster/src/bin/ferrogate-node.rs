//! `ferrogate-node`: runs the Pods of a local control plane on this machine (see
//! `ferrogate_cluster::node`). Needs root (network namespaces, mounts). Ctrl-C stops every
//! Pod and removes the node's bridge and namespaces.

use clap::Parser;
use ferrogate_cluster::node::{Images, Node, NodeOptions, PoolSpec};

/// The kubelet's part for this machine, with Pods as local processes.
#[derive(Parser, Debug)]
struct Args {
    /// Kubeconfig of the cluster (an identity that may bind Pods and write Node and Pod status).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: std::path::PathBuf,
    /// The Node's name.
    #[arg(long, default_value = "ferrogate-node")]
    name: String,
    /// A host name that resolves to this host's bridge address in every Pod (repeatable),
    /// e.g. the xDS Service `ferrogate.ferrogate-system.svc`.
    #[arg(long = "host-alias")]
    host_aliases: Vec<String>,
    /// Serve LoadBalancer Services (addresses in status and on this host, traffic forwarded to
    /// their endpoints) from this pool: `node` for 10.245.X.0/24 beside the node's Pod subnet,
    /// or MetalLB's notation (`10.245.3.0/24`, `10.245.3.10-10.245.3.20`).
    #[arg(long)]
    load_balancer_pool: Option<String>,
    /// The Envoy binary that runs Envoy images (default: FERROGATE_ENVOY, else .tools/bin/envoy).
    #[arg(long)]
    envoy: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = ferrogate_cluster::control_plane::client_from_kubeconfig(&args.kubeconfig).await?;
    let mut images = Images::from_env();
    if let Some(envoy) = args.envoy {
        images.envoy = envoy;
    }
    let options = NodeOptions {
        name: args.name,
        host_aliases: args.host_aliases,
        images,
        load_balancer_pool: args.load_balancer_pool.map(|p| match p.as_str() {
            "node" => PoolSpec::NodeSubnet,
            _ => PoolSpec::Range(p),
        }),
    };
    let node = Node::start(client, options).await?;
    println!(
        "node {} ready; Pods reach this host at {}; Pod files under {}",
        node.name(),
        node.host_ip(),
        node.dir().display()
    );
    if let Some(pool) = node.load_balancer_pool() {
        println!("LoadBalancer addresses from {}-{}", pool.first, pool.last);
    }
    tokio::signal::ctrl_c().await?;
    drop(node);
    Ok(())
}
