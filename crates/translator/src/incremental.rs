//! Incremental translation: the same output as [`crate::translate`], at the cost of what
//! changed since the last translation instead of the whole world.
//!
//! Three things are kept between translations, all invalidated from the store's diff of
//! the two snapshots:
//! - each route's conversion (`route_cache`): a one-route edit converts one route;
//! - each Gateway's IR and infra IR ([`Built`]): a Gateway whose own objects did not change
//!   and whose attachments (same listeners, host names and conversions), backends and
//!   blocked backends are what they were keeps its last IR, so it costs no IR assembly
//!   here and no xDS work downstream (the pipeline sees the same `Arc`);
//! - each route's attachment outcome (`routes::Outcome`: the listeners it counts on, its
//!   attachments, the policy ancestors it names, and its status when no BackendTLSPolicy
//!   can change it): it depends only on the conversion and the Gateways' contexts, so it is
//!   replayed while both are unchanged, and the route's status is the same `Arc`.
//!
//! Replaying still walks every route in order, because one route can change what another
//! gets (the first resolution of a backend stays, policy ancestors are counted in route
//! order) and every BackendTLSPolicy is settled from all of them; a walk copies pointers,
//! not strings. The property test `incremental_equals_full` checks the output over random
//! sequences of edits of every kind.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrogate_ir::{GatewayIr, GatewayKey, InfraIr};
use ferrogate_store::{Kind, ObjectRef, Snapshot};

use crate::ir_route_memo::IrRouteMemo;
use crate::route_cache::RouteCache;
use crate::routes::{Attachment, Routes};
use crate::{Options, Translation};

/// Translation state kept between runs (see the module docs).
#[derive(Default)]
pub struct Incremental {
    last: Option<Last>,
    /// Translations the route-edit path made (see `route_edits`).
    route_edits: u64,
}

/// The input of the last translation and what was kept of it.
struct Last {
    snapshot: Arc<Snapshot>,
    options: Options,
    kept: Kept,
}

/// What a translation may reuse.
#[derive(Default)]
pub(crate) struct Kept {
    pub routes: RouteCache,
    pub gateways: BTreeMap<GatewayKey, Built>,
    /// What the last translation settled, for the route-edit path (`route_edits`).
    pub settled: Option<crate::route_edits::Settled>,
}

/// A Gateway's IR with the inputs it was assembled from (beside the Gateway itself).
pub(crate) struct Built {
    pub attachments: Vec<Arc<Attachment>>,
    pub blocked: Vec<String>,
    pub ir: Arc<GatewayIr>,
    pub infra: InfraIr,
    /// The IR routes of the last build, for the next one.
    pub memo: IrRouteMemo,
}

/// Whether a change of this kind leaves every Gateway's own context (listeners,
/// certificates, parameters, addresses) as it was. Route-side kinds only reach a Gateway's
/// IR through attachments and backends, which [`Built::still_valid`] compares.
fn leaves_gateways(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::HttpRoute
            | Kind::GrpcRoute
            | Kind::TlsRoute
            | Kind::TcpRoute
            | Kind::UdpRoute
            | Kind::Service
            | Kind::ServiceImport
            | Kind::EndpointSlice
            | Kind::BackendTlsPolicy
    )
}

impl Incremental {
    /// How many translations patched the last one for a route edit instead of walking every
    /// route.
    pub fn route_edit_translations(&self) -> u64 {
        self.route_edits
    }

    /// Translates `snapshot` with `options`; the output equals `translate(snapshot,
    /// options)`.
    pub fn translate(&mut self, snapshot: &Arc<Snapshot>, options: &Options) -> Translation {
        let mut kept = match self.last.take() {
            Some(last) => {
                let (changed, moved): (Vec<ObjectRef>, Vec<ObjectRef>) =
                    if Arc::ptr_eq(&last.snapshot, snapshot) {
                        (Vec::new(), Vec::new())
                    } else {
                        last.snapshot.diff_and_moves(snapshot)
                    };
                let mut kept = last.kept;
                if last.options == *options
                    && let Some(translation) = crate::route_edits::translate(
                        &last.snapshot,
                        snapshot,
                        options,
                        &changed,
                        &moved,
                        &mut kept,
                    )
                {
                    self.last = Some(Last {
                        snapshot: Arc::clone(snapshot),
                        options: options.clone(),
                        kept,
                    });
                    self.route_edits += 1;
                    return translation;
                }
                kept.settled = None;
                if renumbers_policies(&last.snapshot, snapshot, &changed, &moved) {
                    kept.routes.clear();
                }
                kept.routes.invalidate(&changed);
                if last.options != *options || !changed.iter().all(|c| leaves_gateways(c.kind)) {
                    kept.gateways.clear();
                    kept.routes.forget_outcomes();
                }
                kept
            }
            None => Kept::default(),
        };
        let translation = crate::translate_with(snapshot, options, Some(&mut kept));
        self.last = Some(Last {
            snapshot: Arc::clone(snapshot),
            options: options.clone(),
            kept,
        });
        translation
    }
}

/// Whether the BackendTLSPolicies' positions in input order (which kept conversions and
/// outcomes name them by) differ between `before` and `now`: a policy added, removed or
/// moved. Every route that met a policy elsewhere would name the wrong one, so everything is
/// converted again; a policy whose content alone changed keeps its position, and only the
/// routes into its namespace are converted again.
fn renumbers_policies(
    before: &Snapshot,
    now: &Snapshot,
    changed: &[ObjectRef],
    moved: &[ObjectRef],
) -> bool {
    moved.iter().any(|m| m.kind == Kind::BackendTlsPolicy)
        || changed
            .iter()
            .any(|c| c.kind == Kind::BackendTlsPolicy && before.contains(c) != now.contains(c))
}

impl Built {
    /// Whether `routes` give the Gateway `key` the IR this was built with.
    /// `attached` are its attachments now, in route order.
    pub(crate) fn still_valid(
        &self,
        key: &GatewayKey,
        attached: &[&Attachment],
        routes: &Routes,
    ) -> bool {
        if self.attachments.len() != attached.len()
            || !self
                .attachments
                .iter()
                .zip(attached)
                .all(|(was, now)| std::ptr::eq(&**was, *now) || was.same_as(now))
        {
            return false;
        }
        let mut blocked = routes
            .blocked
            .iter()
            .filter(|(g, _)| g == key)
            .map(|(_, b)| b);
        if !self.blocked.iter().eq(&mut blocked) {
            return false;
        }
        self.ir
            .backends
            .iter()
            .all(|b| routes.backends.get(&b.name).is_some_and(|r| **r == *b))
    }
}

/// What the next translation may reuse of the Gateways just built: their IR with the
/// attachments and blocked backends it was built from.
pub(crate) fn keep(
    built: BTreeMap<GatewayKey, (Arc<GatewayIr>, InfraIr, IrRouteMemo)>,
    routes: Routes,
) -> BTreeMap<GatewayKey, Built> {
    let mut kept: BTreeMap<GatewayKey, Built> = built
        .into_iter()
        .map(|(key, (ir, infra, memo))| {
            let built = Built {
                attachments: Vec::new(),
                blocked: Vec::new(),
                ir,
                infra,
                memo,
            };
            (key, built)
        })
        .collect();
    for attachment in routes.attachments {
        if let Some(b) = kept.get_mut(&attachment.gateway) {
            b.attachments.push(attachment);
        }
    }
    for (gateway, backend) in routes.blocked {
        if let Some(b) = kept.get_mut(&gateway) {
            b.blocked.push(backend);
        }
    }
    kept
}
