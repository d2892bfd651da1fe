//! ferrogate-api: the names users see and the one place Gateway API and Kubernetes types
//! are imported from.
//!
//! Owns: user-visible constants (controller name, labels, ports), re-exports of the
//! `gateway-api` and `k8s-openapi` types the rest of the workspace uses (so a version bump
//! happens here only), and Ferrogate's own CRD types.
//!
//! Must not: contain logic beyond constants and type definitions.
#![forbid(unsafe_code)]

pub mod constants;
pub mod envoyproxy;
pub mod gateway;
pub mod k8s;
pub mod multicluster;

pub use constants::*;
