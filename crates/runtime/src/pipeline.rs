//! The translate-and-publish step: store snapshot -> translation -> per-Gateway xDS
//! snapshots (only for Gateways whose IR changed) + statuses + what the mode's infra sink
//! needs. The mode stays outside: [`Hosting`] says where Envoys run (pods, or processes
//! placed by [`HostPlanner`]); writing statuses and starting Envoys are the sinks' work,
//! never done here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use ferrogate_infra_render::HostProcessSpec;
use ferrogate_ir::{GatewayIr, GatewayKey};
use ferrogate_status::StatusSet;
use ferrogate_store::{Kind, Snapshot};
use ferrogate_translator::{EndpointRefresh, Incremental, Options, refresh_endpoints};
use ferrogate_xds_server::SnapshotCache;
use ferrogate_xds_translator::{RouteEncodings, XdsOptions};

use crate::Metrics;
use crate::host_plan::HostPlanner;
use crate::quarantine::{Quarantine, RouteXdsView};

/// Where the Envoys of each Gateway run: the mode, outside the pipeline.
pub(crate) enum Hosting {
    /// In a cluster: every Envoy pod serves readiness on this port; the Kubernetes infra
    /// sink provisions them from the run's infra IR.
    Pods { ready_port: u16 },
    /// Standalone: processes on this host, placed by the planner.
    Host(Box<HostPlanner>),
}

/// State kept between runs so unchanged Gateways cost nothing.
pub(crate) struct Pipeline {
    pub options: Options,
    pub cache: SnapshotCache,
    pub metrics: Metrics,
    pub hosting: Hosting,
    /// The IR and xDS options each Gateway's current snapshot was built from.
    previous: BTreeMap<GatewayKey, (Arc<GatewayIr>, XdsOptions)>,
    /// Each Gateway's routes as last encoded: a rebuilt RouteConfiguration encodes only the
    /// routes its IR does not share with the last one.
    encodings: BTreeMap<GatewayKey, RouteEncodings>,
    /// The input (snapshot and options) and output of the last full run: an identical input
    /// reuses the output, and an input that differs only in EndpointSlices takes the
    /// EDS-only path. The snapshot is the provider's, shared, not copied.
    last: Option<(Arc<Snapshot>, Options, RunOutput)>,
    /// Routes Envoy rejected, held out of their Gateways (see [`crate::quarantine`]).
    quarantine: Quarantine,
    /// Route conversions and Gateway IR kept between runs: a run translates only what
    /// changed (its output equals a full translation's; the translator's tests prove it).
    translator: Incremental,
}

/// What a run produced for the other stages.
#[derive(Clone)]
pub(crate) struct RunOutput {
    /// Shared with the copy the pipeline keeps for the EDS-only path (at 10000 routes a
    /// second copy of every route status was ~5 MiB of the settled heap); a caller that
    /// changes them gets its own copy (`Arc::make_mut`).
    pub statuses: Arc<StatusSet>,
    /// The same `Arc` as the last run's while nothing about the processes changed.
    pub processes: Arc<Vec<HostProcessSpec>>,
    /// Infra IR and effective EnvoyProxy parameters of every Gateway to provision.
    pub infra: BTreeMap<
        GatewayKey,
        (
            ferrogate_ir::InfraIr,
            ferrogate_api::envoyproxy::EnvoyProxySpec,
        ),
    >,
}

impl Pipeline {
    pub(crate) fn new(
        options: Options,
        cache: SnapshotCache,
        metrics: Metrics,
        hosting: Hosting,
    ) -> Self {
        Self {
            options,
            cache,
            metrics,
            hosting,
            previous: BTreeMap::new(),
            encodings: BTreeMap::new(),
            last: None,
            quarantine: Quarantine::default(),
            translator: Incremental::default(),
        }
    }

    /// What the xDS server reports about each published Gateway's RouteConfigurations.
    fn route_views(&self) -> BTreeMap<GatewayKey, RouteXdsView> {
        let route_type = ferrogate_xds_translator::type_url::ROUTE;
        let stats = self.cache.stats();
        self.previous
            .keys()
            .map(|key| {
                let id = key.to_string();
                let gateway = stats.gateways.get(&id);
                let view = RouteXdsView {
                    published: self
                        .cache
                        .get(&id)
                        .and_then(|s| s.version(route_type).map(str::to_string)),
                    acked: gateway.and_then(|g| g.acked_versions.get(route_type).cloned()),
                    nack: gateway
                        .and_then(|g| g.active_nacks.get(route_type))
                        .map(|n| (n.rejected_version.clone(), n.message.clone())),
                };
                (key.clone(), view)
            })
            .collect()
    }

    /// Whether Envoy's answers call for a full run on an unchanged input: a rejected
    /// RouteConfiguration to narrow down, or a trial accepted (see [`crate::quarantine`]).
    /// Also lets the quarantine drop what it kept of versions older than the accepted ones.
    pub(crate) fn envoy_answers_need_a_run(&mut self) -> bool {
        let views = self.route_views();
        for (key, view) in &views {
            self.quarantine.settle(key, view);
        }
        views
            .iter()
            .any(|(key, view)| self.quarantine.has_work(key, view))
    }

    #[cfg(test)]
    pub(crate) fn run(&mut self, snapshot: &Arc<Snapshot>) -> RunOutput {
        self.run_at(snapshot, Instant::now())
    }

    /// Runs on `snapshot`, whose changes reached the control plane at `seen`: the xDS
    /// server measures each change's propagation to the Envoys from there.
    pub(crate) fn run_at(&mut self, snapshot: &Arc<Snapshot>, seen: Instant) -> RunOutput {
        let started = Instant::now();
        for (kind, count) in snapshot.counts() {
            self.metrics
                .resources
                .with_label_values(&[kind.as_str()])
                .set(count as i64);
        }
        let views = self.route_views();
        let envoy_answered = views
            .iter()
            .any(|(key, view)| self.quarantine.has_work(key, view));
        if !envoy_answered && let Some(output) = self.fleet_only(snapshot) {
            return output;
        }
        if !envoy_answered && let Some(output) = self.endpoints_only(snapshot, seen) {
            return output;
        }
        if let Hosting::Host(planner) = &mut self.hosting {
            planner.assign_addresses(snapshot, &mut self.options);
        }
        let mut translation = self.translator.translate(snapshot, &self.options);
        let placement = match &mut self.hosting {
            Hosting::Host(planner) => Some(planner.place(&mut translation)),
            Hosting::Pods { .. } => None,
        };
        self.quarantine
            .retain(|key| translation.gateways.contains_key(key));
        for (key, ir) in &translation.gateways {
            let ready_port = match (&self.hosting, &placement) {
                (Hosting::Pods { ready_port }, _) => *ready_port,
                (_, Some(placed)) => match placed.ready_ports.get(key) {
                    Some(port) => *port,
                    None => continue, // not placed: no Envoy would read the snapshot
                },
                (Hosting::Host(_), None) => continue,
            };
            // Access logs come from the infra IR (EnvoyProxy parameters) but are part of
            // every proxy listener, so they are xDS, not bootstrap: no Envoy restart.
            let access_logs = translation
                .infra
                .get(key)
                .map(|i| i.access_logs.clone())
                .unwrap_or_default();
            let xds_options = XdsOptions {
                ready_port,
                access_logs,
            };
            let no_view = RouteXdsView::default();
            let ir = &self
                .quarantine
                .plan(key, ir, views.get(key).unwrap_or(&no_view));
            if self.previous.get(key).is_some_and(|(old, options)| {
                // A Gateway the translation kept hands back the same IR: no deep compare.
                (Arc::ptr_eq(old, ir) || **old == **ir) && *options == xds_options
            }) {
                continue; // unchanged: no xDS work, no push
            }
            let build = Instant::now();
            let encodings = self.encodings.entry(key.clone()).or_default();
            let by_type = ferrogate_xds_translator::translate_any(ir, &xds_options, encodings)
                .into_iter()
                .map(|(type_url, items)| (type_url.to_string(), items))
                .collect();
            let id = key.to_string();
            if self
                .cache
                .set_at(&id, ferrogate_xds_server::Snapshot::new(by_type), seen)
            {
                self.metrics.snapshot_updated(&id);
                tracing::info!(gateway = %id, "published new xDS snapshot");
            }
            self.metrics
                .snapshot_build_seconds
                .observe(build.elapsed().as_secs_f64());
            let route_version = self.cache.get(&id).and_then(|s| {
                s.version(ferrogate_xds_translator::type_url::ROUTE)
                    .map(str::to_string)
            });
            self.quarantine.published(key, route_version.as_deref(), ir);
            self.previous.insert(key.clone(), (ir.clone(), xds_options));
        }
        let gone: Vec<GatewayKey> = self
            .previous
            .keys()
            .filter(|k| {
                let unplaced = placement
                    .as_ref()
                    .is_some_and(|p| !p.ready_ports.contains_key(*k));
                !translation.gateways.contains_key(*k) || unplaced
            })
            .cloned()
            .collect();
        for key in gone {
            self.cache.remove(&key.to_string());
            self.previous.remove(&key);
            self.encodings.remove(&key);
            tracing::info!(gateway = %key, "gateway removed");
        }
        self.quarantine.mark_held(&mut translation.statuses);
        self.metrics
            .routes_rejected_by_envoy
            .set(self.quarantine.held_count() as i64);
        self.metrics.gateways.set(translation.gateways.len() as i64);
        self.metrics.translations.inc();
        self.metrics
            .translation_seconds
            .observe(started.elapsed().as_secs_f64());
        let statuses = Arc::new(translation.statuses);
        self.metrics.observe_statuses(&statuses);
        let mut parameters = translation.parameters;
        let infra = translation
            .infra
            .into_iter()
            .map(|(k, i)| {
                let p = parameters.remove(&k).unwrap_or_default();
                (k, (i, p))
            })
            .collect();
        let output = RunOutput {
            statuses,
            processes: placement.map(|p| p.processes).unwrap_or_default(),
            infra,
        };
        self.last = Some((Arc::clone(snapshot), self.options.clone(), output.clone()));
        output
    }

    /// The fleet-only path: the same world as the last full run, and only the state of the
    /// provisioned Envoy fleets changed (a Deployment became available, a Service got its
    /// address). Only Gateway statuses follow that (`refresh_fleet_status`, proven equal to a
    /// full translation by the translator's tests); routes are not translated again, and the
    /// IR, xDS and infra stay as the last full run made them. `None` when a full run is needed.
    fn fleet_only(&mut self, snapshot: &Arc<Snapshot>) -> Option<RunOutput> {
        let (before, options, last_output) = self.last.as_ref()?;
        if options.provisioned.is_none()
            || self.options.provisioned.is_none()
            || options.provisioned == self.options.provisioned
        {
            return None;
        }
        let mut same_fleet = self.options.clone();
        same_fleet.provisioned.clone_from(&options.provisioned);
        if same_fleet != *options
            || !(Arc::ptr_eq(before, snapshot) || before.diff(snapshot).is_empty())
        {
            return None;
        }
        let mut statuses = (*last_output.statuses).clone();
        ferrogate_translator::refresh_fleet_status(&mut statuses, &self.options);
        let statuses = Arc::new(statuses);
        self.metrics.observe_statuses(&statuses);
        self.metrics.fleet_status_refreshes.inc();
        let output = RunOutput {
            statuses,
            ..last_output.clone()
        };
        self.last = Some((Arc::clone(snapshot), self.options.clone(), output.clone()));
        Some(output)
    }

    /// The EDS-only path (DESIGN.md, "Incremental where it pays"): when nothing but
    /// EndpointSlices changed since the last full run, re-resolve the backends' endpoints of
    /// each Gateway's IR and publish only new ClusterLoadAssignments; routes are not
    /// translated again and statuses and processes stay as the last full run made them.
    /// An unchanged input gives the last output as it is. `None` when a full run is needed
    /// (anything but EndpointSlices changed, or the options did: e.g. a provisioned fleet
    /// got its address, which the Gateway's status shows).
    fn endpoints_only(&mut self, snapshot: &Arc<Snapshot>, seen: Instant) -> Option<RunOutput> {
        let (before, options, last_output) = self.last.as_ref()?;
        if *options != self.options {
            return None;
        }
        // The same snapshot again (a NACK check, an owned-object event): nothing to compare.
        let changed = if Arc::ptr_eq(before, snapshot) {
            Vec::new()
        } else {
            before.diff(snapshot)
        };
        if changed.is_empty() {
            return Some(last_output.clone());
        }
        if changed.iter().any(|r| r.kind != Kind::EndpointSlice) {
            return None;
        }
        let mut updates = Vec::new();
        for (key, (ir, _)) in &self.previous {
            match refresh_endpoints(snapshot, ir) {
                EndpointRefresh::Unchanged => {}
                EndpointRefresh::Changed(ir) => {
                    let current = self.cache.get(&key.to_string())?;
                    updates.push((key.clone(), Arc::new(ir), current));
                }
                EndpointRefresh::NeedsFullTranslation => return None,
            }
        }
        let output = last_output.clone();
        for (key, ir, current) in updates {
            let items = ferrogate_xds_translator::translate_endpoints_any(&ir);
            let id = key.to_string();
            if self.cache.set_at(
                &id,
                current.with_type(ferrogate_xds_translator::type_url::ENDPOINT, items),
                seen,
            ) {
                self.metrics.snapshot_updated(&id);
                tracing::info!(gateway = %id, "published new endpoints (EDS only)");
            }
            if let Some(entry) = self.previous.get_mut(&key) {
                entry.0 = ir;
            }
        }
        if let Some(last) = self.last.as_mut() {
            last.0 = Arc::clone(snapshot);
        }
        Some(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_plan::XdsEndpoint;
    use ferrogate_infra_render::HostPortPlan;
    use ferrogate_store::load_documents;

    /// The shared Gateway `apps/web` with one route to Service `echo`.
    const ECHO_ROUTE: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: apps}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
";

    fn snapshot(endpoint: &str) -> Arc<Snapshot> {
        Arc::new(world(endpoint))
    }

    fn world(endpoint: &str) -> Snapshot {
        let slice = format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: echo-1, namespace: apps, labels: {{kubernetes.io/service-name: echo}}}}\naddressType: IPv4\nports: [{{name: http, port: 9000}}]\nendpoints: [{{addresses: [\"{endpoint}\"]}}]\n"
        );
        let (objects, errors) = load_documents(
            "test",
            &format!(
                "{}---\n{ECHO_ROUTE}---\n{slice}",
                crate::test_worlds::WEB_GATEWAY
            ),
        );
        assert!(errors.is_empty(), "{errors:?}");
        objects.into_iter().collect()
    }

    /// The world of [`snapshot`] with its GatewayClass pointing at an EnvoyProxy asking for
    /// `replicas` Envoys.
    fn with_replicas(replicas: i32) -> Arc<Snapshot> {
        let mut world = world("10.0.0.1");
        let class = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ferrogate}\nspec:\n  controllerName: gateway.ferrogate.dev/gatewayclass-controller\n  parametersRef: {group: gateway.ferrogate.dev, kind: EnvoyProxy, name: proxy, namespace: apps}\n";
        let proxy = format!(
            "apiVersion: gateway.ferrogate.dev/v1alpha1\nkind: EnvoyProxy\nmetadata: {{name: proxy, namespace: apps}}\nspec: {{provider: {{type: Kubernetes, kubernetes: {{envoyDeployment: {{replicas: {replicas}}}}}}}}}\n"
        );
        let (objects, errors) = load_documents("test", &format!("{class}---\n{proxy}"));
        assert!(errors.is_empty(), "{errors:?}");
        world.extend(objects);
        Arc::new(world)
    }

    fn pipeline() -> Pipeline {
        let xds = XdsEndpoint {
            host: "127.0.0.1".into(),
            port: 18000,
            delta: true,
        };
        Pipeline::new(
            Options::default(),
            SnapshotCache::new(),
            Metrics::new(),
            Hosting::Host(Box::new(HostPlanner::new(xds, HostPortPlan::default()))),
        )
    }

    fn port_plan(p: &mut Pipeline) -> &mut HostPortPlan {
        match &mut p.hosting {
            Hosting::Host(planner) => &mut planner.port_plan,
            Hosting::Pods { .. } => unreachable!("the tests' pipeline is standalone"),
        }
    }

    #[test]
    fn an_endpoint_change_publishes_what_a_full_run_would_touching_only_eds() {
        let mut incremental = pipeline();
        incremental.run(&snapshot("10.0.0.1"));
        let before = incremental.cache.get("apps/web").unwrap();
        let translations = incremental.metrics.translations.get();
        incremental.run(&snapshot("10.0.0.2"));
        let after = incremental.cache.get("apps/web").unwrap();
        assert_eq!(
            incremental.metrics.translations.get(),
            translations,
            "the EDS-only path does not translate routes"
        );

        let mut full = pipeline();
        full.run(&snapshot("10.0.0.2"));
        assert_eq!(
            *after,
            *full.cache.get("apps/web").unwrap(),
            "same snapshot as a full translation"
        );
        let eds = ferrogate_xds_translator::type_url::ENDPOINT;
        assert_ne!(after.version(eds), before.version(eds));
        for t in before.type_urls().filter(|t| *t != eds) {
            assert_eq!(after.version(t), before.version(t), "{t} must not change");
        }
    }

    #[test]
    fn the_same_input_is_not_translated_again_but_new_options_are() {
        let mut p = pipeline();
        let world = snapshot("10.0.0.1");
        p.run(&world);
        let translations = p.metrics.translations.get();
        p.run(&world);
        assert_eq!(
            p.metrics.translations.get(),
            translations,
            "an identical input reuses the last output"
        );

        // Kubernetes mode: the fleet got an address. Same world, but the status depends on it.
        let key = GatewayKey::new("apps", "web");
        p.options.provisioned = Some(BTreeMap::from([(
            key,
            ferrogate_translator::Provisioned {
                addresses: vec!["192.0.2.7".into()],
                available: true,
            },
        )]));
        let output = p.run(&snapshot("10.0.0.2"));
        assert_eq!(
            p.metrics.translations.get(),
            translations + 1,
            "changed options need a full run, even with only endpoints changed"
        );
        assert_eq!(output.statuses.gateways[0].addresses[0].value, "192.0.2.7");
    }

    #[test]
    fn a_fleet_change_alone_refreshes_statuses_without_translating() {
        let fleet = |addresses: &[&str], available| {
            Some(BTreeMap::from([(
                GatewayKey::new("apps", "web"),
                ferrogate_translator::Provisioned {
                    addresses: addresses.iter().map(|a| a.to_string()).collect(),
                    available,
                },
            )]))
        };
        let programmed = |output: &RunOutput| {
            let c = output.statuses.gateways[0]
                .conditions
                .iter()
                .find(|c| c.type_ == "Programmed")
                .unwrap();
            c.reason.clone()
        };
        let mut p = pipeline();
        p.options.provisioned = fleet(&[], false);
        let world = snapshot("10.0.0.1");
        let first = p.run(&world);
        assert_eq!(programmed(&first), "AddressNotAssigned");
        let translations = p.metrics.translations.get();

        p.options.provisioned = fleet(&["192.0.2.7"], true);
        let refreshed = p.run(&world);
        assert_eq!(p.metrics.translations.get(), translations, "no translation");
        assert_eq!(p.metrics.fleet_status_refreshes.get(), 1);
        assert_eq!(programmed(&refreshed), "Programmed");
        assert_eq!(
            refreshed.statuses.gateways[0].addresses[0].value,
            "192.0.2.7"
        );
        assert_eq!(
            refreshed.infra, first.infra,
            "infra as the last full run made it"
        );
        let mut full = pipeline();
        full.options.provisioned = fleet(&["192.0.2.7"], true);
        assert_eq!(refreshed.statuses, full.run(&world).statuses);

        // The fleet and the world changed: a full run.
        p.options.provisioned = fleet(&["192.0.2.7"], false);
        let both = p.run(&snapshot("10.0.0.2"));
        assert_eq!(p.metrics.translations.get(), translations + 1);
        assert_eq!(programmed(&both), "Pending");
    }

    #[test]
    fn standalone_runs_the_replicas_the_envoyproxy_asks_for_and_replica_zero_stays_as_it_was() {
        let one = pipeline().run(&snapshot("10.0.0.1")).processes;
        assert_eq!(one.len(), 1);
        let two = pipeline().run(&with_replicas(2)).processes;
        assert_eq!(two.len(), 2);
        assert_eq!(two[0], one[0], "replica 0 does not depend on the count");
        assert_eq!((two[1].replica, two[1].ready_port), (1, two[0].ready_port));
        assert_ne!(two[1].admin_port, two[0].admin_port);
        assert_eq!(two[1].bootstrap["node"]["cluster"], "apps/web");

        // Beyond the port block's room: capped; below 1: one Envoy. Neither panics.
        assert_eq!(pipeline().run(&with_replicas(9)).processes.len(), 4);
        assert_eq!(pipeline().run(&with_replicas(0)).processes.len(), 1);
    }

    #[test]
    fn processes_are_rendered_again_only_when_a_gateway_slot_or_replica_count_changes() {
        let mut p = pipeline();
        let first = p.run(&with_replicas(1)).processes;
        let again = p.run(&snapshot("10.0.0.9")).processes;
        assert!(
            Arc::ptr_eq(&first, &again),
            "a new endpoint changes no process: the same list, not a re-rendered one"
        );
        let more = p.run(&with_replicas(2)).processes;
        assert_eq!(more.len(), 2);
        assert_eq!(more[0], first[0]);
        let fewer = p.run(&with_replicas(1)).processes;
        assert_eq!(*fewer, *first);
        assert!(!Arc::ptr_eq(&fewer, &more));
    }

    #[test]
    fn a_changed_replica_count_alone_changes_no_xds_snapshot() {
        let mut p = pipeline();
        p.run(&with_replicas(1));
        let before = p.cache.get("apps/web").unwrap();
        let updates = p
            .metrics
            .snapshot_updates
            .with_label_values(&["apps", "web"])
            .get();
        let output = p.run(&with_replicas(3));
        assert_eq!(output.processes.len(), 3);
        assert_eq!(
            *p.cache.get("apps/web").unwrap(),
            *before,
            "every replica reads the same snapshot"
        );
        assert_eq!(
            p.metrics
                .snapshot_updates
                .with_label_values(&["apps", "web"])
                .get(),
            updates
        );
    }

    #[test]
    fn a_gateway_past_the_port_range_is_not_programmed_and_the_others_run() {
        let second = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: zz, namespace: apps}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{name: http, port: 8081, protocol: HTTP}]\n";
        let mut world = world("10.0.0.1");
        let (objects, errors) = load_documents("test", second);
        assert!(errors.is_empty(), "{errors:?}");
        world.extend(objects);
        // Room for exactly one block: 65520 + 3 + 10 > 65535.
        let mut p = pipeline();
        *port_plan(&mut p) = HostPortPlan {
            base: 65_520,
            stride: 10,
        };
        assert_eq!(port_plan(&mut p).max_slots(), 2);
        *port_plan(&mut p) = HostPortPlan {
            base: 65_526,
            stride: 10,
        };
        assert_eq!(port_plan(&mut p).max_slots(), 1);
        let output = p.run(&Arc::new(world));
        assert_eq!(
            output.processes.len(),
            1,
            "one Envoy for the placed Gateway"
        );
        assert_eq!(output.processes[0].gateway, GatewayKey::new("apps", "web"));
        assert!(p.cache.get("apps/web").is_some());
        assert!(
            p.cache.get("apps/zz").is_none(),
            "no snapshot for a Gateway with no Envoy"
        );
        let status = |name: &str| {
            output
                .statuses
                .gateways
                .iter()
                .find(|g| g.name == name)
                .unwrap()
                .clone()
        };
        let programmed = |name: &str| {
            status(name)
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Programmed")
                .unwrap()
        };
        assert_eq!(
            programmed("web").status,
            ferrogate_status::ConditionStatus::True
        );
        let zz = programmed("zz");
        assert_eq!(
            (zz.status, &*zz.reason),
            (ferrogate_status::ConditionStatus::False, "NoResources")
        );
        assert!(zz.message.contains("room for 1 Gateways"), "{}", zz.message);
        assert!(
            status("zz")
                .listeners
                .iter()
                .all(|l| l.conditions.iter().any(|c| c.reason == "NoResources"))
        );
    }

    #[test]
    fn a_base_port_with_no_room_at_all_places_nothing_and_does_not_panic() {
        let mut p = pipeline();
        *port_plan(&mut p) = HostPortPlan {
            base: 65_535,
            stride: 10,
        };
        let output = p.run(&snapshot("10.0.0.1"));
        assert!(output.processes.is_empty());
        assert_eq!(
            output.statuses.gateways[0]
                .conditions
                .iter()
                .find(|c| c.type_ == "Programmed")
                .unwrap()
                .reason,
            "NoResources"
        );
    }
}
