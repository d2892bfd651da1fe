//! Gateway API types, from the `gateway-api` crate (experimental channel: a superset of
//! standard). Objects of other served apiVersions (e.g. TLSRoute v1alpha2, ReferenceGrant
//! v1beta1) are read into these same types by kind.

pub use gateway_api::apis::standard::backendtlspolicies::*;
pub use gateway_api::experimental::gatewayclasses::*;
pub use gateway_api::experimental::gateways::*;
pub use gateway_api::experimental::grpcroutes::*;
pub use gateway_api::experimental::httproutes::*;
pub use gateway_api::experimental::listenersets::*;
pub use gateway_api::experimental::referencegrants::*;
pub use gateway_api::experimental::tcproutes::*;
pub use gateway_api::experimental::tlsroutes::*;
pub use gateway_api::experimental::udproutes::*;
