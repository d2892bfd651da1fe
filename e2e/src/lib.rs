//! End-to-end helpers for Ferrogate: the echo backend (a Rust stand-in for the
//! upstream conformance `echo-basic` image, see [`echo`]) and, later, the harness
//! code that drives the control plane and Envoy against such backends.

pub mod bench;
pub mod client;
pub mod conformance;
pub mod corpus;
pub mod echo;
pub mod testing;
