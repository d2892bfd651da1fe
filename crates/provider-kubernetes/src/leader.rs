//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! Every replica serves xDS; only the leader writes statuses and infra. The holder renews
//! the Lease every `renew_every`; another replica takes over once a renewal is
//! `lease_duration` late. Every write carries the Lease's resourceVersion, so two replicas
//! racing for an expired Lease cannot both win (the loser gets a 409 and stays a follower).
//! A leader that cannot renew steps down before its Lease expires, so there is never a
//! period with two writers.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Where the Lease lives and how it is held.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Namespace of the Lease (the controller's).
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews (and followers check).
    pub renew_every: Duration,
}

impl LeaderConfig {
    /// Defaults as client-go's leader election uses them (15 s lease, 2 s retry).
    pub fn new(namespace: impl Into<String>, lease_name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(2),
        }
    }
}

/// Runs the election loop.
pub struct LeaderElector {
    config: LeaderConfig,
    api: Api<Lease>,
}

impl LeaderElector {
    /// An elector using `client`.
    pub fn new(client: Client, config: LeaderConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        Self { config, api }
    }

    /// Publishes `true` on `leader` while this replica holds the Lease. Runs until
    /// `cancel`; then releases the Lease if held, so a successor takes over at once.
    pub async fn run(self, leader: watch::Sender<bool>, cancel: CancellationToken) {
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            let held = match self.try_acquire_or_renew().await {
                Ok(held) => {
                    if held {
                        last_renewal = Some(tokio::time::Instant::now());
                    }
                    held
                }
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.config.lease_name, "cannot read or write the leader Lease");
                    // Keep leading only while the Lease we last renewed is surely still ours.
                    let margin = self.config.lease_duration.saturating_sub(self.config.renew_every * 2);
                    last_renewal.is_some_and(|t| t.elapsed() < margin)
                }
            };
            if leader.send_if_modified(|l| std::mem::replace(l, held) != held) {
                tracing::info!(identity = %self.config.identity, leader = held, "leadership changed");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.config.renew_every) => {}
            }
        }
        if *leader.borrow() {
            self.release().await;
            leader.send_replace(false);
        }
    }

    /// One round: take a free or expired Lease, renew ours, or observe another holder.
    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let me = &self.config.identity;
        let duration_s = self.config.lease_duration.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.config.lease_name.clone()), namespace: Some(self.config.namespace.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(duration_s),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false), // another replica was first
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(secs)) => now.duration_since(*renewed) > SignedDuration::from_secs(secs.into()),
            _ => true,
        };
        if holder != *me && !holder.is_empty() && !expired {
            return Ok(false);
        }
        if holder != *me {
            spec.holder_identity = Some(me.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(duration_s);
        // `replace` sends the resourceVersion we read: a concurrent writer makes this a 409.
        match self.api.replace(&self.config.lease_name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (empty holder) so another replica does not wait for expiry.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.lease_name).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        if let Err(e) = self.api.replace(&self.config.lease_name, &PostParams::default(), &lease).await {
            tracing::warn!(error = %e, "cannot release the leader Lease");
        }
    }
}
