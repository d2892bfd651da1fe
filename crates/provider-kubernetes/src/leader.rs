//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! Every replica serves xDS; only the leader writes statuses and infra. The holder renews
//! the Lease every `renew_every`; another replica takes over once a renewal is
//! `lease_duration` late. Every write carries the Lease's resourceVersion, so two replicas
//! racing for an expired Lease cannot both win (the loser gets a 409 and stays a follower).
//! A leader that cannot renew steps down before its Lease expires, so there is never a
//! period with two writers.

use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
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
    pub fn new(
        namespace: impl Into<String>,
        lease_name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
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
        let mut last_renewal: Option<Instant> = None;
        let mut observed: Option<Observed> = None;
        let deadline = self.renew_deadline();
        loop {
            // A round that hangs (a slow or partitioned API server) must not keep us leading:
            // it gets only the time left before our renewal deadline.
            let budget = match last_renewal {
                Some(t) if *leader.borrow() => deadline
                    .saturating_sub(t.elapsed())
                    .max(Duration::from_millis(100)),
                _ => deadline,
            };
            let round =
                tokio::time::timeout(budget, self.try_acquire_or_renew(&mut observed)).await;
            let held = match round {
                Ok(Ok(held)) => {
                    if held {
                        last_renewal = Some(Instant::now());
                    }
                    held
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, lease = %self.config.lease_name, "cannot read or write the leader Lease");
                    last_renewal.is_some_and(|t| t.elapsed() < deadline)
                }
                Err(_) => {
                    tracing::warn!(lease = %self.config.lease_name, ?budget, "the leader Lease round timed out");
                    last_renewal.is_some_and(|t| t.elapsed() < deadline)
                }
            };
            if !held {
                last_renewal = None;
            }
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

    /// How long a leader may go without a successful renewal before it stops acting as
    /// leader: two renewal periods short of the Lease duration, so it steps down before any
    /// follower can see the Lease expire (client-go's RenewDeadline plays this part).
    fn renew_deadline(&self) -> Duration {
        self.config
            .lease_duration
            .saturating_sub(self.config.renew_every * 2)
            .max(self.config.renew_every)
    }

    /// One round: take a free or expired Lease, renew ours, or observe another holder.
    ///
    /// Expiry is judged by this replica's own clock: the Lease counts as expired once its
    /// record (holder, renew time, resourceVersion) has not changed for `lease_duration` since
    /// we first saw it, as client-go does. The holder's `renewTime` is never compared with our
    /// wall clock, so a holder whose clock runs behind is not deposed while it renews, and one
    /// whose clock runs ahead does not keep the Lease after it stopped.
    async fn try_acquire_or_renew(
        &self,
        observed: &mut Option<Observed>,
    ) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let me = &self.config.identity;
        let duration_s = self.config.lease_duration.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
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
        let record = Observed::record_of(&lease);
        let seen_at = match observed {
            Some(o) if o.record == record => o.at,
            _ => {
                let at = Instant::now();
                *observed = Some(Observed { record, at });
                at
            }
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let held_for = spec
            .lease_duration_seconds
            .map_or(self.config.lease_duration, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
        let expired = seen_at.elapsed() > held_for;
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
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (empty holder) so another replica does not wait for expiry.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.lease_name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        if let Err(e) = self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, "cannot release the leader Lease");
        }
    }
}

/// The last Lease record this replica saw, and when (on its own monotonic clock).
#[derive(Debug)]
struct Observed {
    record: (Option<String>, Option<String>, Option<String>),
    at: Instant,
}

impl Observed {
    fn record_of(lease: &Lease) -> (Option<String>, Option<String>, Option<String>) {
        let spec = lease.spec.as_ref();
        (
            spec.and_then(|s| s.holder_identity.clone()),
            spec.and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0.to_string()),
            lease.metadata.resource_version.clone(),
        )
    }
}
