//! Ferrogate's xDS server: the per-Gateway snapshot cache and the Aggregated Discovery
//! Service (ADS) that streams it to Envoy (pipeline step 5 of the design).
//!
//! # What this crate owns
//!
//! - [`Snapshot`]: the immutable Envoy resources of one Gateway, with content-derived
//!   versions (per resource and per type), so identical config always has identical versions.
//! - [`SnapshotCache`]: Gateway id (`<namespace>/<name>`) -> `Arc<Snapshot>`, swapped
//!   atomically. Setting identical content is a no-op; a change wakes only that Gateway's streams.
//! - [`XdsServer`] / [`serve`]: ADS over gRPC (tonic), both state of the world and delta, with
//!   ACK/NACK tracking ([`XdsStats`]): a NACKed version is recorded and never re-sent on that
//!   stream, and Envoy keeps its last accepted config. Pushes go out in the order clusters,
//!   endpoints, listeners, routes.
//! - The one place that maps a stream to its Gateway (from `node.cluster`), so each Envoy sees
//!   only its own Gateway's snapshot; with mutual TLS ([`serve_tls`]) the client certificate's
//!   identity must name that same Gateway, or the stream is refused ([`Rejection`]) and
//!   counted in [`TotalStats::rejected_streams`].
//!
//! # What it must not do
//!
//! - Translate anything: it serves what it is given, as given (the xDS translator builds it).
//! - Mutate a published snapshot, or send an empty config when a Gateway has no snapshot yet
//!   (such streams wait).
//! - Decide status or metrics exposure: it offers [`SnapshotCache::stats`]; others publish it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acks;
mod cache;
mod delta;
mod grpc_service;
mod identity;
mod propagation;
mod server;
mod snapshot;
mod sotw;
mod tls;

pub use acks::{GatewayStats, NackRecord, TotalStats, XdsStats};
pub use cache::{PropagationObserver, SnapshotCache};
pub use grpc_service::AdsService;
pub use identity::Rejection;
pub use server::{XdsServer, serve, serve_tls, serve_tls_with_cert};
pub use snapshot::{
    CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, Snapshot,
    VersionedResource,
};
pub use tls::{ServerCert, XdsTls};

/// Errors of the xDS server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gRPC transport failed (accepting or serving connections).
    #[error("xDS gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A TLS certificate, key or CA is not what it should be.
    #[error("xDS TLS configuration: {0}")]
    TlsMaterial(String),
}
