//! The net under the translator's validation: routes Envoy rejects are left out of their
//! Gateway, so one tenant's route cannot freeze everyone else's.
//!
//! Envoy answers a RouteConfiguration it rejects with a NACK and keeps serving the last one
//! it accepted; every later change on that Gateway would wait behind the bad route forever.
//! The translator refuses what it knows Envoy refuses; this catches the rest. When the
//! published RouteConfiguration of a Gateway is rejected, the suspects are the routes that
//! differ from the last accepted version. One suspect is held out at once; several are
//! narrowed down by publishing half of them (a NACK keeps that half as the suspects, an ACK
//! lets everything else back in). A held route stays out, with `Accepted: False` and
//! Envoy's message in its status, until its content changes.
//!
//! Pure state and IR filtering: the pipeline feeds it what the xDS server reports and
//! publishes what it returns.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use ferrogate_ir::{GatewayIr, GatewayKey, HttpRoute, ListenerKind, VirtualHost};
use ferrogate_status::{Condition, StatusSet};

/// Published RouteConfiguration versions kept per Gateway to find the accepted one again.
/// Envoys answer within milliseconds, so only a burst of publishes (or a Gateway whose
/// Envoys are not connected) fills it; each entry can hold a large IR alive, so few are
/// kept. Losing the accepted one only makes the suspects more numerous, never wrong.
const HISTORY: usize = 4;

/// The route object an Envoy route entry came from (`httproute/<ns>/<name>/rule/...`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct RouteId {
    /// Lowercase kind, as in the entry name: `httproute` or `grpcroute`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl RouteId {
    fn of_entry(entry_name: &str) -> Option<Self> {
        let mut parts = entry_name.splitn(4, '/');
        let (kind, namespace, name) = (parts.next()?, parts.next()?, parts.next()?);
        Some(Self {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        })
    }
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What the xDS server says about one Gateway's RouteConfiguration type.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RouteXdsView {
    /// Version of the RouteConfiguration type currently published.
    pub published: Option<String>,
    /// Version last ACKed by an Envoy of the Gateway.
    pub acked: Option<String>,
    /// An active NACK: (rejected version, Envoy's message).
    pub nack: Option<(String, String)>,
}

impl RouteXdsView {
    fn rejected_now(&self) -> Option<&(String, String)> {
        self.nack
            .as_ref()
            .filter(|(rejected, _)| Some(rejected) == self.published.as_ref())
    }

    fn accepted_now(&self) -> bool {
        self.published.is_some() && self.published == self.acked && self.rejected_now().is_none()
    }
}

/// A route held out of a Gateway.
#[derive(Clone, Debug, PartialEq)]
struct Held {
    /// Its content when it was held: a change releases it.
    fingerprint: u64,
    message: String,
}

#[derive(Default)]
struct GatewayState {
    held: BTreeMap<RouteId, Held>,
    /// Suspects left out while a narrowed-down half is on trial.
    excluded: BTreeSet<RouteId>,
    /// The other half of the last rejected suspects: if the half on trial is accepted, the
    /// rejection came from these, with this message.
    untried: Vec<RouteId>,
    message: String,
    /// Published IRs by RouteConfiguration version, oldest first.
    history: Vec<(String, Arc<GatewayIr>)>,
    /// The IR of the version an Envoy last accepted.
    baseline: Option<(String, Arc<GatewayIr>)>,
    /// A rejected version no route change explains (not probed again).
    unattributed: Option<String>,
}

/// Quarantine state of every Gateway.
#[derive(Default)]
pub(crate) struct Quarantine {
    gateways: BTreeMap<GatewayKey, GatewayState>,
}

impl Quarantine {
    /// Whether the xDS server reports something to act on (a rejection to narrow down, or a
    /// trial half accepted) that an unchanged input would not otherwise run the pipeline for.
    pub(crate) fn has_work(&self, key: &GatewayKey, view: &RouteXdsView) -> bool {
        let state = self.gateways.get(key);
        match view.rejected_now() {
            Some((rejected, _)) => state.and_then(|s| s.unattributed.as_ref()) != Some(rejected),
            None => view.accepted_now() && state.is_some_and(|s| !s.excluded.is_empty()),
        }
    }

    /// Decides what to publish for `key`, whose translation is `full`, and returns it.
    pub(crate) fn plan(
        &mut self,
        key: &GatewayKey,
        full: &Arc<GatewayIr>,
        view: &RouteXdsView,
    ) -> Arc<GatewayIr> {
        let state = self.gateways.entry(key.clone()).or_default();
        state.advance_baseline(view);
        if !state.held.is_empty() {
            let now = fingerprints(full);
            state.held.retain(|id, held| {
                let keep = now.get(id) == Some(&held.fingerprint);
                if !keep {
                    tracing::info!(gateway = %key, route = %id, "route changed: let back in after Envoy rejected it");
                }
                keep
            });
        }
        if let Some((rejected, message)) = view.rejected_now().cloned() {
            if state.unattributed.as_ref() != Some(&rejected) {
                state.narrow(key, full, &rejected, &message);
            }
        } else if view.accepted_now() {
            state.accepted(key, full);
        }
        let left_out: BTreeSet<&RouteId> = state.held.keys().chain(&state.excluded).collect();
        if left_out.is_empty() {
            return Arc::clone(full);
        }
        Arc::new(without(full, &left_out))
    }

    /// Records that `ir` was published for `key` with RouteConfiguration `version`.
    pub(crate) fn published(
        &mut self,
        key: &GatewayKey,
        version: Option<&str>,
        ir: &Arc<GatewayIr>,
    ) {
        let (Some(version), Some(state)) = (version, self.gateways.get_mut(key)) else {
            return;
        };
        if state.history.last().is_some_and(|(v, _)| v == version) {
            return;
        }
        state.history.push((version.to_string(), Arc::clone(ir)));
        if state.history.len() > HISTORY {
            state.history.remove(0);
        }
    }

    /// Drops what is kept for the published versions older than the accepted one, so a
    /// settled Gateway holds no IR beyond the one it serves.
    pub(crate) fn settle(&mut self, key: &GatewayKey, view: &RouteXdsView) {
        if let Some(state) = self.gateways.get_mut(key) {
            state.advance_baseline(view);
        }
    }

    /// Forgets Gateways that are gone.
    pub(crate) fn retain(&mut self, keep: impl Fn(&GatewayKey) -> bool) {
        self.gateways.retain(|k, _| keep(k));
    }

    /// How many routes are held out, over all Gateways.
    pub(crate) fn held_count(&self) -> usize {
        self.gateways.values().map(|s| s.held.len()).sum()
    }

    /// Gives every held route `Accepted: False` with Envoy's message, on the parent that
    /// names the Gateway it is held out of.
    pub(crate) fn mark_held(&self, statuses: &mut StatusSet) {
        for (key, state) in &self.gateways {
            for (id, held) in &state.held {
                // Found by reading, changed by position: a mutable walk of the persistent
                // vector would copy every chunk of it.
                let positions: Vec<usize> = statuses
                    .routes
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| {
                        r.kind.eq_ignore_ascii_case(&id.kind)
                            && r.namespace == id.namespace
                            && r.name == id.name
                    })
                    .map(|(i, _)| i)
                    .collect();
                for position in positions {
                    let Some(route) = statuses.routes.get_mut(position) else {
                        continue;
                    };
                    let route = std::sync::Arc::make_mut(route);
                    let route_namespace = route.namespace.clone();
                    for parent in route.parents.iter_mut().filter(|p| {
                        p.parent_ref.kind.as_deref().unwrap_or("Gateway") == "Gateway"
                            && p.parent_ref.name == key.name
                            && p.parent_ref
                                .namespace
                                .as_deref()
                                .unwrap_or(&route_namespace)
                                == key.namespace
                    }) {
                        let generation = parent
                            .conditions
                            .first()
                            .and_then(|c| c.observed_generation);
                        let accepted = Condition::not(
                            "Accepted",
                            "UnsupportedValue",
                            format!(
                                "Envoy rejected the configuration of Gateway {key} with this route, so it is left out until it changes: {}",
                                held.message
                            ),
                        )
                        .at_generation(generation);
                        parent.conditions = std::iter::once(accepted)
                            .chain(
                                parent
                                    .conditions
                                    .iter()
                                    .filter(|c| c.type_ != "Accepted")
                                    .cloned(),
                            )
                            .collect();
                    }
                }
            }
        }
    }
}

impl GatewayState {
    /// The published version was accepted. With a half on trial, the rejection came from
    /// the other half: hold it if it is one route, else put half of it on trial. Without
    /// one, everything is let back in; a rejection narrows down again from the new baseline.
    fn accepted(&mut self, key: &GatewayKey, full: &Arc<GatewayIr>) {
        let untried = std::mem::take(&mut self.untried);
        match untried.as_slice() {
            [] => self.excluded.clear(),
            [id] => {
                let fingerprint = fingerprints(full).get(id).copied().unwrap_or_default();
                self.hold(key, id.clone(), fingerprint);
            }
            _ => self.try_half(full, untried),
        }
    }

    fn hold(&mut self, key: &GatewayKey, id: RouteId, fingerprint: u64) {
        tracing::warn!(gateway = %key, route = %id, "Envoy rejected this route; it is left out of the Gateway: {}", self.message);
        let message = self.message.clone();
        self.held.insert(
            id,
            Held {
                fingerprint,
                message,
            },
        );
        self.excluded.clear();
        self.untried.clear();
    }

    /// Publishes the first half of `suspects` with everything already accepted; the other
    /// half and every other unconfirmed change wait.
    fn try_half(&mut self, full: &Arc<GatewayIr>, mut suspects: Vec<RouteId>) {
        let rest = suspects.split_off(suspects.len().div_ceil(2));
        let trial: BTreeSet<RouteId> = suspects.into_iter().collect();
        let baseline = self
            .baseline
            .as_ref()
            .map(|(_, ir)| fingerprints(ir))
            .unwrap_or_default();
        self.excluded = fingerprints(full)
            .into_iter()
            .filter(|(id, fp)| baseline.get(id) != Some(fp))
            .map(|(id, _)| id)
            .chain(rest.iter().cloned())
            .filter(|id| !trial.contains(id) && !self.held.contains_key(id))
            .collect();
        self.untried = rest;
    }

    fn advance_baseline(&mut self, view: &RouteXdsView) {
        let Some(acked) = &view.acked else { return };
        let Some(at) = self.history.iter().rposition(|(v, _)| v == acked) else {
            return;
        };
        self.baseline = Some(self.history[at].clone());
        self.history.drain(..at);
    }

    /// The published version was rejected: hold its one suspect, or put half of them on trial.
    fn narrow(&mut self, key: &GatewayKey, full: &Arc<GatewayIr>, rejected: &str, message: &str) {
        let Some(published) = self
            .history
            .iter()
            .find(|(v, _)| v == rejected)
            .map(|(_, ir)| ir)
        else {
            self.unattributed = Some(rejected.to_string());
            return;
        };
        let baseline = self
            .baseline
            .as_ref()
            .map(|(_, ir)| fingerprints(ir))
            .unwrap_or_default();
        let changed = |fingerprints: BTreeMap<RouteId, u64>| -> Vec<(RouteId, u64)> {
            fingerprints
                .into_iter()
                .filter(|(id, fp)| baseline.get(id) != Some(fp))
                .collect()
        };
        let suspects = changed(fingerprints(published));
        match suspects.as_slice() {
            [] => {
                tracing::warn!(gateway = %key, version = rejected, "Envoy rejected a RouteConfiguration that no route change explains: {message}");
                self.unattributed = Some(rejected.to_string());
            }
            [(id, fingerprint)] => {
                self.message = message.to_string();
                self.hold(key, id.clone(), *fingerprint);
            }
            _ => {
                tracing::info!(gateway = %key, suspects = suspects.len(), "Envoy rejected the RouteConfiguration; narrowing down the routes responsible");
                self.message = message.to_string();
                self.try_half(full, suspects.into_iter().map(|(id, _)| id).collect());
            }
        }
    }
}

/// A content hash of every route object's entries in `ir` (entries in order, with the
/// listener and virtual host they sit in).
fn fingerprints(ir: &GatewayIr) -> BTreeMap<RouteId, u64> {
    let mut hashers: BTreeMap<RouteId, DefaultHasher> = BTreeMap::new();
    for_each_route(ir, |listener, host, route| {
        let Some(id) = RouteId::of_entry(&route.name) else {
            return;
        };
        let hasher = hashers.entry(id).or_default();
        listener.hash(hasher);
        host.name.hash(hasher);
        // The IR is plain data with a stable serialized form; JSON bytes are its content.
        serde_json::to_vec(route).unwrap_or_default().hash(hasher);
    });
    hashers
        .into_iter()
        .map(|(id, h)| (id, h.finish()))
        .collect()
}

fn for_each_route(ir: &GatewayIr, mut visit: impl FnMut(&str, &VirtualHost, &HttpRoute)) {
    for listener in &ir.listeners {
        let hosts: Vec<&VirtualHost> = match &listener.kind {
            ListenerKind::Http(http) => http.virtual_hosts.iter().collect(),
            ListenerKind::Https(https) => {
                https.chains.iter().flat_map(|c| &c.virtual_hosts).collect()
            }
            _ => Vec::new(),
        };
        for host in hosts {
            for route in &host.routes {
                visit(&listener.name, host, route);
            }
        }
    }
}

/// `ir` without the route entries of `left_out`.
fn without(ir: &GatewayIr, left_out: &BTreeSet<&RouteId>) -> GatewayIr {
    let mut ir = ir.clone();
    let keep =
        |route: &HttpRoute| RouteId::of_entry(&route.name).is_none_or(|id| !left_out.contains(&id));
    for listener in &mut ir.listeners {
        let hosts: Vec<&mut VirtualHost> = match &mut listener.kind {
            ListenerKind::Http(http) => http.virtual_hosts.iter_mut().collect(),
            ListenerKind::Https(https) => https
                .chains
                .iter_mut()
                .flat_map(|c| &mut c.virtual_hosts)
                .collect(),
            _ => Vec::new(),
        };
        for host in hosts {
            host.routes.retain(|r| keep(r));
        }
    }
    ir
}

#[cfg(test)]
#[path = "quarantine_tests.rs"]
mod tests;
