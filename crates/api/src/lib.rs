//! ferrogate-api: the names users see and the one place Gateway API and Kubernetes types
//! are imported from.
//!
//! Owns: user-visible constants (controller name, labels, ports), re-exports of the
//! Gateway API (`ferrogate-gateway-types`) and `k8s-openapi` types the rest of the workspace
//! uses (so a version bump happens here only), Ferrogate's own CRD types, and the format of
//! user-visible names that two sides must agree on (the xDS client identity,
//! [`xds_identity`]).
//!
//! Must not: contain logic beyond constants, type definitions and such name formats.
#![forbid(unsafe_code)]

pub mod constants;
pub mod envoyproxy;
pub mod features;
pub mod gateway;
pub mod k8s;
pub mod multicluster;
mod telemetry;
pub mod xds_identity;

pub use constants::*;
