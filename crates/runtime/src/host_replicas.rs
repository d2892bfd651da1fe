//! Standalone mode's replica count per Gateway, with a warning when the EnvoyProxy asks for
//! one that cannot run here (see `ferrogate_infra_render::host_replicas`). Every full
//! pipeline run renders the processes again, so a warning is logged once per Gateway and
//! requested count, not on every run, where it would bury everything else.

use std::collections::BTreeMap;

use ferrogate_api::envoyproxy::EnvoyProxySpec;
use ferrogate_infra_render::{HostPortPlan, host_replicas};
use ferrogate_ir::GatewayKey;

/// The requested counts already warned about, per Gateway.
#[derive(Debug, Default)]
pub(crate) struct ReplicaWarnings {
    warned: BTreeMap<GatewayKey, Option<i32>>,
}

impl ReplicaWarnings {
    /// Forgets the Gateways not in `gateways` (a Gateway that comes back is warned again).
    pub(crate) fn retain<T>(&mut self, gateways: &BTreeMap<GatewayKey, T>) {
        self.warned.retain(|key, _| gateways.contains_key(key));
    }

    /// How many Envoy processes the Gateway `key` in `slot` runs, given its effective
    /// parameters `proxy`; warns when that is not what `proxy` asks for.
    pub(crate) fn count(
        &mut self,
        key: &GatewayKey,
        proxy: &EnvoyProxySpec,
        plan: &HostPortPlan,
        slot: u32,
    ) -> u32 {
        let replicas = host_replicas(proxy, plan, slot);
        match replicas.adjustment() {
            Some(why) => {
                let before = self.warned.insert(key.clone(), replicas.requested);
                if before != Some(replicas.requested) {
                    tracing::warn!(gateway = %key, requested = ?replicas.requested, running = replicas.count, "{why}");
                }
            }
            None => {
                self.warned.remove(key);
            }
        }
        replicas.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(n: i32) -> EnvoyProxySpec {
        yaml_serde::from_str(&format!(
            "provider: {{ kubernetes: {{ envoyDeployment: {{ replicas: {n} }} }} }}"
        ))
        .unwrap()
    }

    #[test]
    fn an_impossible_count_is_remembered_until_it_changes() {
        let (mut w, plan, key) = (
            ReplicaWarnings::default(),
            HostPortPlan::default(),
            GatewayKey::new("n", "g"),
        );
        assert_eq!(w.count(&key, &asking(9), &plan, 0), 4);
        assert_eq!(w.warned.get(&key), Some(&Some(9)));
        assert_eq!(w.count(&key, &asking(0), &plan, 0), 1);
        assert_eq!(
            w.warned.get(&key),
            Some(&Some(0)),
            "a new request is warned about again"
        );
        assert_eq!(w.count(&key, &asking(2), &plan, 0), 2);
        assert!(w.warned.is_empty(), "a possible count clears the memory");
        w.count(&key, &asking(9), &plan, 0);
        w.retain(&BTreeMap::<GatewayKey, ()>::new());
        assert!(w.warned.is_empty());
    }
}
