//! ferrogate-ir: the intermediate route graph between the Gateway API translator and the
//! xDS translator, and the infra IR that drives provisioning.
//!
//! Owns: plain data types only (serde, `Clone`, `PartialEq`). Every collection is kept in a
//! deterministic order by the producer, so that serializing an IR twice gives the same bytes
//! and unchanged config hashes identically.
//!
//! Must not: do I/O, depend on Kubernetes or Envoy types, or hold behaviour beyond small
//! accessors. Gateway API semantics live in the translator; Envoy semantics in the xDS
//! translator.
#![forbid(unsafe_code)]

mod backend;
mod gateway;
mod infra;
mod route;

pub use backend::{Backend, BackendProtocol, Endpoint, UpstreamTls};
pub use gateway::{
    ClientValidation, GatewayIr, GatewayKey, HttpListener, HttpsChain, HttpsListener, Listener,
    ListenerKind, StreamListener, TlsChain, TlsListener, TlsSecret,
};
pub use infra::{AccessLog, AccessLogFormat, AccessLogSink, InfraIr, InfraPort, PortProtocol};
pub use route::{
    Cors, Forward, HeaderLists, HeaderMatch, HeaderMods, HeaderValue, HttpMatch, HttpRoute, Mirror,
    PathMatch, PathModifier, QueryParamMatch, Redirect, Retry, RouteAction, SessionPersistence,
    StringMatch, Timeouts, UrlRewrite, VirtualHost, WeightedBackend,
};
