//! The Envoy Deployment.
//!
//! One `envoy` container running the pinned distroless Envoy image as uid/gid 65532, with a
//! read-only root filesystem, no privilege escalation, all capabilities dropped and the
//! RuntimeDefault seccomp profile (the "restricted" Pod Security Standard). It reads the
//! bootstrap from the ConfigMap at `/etc/envoy`, names itself after its pod
//! (`--service-node $(POD_NAME)`), turns Ready through `/ready` on 19003 (a listener that
//! only arrives over xDS, so a pod is Ready only once it has config), and exposes Prometheus
//! stats on 19001 with scrape annotations. The pod template carries the bootstrap hash, so
//! a bootstrap change (and nothing else) rolls the pods. With xDS over mutual TLS, the
//! Gateway's xDS client Secret is mounted read-only at `/etc/ferrogate/xds`, readable by
//! Envoy's group only.
//!
//! Graceful shutdown: the distroless image has no shell and no curl, and the admin
//! interface listens on loopback only (kubelet's httpGet hooks reach the pod IP and can only
//! GET, while `/drain_listeners` needs POST), so neither `sleep` nor an admin drain can be
//! exec'd. Instead the preStop hook is Kubernetes' native `sleep` action (GA since 1.34):
//! for `drain_seconds` the terminating pod keeps serving while it leaves the Service
//! endpoints and load balancers stop sending new connections; then Envoy gets SIGTERM.
//! `terminationGracePeriodSeconds` is the sleep plus 15 s for Envoy to exit, and
//! `--drain-time-s` uses the same duration for listener drains on xDS updates.

use std::collections::BTreeMap;

use ferrogate_api::envoyproxy::LogLevel;
use ferrogate_api::{ENVOY_READY_PORT, ENVOY_STATS_PORT};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretVolumeSource, SecurityContext, SleepAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config_map::{BOOTSTRAP_KEY, BOOTSTRAP_PATH, XDS_TLS_DIR};
use super::{Ctx, common_labels, service::protocol};
use crate::bootstrap::STATS_PATH;

/// Envoy image used unless `envoyDeployment.container.image` says otherwise: the distroless
/// build of the Envoy release the xDS translator targets and the tests run (1.40).
pub const DEFAULT_ENVOY_IMAGE: &str = "envoyproxy/envoy:distroless-v1.40.0";
/// Name of the Envoy container.
pub const CONTAINER_NAME: &str = "envoy";
/// Pod-template annotation holding the bootstrap hash.
pub const BOOTSTRAP_HASH_ANNOTATION: &str = "gateway.ferrogate.dev/bootstrap-hash";
/// uid Envoy runs as (distroless `nonroot`).
pub const ENVOY_UID: i64 = 65532;
/// gid Envoy runs as.
pub const ENVOY_GID: i64 = 65532;
/// Seconds Envoy gets to exit after SIGTERM, on top of the drain sleep.
const EXIT_GRACE_SECONDS: i64 = 15;

const CONFIG_VOLUME: &str = "bootstrap";
const TMP_VOLUME: &str = "tmp";
const XDS_TLS_VOLUME: &str = "xds-tls";
/// Mode of the mounted xDS files: owner and group read (the pod's fsGroup is Envoy's gid),
/// nobody else, since `tls.key` is a private key.
const XDS_TLS_MODE: i32 = 0o440;

pub(super) fn render(ctx: &Ctx<'_>, bootstrap_hash: &str) -> Deployment {
    let deploy = ctx.proxy.deployment();
    let pod = ctx.proxy.pod();
    let replicas = match ctx.proxy.hpa() {
        Some(_) => None,
        None => Some(deploy.and_then(|d| d.replicas).unwrap_or(1)),
    };

    let mut pod_labels = pod.map(|p| p.labels.clone()).unwrap_or_default();
    pod_labels.extend(ctx.infra.labels.clone());
    pod_labels.extend(common_labels(ctx.infra));
    let mut pod_annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        (
            "prometheus.io/port".to_string(),
            ENVOY_STATS_PORT.to_string(),
        ),
        ("prometheus.io/path".to_string(), STATS_PATH.to_string()),
    ]);
    pod_annotations.extend(pod.map(|p| p.annotations.clone()).unwrap_or_default());
    pod_annotations.extend(ctx.infra.annotations.clone());
    pod_annotations.insert(
        BOOTSTRAP_HASH_ANNOTATION.to_string(),
        bootstrap_hash.to_string(),
    );

    let drain = i64::from(ctx.opts.drain_seconds);
    let pod_spec = PodSpec {
        service_account_name: Some(ctx.name.clone()),
        automount_service_account_token: Some(false),
        termination_grace_period_seconds: Some(drain + EXIT_GRACE_SECONDS),
        security_context: Some(
            pod.and_then(|p| p.security_context.clone())
                .unwrap_or_else(default_pod_security_context),
        ),
        affinity: pod.and_then(|p| p.affinity.clone()),
        tolerations: pod.and_then(|p| p.tolerations.clone()),
        node_selector: pod
            .map(|p| p.node_selector.clone())
            .filter(|m| !m.is_empty()),
        topology_spread_constraints: pod.and_then(|p| p.topology_spread_constraints.clone()),
        image_pull_secrets: pod.and_then(|p| p.image_pull_secrets.clone()),
        containers: vec![container(ctx)],
        volumes: Some(volumes(ctx)),
        ..PodSpec::default()
    };

    Deployment {
        metadata: ctx.metadata(ctx.deployment_name(), &BTreeMap::new(), &BTreeMap::new()),
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(super::selector_labels(ctx.infra)),
                ..LabelSelector::default()
            },
            strategy: deploy.and_then(|d| d.strategy.clone()),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn volumes(ctx: &Ctx<'_>) -> Vec<Volume> {
    let mut volumes = vec![
        Volume {
            name: CONFIG_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: ctx.name.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: TMP_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    if ctx.opts.xds_tls {
        volumes.push(Volume {
            name: XDS_TLS_VOLUME.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(super::xds_client_secret_name(ctx.infra)),
                default_mode: Some(XDS_TLS_MODE),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    volumes
}

fn volume_mounts(ctx: &Ctx<'_>) -> Vec<VolumeMount> {
    let mut mounts = vec![
        VolumeMount {
            name: CONFIG_VOLUME.into(),
            mount_path: BOOTSTRAP_PATH
                .strip_suffix(&format!("/{BOOTSTRAP_KEY}"))
                .expect("path ends with the key")
                .into(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: TMP_VOLUME.into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        },
    ];
    if ctx.opts.xds_tls {
        mounts.push(VolumeMount {
            name: XDS_TLS_VOLUME.into(),
            mount_path: XDS_TLS_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    mounts
}

fn container(ctx: &Ctx<'_>) -> Container {
    let spec = ctx.proxy.container();
    let drain = ctx.opts.drain_seconds;

    let levels = ctx.proxy.log_levels();
    let default_level = levels.get("default").copied().unwrap_or(LogLevel::Warn);
    let mut args = vec![
        "--config-path".to_string(),
        BOOTSTRAP_PATH.to_string(),
        "--service-node".to_string(),
        "$(POD_NAME)".to_string(),
        "--log-level".to_string(),
        default_level.as_str().to_string(),
    ];
    let components: Vec<String> = levels
        .iter()
        .filter(|(c, _)| {
            c.as_str() != "default"
                && ferrogate_api::envoyproxy::LOG_COMPONENTS.contains(&c.as_str())
        })
        .map(|(c, l)| format!("{c}:{}", l.as_str()))
        .collect();
    if !components.is_empty() {
        args.extend(["--component-log-level".to_string(), components.join(",")]);
    }
    if let Some(n) = ctx.proxy.concurrency {
        args.extend(["--concurrency".to_string(), n.to_string()]);
    }
    args.extend([
        "--drain-time-s".to_string(),
        drain.to_string(),
        "--disable-hot-restart".to_string(),
        crate::IGNORE_UNKNOWN_DYNAMIC_FIELDS.to_string(),
    ]);

    let mut env = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
    ];
    for e in spec.and_then(|c| c.env.clone()).unwrap_or_default() {
        if !env.iter().any(|have| have.name == e.name) {
            env.push(e);
        }
    }

    let mut ports: Vec<ContainerPort> = Vec::new();
    let mut add_port = |name: &str, port: u16, proto: &str| {
        if ports
            .iter()
            .any(|p| p.container_port == i32::from(port) && p.protocol.as_deref() == Some(proto))
        {
            return;
        }
        ports.push(ContainerPort {
            name: is_iana_svc_name(name).then(|| name.to_string()),
            container_port: i32::from(port),
            protocol: Some(proto.to_string()),
            ..ContainerPort::default()
        });
    };
    for p in &ctx.infra.ports {
        add_port(&p.name, p.container_port, protocol(p.protocol));
    }
    add_port("metrics", ENVOY_STATS_PORT, "TCP");
    add_port("readiness", ENVOY_READY_PORT, "TCP");

    Container {
        name: CONTAINER_NAME.into(),
        image: Some(
            spec.and_then(|c| c.image.clone())
                .or_else(|| ctx.opts.envoy_image.clone())
                .unwrap_or_else(|| DEFAULT_ENVOY_IMAGE.to_string()),
        ),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["envoy".into()]),
        args: Some(args),
        env: Some(env),
        ports: Some(ports),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/ready".into()),
                port: IntOrString::Int(i32::from(ENVOY_READY_PORT)),
                scheme: Some("HTTP".into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(5),
            timeout_seconds: Some(1),
            success_threshold: Some(1),
            failure_threshold: Some(1),
            ..Probe::default()
        }),
        resources: Some(
            spec.and_then(|c| c.resources.clone())
                .unwrap_or_else(default_resources),
        ),
        security_context: Some(container_security_context()),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: i64::from(drain),
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        volume_mounts: Some(volume_mounts(ctx)),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: path.into(),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..SeccompProfile::default()
    }
}

fn default_pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(ENVOY_UID),
        run_as_group: Some(ENVOY_GID),
        fs_group: Some(ENVOY_GID),
        seccomp_profile: Some(runtime_default()),
        ..PodSecurityContext::default()
    }
}

fn container_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(ENVOY_UID),
        run_as_group: Some(ENVOY_GID),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("100m".into())),
            ("memory".to_string(), Quantity("128Mi".into())),
        ])),
        ..ResourceRequirements::default()
    }
}

/// Kubernetes' IANA_SVC_NAME rule for container port names: at most 15 characters of
/// `[a-z0-9-]`, at least one letter, no leading, trailing or doubled `-`.
fn is_iana_svc_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}
