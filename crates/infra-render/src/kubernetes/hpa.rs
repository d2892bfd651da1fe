//! The HorizontalPodAutoscaler (autoscaling/v2), when `envoyHpa` is set. Defaults:
//! `minReplicas` 1, `maxReplicas` = `minReplicas` (raised to it when lower), metrics 80%
//! average CPU utilization (the container has a CPU request by default).

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use super::Ctx;

/// Default target: average CPU utilization in percent of the request.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

pub(super) fn render(ctx: &Ctx<'_>) -> Option<HorizontalPodAutoscaler> {
    let hpa = ctx.proxy.hpa()?;
    let min = hpa.min_replicas.unwrap_or(1).max(1);
    let max = hpa.max_replicas.unwrap_or(min).max(min);
    let metrics = hpa.metrics.clone().unwrap_or_else(|| {
        vec![MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                    ..MetricTarget::default()
                },
            }),
            ..MetricSpec::default()
        }]
    });
    Some(HorizontalPodAutoscaler {
        metadata: ctx.metadata(ctx.name.clone(), &BTreeMap::new(), &BTreeMap::new()),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: ctx.deployment_name(),
            },
            min_replicas: Some(min),
            max_replicas: max,
            metrics: Some(metrics),
            behavior: hpa.behavior.clone(),
        }),
        ..HorizontalPodAutoscaler::default()
    })
}
