//! Worlds the runtime's unit tests share.

/// GatewayClass `ferrogate`, Gateway `apps/web` with an HTTP listener on 8080, and Service
/// `apps/echo` (no routes).
pub(crate) const WEB_GATEWAY: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ferrogate}
spec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: apps}
spec:
  gatewayClassName: ferrogate
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: apps}
spec: {ports: [{name: http, port: 8080}]}
";
