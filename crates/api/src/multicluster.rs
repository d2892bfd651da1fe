//! SIG-Multicluster `ServiceImport` (multicluster.x-k8s.io): the fields a backendRef needs.
//! No Rust crate ships these types, and only a few fields matter here.

use serde::{Deserialize, Serialize};

use crate::k8s::ObjectMeta;

/// A Service imported from a cluster set; backendRefs may name it like a Service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceImport {
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Ports and addresses.
    #[serde(default)]
    pub spec: ServiceImportSpec,
}

/// What makes it a Kubernetes resource to generic code (kube's `Resource`), as the
/// generated types of the other kinds are.
impl k8s_openapi::Resource for ServiceImport {
    const API_VERSION: &'static str = "multicluster.x-k8s.io/v1alpha1";
    const GROUP: &'static str = "multicluster.x-k8s.io";
    const KIND: &'static str = "ServiceImport";
    const VERSION: &'static str = "v1alpha1";
    const URL_PATH_SEGMENT: &'static str = "serviceimports";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for ServiceImport {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `ServiceImport.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceImportSpec {
    /// Exposed ports.
    #[serde(default)]
    pub ports: Vec<ServiceImportPort>,
    /// Cluster-set IPs.
    #[serde(default)]
    pub ips: Vec<String>,
    /// `ClusterSetIP` or `Headless`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
}

/// One port of a ServiceImport.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceImportPort {
    /// Port name (matches EndpointSlice port names).
    #[serde(default)]
    pub name: Option<String>,
    /// TCP, UDP or SCTP.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Application protocol.
    #[serde(default, rename = "appProtocol")]
    pub app_protocol: Option<String>,
    /// Port number.
    pub port: i32,
}
