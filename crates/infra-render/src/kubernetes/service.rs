//! The Service in front of the Envoy pods: one port per Gateway port (`port` = listener
//! port, `targetPort` = container port, which is +10000 below 1024), type `LoadBalancer`
//! unless `envoyService.type` says otherwise, `externalTrafficPolicy: Local` by default (keeps
//! client source addresses).
//!
//! `Gateway.spec.addresses` (IPAddress values) make a LoadBalancer announce that address:
//! the first becomes `spec.loadBalancerIP` (as GEP-1762 suggests; it wins over
//! `envoyService.loadBalancerIP`) and all of them, comma-joined, the
//! `metallb.io/loadBalancerIPs` annotation, unless the annotation is already given through
//! `envoyService.annotations` or `Gateway.spec.infrastructure.annotations` (an explicit
//! annotation wins). Load-balancer fields are set only on a LoadBalancer Service (the API
//! server rejects some of them elsewhere); `externalTrafficPolicy` only on NodePort and
//! LoadBalancer.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use ferrogate_api::envoyproxy::{ExternalTrafficPolicy, KubernetesServiceSpec, ServiceType};

use super::{Ctx, selector_labels};

/// MetalLB's annotation choosing the load-balancer addresses of a Service.
pub const METALLB_IPS_ANNOTATION: &str = "metallb.io/loadBalancerIPs";

pub(super) fn render(ctx: &Ctx<'_>) -> Option<Service> {
    if ctx.infra.ports.is_empty() {
        return None;
    }
    let default_spec = KubernetesServiceSpec::default();
    let svc = ctx.proxy.service().unwrap_or(&default_spec);
    let type_ = svc.type_.unwrap_or_default();
    let load_balancer = type_ == ServiceType::LoadBalancer;
    let name = svc.name.clone().unwrap_or_else(|| ctx.name.clone());
    let mut metadata = ctx.metadata(name, &svc.labels, &svc.annotations);
    if load_balancer && !ctx.infra.addresses.is_empty() {
        metadata
            .annotations
            .get_or_insert_with(Default::default)
            .entry(METALLB_IPS_ANNOTATION.to_string())
            .or_insert_with(|| ctx.infra.addresses.join(","));
    }
    let ports = ctx
        .infra
        .ports
        .iter()
        .map(|p| ServicePort {
            name: Some(p.name.clone()),
            protocol: Some(protocol(p.protocol).into()),
            port: i32::from(p.port),
            target_port: Some(IntOrString::Int(i32::from(p.container_port))),
            ..ServicePort::default()
        })
        .collect();
    let external = matches!(type_, ServiceType::NodePort | ServiceType::LoadBalancer);
    Some(Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(type_.as_str().into()),
            selector: Some(selector_labels(ctx.infra)),
            ports: Some(ports),
            external_traffic_policy: external.then(|| {
                svc.external_traffic_policy
                    .unwrap_or(ExternalTrafficPolicy::Local)
                    .as_str()
                    .to_string()
            }),
            load_balancer_class: lb(load_balancer, svc.load_balancer_class.clone()),
            load_balancer_ip: lb(
                load_balancer,
                ctx.infra
                    .addresses
                    .first()
                    .cloned()
                    .or_else(|| svc.load_balancer_ip.clone()),
            ),
            load_balancer_source_ranges: lb(load_balancer, svc.load_balancer_source_ranges.clone()),
            allocate_load_balancer_node_ports: lb(
                load_balancer,
                svc.allocate_load_balancer_node_ports,
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

fn lb<T>(load_balancer: bool, v: Option<T>) -> Option<T> {
    if load_balancer { v } else { None }
}

pub(super) fn protocol(p: ferrogate_ir::PortProtocol) -> &'static str {
    match p {
        ferrogate_ir::PortProtocol::Tcp => "TCP",
        ferrogate_ir::PortProtocol::Udp => "UDP",
    }
}
