//! Kubernetes mode: the objects that run the Envoy fleet of one Gateway, rendered from its
//! infra IR and its effective `EnvoyProxy` parameters (see [`ferrogate_api::envoyproxy::merge`]).
//!
//! Per Gateway, in the Gateway's namespace, owned by the Gateway (GEP-1762): a
//! ServiceAccount, a ConfigMap with the Envoy bootstrap, a Deployment, a Service (when the
//! Gateway has ports), and a HorizontalPodAutoscaler and a PodDisruptionBudget when the
//! parameters ask for them. With xDS over mutual TLS ([`RenderOptions::xds_tls`]) the pods
//! also mount the Secret [`xds_client_secret_name`], which is not rendered here: the
//! controller issues it (it holds the Gateway's client certificate, signed by the xDS CA). Names are `<gateway>-<gatewayclass>` ([`object_name`]); every
//! object carries the labels DESIGN.md names ([`common_labels`]).
//!
//! Precedence of metadata, lowest first: Ferrogate's defaults (Prometheus scrape
//! annotations), `EnvoyProxy` (`pod.*`, `envoyService.*`), `Gateway.spec.infrastructure`
//! (which GEP-1762 applies to every object made for the Gateway), and finally Ferrogate's own
//! labels and the bootstrap-hash annotation, which nothing overrides (the selector must stay
//! stable).
//!
//! Pure and deterministic: typed `k8s-openapi` objects, maps are `BTreeMap`s, lists come out
//! in a fixed order.

mod config_map;
mod deployment;
mod hpa;
mod pdb;
mod service;
mod service_account;

use std::collections::BTreeMap;

use ferrogate_api::envoyproxy::EnvoyProxySpec;
use ferrogate_api::{
    GATEWAY_GROUP, LABEL_MANAGED_BY, LABEL_OWNING_GATEWAY_NAME, LABEL_OWNING_GATEWAY_NAMESPACE,
    MANAGED_BY_VALUE,
};
use ferrogate_ir::InfraIr;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use config_map::{BOOTSTRAP_KEY, BOOTSTRAP_PATH, XDS_TLS_DIR};
pub use deployment::{
    BOOTSTRAP_HASH_ANNOTATION, CONTAINER_NAME, DEFAULT_ENVOY_IMAGE, ENVOY_GID, ENVOY_UID,
};
pub use service::METALLB_IPS_ANNOTATION;

/// Gateway API label naming the Gateway an object belongs to.
pub const LABEL_GATEWAY_NAME: &str = "gateway.networking.k8s.io/gateway-name";
/// `app.kubernetes.io/name` of every object (part of the pod selector).
pub const APP_NAME: &str = "envoy";
/// `app.kubernetes.io/component` of every object (part of the pod selector).
pub const APP_COMPONENT: &str = "proxy";
/// Longest object name and label value Kubernetes accepts.
pub const MAX_NAME_LEN: usize = 63;

/// Rendering inputs that do not come from the Gateway or its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderOptions {
    /// `metadata.uid` of the Gateway (for ownerReferences).
    pub gateway_uid: String,
    /// Host name of the xDS service, e.g. `ferrogate.ferrogate-system.svc`.
    pub xds_service: String,
    /// Port of the xDS service.
    pub xds_port: u16,
    /// Use delta (incremental) xDS.
    pub delta: bool,
    /// Seconds a terminating pod keeps serving before Envoy gets SIGTERM (preStop sleep),
    /// also Envoy's `--drain-time-s` for listener drains.
    pub drain_seconds: u32,
    /// Connect to the xDS server over mutual TLS with the Gateway's client certificate from
    /// the Secret [`xds_client_secret_name`], mounted at [`XDS_TLS_DIR`].
    pub xds_tls: bool,
    /// Envoy image when the parameters name none (`ferrogate controller --envoy-image`);
    /// `None`: [`DEFAULT_ENVOY_IMAGE`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envoy_image: Option<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            gateway_uid: String::new(),
            xds_service: "ferrogate.ferrogate-system.svc".into(),
            xds_port: ferrogate_api::XDS_PORT,
            delta: false,
            drain_seconds: 15,
            xds_tls: true,
            envoy_image: None,
        }
    }
}

/// One rendered object. Serializes to the plain Kubernetes object (with `apiVersion` and
/// `kind`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum InfraObject {
    /// v1 ServiceAccount.
    ServiceAccount(ServiceAccount),
    /// v1 ConfigMap with the bootstrap.
    ConfigMap(ConfigMap),
    /// apps/v1 Deployment.
    Deployment(Deployment),
    /// v1 Service.
    Service(Service),
    /// autoscaling/v2 HorizontalPodAutoscaler.
    HorizontalPodAutoscaler(HorizontalPodAutoscaler),
    /// policy/v1 PodDisruptionBudget.
    PodDisruptionBudget(PodDisruptionBudget),
}

impl InfraObject {
    /// The object's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ServiceAccount(_) => "ServiceAccount",
            Self::ConfigMap(_) => "ConfigMap",
            Self::Deployment(_) => "Deployment",
            Self::Service(_) => "Service",
            Self::HorizontalPodAutoscaler(_) => "HorizontalPodAutoscaler",
            Self::PodDisruptionBudget(_) => "PodDisruptionBudget",
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::ServiceAccount(o) => &o.metadata,
            Self::ConfigMap(o) => &o.metadata,
            Self::Deployment(o) => &o.metadata,
            Self::Service(o) => &o.metadata,
            Self::HorizontalPodAutoscaler(o) => &o.metadata,
            Self::PodDisruptionBudget(o) => &o.metadata,
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The object as JSON.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("Kubernetes objects always serialize")
    }
}

/// Renders every object of the Gateway in `infra`, with the effective parameters `proxy`.
/// Order: ServiceAccount, ConfigMap, Deployment, Service, HorizontalPodAutoscaler,
/// PodDisruptionBudget. The Service is left out when the Gateway has no ports (Kubernetes
/// rejects a Service without ports).
pub fn render(infra: &InfraIr, proxy: &EnvoyProxySpec, opts: &RenderOptions) -> Vec<InfraObject> {
    let ctx = Ctx::new(infra, proxy, opts);
    let config_map = config_map::render(&ctx);
    let bootstrap_hash = config_map::hash(&config_map);
    let mut out = vec![
        InfraObject::ServiceAccount(service_account::render(&ctx)),
        InfraObject::ConfigMap(config_map),
        InfraObject::Deployment(deployment::render(&ctx, &bootstrap_hash)),
    ];
    if let Some(svc) = service::render(&ctx) {
        out.push(InfraObject::Service(svc));
    }
    if let Some(hpa) = hpa::render(&ctx) {
        out.push(InfraObject::HorizontalPodAutoscaler(hpa));
    }
    if let Some(pdb) = pdb::render(&ctx) {
        out.push(InfraObject::PodDisruptionBudget(pdb));
    }
    out
}

/// The objects as a multi-document YAML stream (`---` between documents).
pub fn to_yaml(objects: &[InfraObject]) -> String {
    objects
        .iter()
        .map(|o| yaml_serde::to_string(o).expect("Kubernetes objects always serialize"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Name of the objects of a Gateway: `<gateway>-<gatewayclass>` when that is a DNS-1035
/// label (what a Service name must be) of at most 63 characters; otherwise a sanitized
/// prefix of it (characters other than `[a-z0-9-]` become `-`, a leading non-letter gets
/// `fg-` in front), cut to 54 characters, plus `-` and the first 8 hex digits of the SHA-256
/// of `<gateway>-<gatewayclass>`, so distinct Gateways keep distinct names.
pub fn object_name(gateway: &str, gateway_class: &str) -> String {
    let full = format!("{gateway}-{gateway_class}");
    if full.len() <= MAX_NAME_LEN && is_dns1035_label(&full) {
        return full;
    }
    let mut sanitized: String = full
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    if !sanitized.starts_with(|c: char| c.is_ascii_lowercase()) {
        sanitized.insert_str(0, "fg-");
    }
    with_hash_suffix(&sanitized, &full, |c| c == '-')
}

/// A label value naming `value` (a Gateway name, up to 253 characters): itself when at most
/// 63 characters, else cut to 54 characters plus `-` and 8 hex digits of its SHA-256.
pub fn label_value(value: &str) -> String {
    if value.len() <= MAX_NAME_LEN {
        return value.to_string();
    }
    with_hash_suffix(value, value, |c| !c.is_ascii_alphanumeric())
}

fn with_hash_suffix(prefix: &str, hashed: &str, trim: impl Fn(char) -> bool) -> String {
    let digest = hex::encode(Sha256::digest(hashed.as_bytes()));
    let keep = MAX_NAME_LEN - 9;
    let cut: String = prefix.chars().take(keep).collect();
    format!("{}-{}", cut.trim_end_matches(trim), &digest[..8])
}

fn is_dns1035_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Name of the Secret holding the xDS client certificate of the Gateway in `infra`
/// (`<object name>-xds`, keys `ca.crt`, `tls.crt`, `tls.key`), in the Gateway's namespace.
/// The controller creates it, owned by the Gateway; the Deployment mounts it when
/// [`RenderOptions::xds_tls`] is set.
pub fn xds_client_secret_name(infra: &InfraIr) -> String {
    format!(
        "{}-xds",
        object_name(&infra.gateway.name, &infra.gateway_class)
    )
}

/// Labels that select the Envoy pods of a Gateway. Part of the Deployment's immutable
/// selector: never change them for an existing Gateway.
pub fn selector_labels(infra: &InfraIr) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), APP_NAME.to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            APP_COMPONENT.to_string(),
        ),
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
        (
            LABEL_OWNING_GATEWAY_NAME.to_string(),
            label_value(&infra.gateway.name),
        ),
        (
            LABEL_OWNING_GATEWAY_NAMESPACE.to_string(),
            infra.gateway.namespace.clone(),
        ),
    ])
}

/// Labels on every object: [`selector_labels`] plus `gateway.networking.k8s.io/gateway-name`.
pub fn common_labels(infra: &InfraIr) -> BTreeMap<String, String> {
    let mut labels = selector_labels(infra);
    labels.insert(
        LABEL_GATEWAY_NAME.to_string(),
        label_value(&infra.gateway.name),
    );
    labels
}

/// Everything the per-kind renderers share.
pub(crate) struct Ctx<'a> {
    pub infra: &'a InfraIr,
    pub proxy: &'a EnvoyProxySpec,
    pub opts: &'a RenderOptions,
    /// `<gateway>-<gatewayclass>`, cut when needed.
    pub name: String,
}

impl<'a> Ctx<'a> {
    fn new(infra: &'a InfraIr, proxy: &'a EnvoyProxySpec, opts: &'a RenderOptions) -> Self {
        Self {
            infra,
            proxy,
            opts,
            name: object_name(&infra.gateway.name, &infra.gateway_class),
        }
    }

    /// Name of the Deployment (`envoyDeployment.name` or the default name).
    pub fn deployment_name(&self) -> String {
        self.proxy
            .deployment()
            .and_then(|d| d.name.clone())
            .unwrap_or_else(|| self.name.clone())
    }

    /// Metadata of an object named `name`: `extra_labels` < infrastructure labels < common
    /// labels; `extra_annotations` < infrastructure annotations; owned by the Gateway.
    pub fn metadata(
        &self,
        name: String,
        extra_labels: &BTreeMap<String, String>,
        extra_annotations: &BTreeMap<String, String>,
    ) -> ObjectMeta {
        let mut labels = extra_labels.clone();
        labels.extend(self.infra.labels.clone());
        labels.extend(common_labels(self.infra));
        let mut annotations = extra_annotations.clone();
        annotations.extend(self.infra.annotations.clone());
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.infra.gateway.namespace.clone()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![self.owner_reference()]),
            ..ObjectMeta::default()
        }
    }

    fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: format!("{GATEWAY_GROUP}/v1"),
            kind: "Gateway".into(),
            name: self.infra.gateway.name.clone(),
            uid: self.opts.gateway_uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrogate_ir::{GatewayKey, InfraPort, PortProtocol};

    fn infra(name: &str) -> InfraIr {
        InfraIr {
            gateway: GatewayKey::new("default", name),
            gateway_class: "ferrogate".into(),
            ports: vec![InfraPort {
                name: "http-80".into(),
                protocol: PortProtocol::Tcp,
                port: 80,
                container_port: 10080,
            }],
            ..InfraIr::default()
        }
    }

    #[test]
    fn short_names_are_kept() {
        assert_eq!(object_name("eg", "ferrogate"), "eg-ferrogate");
        assert_eq!(label_value("eg"), "eg");
    }

    #[test]
    fn long_or_odd_names_are_cut_and_hashed() {
        let long = "a".repeat(70);
        let n = object_name(&long, "ferrogate");
        assert_eq!(n.len(), 63);
        assert!(is_dns1035_label(&n), "{n}");
        assert_ne!(n, object_name(&"a".repeat(71), "ferrogate"));
        assert_eq!(n, object_name(&long, "ferrogate"));

        let dotted = object_name("my.gw", "fg");
        assert!(
            dotted.starts_with("my-gw-fg-") && is_dns1035_label(&dotted),
            "{dotted}"
        );
        assert_ne!(dotted, object_name("my-gw", "fg"));
        let digit = object_name("1gw", "fg");
        assert!(
            digit.starts_with("fg-1gw-fg-") && is_dns1035_label(&digit),
            "{digit}"
        );

        // A cut that ends in '-' does not leave "--" before the hash.
        let dashy = format!("{}-{}", "b".repeat(53), "c".repeat(20));
        let n = object_name(&dashy, "x");
        assert!(!n.contains("--") && n.len() <= 63, "{n}");

        let lv = label_value(&format!("{}.{}", "x".repeat(53), "y".repeat(40)));
        assert!(lv.len() <= 63 && lv.chars().next_back().unwrap().is_ascii_alphanumeric());
    }

    #[test]
    fn render_is_deterministic_and_owned() {
        let opts = RenderOptions {
            gateway_uid: "uid-1".into(),
            ..RenderOptions::default()
        };
        let a = render(&infra("eg"), &EnvoyProxySpec::default(), &opts);
        let b = render(&infra("eg"), &EnvoyProxySpec::default(), &opts);
        assert_eq!(to_yaml(&a), to_yaml(&b));
        let kinds: Vec<_> = a.iter().map(InfraObject::kind).collect();
        assert_eq!(
            kinds,
            ["ServiceAccount", "ConfigMap", "Deployment", "Service"]
        );
        for o in &a {
            let m = o.metadata();
            assert_eq!(o.name(), "eg-ferrogate");
            assert_eq!(m.namespace.as_deref(), Some("default"));
            let owner = &m.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.uid.as_str()),
                ("Gateway", "uid-1")
            );
            let labels = m.labels.as_ref().unwrap();
            assert_eq!(labels[LABEL_MANAGED_BY], "ferrogate");
            assert_eq!(labels[LABEL_GATEWAY_NAME], "eg");
            assert_eq!(o.to_value()["metadata"]["name"], "eg-ferrogate");
        }
    }

    #[test]
    fn xds_tls_mounts_the_gateways_client_secret() {
        let i = infra("eg");
        assert_eq!(xds_client_secret_name(&i), "eg-ferrogate-xds");
        let deployment = |opts: &RenderOptions| {
            render(&i, &EnvoyProxySpec::default(), opts)
                .into_iter()
                .find(|o| o.kind() == "Deployment")
                .unwrap()
                .to_value()
        };
        let on = deployment(&RenderOptions::default());
        let pod = &on["spec"]["template"]["spec"];
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "xds-tls")
            .unwrap();
        assert_eq!(volume["secret"]["secretName"], "eg-ferrogate-xds");
        let mount = pod["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "xds-tls")
            .unwrap();
        assert_eq!(
            (mount["mountPath"].as_str(), mount["readOnly"].as_bool()),
            (Some(XDS_TLS_DIR), Some(true))
        );

        let off = deployment(&RenderOptions {
            xds_tls: false,
            ..RenderOptions::default()
        });
        assert!(!off.to_string().contains("xds-tls"));
    }

    #[test]
    fn no_ports_means_no_service() {
        let mut i = infra("eg");
        i.ports.clear();
        let objects = render(&i, &EnvoyProxySpec::default(), &RenderOptions::default());
        assert!(objects.iter().all(|o| o.kind() != "Service"));
    }

    #[test]
    fn infrastructure_labels_cannot_override_selector() {
        let mut i = infra("eg");
        i.labels
            .insert(LABEL_MANAGED_BY.into(), "someone-else".into());
        i.labels.insert("team".into(), "edge".into());
        let objects = render(&i, &EnvoyProxySpec::default(), &RenderOptions::default());
        for o in &objects {
            let labels = o.metadata().labels.as_ref().unwrap();
            assert_eq!(labels[LABEL_MANAGED_BY], "ferrogate");
            assert_eq!(labels["team"], "edge");
        }
    }
}
