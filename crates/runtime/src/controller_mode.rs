//! Controller mode's inputs and outputs around the shared run loop ([`crate::run_loop`]).

use std::sync::Arc;

use ferrogate_store::Snapshot;
use tokio::sync::watch;

use crate::Metrics;
use crate::controller_infra::observe;
use crate::controller_sinks::{InfraWork, StatusWork};
use crate::latest_wins::Sink;
use crate::pipeline::Pipeline;

/// Controller mode around the shared run loop: the watchers' snapshot, the provisioned
/// objects and leadership in; status subresources, Events and Kubernetes infra out, by the
/// leader only.
pub(crate) struct ControllerMode {
    pub served: watch::Receiver<Vec<ferrogate_provider_kubernetes::Discovered>>,
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    pub owned: watch::Receiver<Option<Arc<ferrogate_infra_manager::kubernetes::OwnedState>>>,
    pub leader: watch::Receiver<bool>,
    pub events: tokio::sync::mpsc::Receiver<ferrogate_provider_kubernetes::ReflectorEvent>,
    /// Nothing is translated before every watcher has listed once.
    pub synced: bool,
    /// The provisioned objects and leadership the prepared run saw.
    pub current: Option<(
        Option<Arc<ferrogate_infra_manager::kubernetes::OwnedState>>,
        bool,
    )>,
    pub was_leader: bool,
    /// Bumped at every gain of leadership: the status sink then forgets what it wrote
    /// before, since another replica may have written meanwhile.
    pub leadership: u64,
    pub metrics: Metrics,
    /// The load balancer's pools, to judge static addresses (`AddressNotUsable`).
    pub static_address_pools: crate::StaticAddressPools,
    pub status_sink: Sink<StatusWork>,
    pub infra_sink: Sink<InfraWork>,
}

impl crate::run_loop::Mode for ControllerMode {
    async fn changed(&mut self) -> crate::run_loop::Wake {
        use crate::run_loop::Wake;
        let gone = |r: Result<(), watch::error::RecvError>| {
            if r.is_err() { Wake::Stop } else { Wake::Run }
        };
        tokio::select! {
            r = self.served.changed() => {
                if r.is_err() { return Wake::Stop }
                self.served.borrow_and_update(); // the status sink reads it
                Wake::Skip // the restarted watchers publish a complete snapshot next
            }
            r = self.snapshot.changed() => gone(r),
            r = self.owned.changed() => gone(r),
            r = self.leader.changed() => gone(r),
            event = self.events.recv() => match event {
                None => Wake::Stop,
                // The first snapshot is published together with `Synced`; anything else
                // reported is only logged by the provider.
                Some(ferrogate_provider_kubernetes::ReflectorEvent::Synced) => {
                    self.synced = true;
                    Wake::Run
                }
                Some(_) => Wake::Skip,
            },
        }
    }

    fn prepare(&mut self, pipeline: &mut Pipeline) -> Option<Arc<Snapshot>> {
        if !self.synced {
            return None;
        }
        let snapshot = self.snapshot.borrow_and_update().clone();
        let owned = self.owned.borrow_and_update().clone();
        let leader = *self.leader.borrow_and_update();
        self.metrics.leader.set(i64::from(leader));
        pipeline.options.provisioned = Some(observe(&snapshot, owned.as_deref()));
        let judged = self
            .static_address_pools
            .judge(&snapshot, &pipeline.options.controller_name);
        pipeline.options.unusable_addresses = judged.unusable;
        pipeline.options.static_addresses = judged.assigned;
        pipeline.options.static_addresses_judged = !self.static_address_pools.0.is_empty();
        self.current = Some((owned, leader));
        Some(snapshot)
    }

    fn deliver(&mut self, output: crate::pipeline::RunOutput, snapshot: Arc<Snapshot>) {
        let Some((owned, leader)) = self.current.take() else {
            return;
        };
        if !leader {
            self.was_leader = false;
            return;
        }
        if !self.was_leader {
            self.leadership += 1;
            self.was_leader = true;
        }
        // Gateway statuses depend on the provisioned objects' state: until their watchers
        // have listed, a status would say "no address" and flip right after.
        let Some(owned) = owned else { return };
        // Status writes and applies run in their own tasks: a slow API server delays them,
        // not the next translation and push.
        self.status_sink.send(StatusWork {
            statuses: output.statuses,
            snapshot: snapshot.clone(),
            leadership: self.leadership,
        });
        self.infra_sink.send(InfraWork {
            infra: output.infra,
            snapshot,
            owned,
        });
    }
}
