//! The status of every object the translator judged, in one value.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Condition;

/// Desired statuses of one translation, in input order within each kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSet {
    /// GatewayClasses this controller owns.
    #[serde(default)]
    pub gateway_classes: Vec<GatewayClassStatus>,
    /// Gateways of our classes.
    #[serde(default)]
    pub gateways: Vec<GatewayStatus>,
    /// ListenerSets attached to our Gateways.
    #[serde(default)]
    pub listener_sets: Vec<ListenerSetStatus>,
    /// Routes of every kind, with our parents only.
    #[serde(default)]
    /// Shared: an incremental translation hands an unchanged route its last status back,
    /// and the status writers keep what they wrote without copying it. A persistent
    /// vector: a translation of a few changed routes copies a few chunks of the last set,
    /// not a pointer per route (at 100 000 routes, touching every status's reference count
    /// was a measurable part of a one-route edit).
    pub routes: imbl::Vector<std::sync::Arc<RouteStatus>>,
    /// BackendTLSPolicies, with our ancestors only.
    #[serde(default, rename = "backendTLSPolicies")]
    pub backend_tls_policies: Vec<PolicyStatus>,
}

/// Status of a GatewayClass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassStatus {
    /// Name (cluster-scoped).
    pub name: String,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Features the implementation supports (GEP-2162), sorted by name; only on accepted
    /// classes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_features: Vec<SupportedFeature>,
}

/// One entry of `GatewayClass.status.supportedFeatures`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SupportedFeature {
    /// Feature name, as the conformance suite names it.
    pub name: String,
}

/// Status of a Gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Gateway-level conditions.
    pub conditions: Vec<Condition>,
    /// Number of ListenerSets attached, when ListenerSets are allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_listener_sets: Option<i32>,
    /// Addresses the Gateway is reachable at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<GatewayAddress>,
    /// One entry per listener, in spec order.
    pub listeners: Vec<ListenerStatus>,
}

/// An address in `status.addresses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayAddress {
    /// `IPAddress` or `Hostname`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The address.
    pub value: String,
}

/// Status of one listener.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// Listener name.
    pub name: String,
    /// Routes attached to it.
    pub attached_routes: i32,
    /// Route kinds it accepts.
    pub supported_kinds: Vec<RouteGroupKind>,
    /// Conditions.
    pub conditions: Vec<Condition>,
}

/// A route kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RouteGroupKind {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
}

/// Status of a ListenerSet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenerSetStatus {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Listener statuses.
    pub listeners: Vec<ListenerStatus>,
}

/// Status of a route: one entry per parent this controller is responsible for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteStatus {
    /// `HTTPRoute`, `GRPCRoute`, `TLSRoute`, `TCPRoute` or `UDPRoute`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Per-parent statuses.
    pub parents: Vec<RouteParentStatus>,
}

/// A parentRef as the route wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Listener name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// Listener port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// Status of a route for one parent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    /// The parent. Shared: the routes of a translation that name the same parent the same
    /// way (most routes of a Gateway) hold one `ParentRef`, with their conversions.
    pub parent_ref: Arc<ParentRef>,
    /// Conditions. Shared: most routes of a translation have the same ones (`Accepted`
    /// and `ResolvedRefs` true at the same generation), and every route's status is kept,
    /// so one list serves them all instead of two or three conditions per route.
    pub conditions: Arc<[Condition]>,
}

/// Status of a policy (BackendTLSPolicy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Per-ancestor statuses.
    pub ancestors: Vec<AncestorStatus>,
}

/// Status of a policy for one ancestor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AncestorStatus {
    /// The ancestor.
    pub ancestor_ref: ParentRef,
    /// Conditions.
    pub conditions: Vec<Condition>,
}
