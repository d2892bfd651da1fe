//! ferrogate-status: the desired-status model the translator produces and the status
//! writers (files in standalone mode, status subresources in a cluster) consume.
//!
//! Owns: status data types shaped like Gateway API status stanzas (serialized in the
//! corpus schema: `gatewayClasses`, `gateways`, `listenerSets`, `routes`,
//! `backendTLSPolicies`), condition builders, and comparison that ignores timestamps.
//!
//! Must not: do I/O or read clocks. Timestamps are stamped by the writers, which keep a
//! condition's `lastTransitionTime` unless its status flips.
#![forbid(unsafe_code)]

mod condition;
mod model;

pub use condition::{Condition, ConditionStatus, Text};
pub use model::{
    AncestorStatus, GatewayAddress, GatewayClassStatus, GatewayStatus, ListenerSetStatus,
    ListenerStatus, ParentRef, PolicyStatus, RouteGroupKind, RouteParentStatus, RouteStatus,
    StatusSet, SupportedFeature,
};
