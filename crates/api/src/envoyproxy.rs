//! `EnvoyProxy` (`gateway.ferrogate.dev/v1alpha1`): the parameters of the Envoy fleet that
//! Ferrogate provisions for a Gateway.
//!
//! Field names follow Envoy Gateway's `EnvoyProxy` (`gateway.envoyproxy.io/v1alpha1`) where
//! the feature is the same, so a configuration moves over by changing `apiVersion`:
//!
//! ```yaml
//! apiVersion: gateway.ferrogate.dev/v1alpha1
//! kind: EnvoyProxy
//! metadata: { name: proxy, namespace: default }
//! spec:
//!   provider:
//!     type: Kubernetes
//!     kubernetes:
//!       envoyDeployment:
//!         replicas: 2
//!         pod: { annotations: { example.com/team: edge } }
//!         container: { resources: { requests: { cpu: 200m } } }
//!       envoyService:
//!         type: LoadBalancer
//!         externalTrafficPolicy: Cluster
//!   logging: { level: { default: warn, upstream: debug } }
//!   concurrency: 2
//!   telemetry:
//!     accessLog:
//!       settings:
//!       - format: { type: Text, text: "%START_TIME% %REQ(:PATH)% %RESPONSE_CODE%\n" }
//!         sinks: [{ type: File, file: { path: /dev/stdout } }]
//! ```
//!
//! Parameters come from the GatewayClass `parametersRef` and are overridden field by field
//! by `Gateway.spec.infrastructure.parametersRef` ([`merge`]). Unset fields mean "Ferrogate's
//! default", which the infra renderer applies; the types here carry no defaults of their own.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DeploymentStrategy;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerBehavior, MetricSpec};
use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Envoy logger components that `spec.logging.level` accepts (Envoy refuses to start with
/// an unknown one). `default` sets `--log-level`, the others `--component-log-level`.
pub const LOG_COMPONENTS: &[&str] = &[
    "admin",
    "client",
    "connection",
    "default",
    "filter",
    "http",
    "main",
    "router",
    "runtime",
    "upstream",
];

/// Parameters of the Envoy fleet of the Gateways that reference this object.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.ferrogate.dev",
    version = "v1alpha1",
    kind = "EnvoyProxy",
    plural = "envoyproxies",
    namespaced,
    doc = "EnvoyProxy: parameters of the Envoy fleet Ferrogate provisions for the Gateways whose GatewayClass or infrastructure references it."
)]
#[kube(derive = "Default")]
#[kube(derive = "PartialEq")]
#[serde(rename_all = "camelCase")]
pub struct EnvoyProxySpec {
    /// Where and how the Envoy fleet runs. Only `Kubernetes` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<EnvoyProxyProvider>,
    /// Envoy's log levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<ProxyLogging>,
    /// Envoy worker threads (`--concurrency`); unset lets Envoy use one per CPU it sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub concurrency: Option<i32>,
    /// Observability of the Envoy fleet: access logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<ProxyTelemetry>,
}

/// `spec.provider`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyProxyProvider {
    /// Provider type.
    #[serde(rename = "type", default)]
    pub type_: ProviderType,
    /// Kubernetes resources of the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<EnvoyProxyKubernetesProvider>,
}

/// `spec.provider.type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ProviderType {
    /// Envoy runs in the cluster, one Deployment per Gateway.
    #[default]
    Kubernetes,
}

/// `spec.provider.kubernetes`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyProxyKubernetesProvider {
    /// The Envoy Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_deployment: Option<KubernetesDeploymentSpec>,
    /// The Service in front of the Envoy pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_service: Option<KubernetesServiceSpec>,
    /// A HorizontalPodAutoscaler for the Deployment; when set, the Deployment's replica count
    /// is left to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_hpa: Option<KubernetesHorizontalPodAutoscalerSpec>,
    /// A PodDisruptionBudget for the Envoy pods.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "envoyPDB")]
    pub envoy_pdb: Option<KubernetesPodDisruptionBudgetSpec>,
}

/// `spec.provider.kubernetes.envoyDeployment`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesDeploymentSpec {
    /// Number of Envoy pods (default 1; ignored when `envoyHpa` is set). Standalone mode runs
    /// this many local Envoy processes per Gateway instead (1 to 4; `envoyHpa` does not apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Deployment strategy (Kubernetes' default when unset: RollingUpdate 25%/25%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
    /// Pod settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<KubernetesPodSpec>,
    /// Envoy container settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<KubernetesContainerSpec>,
    /// Name of the Deployment instead of `<gateway>-<gatewayclass>` (a DNS-1123 label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: Option<String>,
}

/// `spec.provider.kubernetes.envoyDeployment.pod`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesPodSpec {
    /// Annotations on the pods (merged key by key; Gateway-level values win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels on the pods (merged key by key; Ferrogate's own labels always win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Pod security context (default: non-root, uid/gid 65532, RuntimeDefault seccomp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Tolerations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Node selector (merged key by key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Topology spread constraints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Image pull secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
}

/// `spec.provider.kubernetes.envoyDeployment.container`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesContainerSpec {
    /// Envoy image (default: Ferrogate's pinned distroless Envoy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,
    /// Resources (default: requests cpu 100m, memory 128Mi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
}

/// `spec.provider.kubernetes.envoyService`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesServiceSpec {
    /// Service type (default `LoadBalancer`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<ServiceType>,
    /// Annotations on the Service (merged key by key; Gateway-level values win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels on the Service (merged key by key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `spec.loadBalancerClass` (LoadBalancer only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
    /// `spec.loadBalancerIP` (LoadBalancer only; `Gateway.spec.addresses` take precedence).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "loadBalancerIP"
    )]
    pub load_balancer_ip: Option<String>,
    /// `spec.loadBalancerSourceRanges` (LoadBalancer only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_source_ranges: Option<Vec<String>>,
    /// `spec.externalTrafficPolicy` (NodePort and LoadBalancer; default `Local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<ExternalTrafficPolicy>,
    /// `spec.allocateLoadBalancerNodePorts` (LoadBalancer only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocate_load_balancer_node_ports: Option<bool>,
    /// Name of the Service instead of `<gateway>-<gatewayclass>` (a DNS-1035 label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: Option<String>,
}

/// `envoyService.type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    /// Cluster-internal only.
    #[serde(rename = "ClusterIP")]
    ClusterIp,
    /// A port on every node.
    NodePort,
    /// An external load balancer (the default).
    #[default]
    LoadBalancer,
}

impl ServiceType {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIp => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// `envoyService.externalTrafficPolicy`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ExternalTrafficPolicy {
    /// Only node-local endpoints; preserves the client source IP (the default).
    #[default]
    Local,
    /// Any endpoint in the cluster.
    Cluster,
}

impl ExternalTrafficPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "Local",
            Self::Cluster => "Cluster",
        }
    }
}

/// `spec.provider.kubernetes.envoyHpa` (autoscaling/v2).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesHorizontalPodAutoscalerSpec {
    /// Lower bound (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_replicas: Option<i32>,
    /// Upper bound (default: `minReplicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replicas: Option<i32>,
    /// Metrics (default: 80% average CPU utilization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<MetricSpec>>,
    /// Scaling behavior.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

/// `spec.provider.kubernetes.envoyPDB` (policy/v1). At most one of the two may be set;
/// neither means `minAvailable: 1`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.minAvailable) && has(self.maxUnavailable))",
    "message": "only one of minAvailable and maxUnavailable may be set",
}]))]
pub struct KubernetesPodDisruptionBudgetSpec {
    /// Minimum available pods (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Maximum unavailable pods (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// `spec.logging`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyLogging {
    /// Log level per Envoy logger component (admin, client, connection, default, filter,
    /// http, main, router, runtime, upstream); `default` applies to all components not named
    /// (default `warn`). See [`LOG_COMPONENTS`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.all(k, k in ['admin', 'client', 'connection', 'default', 'filter', 'http', 'main', 'router', 'runtime', 'upstream'])",
        "message": "unknown Envoy logger component",
    }]))]
    pub level: BTreeMap<String, LogLevel>,
}

/// An Envoy log level.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// trace
    Trace,
    /// debug
    Debug,
    /// info
    Info,
    /// warn (the default)
    #[default]
    Warn,
    /// error
    Error,
}

impl LogLevel {
    /// The spelling Envoy's `--log-level` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

pub use crate::telemetry::{
    FileEnvoyProxyAccessLog, ProxyAccessLog, ProxyAccessLogFormat, ProxyAccessLogFormatType,
    ProxyAccessLogSetting, ProxyAccessLogSink, ProxyAccessLogSinkType, ProxyTelemetry,
};

// ---------------------------------------------------------------------------------------
// Merging

/// Effective parameters of a Gateway: `over` (from `Gateway.spec.infrastructure.parametersRef`)
/// overrides `base` (from the GatewayClass `parametersRef`) field by field.
///
/// Rules: a set scalar or Kubernetes-typed field of `over` (strategy, affinity, resources,
/// security context, ...) replaces `base`'s whole; string maps (annotations, labels,
/// nodeSelector, logging levels) merge key by key with `over` winning; lists (tolerations,
/// env, metrics, source ranges, ...) replace `base`'s when `over` sets them, even empty, so
/// `tolerations: []` clears them; nested Ferrogate structs merge recursively. The PDB's
/// `minAvailable`/`maxUnavailable` pair is one field, because setting both is invalid.
pub fn merge(base: &EnvoyProxySpec, over: &EnvoyProxySpec) -> EnvoyProxySpec {
    base.merged(over)
}

trait Merge: Clone {
    fn merged(&self, over: &Self) -> Self;
}

fn opt<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
    over.clone().or_else(|| base.clone())
}

fn nested<T: Merge>(base: &Option<T>, over: &Option<T>) -> Option<T> {
    match (base, over) {
        (Some(b), Some(o)) => Some(b.merged(o)),
        _ => opt(base, over),
    }
}

fn map<V: Clone>(base: &BTreeMap<String, V>, over: &BTreeMap<String, V>) -> BTreeMap<String, V> {
    let mut out = base.clone();
    out.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

impl Merge for EnvoyProxySpec {
    fn merged(&self, over: &Self) -> Self {
        Self {
            provider: nested(&self.provider, &over.provider),
            logging: nested(&self.logging, &over.logging),
            concurrency: opt(&self.concurrency, &over.concurrency),
            telemetry: opt(&self.telemetry, &over.telemetry),
        }
    }
}

impl Merge for EnvoyProxyProvider {
    fn merged(&self, over: &Self) -> Self {
        Self {
            type_: over.type_,
            kubernetes: nested(&self.kubernetes, &over.kubernetes),
        }
    }
}

impl Merge for EnvoyProxyKubernetesProvider {
    fn merged(&self, over: &Self) -> Self {
        Self {
            envoy_deployment: nested(&self.envoy_deployment, &over.envoy_deployment),
            envoy_service: nested(&self.envoy_service, &over.envoy_service),
            envoy_hpa: nested(&self.envoy_hpa, &over.envoy_hpa),
            envoy_pdb: nested(&self.envoy_pdb, &over.envoy_pdb),
        }
    }
}

impl Merge for KubernetesDeploymentSpec {
    fn merged(&self, over: &Self) -> Self {
        Self {
            replicas: opt(&self.replicas, &over.replicas),
            strategy: opt(&self.strategy, &over.strategy),
            pod: nested(&self.pod, &over.pod),
            container: nested(&self.container, &over.container),
            name: opt(&self.name, &over.name),
        }
    }
}

impl Merge for KubernetesPodSpec {
    fn merged(&self, over: &Self) -> Self {
        Self {
            annotations: map(&self.annotations, &over.annotations),
            labels: map(&self.labels, &over.labels),
            security_context: opt(&self.security_context, &over.security_context),
            affinity: opt(&self.affinity, &over.affinity),
            tolerations: opt(&self.tolerations, &over.tolerations),
            node_selector: map(&self.node_selector, &over.node_selector),
            topology_spread_constraints: opt(
                &self.topology_spread_constraints,
                &over.topology_spread_constraints,
            ),
            image_pull_secrets: opt(&self.image_pull_secrets, &over.image_pull_secrets),
        }
    }
}

impl Merge for KubernetesContainerSpec {
    fn merged(&self, over: &Self) -> Self {
        Self {
            image: opt(&self.image, &over.image),
            resources: opt(&self.resources, &over.resources),
            env: opt(&self.env, &over.env),
        }
    }
}

impl Merge for KubernetesServiceSpec {
    fn merged(&self, over: &Self) -> Self {
        Self {
            type_: opt(&self.type_, &over.type_),
            annotations: map(&self.annotations, &over.annotations),
            labels: map(&self.labels, &over.labels),
            load_balancer_class: opt(&self.load_balancer_class, &over.load_balancer_class),
            load_balancer_ip: opt(&self.load_balancer_ip, &over.load_balancer_ip),
            load_balancer_source_ranges: opt(
                &self.load_balancer_source_ranges,
                &over.load_balancer_source_ranges,
            ),
            external_traffic_policy: opt(
                &self.external_traffic_policy,
                &over.external_traffic_policy,
            ),
            allocate_load_balancer_node_ports: opt(
                &self.allocate_load_balancer_node_ports,
                &over.allocate_load_balancer_node_ports,
            ),
            name: opt(&self.name, &over.name),
        }
    }
}

impl Merge for KubernetesHorizontalPodAutoscalerSpec {
    fn merged(&self, over: &Self) -> Self {
        Self {
            min_replicas: opt(&self.min_replicas, &over.min_replicas),
            max_replicas: opt(&self.max_replicas, &over.max_replicas),
            metrics: opt(&self.metrics, &over.metrics),
            behavior: opt(&self.behavior, &over.behavior),
        }
    }
}

impl Merge for KubernetesPodDisruptionBudgetSpec {
    fn merged(&self, over: &Self) -> Self {
        if over.min_available.is_some() || over.max_unavailable.is_some() {
            over.clone()
        } else {
            self.clone()
        }
    }
}

impl Merge for ProxyLogging {
    fn merged(&self, over: &Self) -> Self {
        Self {
            level: map(&self.level, &over.level),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Accessors the renderer uses (all tolerate missing intermediate levels).

impl EnvoyProxySpec {
    fn kubernetes(&self) -> Option<&EnvoyProxyKubernetesProvider> {
        self.provider.as_ref()?.kubernetes.as_ref()
    }

    /// `spec.provider.kubernetes.envoyDeployment`, if set.
    pub fn deployment(&self) -> Option<&KubernetesDeploymentSpec> {
        self.kubernetes()?.envoy_deployment.as_ref()
    }

    /// `spec.provider.kubernetes.envoyDeployment.pod`, if set.
    pub fn pod(&self) -> Option<&KubernetesPodSpec> {
        self.deployment()?.pod.as_ref()
    }

    /// `spec.provider.kubernetes.envoyDeployment.container`, if set.
    pub fn container(&self) -> Option<&KubernetesContainerSpec> {
        self.deployment()?.container.as_ref()
    }

    /// `spec.provider.kubernetes.envoyService`, if set.
    pub fn service(&self) -> Option<&KubernetesServiceSpec> {
        self.kubernetes()?.envoy_service.as_ref()
    }

    /// `spec.provider.kubernetes.envoyHpa`, if set.
    pub fn hpa(&self) -> Option<&KubernetesHorizontalPodAutoscalerSpec> {
        self.kubernetes()?.envoy_hpa.as_ref()
    }

    /// `spec.provider.kubernetes.envoyPDB`, if set.
    pub fn pdb(&self) -> Option<&KubernetesPodDisruptionBudgetSpec> {
        self.kubernetes()?.envoy_pdb.as_ref()
    }

    /// `spec.telemetry.accessLog`, if set.
    pub fn access_log(&self) -> Option<&ProxyAccessLog> {
        self.telemetry.as_ref()?.access_log.as_ref()
    }

    /// `spec.logging.level`, empty when unset.
    pub fn log_levels(&self) -> BTreeMap<String, LogLevel> {
        self.logging
            .as_ref()
            .map(|l| l.level.clone())
            .unwrap_or_default()
    }
}

/// The `EnvoyProxy` CustomResourceDefinition as YAML (for `ferrogate crds` and manifests/).
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    yaml_serde::to_string(&EnvoyProxy::crd()).expect("a CRD always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> EnvoyProxySpec {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn parses_envoy_gateway_field_names() {
        let spec = parse(
            r#"
provider:
  type: Kubernetes
  kubernetes:
    envoyDeployment:
      replicas: 2
      strategy: { type: Recreate }
      pod:
        annotations: { a: "1" }
        nodeSelector: { disk: ssd }
        tolerations: [{ key: k, operator: Exists }]
      container:
        image: example/envoy:1
        resources: { requests: { cpu: 200m } }
        env: [{ name: X, value: "y" }]
    envoyService:
      type: NodePort
      loadBalancerIP: 10.0.0.1
      externalTrafficPolicy: Cluster
      allocateLoadBalancerNodePorts: false
    envoyHpa: { minReplicas: 2, maxReplicas: 5 }
    envoyPDB: { maxUnavailable: 50% }
logging: { level: { default: info, upstream: debug } }
concurrency: 4
"#,
        );
        assert_eq!(spec.deployment().unwrap().replicas, Some(2));
        assert_eq!(spec.pod().unwrap().node_selector["disk"], "ssd");
        assert_eq!(
            spec.container().unwrap().image.as_deref(),
            Some("example/envoy:1")
        );
        let svc = spec.service().unwrap();
        assert_eq!(svc.type_, Some(ServiceType::NodePort));
        assert_eq!(svc.load_balancer_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(
            svc.external_traffic_policy,
            Some(ExternalTrafficPolicy::Cluster)
        );
        assert_eq!(spec.hpa().unwrap().max_replicas, Some(5));
        assert_eq!(
            spec.pdb().unwrap().max_unavailable,
            Some(IntOrString::String("50%".into()))
        );
        assert_eq!(spec.log_levels()["upstream"], LogLevel::Debug);
        assert_eq!(spec.concurrency, Some(4));
        // Round trip keeps the Envoy Gateway spellings.
        let yaml = yaml_serde::to_string(&spec).unwrap();
        for key in [
            "envoyPDB:",
            "envoyHpa:",
            "loadBalancerIP:",
            "type: Kubernetes",
            "type: NodePort",
        ] {
            assert!(yaml.contains(key), "{key} missing in\n{yaml}");
        }
        assert_eq!(parse(&yaml), spec);
    }

    #[test]
    fn unknown_enum_values_are_rejected() {
        assert!(
            yaml_serde::from_str::<EnvoyProxySpec>("logging: { level: { default: loud } }")
                .is_err()
        );
        assert!(
            yaml_serde::from_str::<EnvoyProxySpec>(
                "provider: { kubernetes: { envoyService: { type: Ingress } } }"
            )
            .is_err()
        );
    }

    #[test]
    fn merge_overrides_field_by_field() {
        let base = parse(
            r#"
provider:
  type: Kubernetes
  kubernetes:
    envoyDeployment:
      replicas: 3
      pod:
        annotations: { a: base, b: base }
        tolerations: [{ key: k, operator: Exists }]
      container: { image: base/envoy:1, env: [{ name: A, value: "1" }] }
    envoyService:
      type: NodePort
      annotations: { s: base }
      loadBalancerClass: base-class
    envoyPDB: { minAvailable: 1 }
logging: { level: { default: info, upstream: debug } }
concurrency: 2
"#,
        );
        let over = parse(
            r#"
provider:
  kubernetes:
    envoyDeployment:
      pod:
        annotations: { b: over, c: over }
        tolerations: []
      container: { image: over/envoy:2 }
    envoyService:
      annotations: { t: over }
      type: LoadBalancer
    envoyPDB: { maxUnavailable: 1 }
logging: { level: { default: error } }
"#,
        );
        let m = merge(&base, &over);
        let d = m.deployment().unwrap();
        assert_eq!(d.replicas, Some(3), "unset in over: base stays");
        let pod = m.pod().unwrap();
        assert_eq!(
            pod.annotations,
            BTreeMap::from([
                ("a".to_string(), "base".to_string()),
                ("b".to_string(), "over".to_string()),
                ("c".to_string(), "over".to_string()),
            ])
        );
        assert_eq!(
            pod.tolerations,
            Some(vec![]),
            "an explicit empty list clears"
        );
        let c = m.container().unwrap();
        assert_eq!(c.image.as_deref(), Some("over/envoy:2"));
        assert_eq!(c.env.as_ref().unwrap()[0].name, "A");
        let svc = m.service().unwrap();
        assert_eq!(svc.type_, Some(ServiceType::LoadBalancer));
        assert_eq!(svc.load_balancer_class.as_deref(), Some("base-class"));
        assert_eq!(svc.annotations.len(), 2);
        let pdb = m.pdb().unwrap();
        assert_eq!(
            (pdb.min_available.clone(), pdb.max_unavailable.clone()),
            (None, Some(IntOrString::Int(1)))
        );
        assert_eq!(m.log_levels()["default"], LogLevel::Error);
        assert_eq!(m.log_levels()["upstream"], LogLevel::Debug);
        assert_eq!(m.concurrency, Some(2));
    }

    #[test]
    fn merge_identities() {
        let spec =
            parse("provider: { kubernetes: { envoyDeployment: { replicas: 2 } } }\nconcurrency: 1");
        let empty = EnvoyProxySpec::default();
        assert_eq!(merge(&spec, &empty), spec);
        assert_eq!(merge(&empty, &spec), spec);
        assert_eq!(merge(&spec, &spec), spec);
        assert_eq!(merge(&empty, &empty), empty);
    }

    #[test]
    fn crd_is_namespaced_v1alpha1_with_structural_schema() {
        let yaml = crd_yaml();
        let crd: serde_json::Value = yaml_serde::from_str(&yaml).unwrap();
        assert_eq!(
            crd["metadata"]["name"],
            "envoyproxies.gateway.ferrogate.dev"
        );
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["kind"], "EnvoyProxy");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        let k8s = &spec["provider"]["properties"]["kubernetes"]["properties"];
        assert!(
            k8s["envoyPDB"]["properties"]["minAvailable"]["x-kubernetes-int-or-string"] == true
        );
        assert!(k8s["envoyDeployment"]["properties"]["replicas"].is_object());
        assert_eq!(
            k8s["envoyService"]["properties"]["type"]["enum"],
            serde_json::json!(["ClusterIP", "NodePort", "LoadBalancer"])
        );
        assert!(spec["logging"]["properties"]["level"]["x-kubernetes-validations"].is_array());
        assert!(!yaml.contains("$ref"), "CRD schemas must be inlined");
    }
}
