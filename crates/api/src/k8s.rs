//! Kubernetes core types used as translator inputs.

pub use k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle;
pub use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServicePort};
pub use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
