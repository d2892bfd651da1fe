//! How many Envoy processes a Gateway runs in standalone mode.
//!
//! `spec.provider.kubernetes.envoyDeployment.replicas` of the Gateway's EnvoyProxy is the
//! Deployment's replica count in a cluster. In standalone mode it is the number of local
//! Envoy processes that serve the Gateway's listeners together (they all bind the same ports
//! with `SO_REUSEPORT`), so when one process crashes the others keep accepting connections
//! and only the requests in flight on the dead one are lost.
//!
//! The count is capped by the room in the Gateway's port block ([`HostPortPlan::max_replicas`]),
//! and below 1 it is raised to 1: a Gateway with no Envoy would serve nothing, which nobody
//! asks for on purpose in standalone mode. The HorizontalPodAutoscaler settings
//! (`envoyHpa`) are a Kubernetes feature and are ignored here.

use ferrogate_api::envoyproxy::EnvoyProxySpec;

use crate::HostPortPlan;

/// The replica count of one Gateway in standalone mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostReplicas {
    /// Envoy processes to run, from 1 to `max`.
    pub count: u32,
    /// What the EnvoyProxy asked for (`None`: unset, which means 1).
    pub requested: Option<i32>,
    /// The most the Gateway's port block has room for.
    pub max: u32,
}

impl HostReplicas {
    /// Why [`HostReplicas::count`] differs from what the EnvoyProxy asked for, as a sentence
    /// for a warning; `None` when it does not.
    pub fn adjustment(&self) -> Option<String> {
        let requested = self.requested?;
        if requested < 1 {
            Some(format!(
                "replicas: {requested} is not possible in standalone mode (a Gateway without \
                 an Envoy would serve nothing); running 1 Envoy process"
            ))
        } else if i64::from(requested) > i64::from(self.max) {
            Some(format!(
                "replicas: {requested} does not fit in standalone mode: each replica needs its \
                 own admin and stats port and the Gateway's port block has room for {max}; \
                 running {max} Envoy processes",
                max = self.max
            ))
        } else {
            None
        }
    }
}

/// The replica count for the Gateway in `slot` whose effective parameters are `proxy`.
pub fn host_replicas(proxy: &EnvoyProxySpec, ports: &HostPortPlan, slot: u32) -> HostReplicas {
    let requested = proxy.deployment().and_then(|d| d.replicas);
    let max = ports.max_replicas(slot);
    let wanted = u32::try_from(requested.unwrap_or(1)).unwrap_or(0);
    HostReplicas {
        count: wanted.clamp(1, max),
        requested,
        max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(yaml: &str) -> EnvoyProxySpec {
        yaml_serde::from_str(yaml).unwrap()
    }

    fn replicas(n: i32) -> EnvoyProxySpec {
        proxy(&format!(
            "provider: {{ kubernetes: {{ envoyDeployment: {{ replicas: {n} }} }} }}"
        ))
    }

    #[test]
    fn unset_replicas_run_one_process_without_a_warning() {
        let r = host_replicas(&EnvoyProxySpec::default(), &HostPortPlan::default(), 0);
        assert_eq!((r.count, r.requested, r.max), (1, None, 4));
        assert_eq!(r.adjustment(), None);
        let no_deployment = proxy("provider: { kubernetes: { envoyService: { type: NodePort } } }");
        let r = host_replicas(&no_deployment, &HostPortPlan::default(), 0);
        assert_eq!(r.count, 1);
    }

    #[test]
    fn replicas_that_fit_are_taken_as_they_are() {
        for n in 1..=4 {
            let r = host_replicas(&replicas(n), &HostPortPlan::default(), 3);
            assert_eq!(r.count, n as u32);
            assert_eq!(r.adjustment(), None);
        }
    }

    #[test]
    fn too_many_replicas_are_capped_with_a_reason() {
        let r = host_replicas(&replicas(10), &HostPortPlan::default(), 0);
        assert_eq!(r.count, 4);
        let why = r.adjustment().unwrap();
        assert!(
            why.contains("replicas: 10") && why.contains("room for 4"),
            "{why}"
        );
        let r = host_replicas(&replicas(i32::MAX), &HostPortPlan::default(), 0);
        assert_eq!(r.count, 4);
    }

    #[test]
    fn fewer_than_one_replica_runs_one_with_a_reason() {
        for n in [0, -3] {
            let r = host_replicas(&replicas(n), &HostPortPlan::default(), 0);
            assert_eq!(r.count, 1);
            assert!(r.adjustment().unwrap().contains("running 1 Envoy process"));
        }
    }

    #[test]
    fn the_autoscaler_is_ignored() {
        let with_hpa = proxy(
            "provider: { kubernetes: { envoyDeployment: { replicas: 2 }, envoyHpa: { minReplicas: 3, maxReplicas: 5 } } }",
        );
        let r = host_replicas(&with_hpa, &HostPortPlan::default(), 0);
        assert_eq!(r.count, 2);
        let hpa_only =
            proxy("provider: { kubernetes: { envoyHpa: { minReplicas: 3, maxReplicas: 5 } } }");
        assert_eq!(
            host_replicas(&hpa_only, &HostPortPlan::default(), 0).count,
            1
        );
    }
}
