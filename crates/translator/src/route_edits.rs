//! The route-edit path of incremental translation: when only routes changed since the last
//! translation (same options, and none of the changed routes reaches a Service that a
//! BackendTLSPolicy targets, before or now, since settling a policy reads every route that
//! does), the last output is patched instead of walking every route again. The policies'
//! statuses and the backends they block stay as the last translation settled them: no
//! route that counts for them changed.
//!
//! A route's outcome (where it attaches, the listeners it counts on, its status) depends
//! only on its conversion and the Gateways' contexts, and a route edit leaves the contexts
//! as they were. So the changed routes are converted and attached again; their old outcomes
//! come out of the listener counts, the status list and the attachment lists of the
//! Gateways they reached, and the new ones go in at their place in route order. Only the
//! Gateways a changed route reached, before or now, assemble their IR again. At 100 000
//! routes, the walk over every route was most of a one-route edit's CPU.
//!
//! The property tests `a_route_edit_equals_a_full_translation` and
//! `a_route_edit_beside_backend_tls_policies_equals_a_full_translation` check the output
//! against a whole translation over random route edits.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use ferrogate_ir::GatewayKey;
use ferrogate_status::RouteStatus;
use ferrogate_store::{ObjectRef, Snapshot};

use crate::backend::Resolver;
use crate::incremental::Kept;
use crate::routes::{self, Attachment, Outcome, RouteInput, Routes};
use crate::{Options, Translation, gateway, gatewayclass, ir_build};

/// What the last translation settled, for the next route edit.
pub(crate) struct Settled {
    /// The Gateways, in the order route outcomes name them by position.
    pub gateway_keys: Vec<GatewayKey>,
    /// Every listener's attachedRoutes, by Gateway position.
    pub counts: Vec<Vec<i32>>,
    /// What IR assembly reads of all routes: every backend a route resolved, by name, and
    /// the (Gateway, backend) pairs BackendTLSPolicies block (see [`Routes`]). A backend only
    /// a deleted route used stays until the next whole translation: a name is one Service
    /// port of an unchanged snapshot, so it is still the same backend, and no Gateway's IR
    /// reads a backend its routes do not name.
    pub routes: Routes,
    pub translation: Translation,
}

/// One changed route: its outcome in the last translation and now (with its conversion).
struct Edit {
    before: Option<Arc<Outcome>>,
    now: Option<(Arc<Outcome>, Arc<RouteInput>)>,
}

/// The translation of `snapshot`, patched from the last one (of `before`, with the same
/// options) when `changed` and `moved` (objects whose content is the same but whose place
/// in the input order is not) hold routes only; `None` when a whole translation is needed.
/// A moved route is taken out and placed again like a changed one. Until it answers
/// `Some`, nothing of `kept` but these routes' conversions was touched (which a whole
/// translation drops anyway).
pub(crate) fn translate(
    before: &Snapshot,
    snapshot: &Snapshot,
    options: &Options,
    changed: &[ObjectRef],
    moved: &[ObjectRef],
    kept: &mut Kept,
) -> Option<Translation> {
    let changed: Vec<&ObjectRef> = changed.iter().chain(moved).collect();
    // Each patched route costs a few searches of the route order, a whole walk a pointer
    // copy per route: past a thirty-second of the routes (a directory reload, a resync),
    // the walk is cheaper.
    if changed.len() * 32 > routes::route_count(snapshot).max(2048)
        || !changed.iter().all(|c| c.kind.is_route())
    {
        return None;
    }
    let mut settled = kept.settled.take()?;
    let classes = gatewayclass::translate(snapshot, options);
    let mut gateways = gateway::collect(snapshot, &classes);
    let same_gateways = gateways.len() == settled.gateway_keys.len()
        && gateways
            .iter()
            .zip(&settled.counts)
            .zip(&settled.gateway_keys)
            .all(|((g, counts), key)| g.key == *key && g.listeners.len() == counts.len());
    if !same_gateways {
        return None;
    }

    let resolver = Resolver::new(snapshot);
    let mut edits = Vec::with_capacity(changed.len());
    for c in &changed {
        let before_conversion = kept.routes.take(c.kind, &c.key);
        // A route that counts for a BackendTLSPolicy (its status then waits for the policy
        // to settle, which `patch_statuses` would refuse too) takes the whole path.
        if before_conversion
            .as_ref()
            .is_some_and(|k| !k.input.tls_policies.is_empty())
        {
            return None;
        }
        let before_outcome = before_conversion.and_then(|k| k.outcome);
        if before.contains(c) && before_outcome.is_none() {
            return None; // not kept (a translation that kept nothing): no old outcome to take out
        }
        let now = match kept.routes.convert_again(&resolver, c.kind, &c.key) {
            Some(conversion) if !conversion.input.tls_policies.is_empty() => {
                return None; // it counts for a BackendTLSPolicy now
            }
            Some(conversion) => {
                let outcome = Arc::new(routes::attach_one(snapshot, &gateways, &conversion.input));
                conversion.outcome = Some(Arc::clone(&outcome));
                Some((outcome, Arc::clone(&conversion.input)))
            }
            None => None,
        };
        edits.push(Edit {
            before: before_outcome,
            now,
        });
    }

    let statuses = patch_statuses(
        &settled.translation.statuses.routes,
        before,
        snapshot,
        &edits,
    )?;
    let counts = patch_counts(&settled.counts, &edits)?;
    let attachments = patch_attachments(kept, snapshot, &edits)?;

    // Nothing can fail from here on.
    for (gw, counts) in gateways.iter_mut().zip(&counts) {
        for (listener, &n) in gw.listeners.iter_mut().zip(counts) {
            listener.attached_routes = n;
        }
    }
    for (_, input) in edits.iter().filter_map(|e| e.now.as_ref()) {
        settled.routes.add_backends(&input.backends);
    }
    let mut translation = settled.translation;
    for (key, attachments) in attachments {
        let (Some(built), Some(gw)) = (
            kept.gateways.get_mut(&key),
            gateways.iter().find(|g| g.key == key),
        ) else {
            continue;
        };
        built.attachments = attachments;
        let attached: Vec<&Attachment> = built.attachments.iter().map(|a| &**a).collect();
        let (ir, infra) = ir_build::build(gw, &attached, &settled.routes, options, &mut built.memo);
        built.ir = Arc::new(ir);
        built.infra = infra.clone();
        translation
            .gateways
            .insert(key.clone(), Arc::clone(&built.ir));
        translation.infra.insert(key, infra);
    }
    translation.statuses.gateway_classes = classes.statuses;
    translation.statuses.gateways = gateways.iter().map(|g| g.status(options)).collect();
    translation.statuses.listener_sets = gateways
        .iter()
        .flat_map(|g| g.listener_set_statuses())
        .collect();
    translation.statuses.routes = statuses;
    kept.settled = Some(Settled {
        counts,
        translation: translation.clone(),
        ..settled
    });
    Some(translation)
}

/// The last route statuses without the changed routes' old ones (found in `before`'s route
/// order) and with their new ones (placed in `snapshot`'s). `None` when a status is not
/// where the order says (then a whole translation decides).
fn patch_statuses(
    last: &imbl::Vector<Arc<RouteStatus>>,
    before: &Snapshot,
    snapshot: &Snapshot,
    edits: &[Edit],
) -> Option<imbl::Vector<Arc<RouteStatus>>> {
    let mut statuses = last.clone();
    for old in edits.iter().filter_map(|e| e.before.as_ref()) {
        let status = old.final_status()?;
        let position = search(&statuses, before, status)?.ok()?;
        if !Arc::ptr_eq(&statuses[position], status) {
            return None;
        }
        statuses.remove(position);
    }
    for (new, _) in edits.iter().filter_map(|e| e.now.as_ref()) {
        let status = new.final_status()?;
        let position = search(&statuses, snapshot, status)?.err()?;
        statuses.insert(position, Arc::clone(status));
    }
    Some(statuses)
}

/// Where `status`'s route is, or would be, among `statuses` in `snapshot`'s route order;
/// `None` when a status names a route `snapshot` does not have.
fn search(
    statuses: &imbl::Vector<Arc<RouteStatus>>,
    snapshot: &Snapshot,
    status: &RouteStatus,
) -> Option<Result<usize, usize>> {
    let target = routes::route_order(snapshot, &status.kind, &status.namespace, &status.name)?;
    let mut known = true;
    let found = statuses.binary_search_by(|s| {
        match routes::route_order(snapshot, &s.kind, &s.namespace, &s.name) {
            Some(order) => order.cmp(&target),
            None => {
                known = false;
                Ordering::Equal
            }
        }
    });
    known.then_some(found)
}

/// Every listener's attachedRoutes after the edits.
fn patch_counts(last: &[Vec<i32>], edits: &[Edit]) -> Option<Vec<Vec<i32>>> {
    let mut counts = last.to_vec();
    for edit in edits {
        let old = edit.before.iter().flat_map(|o| o.increments());
        for &(gateway, listener) in old {
            *counts.get_mut(gateway)?.get_mut(listener)? -= 1;
        }
        let new = edit.now.iter().flat_map(|(o, _)| o.increments());
        for &(gateway, listener) in new {
            *counts.get_mut(gateway)?.get_mut(listener)? += 1;
        }
    }
    Some(counts)
}

/// The attachments, in route order, of every Gateway with kept IR that a changed route
/// reached before or reaches now.
fn patch_attachments(
    kept: &Kept,
    snapshot: &Snapshot,
    edits: &[Edit],
) -> Option<BTreeMap<GatewayKey, Vec<Arc<Attachment>>>> {
    // The old attachments are alive (the edits hold them), so their addresses name them.
    let old: HashSet<*const Attachment> = edits
        .iter()
        .filter_map(|e| e.before.as_ref())
        .flat_map(|o| o.attachments())
        .map(Arc::as_ptr)
        .collect();
    let mut new: BTreeMap<&GatewayKey, Vec<&Arc<Attachment>>> = BTreeMap::new();
    for a in edits
        .iter()
        .filter_map(|e| e.now.as_ref())
        .flat_map(|(o, _)| o.attachments())
    {
        new.entry(&a.gateway).or_default().push(a);
    }
    let mut reached: BTreeSet<&GatewayKey> = new.keys().copied().collect();
    reached.extend(
        edits
            .iter()
            .filter_map(|e| e.before.as_ref())
            .flat_map(|o| o.attachments())
            .map(|a| &a.gateway),
    );
    let mut out = BTreeMap::new();
    for key in reached {
        let Some(built) = kept.gateways.get(key) else {
            continue; // no IR kept: a Gateway that is not programmed
        };
        let mut attachments: Vec<Arc<Attachment>> = built
            .attachments
            .iter()
            .filter(|a| !old.contains(&Arc::as_ptr(a)))
            .cloned()
            .collect();
        // A route's attachments to one Gateway stay together, in the order it made them.
        let mut last_route = None;
        let mut at = 0;
        for a in new.get(key).into_iter().flatten() {
            let order = attachment_order(snapshot, a)?;
            if last_route != Some(order) {
                let mut known = true;
                at = attachments.partition_point(|b| match attachment_order(snapshot, b) {
                    Some(o) => o < order,
                    None => {
                        known = false;
                        false
                    }
                });
                if !known {
                    return None;
                }
                // Past an equal route would mean its old attachments were not taken out.
                if attachments
                    .get(at)
                    .is_some_and(|b| attachment_order(snapshot, b) == Some(order))
                {
                    return None;
                }
                last_route = Some(order);
            }
            attachments.insert(at, Arc::clone(a));
            at += 1;
        }
        out.insert(key.clone(), attachments);
    }
    Some(out)
}

fn attachment_order(snapshot: &Snapshot, a: &Attachment) -> Option<(u8, u64)> {
    let (kind, namespace, name) = a.route();
    routes::route_order(snapshot, kind, namespace, name)
}
