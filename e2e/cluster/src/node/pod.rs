//! One Pod on this node: its network namespace, its files (volumes, hosts file, logs), its
//! containers' processes, their readiness, and the status the API shows for it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};

use super::container::{self, Launch, Mount};
use super::network::PodNetwork;
use super::{clock, env, fields, probe, volumes};
use crate::process::ManagedProcess;

/// What the node knows about its environment when it starts a Pod.
pub struct Context<'a> {
    pub client: &'a kube::Client,
    pub images: &'a super::images::Images,
    /// Lines of the Pods' hosts file beyond the Pod's own name (e.g. the xDS Service).
    pub hosts: &'a [(String, String)],
}

/// A container's runtime state.
pub struct ContainerRun {
    pub spec: Container,
    launch: Option<LaunchSpec>,
    process: Option<ManagedProcess>,
    started_at: Option<String>,
    restart_count: i32,
    ready: bool,
    next_probe: Instant,
    waiting: Option<(String, String)>,
    terminated: Option<(i32, String, String, String)>,
    /// The last exit, as `lastState.terminated` shows it (with the log's tail as message,
    /// as `terminationMessagePolicy: FallbackToLogsOnError` does).
    last_state: Option<Value>,
    last_exit: Option<Instant>,
    pub log: PathBuf,
}

/// What is needed to start (or restart) a container's process.
struct LaunchSpec {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    mounts: Vec<Mount>,
    working_dir: Option<String>,
}

/// A Pod this node runs (or failed to run).
pub struct PodRun {
    pub namespace: String,
    pub name: String,
    pub dir: PathBuf,
    pub network: Option<PodNetwork>,
    pub containers: Vec<ContainerRun>,
    restart_policy: String,
    started_at: String,
    /// Status last sent, to write only changes.
    last_status: Value,
    transitions: BTreeMap<String, (bool, String)>,
    created: Instant,
}

/// How often a Pod whose containers wait on a missing ConfigMap, Secret or key is prepared
/// again (the kubelet keeps retrying too: the suite and users often create a Secret just
/// after the Deployment that mounts it).
const CONFIG_RETRY: Duration = Duration::from_secs(2);

/// Delay before a container that exited is started again (the kubelet backs off from 10 s;
/// tests want it sooner).
const RESTART_DELAY: Duration = Duration::from_secs(1);

impl PodRun {
    /// Prepares and starts `pod` in `network`. Errors of one container (an image this node
    /// cannot run, a missing volume source) are kept as that container's waiting reason.
    pub async fn start(ctx: &Context<'_>, pod: &Pod, network: PodNetwork, dir: PathBuf) -> Self {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let pod_ip = network.ip.to_string();
        let mut run = Self {
            namespace,
            name,
            dir,
            network: None,
            containers: Vec::new(),
            restart_policy: spec
                .restart_policy
                .clone()
                .unwrap_or_else(|| "Always".into()),
            started_at: clock::now(),
            last_status: Value::Null,
            transitions: BTreeMap::new(),
            created: Instant::now(),
        };
        let prepared = run.prepare_files(ctx, pod, &pod_ip).await;
        for c in &spec.containers {
            let log = run.dir.join("logs").join(format!("{}.log", c.name));
            let mut state = ContainerRun {
                spec: c.clone(),
                launch: None,
                process: None,
                started_at: None,
                restart_count: 0,
                ready: false,
                next_probe: Instant::now(),
                waiting: None,
                terminated: None,
                last_state: None,
                last_exit: None,
                log,
            };
            let launch = match &prepared {
                Ok((volumes, hosts)) => launch_spec(ctx, pod, c, &pod_ip, volumes, hosts).await,
                Err(e) => Err(("CreateContainerConfigError".to_string(), format!("{e:#}"))),
            };
            match launch {
                Ok(l) => state.launch = Some(l),
                Err(reason) => state.waiting = Some(reason),
            }
            run.containers.push(state);
        }
        if !spec.init_containers.as_ref().is_none_or(|i| i.is_empty()) {
            for c in &mut run.containers {
                c.launch = None;
                c.waiting = Some((
                    "CreateContainerConfigError".into(),
                    "ferrogate-node does not run init containers".into(),
                ));
            }
        }
        run.network = Some(network);
        for i in 0..run.containers.len() {
            run.start_container(i);
        }
        run
    }

    async fn prepare_files(
        &self,
        ctx: &Context<'_>,
        pod: &Pod,
        pod_ip: &str,
    ) -> anyhow::Result<(BTreeMap<String, PathBuf>, PathBuf)> {
        std::fs::create_dir_all(self.dir.join("logs"))?;
        let volumes =
            volumes::materialize(ctx.client, pod, pod_ip, &self.dir.join("volumes")).await?;
        // The kubelet's hosts file: loopback, the Pod's own name, plus what the node was told
        // to resolve (there is no cluster DNS).
        let mut hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{pod_ip}\t{}\n",
            self.name
        );
        for (name, ip) in ctx.hosts {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
        let hosts_file = self.dir.join("etc-hosts");
        std::fs::write(&hosts_file, hosts)?;
        Ok((volumes, hosts_file))
    }

    fn start_container(&mut self, i: usize) {
        let network = self.network.as_ref().expect("network before containers");
        let hostname = self.name.clone();
        let scratch = self.dir.join("scratch").join(&self.containers[i].spec.name);
        let c = &mut self.containers[i];
        let Some(l) = &c.launch else { return };
        let name = format!("{}/{}/{}", self.namespace, self.name, c.spec.name);
        let launch = Launch {
            name: &name,
            netns: &network.netns,
            hostname: &hostname,
            scratch: &scratch,
            mounts: l.mounts.clone(),
            env: l.env.clone(),
            argv: l.argv.clone(),
            working_dir: l.working_dir.clone(),
            log: &c.log,
        };
        match container::start(&launch) {
            Ok(p) => {
                c.process = Some(p);
                c.started_at = Some(clock::now());
                c.waiting = None;
                c.terminated = None;
                c.next_probe = Instant::now()
                    + Duration::from_secs(
                        c.spec
                            .readiness_probe
                            .as_ref()
                            .and_then(|p| p.initial_delay_seconds)
                            .unwrap_or(0) as u64,
                    );
            }
            Err(e) => c.waiting = Some(("RunContainerError".into(), format!("{e:#}"))),
        }
    }

    /// Whether the Pod waits on configuration that may exist by now (a volume or env source
    /// that was missing) and is due to be prepared again.
    pub fn config_retry_due(&self) -> bool {
        self.created.elapsed() >= CONFIG_RETRY
            && self.containers.iter().any(|c| {
                c.launch.is_none()
                    && c.waiting.as_ref().is_some_and(|(reason, message)| {
                        reason == "CreateContainerConfigError"
                            && !message.contains("init containers")
                    })
            })
    }

    /// Notices exits, restarts per restartPolicy, runs due probes.
    pub async fn tick(&mut self) {
        let ip: Option<IpAddr> = self.network.as_ref().map(|n| IpAddr::V4(n.ip));
        for i in 0..self.containers.len() {
            let c = &mut self.containers[i];
            if let Some(status) = c.process.as_mut().and_then(|p| p.exited()) {
                let code = status.code().unwrap_or(
                    128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0),
                );
                let reason = if code == 0 { "Completed" } else { "Error" };
                c.terminated = Some((
                    code,
                    reason.into(),
                    c.started_at.clone().unwrap_or_default(),
                    clock::now(),
                ));
                let message = if code == 0 {
                    String::new()
                } else {
                    crate::cri_log::tail(&c.log, 5)
                };
                c.last_state = Some(
                    json!({"terminated": {"exitCode": code, "reason": reason, "message": message, "startedAt": c.started_at, "finishedAt": clock::now()}}),
                );
                c.process = None;
                c.ready = false;
                c.last_exit = Some(Instant::now());
            }
            let restart = match (self.restart_policy.as_str(), &c.terminated) {
                ("Always", Some(_)) => true,
                ("OnFailure", Some((code, ..))) => *code != 0,
                _ => false,
            };
            if restart && c.last_exit.is_some_and(|t| t.elapsed() >= RESTART_DELAY) {
                c.restart_count += 1;
                self.start_container(i);
                continue;
            }
            let c = &mut self.containers[i];
            if c.process.is_none() || Instant::now() < c.next_probe {
                continue;
            }
            match (&c.spec.readiness_probe, ip) {
                (None, _) => c.ready = true,
                (Some(p), Some(ip)) => {
                    c.ready = probe::run(p, &c.spec, ip).await.is_ok();
                    c.next_probe = Instant::now()
                        + Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64);
                }
                (Some(_), None) => c.ready = false,
            }
        }
    }

    /// The Pod's status as the API shows it.
    pub fn status(&mut self, host_ip: &str) -> Value {
        let pod_ip = self.network.as_ref().map(|n| n.ip.to_string());
        let all_running = self.containers.iter().all(|c| c.process.is_some());
        let all_ready = all_running && self.containers.iter().all(|c| c.ready);
        let all_done = self
            .containers
            .iter()
            .all(|c| c.terminated.is_some() && c.process.is_none());
        let phase = if all_done && self.restart_policy == "Never" {
            if self
                .containers
                .iter()
                .all(|c| c.terminated.as_ref().is_some_and(|t| t.0 == 0))
            {
                "Succeeded"
            } else {
                "Failed"
            }
        } else if self.containers.iter().any(|c| c.started_at.is_some()) {
            "Running"
        } else {
            "Pending"
        };
        let conditions: Vec<Value> = [
            ("PodReadyToStartContainers", self.network.is_some()),
            ("Initialized", true),
            ("ContainersReady", all_ready),
            ("Ready", all_ready),
            ("PodScheduled", true),
        ]
        .into_iter()
        .map(|(t, ok)| {
            let since = self.transition(t, ok);
            let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": since});
            if !ok && (t == "Ready" || t == "ContainersReady") {
                c["reason"] = "ContainersNotReady".into();
                let names: Vec<&str> = self.containers.iter().filter(|c| !c.ready).map(|c| c.spec.name.as_str()).collect();
                c["message"] = format!("containers with unready status: [{}]", names.join(" ")).into();
            }
            c
        })
        .collect();
        let containers: Vec<Value> = self.containers.iter().map(container_status).collect();
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
            "startTime": self.started_at,
            "containerStatuses": containers,
        });
        if let Some(ip) = pod_ip {
            status["podIP"] = ip.clone().into();
            status["podIPs"] = json!([{"ip": ip}]);
        }
        status
    }

    fn transition(&mut self, type_: &str, ok: bool) -> String {
        match self.transitions.get(type_) {
            Some((was, since)) if *was == ok => since.clone(),
            _ => {
                let now = clock::now();
                self.transitions
                    .insert(type_.to_string(), (ok, now.clone()));
                now
            }
        }
    }

    /// `Some(status)` when it differs from what was last sent (which it then becomes).
    pub fn status_change(&mut self, host_ip: &str) -> Option<Value> {
        let status = self.status(host_ip);
        if status == self.last_status {
            return None;
        }
        self.last_status = status.clone();
        Some(status)
    }

    /// Forgets the last status sent, so the next [`status_change`] writes again (after a
    /// failed write).
    pub fn resend(&mut self) {
        self.last_status = Value::Null;
    }

    /// SIGTERM to every container, SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        for c in &mut self.containers {
            if let Some(mut p) = c.process.take() {
                p.terminate(grace);
            }
        }
    }

    /// The log file of container `name` (CRI records, [`crate::cri_log`]).
    pub fn log(&self, name: &str) -> Option<&Path> {
        self.containers
            .iter()
            .find(|c| c.spec.name == name)
            .map(|c| c.log.as_path())
    }
}

async fn launch_spec(
    ctx: &Context<'_>,
    pod: &Pod,
    c: &Container,
    pod_ip: &str,
    volumes: &BTreeMap<String, PathBuf>,
    hosts: &Path,
) -> Result<LaunchSpec, (String, String)> {
    let image = c.image.clone().unwrap_or_default();
    let env = env::resolve(ctx.client, pod, c, pod_ip)
        .await
        .map_err(|e| ("CreateContainerConfigError".to_string(), format!("{e:#}")))?;
    let command: Vec<String> = c
        .command
        .iter()
        .flatten()
        .map(|s| fields::expand(s, &env))
        .collect();
    let args: Vec<String> = c
        .args
        .iter()
        .flatten()
        .map(|s| fields::expand(s, &env))
        .collect();
    let argv = ctx
        .images
        .argv(&image, &command, &args)
        .map_err(|e| (e.reason.to_string(), e.message))?;
    let mut mounts = vec![Mount {
        source: hosts.to_path_buf(),
        target: PathBuf::from("/etc/hosts"),
        read_only: false,
    }];
    for m in c.volume_mounts.iter().flatten() {
        let source = volumes.get(&m.name).ok_or_else(|| {
            (
                "CreateContainerConfigError".to_string(),
                format!("volumeMount {} names no volume", m.name),
            )
        })?;
        let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => source.join(sub),
            None => source.clone(),
        };
        mounts.push(Mount {
            source,
            target: PathBuf::from(&m.mount_path),
            read_only: m.read_only.unwrap_or(false),
        });
    }
    Ok(LaunchSpec {
        argv,
        env,
        mounts,
        working_dir: c.working_dir.clone(),
    })
}

fn container_status(c: &ContainerRun) -> Value {
    let state = if c.process.is_some() {
        json!({"running": {"startedAt": c.started_at}})
    } else if let Some((reason, message)) = &c.waiting {
        json!({"waiting": {"reason": reason, "message": message}})
    } else if let Some((code, reason, started, finished)) = &c.terminated {
        json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished}})
    } else {
        json!({"waiting": {"reason": "ContainerCreating"}})
    };
    let pid = c
        .process
        .as_ref()
        .and_then(ManagedProcess::pid)
        .unwrap_or(0);
    json!({
        "name": c.spec.name,
        "image": c.spec.image,
        "imageID": "",
        "containerID": format!("ferrogate-node://{pid}"),
        "ready": c.ready,
        "started": c.process.is_some(),
        "restartCount": c.restart_count,
        "state": state,
        "lastState": c.last_state.clone().unwrap_or_else(|| json!({})),
    })
}
