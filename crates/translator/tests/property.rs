//! Property test over generated inputs (a bounded number of seeds; set
//! FERROGATE_PROPERTY_CASES for more): translation never panics, is deterministic, and every
//! IR it publishes is internally consistent (every backend a route names exists; listener
//! names are unique per Gateway).

use std::collections::BTreeSet;

use ferrogate_ir::{ListenerKind, RouteAction};
use ferrogate_store::{Snapshot, load_documents};
use ferrogate_testkit::worlds;
use ferrogate_translator::{Options, translate};

fn cases() -> u64 {
    std::env::var("FERROGATE_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

#[test]
fn translation_of_generated_worlds_is_total_deterministic_and_consistent() {
    let (mut documents, mut problems, mut served_routes) = (0usize, 0usize, 0usize);
    for seed in 0..cases() {
        let text = worlds::world(seed, false);
        let (objects, load_problems) = load_documents("generated", &text);
        documents += objects.len() + load_problems.len();
        problems += load_problems.len();
        let snapshot: Snapshot = objects.into_iter().collect();
        let first = translate(&snapshot, &Options::default());
        let second = translate(&snapshot, &Options::default());
        assert_eq!(first, second, "seed {seed}: not deterministic\n{text}");
        for (key, ir) in &first.gateways {
            let backends: BTreeSet<&str> = ir.backends.iter().map(|b| b.name.as_str()).collect();
            let mut names = BTreeSet::new();
            for l in &ir.listeners {
                assert!(
                    names.insert(&l.name),
                    "seed {seed}: duplicate listener {} in {key}",
                    l.name
                );
                let mut referenced = Vec::new();
                let mut from_hosts = |hosts: &[ferrogate_ir::VirtualHost]| {
                    for vh in hosts {
                        for r in &vh.routes {
                            if let RouteAction::Forward(f) = &*r.action {
                                referenced.extend(f.backends.iter().map(|b| b.backend.clone()));
                                referenced.extend(f.mirrors.iter().map(|m| m.backend.clone()));
                            }
                        }
                    }
                };
                match &l.kind {
                    ListenerKind::Http(h) => {
                        served_routes += h
                            .virtual_hosts
                            .iter()
                            .map(|v| v.routes.len())
                            .sum::<usize>();
                        from_hosts(&h.virtual_hosts)
                    }
                    ListenerKind::Https(h) => {
                        h.chains.iter().for_each(|c| from_hosts(&c.virtual_hosts))
                    }
                    ListenerKind::Tls(t) => referenced.extend(
                        t.chains
                            .iter()
                            .flat_map(|c| c.backends.iter().map(|b| b.backend.clone())),
                    ),
                    ListenerKind::Tcp(s) | ListenerKind::Udp(s) => {
                        referenced.extend(s.backends.iter().map(|b| b.backend.clone()))
                    }
                }
                for b in referenced {
                    assert!(
                        backends.contains(b.as_str()),
                        "seed {seed}: {key} names backend {b} that is not in the IR\n{text}"
                    );
                }
            }
        }
    }
    // The generator must exercise the translator, not just the YAML loader.
    assert!(
        problems * 20 < documents,
        "{problems} of {documents} generated documents did not load"
    );
    assert!(
        served_routes * 3 > cases() as usize,
        "only {served_routes} routes served over {} worlds",
        cases()
    );
}
