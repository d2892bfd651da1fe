//! ferrogate-provider-kubernetes: the cluster as input and as the place statuses go.
//!
//! Owns: discovering which of the kinds Ferrogate reads the cluster serves ([`discover`]),
//! one watcher per served kind feeding one store snapshot that is published only after every
//! watcher has listed once ([`run_reflectors`]), the statuses those watchers see
//! ([`LiveStatuses`]), the status writer ([`StatusWriter`]),
//! Kubernetes Events for status transitions ([`transitions`], [`EventSink`]), and leader
//! election on a `coordination.k8s.io` Lease ([`LeaderElector`]).
//!
//! Must not: judge Gateway API semantics (the translator does), create or delete the Envoy
//! fleet (the infra manager does), or know about xDS.
#![forbid(unsafe_code)]

mod discovery;
mod events;
mod kinds;
mod leader;
mod live_status;
mod reflect;
mod status_patch;
mod status_writer;
#[cfg(test)]
mod status_writer_tests;

pub use discovery::{Discovered, discover, served_versions};
pub use events::{EventLimiter, EventSink, Transition, reference as event_reference, transitions};
pub use kinds::{WATCHED_KINDS, WatchedKind};
pub use leader::{LeaderConfig, LeaderElector};
pub use live_status::LiveStatuses;
pub use reflect::{ReflectorEvent, run_reflectors};
pub use status_writer::{StatusWriteReport, StatusWriter};
