//! Incremental translation never changes what Envoy gets: over random sequences of edits
//! (applies and deletes of every kind the translator reads), `Incremental::translate` gives
//! exactly what a full `translate` of the same snapshot gives, at every step.
//!
//! The objects come from the generated worlds (several seeds, so the same names come in
//! several versions), the golden inputs (TLS Secrets, BackendTLSPolicies, ServiceImports,
//! EnvoyProxies, every route kind), and variants written here for the kinds neither has
//! enough of (ListenerSets, CA ConfigMaps, policies on the generated Services, Namespace
//! labels, EndpointSlice addresses). A sequence is seeded; set FERROGATE_PROPERTY_CASES for
//! more sequences.

use std::sync::Arc;

use ferrogate_store::{Kind, Object, Snapshot, load_documents};
use ferrogate_testkit::worlds::{self, Rng};
use ferrogate_translator::{Incremental, Options, translate};

fn sequences() -> u64 {
    std::env::var("FERROGATE_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(12, |cases| (cases / 25).max(1))
}

const STEPS: usize = 250;

fn load(origin: &str, text: &str) -> Vec<Object> {
    let (objects, _problems) = load_documents(origin, text);
    objects
}

/// Variants of kinds the worlds and golden inputs have few of, on the worlds' names.
fn variants(golden_secret: Option<&str>) -> String {
    let mut docs = Vec::new();
    for ns in ["default", "apps", "infra"] {
        for (svc, validation) in [
            (
                "svc-a",
                "{wellKnownCACertificates: System, hostname: a.internal}",
            ),
            (
                "svc-b",
                "{caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}], hostname: b.internal}",
            ),
            (
                "svc-a",
                "{caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}], hostname: a2.internal}",
            ),
        ] {
            docs.push(format!("apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {{name: tls-{svc}, namespace: {ns}}}\nspec:\n  targetRefs: [{{group: \"\", kind: Service, name: {svc}}}]\n  validation: {validation}\n"));
        }
        docs.push(format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ca, namespace: {ns}}}\ndata: {{ca.crt: not a certificate}}\n"));
        docs.push(format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ca, namespace: {ns}}}\ndata: {{other: no ca.crt key}}\n"));
        docs.push(format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{team: z}}}}\n"
        ));
        docs.push(format!("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: svc-a-1, namespace: {ns}, labels: {{kubernetes.io/service-name: svc-a}}}}\naddressType: IPv4\nports: [{{name: http, port: 9100}}]\nendpoints: [{{addresses: [\"127.0.1.1\", \"127.0.1.2\"]}}]\n"));
        docs.push(format!("apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: g, namespace: {ns}}}\nspec: {{from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}}, {{group: gateway.networking.k8s.io, kind: TCPRoute, namespace: default}}], to: [{{group: \"\", kind: Service}}]}}\n"));
    }
    for (i, ns) in ["default", "apps"].iter().enumerate() {
        docs.push(format!("apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {{name: ls{i}, namespace: {ns}}}\nspec:\n  parentRef: {{group: gateway.networking.k8s.io, kind: Gateway, name: gw0, namespace: default}}\n  listeners:\n    - {{name: extra, port: 80, protocol: HTTP, hostname: ls{i}.example.com}}\n"));
    }
    docs.push("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw0, namespace: default}\nspec:\n  gatewayClassName: ferrogate\n  allowedListeners: {namespaces: {from: All}}\n  listeners:\n    - {name: l0, port: 80, protocol: HTTP}\n    - {name: l1, port: 443, protocol: HTTPS, hostname: \"*.example.com\", tls: {certificateRefs: [{name: missing-cert}]}}\n".to_string());
    if let Some(secret) = golden_secret {
        docs.push(secret.replace(
            "{name: wildcard, namespace: infra}",
            "{name: missing-cert, namespace: default}",
        ));
    }
    docs.join("---\n")
}

/// Every object an edit may apply.
fn pool() -> Vec<Object> {
    let mut pool = Vec::new();
    let mut golden_secret = None;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
        .collect();
    inputs.sort();
    for path in inputs {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in text.split("\n---\n") {
            if doc.contains("kind: Secret") && doc.contains("{name: wildcard, namespace: infra}") {
                golden_secret = Some(doc.to_string());
            }
        }
        pool.extend(load(&path.to_string_lossy(), &text));
    }
    for seed in 0..8 {
        pool.extend(load("world", &worlds::world(seed, false)));
    }
    pool.extend(load("variants", &variants(golden_secret.as_deref())));
    pool
}

#[test]
fn incremental_equals_full() {
    let pool = pool();
    assert!(pool.len() > 200, "the pool is too small: {}", pool.len());
    let options = Options::default();
    let (mut kept_steps, mut compared) = (0usize, 0usize);
    for sequence in 0..sequences() {
        let mut rng = Rng::new(sequence + 1);
        let mut world = Snapshot::default();
        let mut incremental = Incremental::default();
        for step in 0..STEPS {
            // Mostly single edits, sometimes a burst (a directory reload, a resync).
            let edits = if rng.chance(10) { 1 + rng.below(8) } else { 1 };
            for _ in 0..edits {
                let present: Vec<_> = world_refs(&world);
                if !present.is_empty() && rng.chance(30) {
                    let victim = &present[rng.below(present.len() as u64) as usize];
                    world.delete(victim);
                } else {
                    let object = pool[rng.below(pool.len() as u64) as usize].clone();
                    world.apply(object);
                }
            }
            let snapshot = Arc::new(world.clone());
            let full = translate(&snapshot, &options);
            let incremental_output = incremental.translate(&snapshot, &options);
            assert!(
                full == incremental_output,
                "sequence {sequence}, step {step}: incremental translation differs from a full one"
            );
            compared += 1;
            // The same snapshot again gives the same output (nothing changed).
            if rng.chance(5) {
                assert!(incremental.translate(&snapshot, &options) == full);
                kept_steps += 1;
            }
        }
    }
    assert!(compared > 0 && kept_steps > 0);
}

/// Every object of a snapshot, by reference.
fn world_refs(world: &Snapshot) -> Vec<ferrogate_store::ObjectRef> {
    Snapshot::default().diff(world)
}

/// What incrementality is for: a route edit on one Gateway hands every other Gateway its
/// last IR back (the same `Arc`, so the pipeline skips it without even comparing), and the
/// edited Gateway's IR changes.
#[test]
fn a_route_edit_keeps_the_other_gateways_ir() {
    let gateways = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ferrogate}\nspec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: one, namespace: default}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: two, namespace: default}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{name: http, port: 8080, protocol: HTTP}]\n";
    let route = |gateway: &str, name: &str, path: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: {gateway}}}]\n  rules: [{{matches: [{{path: {{type: PathPrefix, value: {path}}}}}]}}]\n"
        )
    };
    let mut world: Snapshot = load("test", gateways).into_iter().collect();
    world.extend(load("test", &route("one", "a", "/a")));
    world.extend(load("test", &route("two", "b", "/b")));
    world.extend(load("test", &route("one", "c", "/c")));
    let mut incremental = Incremental::default();
    let options = Options::default();
    let before = incremental.translate(&Arc::new(world.clone()), &options);

    world.extend(load("test", &route("one", "a", "/changed")));
    let after = incremental.translate(&Arc::new(world.clone()), &options);

    let key = |name: &str| ferrogate_ir::GatewayKey::new("default", name);
    assert!(Arc::ptr_eq(
        &before.gateways[&key("two")],
        &after.gateways[&key("two")]
    ));
    assert_ne!(before.gateways[&key("one")], after.gateways[&key("one")]);
    // Within the rebuilt Gateway, the route that did not change is handed over, not rebuilt.
    let route_c = |t: &ferrogate_translator::Translation| {
        let ferrogate_ir::ListenerKind::Http(http) = &t.gateways[&key("one")].listeners[0].kind
        else {
            panic!("expected an HTTP listener");
        };
        let routes = &http.virtual_hosts[0].routes;
        Arc::clone(
            routes
                .iter()
                .find(|r| r.name.contains("/c/"))
                .expect("route c"),
        )
    };
    assert!(Arc::ptr_eq(&route_c(&before), &route_c(&after)));
    assert!(after == translate(&world, &options));
}

/// One virtual host with many routes, most of them tied on their matches: a rebuild keeps
/// the last order and inserts only the new entries, which must land exactly where a sort
/// puts them (creation time, namespace and name, kind, rule and match breaking the ties),
/// and a route attached twice (two parentRefs to one listener) must still appear once.
#[test]
fn a_large_virtual_host_keeps_its_precedence_order_through_edits() {
    let base = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ferrogate}\nspec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]\n";
    let paths = [
        "{type: PathPrefix, value: /}",
        "{type: PathPrefix, value: /a}",
        "{type: PathPrefix, value: /b/}",
        "{type: Exact, value: /a}",
        "{type: RegularExpression, value: /r.*}",
    ];
    let created = ["", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"];
    let mut rng = Rng::new(7);
    let mut variant = |name: usize| {
        let namespace = ["default", "apps"][rng.below(2) as usize];
        let kind = if rng.chance(15) {
            "GRPCRoute"
        } else {
            "HTTPRoute"
        };
        let stamp = created[rng.below(3) as usize];
        let stamp = if stamp.is_empty() {
            String::new()
        } else {
            format!(", creationTimestamp: \"{stamp}\"")
        };
        let parents = if rng.chance(20) {
            "[{name: gw, namespace: default}, {name: gw, namespace: default, sectionName: http}]"
        } else {
            "[{name: gw, namespace: default}]"
        };
        let rules: Vec<String> = (0..1 + rng.below(2))
            .map(|_| {
                let matches: Vec<String> = (0..1 + rng.below(2))
                    .map(|_| {
                        if kind == "GRPCRoute" {
                            return format!("{{method: {{service: s{}}}}}", rng.below(3));
                        }
                        let method = if rng.chance(20) { ", method: GET" } else { "" };
                        let headers = match rng.below(3) {
                            0 => "",
                            1 => ", headers: [{name: x, value: \"1\"}]",
                            _ => ", headers: [{name: x, value: \"1\"}, {name: y, value: \"2\"}]",
                        };
                        format!(
                            "{{path: {}{method}{headers}}}",
                            paths[rng.below(5) as usize]
                        )
                    })
                    .collect();
                format!(
                    "{{matches: [{}], backendRefs: [{{name: svc, port: 80}}]}}",
                    matches.join(", ")
                )
            })
            .collect();
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\nmetadata: {{name: r{name}, namespace: {namespace}{stamp}}}\nspec:\n  parentRefs: {parents}\n  rules: [{}]\n",
            rules.join(", ")
        )
    };
    let mut world: Snapshot = load("test", base).into_iter().collect();
    for name in 0..60 {
        world.extend(load("test", &variant(name)));
    }
    let options = Options::default();
    let mut incremental = Incremental::default();
    assert!(
        incremental.translate(&Arc::new(world.clone()), &options) == translate(&world, &options)
    );
    let mut edits = Rng::new(11);
    for step in 0..300 {
        let name = edits.below(70) as usize;
        if edits.chance(15) {
            let present = world_refs(&world);
            let routes: Vec<_> = present
                .iter()
                .filter(|r| r.key.name.starts_with('r'))
                .collect();
            if let Some(victim) = routes.get(edits.below(routes.len().max(1) as u64) as usize) {
                world.delete(victim);
            }
        } else {
            world.extend(load("test", &variant(name)));
        }
        let snapshot = Arc::new(world.clone());
        assert!(
            incremental.translate(&snapshot, &options) == translate(&snapshot, &options),
            "step {step}: the kept order differs from a sort"
        );
    }
}

/// A route whose conversion did not change can still lose its backend: a BackendTLSPolicy
/// lists at most 16 ancestors, so a 17th Gateway routing to the policy's Service pushes the
/// last one in order out, and that Gateway must answer 500 instead of sending plaintext. Its
/// rebuilt IR must not reuse the IR route it kept from when the backend was reachable.
#[test]
fn a_route_whose_backend_becomes_blocked_is_not_served_from_its_kept_ir() {
    let mut docs = vec![
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ferrogate}\nspec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}\n".to_string(),
        "apiVersion: v1\nkind: Service\nmetadata: {name: secure, namespace: default}\nspec: {ports: [{name: https, port: 443}]}\n".to_string(),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: secure-tls, namespace: default}\nspec:\n  targetRefs: [{group: \"\", kind: Service, name: secure}]\n  validation: {wellKnownCACertificates: System, hostname: secure.example.com}\n".to_string(),
    ];
    let gateway = |name: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{{name: http, protocol: HTTP, port: 80}}]\n"
        )
    };
    let route = |name: &str, gateway: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: {gateway}}}]\n  rules: [{{backendRefs: [{{name: secure, port: 443}}]}}]\n"
        )
    };
    // 17 Gateways; 16 of them have a route to the Service: every one fits the policy.
    for i in 0..17 {
        docs.push(gateway(&format!("gw-{i:02}")));
    }
    for i in 1..17 {
        docs.push(route(&format!("route-{i:02}"), &format!("gw-{i:02}")));
    }
    let mut world: Snapshot = load("test", &docs.join("---\n")).into_iter().collect();
    let options = Options::default();
    let mut incremental = Incremental::default();
    let before = incremental.translate(&Arc::new(world.clone()), &options);
    assert!(before == translate(&world, &options));
    // The 17th route comes first in order: gw-16 no longer fits and its backend is blocked.
    world.extend(load("test", &route("route-00", "gw-00")));
    let after = incremental.translate(&Arc::new(world.clone()), &options);
    let key = ferrogate_ir::GatewayKey::new("default", "gw-16");
    assert_ne!(before.gateways[&key], after.gateways[&key]);
    assert!(after == translate(&world, &options));
}

/// The route-edit path (`route_edits`): while only routes change, a translation patches
/// the last one; its output must be exactly a full translation's, through adds, edits and
/// deletes of every route kind on many Gateways, bursts of several routes, and now and then
/// another kind of change that takes the whole path and settles again.
#[test]
fn a_route_edit_equals_a_full_translation() {
    let pool: Vec<Object> = pool()
        .into_iter()
        .filter(|o| o.object_ref().kind != Kind::BackendTlsPolicy)
        .collect();
    let (compared, patched) = route_edits(pool, 100);
    assert!(
        patched * 2 > compared,
        "the route-edit path ran {patched} times in {compared} translations"
    );
}

/// The same with BackendTLSPolicies in the world: a route that reaches a Service a policy
/// targets, before or after its edit, takes the whole path (settling the policy reads every
/// such route); the others are patched, and the policies' statuses and blocked backends stay
/// exactly what a full translation gives.
#[test]
fn a_route_edit_beside_backend_tls_policies_equals_a_full_translation() {
    let (compared, patched) = route_edits(pool(), 200);
    assert!(
        patched > 0 && patched < compared,
        "the route-edit path ran {patched} times in {compared} translations"
    );
}

/// Random route edits over `pool`'s other objects; asserts every translation equals a full
/// one and returns (translations compared, translations the route-edit path made).
fn route_edits(pool: Vec<Object>, seed: u64) -> (u64, u64) {
    let (routes, others): (Vec<Object>, Vec<Object>) = pool
        .into_iter()
        .partition(|o| o.object_ref().kind.is_route());
    assert!(routes.len() > 40, "too few routes: {}", routes.len());
    let options = Options::default();
    let (mut compared, mut patched) = (0u64, 0u64);
    for sequence in 0..sequences() {
        let mut rng = Rng::new(sequence + seed);
        let mut world: Snapshot = others.iter().cloned().collect();
        for _ in 0..60 {
            world.apply(routes[rng.below(routes.len() as u64) as usize].clone());
        }
        let mut incremental = Incremental::default();
        incremental.translate(&Arc::new(world.clone()), &options);
        let before = incremental.route_edit_translations();
        for step in 0..STEPS {
            if rng.chance(4) {
                // Another kind of change: the whole path, then route edits again.
                world.apply(others[rng.below(others.len() as u64) as usize].clone());
            }
            let edits = if rng.chance(15) { 1 + rng.below(6) } else { 1 };
            for _ in 0..edits {
                let present: Vec<_> = world_refs(&world)
                    .into_iter()
                    .filter(|r| r.kind.is_route())
                    .collect();
                if !present.is_empty() && rng.chance(30) {
                    world.delete(&present[rng.below(present.len() as u64) as usize]);
                } else {
                    world.apply(routes[rng.below(routes.len() as u64) as usize].clone());
                }
            }
            let snapshot = Arc::new(world.clone());
            let incremental_output = incremental.translate(&snapshot, &options);
            assert!(
                incremental_output == translate(&snapshot, &options),
                "sequence {sequence}, step {step}: a patched translation differs from a full one"
            );
            compared += 1;
        }
        patched += incremental.route_edit_translations() - before;
    }
    (compared, patched)
}

/// Kept conversions name BackendTLSPolicies by their position in input order: deleting a
/// policy in one namespace moves the others, so a route in another namespace (whose
/// conversion is not stale by namespace) must not keep naming the old positions.
#[test]
fn a_policy_removed_elsewhere_does_not_shift_the_policies_kept_routes_name() {
    let docs = [
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ferrogate}\nspec: {controllerName: gateway.ferrogate.dev/gatewayclass-controller}\n",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\nspec:\n  gatewayClassName: ferrogate\n  listeners: [{name: http, protocol: HTTP, port: 80}]\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: apps}\nspec: {ports: [{name: https, port: 443}]}\n",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: first, namespace: apps}\nspec:\n  targetRefs: [{group: \"\", kind: Service, name: other}]\n  validation: {wellKnownCACertificates: System, hostname: other.example.com}\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: secure, namespace: default}\nspec: {ports: [{name: https, port: 443}]}\n",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: secure-tls, namespace: default}\nspec:\n  targetRefs: [{group: \"\", kind: Service, name: secure}]\n  validation: {wellKnownCACertificates: System, hostname: secure.example.com}\n",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: default}\nspec:\n  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: secure, port: 443}]}]\n",
    ];
    let mut world: Snapshot = load("test", &docs.join("---\n")).into_iter().collect();
    let options = Options::default();
    let mut incremental = Incremental::default();
    assert!(
        incremental.translate(&Arc::new(world.clone()), &options) == translate(&world, &options)
    );
    let first = load("test", docs[3]).remove(0).object_ref();
    world.delete(&first);
    let after = incremental.translate(&Arc::new(world.clone()), &options);
    let full = translate(&world, &options);
    let ancestors = |t: &ferrogate_translator::Translation| {
        t.statuses
            .backend_tls_policies
            .iter()
            .map(|p| (p.name.clone(), p.ancestors.len()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ancestors(&full), [("secure-tls".to_string(), 1)]);
    assert_eq!(ancestors(&after), ancestors(&full));
    assert!(after == full);
}
