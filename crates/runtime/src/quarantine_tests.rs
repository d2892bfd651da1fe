use super::*;
use ferrogate_status::ConditionStatus;
use ferrogate_store::{Snapshot, load_documents};
use ferrogate_translator::{Options, Translation, translate};

/// A route `r<i>` on path `/r<i>`; `marker` goes into a header value so a test can make
/// this route's content "rejected by Envoy" and change it.
fn route(i: usize, marker: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r{i}, namespace: apps}}\nspec:\n  parentRefs: [{{name: web}}]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: /r{i}}}}}]\n    filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: x-marker, value: {marker}}}]}}}}]\n    backendRefs: [{{name: echo, port: 8080}}]\n"
    )
}

fn translation(markers: &[&str]) -> Translation {
    let mut text = crate::test_worlds::WEB_GATEWAY.to_string();
    for (i, marker) in markers.iter().enumerate() {
        text.push_str("---\n");
        text.push_str(&route(i, marker));
    }
    let (objects, errors) = load_documents("test", &text);
    assert!(errors.is_empty(), "{errors:?}");
    let snapshot: Snapshot = objects.into_iter().collect();
    translate(&snapshot, &Options::default())
}

fn key() -> GatewayKey {
    GatewayKey::new("apps", "web")
}

/// Plays Envoy: rejects a configuration holding any route marked `bad`, and names the
/// version after the routes it holds (content-derived, as the xDS server's versions are).
struct FakeEnvoy {
    view: RouteXdsView,
    publishes: usize,
}

impl FakeEnvoy {
    fn new() -> Self {
        Self {
            view: RouteXdsView::default(),
            publishes: 0,
        }
    }

    fn receive(&mut self, quarantine: &mut Quarantine, ir: &Arc<GatewayIr>) -> String {
        let fingerprints = fingerprints(ir);
        let version = format!("{:x}", {
            let mut h = DefaultHasher::new();
            fingerprints.hash(&mut h);
            h.finish()
        });
        quarantine.published(&key(), Some(&version), ir);
        if self.view.published.as_ref() != Some(&version) {
            self.publishes += 1;
        }
        self.view.published = Some(version.clone());
        let mut bad = false;
        for_each_route(ir, |_, _, route| {
            bad |= route.request_headers.set().iter().any(|h| h.value == "bad");
        });
        if bad {
            self.view.nack = Some((version.clone(), format!("rejected {version}")));
        } else {
            self.view.acked = Some(version.clone());
            self.view.nack = None;
        }
        version
    }
}

fn routes_in(ir: &GatewayIr) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for_each_route(ir, |_, _, route| {
        names.insert(RouteId::of_entry(&route.name).unwrap().name);
    });
    names
}

/// Runs the pipeline's part (plan, publish) until Envoy's verdict stops changing anything.
fn settle(
    quarantine: &mut Quarantine,
    envoy: &mut FakeEnvoy,
    full: &Arc<GatewayIr>,
) -> Arc<GatewayIr> {
    let mut ir = quarantine.plan(&key(), full, &envoy.view);
    for _ in 0..64 {
        envoy.receive(quarantine, &ir);
        if !quarantine.has_work(&key(), &envoy.view) {
            return ir;
        }
        ir = quarantine.plan(&key(), full, &envoy.view);
    }
    panic!("the quarantine did not settle in 64 rounds");
}

#[test]
fn the_rejected_routes_among_many_changes_are_held_out_and_the_rest_is_served() {
    let mut quarantine = Quarantine::default();
    let mut envoy = FakeEnvoy::new();
    // An accepted start: three good routes.
    let start = translation(&["ok", "ok", "ok"]);
    let served = settle(&mut quarantine, &mut envoy, &start.gateways[&key()]);
    assert_eq!(routes_in(&served).len(), 3);
    assert!(envoy.view.nack.is_none());

    // A bulk change: thirteen new routes, two of which Envoy rejects.
    let mut markers = vec!["ok"; 16];
    markers[5] = "bad";
    markers[11] = "bad";
    let bulk = translation(&markers);
    let publishes_before = envoy.publishes;
    let served = settle(&mut quarantine, &mut envoy, &bulk.gateways[&key()]);
    let names = routes_in(&served);
    assert_eq!(names.len(), 14, "{names:?}");
    assert!(!names.contains("r5") && !names.contains("r11"), "{names:?}");
    assert!(envoy.view.nack.is_none(), "the last publish is accepted");
    assert_eq!(quarantine.held_count(), 2);
    let rounds = envoy.publishes - publishes_before;
    assert!(
        rounds <= 12,
        "two offenders among 13 suspects took {rounds} publishes"
    );

    // The statuses say so, on the right route and parent only.
    let mut statuses = bulk.statuses.clone();
    quarantine.mark_held(&mut statuses);
    for route in &statuses.routes {
        let accepted = &route.parents[0].conditions[0];
        assert_eq!(accepted.type_, "Accepted");
        if route.name == "r5" || route.name == "r11" {
            assert_eq!(accepted.status, ConditionStatus::False);
            assert_eq!(accepted.reason, "UnsupportedValue");
            assert!(
                accepted.message.contains("Envoy rejected")
                    && accepted.message.contains("rejected "),
                "{}",
                accepted.message
            );
        } else {
            assert_eq!(
                accepted.status,
                ConditionStatus::True,
                "{}: {accepted:?}",
                route.name
            );
        }
    }
}

#[test]
fn a_held_route_comes_back_when_its_content_changes() {
    let mut quarantine = Quarantine::default();
    let mut envoy = FakeEnvoy::new();
    settle(
        &mut quarantine,
        &mut envoy,
        &translation(&["ok"]).gateways[&key()],
    );
    let served = settle(
        &mut quarantine,
        &mut envoy,
        &translation(&["ok", "bad"]).gateways[&key()],
    );
    assert_eq!(routes_in(&served), BTreeSet::from(["r0".to_string()]));
    // Unchanged input: the route stays out, nothing is published again.
    let publishes = envoy.publishes;
    let served = settle(
        &mut quarantine,
        &mut envoy,
        &translation(&["ok", "bad"]).gateways[&key()],
    );
    assert_eq!(routes_in(&served).len(), 1);
    assert_eq!(envoy.publishes, publishes);
    // Fixed by its owner: served again, and nothing is held.
    let served = settle(
        &mut quarantine,
        &mut envoy,
        &translation(&["ok", "fixed"]).gateways[&key()],
    );
    assert_eq!(routes_in(&served).len(), 2);
    assert_eq!(quarantine.held_count(), 0);
}

#[test]
fn a_rejection_no_route_change_explains_holds_nothing_and_is_not_retried() {
    let mut quarantine = Quarantine::default();
    let full = translation(&["ok", "ok"]).gateways[&key()].clone();
    let ir = quarantine.plan(&key(), &full, &RouteXdsView::default());
    quarantine.published(&key(), Some("v1"), &ir);
    // Envoy accepted v1, then rejects the very same content (say, a listener-wide limit).
    let view = RouteXdsView {
        published: Some("v1".into()),
        acked: Some("v1".into()),
        nack: Some(("v1".into(), "no".into())),
    };
    assert!(quarantine.has_work(&key(), &view));
    let ir = quarantine.plan(&key(), &full, &view);
    assert_eq!(routes_in(&ir).len(), 2, "nothing is held out on a guess");
    assert!(
        !quarantine.has_work(&key(), &view),
        "the same rejection is not narrowed again"
    );
    assert_eq!(quarantine.held_count(), 0);
}

#[test]
fn history_is_trimmed_to_the_accepted_version() {
    let mut quarantine = Quarantine::default();
    let full = translation(&["ok"]).gateways[&key()].clone();
    quarantine.plan(&key(), &full, &RouteXdsView::default());
    for v in ["v1", "v2", "v3"] {
        quarantine.published(&key(), Some(v), &full);
    }
    quarantine.settle(
        &key(),
        &RouteXdsView {
            published: Some("v3".into()),
            acked: Some("v3".into()),
            nack: None,
        },
    );
    let state = &quarantine.gateways[&key()];
    assert_eq!(state.history.len(), 1);
    assert_eq!(state.baseline.as_ref().map(|(v, _)| v.as_str()), Some("v3"));
}
