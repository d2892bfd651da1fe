//! The Node object and its heartbeat: a Ready Node named after this node, with the bridge
//! address as its InternalIP, and its Lease in `kube-node-lease` renewed every
//! [`HEARTBEAT`], as the kubelet keeps both.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::clock;

/// How often the Lease and the Ready condition are renewed.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Creates the Node if missing, then reports it Ready.
pub async fn register(
    client: &kube::Client,
    name: &str,
    address: &str,
    logs_port: u16,
) -> anyhow::Result<()> {
    let nodes = Api::<Node>::all(client.clone());
    if nodes.get_opt(name).await?.is_none() {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": std::env::consts::ARCH,
            }},
        }))?;
        nodes.create(&PostParams::default(), &node).await?;
    }
    heartbeat(client, name, address, logs_port).await
}

/// Renews the Ready condition and the Lease.
pub async fn heartbeat(
    client: &kube::Client,
    name: &str,
    address: &str,
    logs_port: u16,
) -> anyhow::Result<()> {
    let now = clock::now();
    // A condition's lastTransitionTime moves only when its status flips; heartbeats move
    // lastHeartbeatTime only.
    let current = Api::<Node>::all(client.clone()).get_opt(name).await?;
    let conditions = current
        .and_then(|n| n.status)
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        let since = conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.as_ref())
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_else(|| now.clone().into());
        json!({"type": type_, "status": status, "reason": reason, "message": message, "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    let status = json!({"status": {
        "conditions": [
            condition("Ready", "True", "KubeletReady", "ferrogate-node is posting ready status"),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ferrogate-node does not measure memory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ferrogate-node does not measure disk"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "ferrogate-node does not measure pids"),
        ],
        // InternalIP only: kube-apiserver tries a Hostname address first when reaching the
        // node's log endpoint, and the Node's name resolves nowhere.
        "addresses": [{"type": "InternalIP", "address": address}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": logs_port}},
        "capacity": {"cpu": "2", "memory": "8Gi", "pods": "250"},
        "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "250"},
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "ferrogate-node",
            "containerRuntimeVersion": "ferrogate-node://local-processes", "kubeletVersion": "v0.0.0-ferrogate-node",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": std::env::consts::ARCH,
        },
    }});
    Api::<Node>::all(client.clone())
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    let leases = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");
    let spec = json!({"spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": clock::now_micro()}});
    if leases.get_opt(name).await?.is_some() {
        leases
            .patch(name, &PatchParams::default(), &Patch::Merge(&spec))
            .await?;
    } else {
        let mut lease: Lease = serde_json::from_value(spec)?;
        lease.metadata.name = Some(name.to_string());
        leases.create(&PostParams::default(), &lease).await?;
    }
    Ok(())
}
