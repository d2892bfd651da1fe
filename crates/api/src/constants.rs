//! Names and numbers that users see; DESIGN.md is their source of truth.

/// `GatewayClass.spec.controllerName` that Ferrogate owns.
pub const CONTROLLER_NAME: &str = "gateway.ferrogate.dev/gatewayclass-controller";
/// API group of Ferrogate's own CRDs.
pub const FERROGATE_GROUP: &str = "gateway.ferrogate.dev";
/// Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Label on every object Ferrogate creates.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "ferrogate";
/// Label naming the owning Gateway.
pub const LABEL_OWNING_GATEWAY_NAME: &str = "gateway.ferrogate.dev/owning-gateway-name";
/// Label naming the owning Gateway's namespace.
pub const LABEL_OWNING_GATEWAY_NAMESPACE: &str = "gateway.ferrogate.dev/owning-gateway-namespace";

/// Control plane: xDS gRPC port.
pub const XDS_PORT: u16 = 18000;
/// Control plane: Prometheus `/metrics` port.
pub const METRICS_PORT: u16 = 19001;
/// Control plane: `/healthz` and `/readyz` port.
pub const HEALTH_PORT: u16 = 8081;

/// Envoy admin port (bound to 127.0.0.1 only).
pub const ENVOY_ADMIN_PORT: u16 = 19000;
/// Envoy Prometheus stats port (`/stats/prometheus`), static in the bootstrap.
pub const ENVOY_STATS_PORT: u16 = 19001;
/// Envoy readiness port (`/ready`), delivered over xDS.
pub const ENVOY_READY_PORT: u16 = 19003;
/// Listener ports below this are shifted by [`PRIVILEGED_PORT_OFFSET`] in pods.
pub const PRIVILEGED_PORT_LIMIT: u16 = 1024;
/// Offset added to privileged listener ports in pods so Envoy needs no privileges.
pub const PRIVILEGED_PORT_OFFSET: u16 = 10000;

/// Start of the URI SAN that names a Gateway in the client certificates its Envoys present
/// to the xDS server: `spiffe://gateway.ferrogate.dev/ns/<namespace>/gateway/<name>`
/// (see [`crate::xds_identity`]).
pub const XDS_IDENTITY_PREFIX: &str = "spiffe://gateway.ferrogate.dev/ns/";
