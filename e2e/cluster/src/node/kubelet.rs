//! The node's loop: every [`SYNC`] it lists the Pods, binds unscheduled ones to itself
//! (there is no kube-scheduler), starts the Pods bound to it, probes them, writes their
//! status when it changed, and ends the Pods that are deleted or gone.
//!
//! Listing instead of watching keeps the loop trivially correct after an API server restart;
//! the local clusters hold tens of Pods, so a list every half second costs nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use tokio::sync::Mutex;

use super::images::Images;
use super::network::Bridge;
use super::pod::{Context, PodRun};
use super::registration;

/// How often the loop runs.
pub const SYNC: Duration = Duration::from_millis(500);
/// Longest wait for a deleted Pod's processes before SIGKILL (its grace period, capped so a
/// test never waits half a minute for a drain nobody observes).
const MAX_GRACE: Duration = Duration::from_secs(10);

/// State shared between the loop and the [`super::Node`] handle.
#[derive(Default)]
pub struct Pods {
    pub by_uid: BTreeMap<String, PodRun>,
    slots: BTreeSet<u8>,
}

impl Pods {
    /// The Pod `namespace/name`, while it runs here.
    pub fn find(&self, namespace: &str, name: &str) -> Option<&PodRun> {
        self.by_uid
            .values()
            .find(|p| p.namespace == namespace && p.name == name)
    }
}

pub struct Kubelet {
    pub client: kube::Client,
    pub name: String,
    pub bridge: Arc<Bridge>,
    pub images: Images,
    pub hosts: Vec<(String, String)>,
    pub dir: PathBuf,
    pub pods: Arc<Mutex<Pods>>,
    pub logs_port: u16,
}

impl Kubelet {
    /// Runs until the task is dropped.
    pub async fn run(self) {
        let mut last_heartbeat = Instant::now();
        loop {
            if last_heartbeat.elapsed() >= registration::HEARTBEAT {
                if let Err(e) = registration::heartbeat(
                    &self.client,
                    &self.name,
                    &self.bridge.host_ip().to_string(),
                    self.logs_port,
                )
                .await
                {
                    tracing::warn!("node heartbeat: {e:#}");
                }
                last_heartbeat = Instant::now();
            }
            if let Err(e) = self.sync().await {
                tracing::warn!("node sync: {e:#}");
            }
            tokio::time::sleep(SYNC).await;
        }
    }

    async fn sync(&self) -> anyhow::Result<()> {
        let list = Api::<Pod>::all(self.client.clone())
            .list(&ListParams::default())
            .await?;
        let host_ip = self.bridge.host_ip().to_string();
        let mut seen = BTreeSet::new();
        let mut pods = self.pods.lock().await;
        for pod in list.items {
            let (Some(uid), Some(namespace), Some(name)) = (
                pod.metadata.uid.clone(),
                pod.metadata.namespace.clone(),
                pod.metadata.name.clone(),
            ) else {
                continue;
            };
            let spec = pod.spec.clone().unwrap_or_default();
            let api = Api::<Pod>::namespaced(self.client.clone(), &namespace);
            match spec.node_name.as_deref() {
                None if pod.metadata.deletion_timestamp.is_none() => {
                    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "uid": uid},
                                         "target": {"apiVersion": "v1", "kind": "Node", "name": self.name}});
                    if let Err(e) = api
                        .create_subresource::<_, serde_json::Value>(
                            "binding",
                            &name,
                            &PostParams::default(),
                            &binding,
                        )
                        .await
                    {
                        tracing::warn!("binding {namespace}/{name}: {e}");
                    }
                    continue;
                }
                Some(n) if n == self.name => {}
                _ => continue,
            }
            seen.insert(uid.clone());
            if pod.metadata.deletion_timestamp.is_some() {
                let grace = Duration::from_secs(
                    pod.metadata
                        .deletion_grace_period_seconds
                        .unwrap_or(30)
                        .max(0) as u64,
                )
                .min(MAX_GRACE);
                if let Some(run) = pods.by_uid.remove(&uid) {
                    release(&mut pods.slots, &run);
                    end(run, grace).await;
                }
                // The kubelet's last word on a Pod: delete it for good once nothing runs.
                let delete = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                if let Err(e) = api.delete(&name, &delete).await {
                    tracing::debug!("final delete of {namespace}/{name}: {e}");
                }
                continue;
            }
            // Missing configuration: start over with what the API has now, as the kubelet
            // retries mounting until the Secret or ConfigMap exists.
            if pods.by_uid.get(&uid).is_some_and(|r| r.config_retry_due()) {
                let run = pods.by_uid.remove(&uid).expect("checked above");
                release(&mut pods.slots, &run);
                end(run, Duration::ZERO).await;
            }
            if !pods.by_uid.contains_key(&uid) {
                let phase = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .unwrap_or("");
                if phase == "Succeeded" || phase == "Failed" {
                    continue;
                }
                let run = self
                    .start_pod(&mut pods.slots, &pod, &namespace, &name, &uid)
                    .await?;
                pods.by_uid.insert(uid.clone(), run);
            }
            let run = pods.by_uid.get_mut(&uid).expect("inserted above");
            run.tick().await;
            if let Some(status) = run.status_change(&host_ip)
                && let Err(e) = api
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({"status": status})),
                    )
                    .await
            {
                tracing::warn!("status of {namespace}/{name}: {e}");
                run.resend();
            }
        }
        let gone: Vec<String> = pods
            .by_uid
            .keys()
            .filter(|uid| !seen.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(run) = pods.by_uid.remove(&uid) {
                release(&mut pods.slots, &run);
                end(run, Duration::ZERO).await;
            }
        }
        Ok(())
    }

    async fn start_pod(
        &self,
        slots: &mut BTreeSet<u8>,
        pod: &Pod,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> anyhow::Result<PodRun> {
        let slot = (2..=254u8)
            .find(|s| !slots.contains(s))
            .ok_or_else(|| anyhow::anyhow!("no free Pod address on this node"))?;
        let network = self.bridge.add_pod(slot)?;
        slots.insert(slot);
        let ctx = Context {
            client: &self.client,
            images: &self.images,
            hosts: &self.hosts,
        };
        let dir = self.dir.join(format!("{namespace}_{name}_{uid}"));
        Ok(PodRun::start(&ctx, pod, network, dir).await)
    }
}

fn release(slots: &mut BTreeSet<u8>, run: &PodRun) {
    if let Some(n) = &run.network {
        slots.remove(&n.ip.octets()[3]);
    }
}

/// Stops a Pod's processes (off the async threads: stopping waits), then removes its
/// network namespace and files.
pub async fn end(mut run: PodRun, grace: Duration) {
    let joined = tokio::task::spawn_blocking(move || {
        run.stop(grace);
        let dir = run.dir.clone();
        drop(run);
        let _ = std::fs::remove_dir_all(dir);
    })
    .await;
    if let Err(e) = joined {
        tracing::warn!("stopping a Pod: {e}");
    }
}
