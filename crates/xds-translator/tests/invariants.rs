//! Properties the rest of the control plane relies on: determinism, route changes leave
//! Listeners alone, endpoint changes leave Clusters alone.

use std::fs;
use std::path::Path;

use ferrogate_ir::{Cors, Endpoint, GatewayIr, ListenerKind, Mirror, PathMatch, RouteAction};
use ferrogate_xds_translator::{
    EnvoyResources, RouteEncodings, XdsOptions, content_hash, translate, translate_any,
    translate_endpoints, type_url,
};
use prost::Message;

const OPTS: XdsOptions = XdsOptions {
    ready_port: 19003,
    access_logs: Vec::new(),
};

fn load(case: &str) -> GatewayIr {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/{case}.in.yaml"));
    yaml_serde::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes<T: Message>(items: &[T]) -> Vec<Vec<u8>> {
    items.iter().map(Message::encode_to_vec).collect()
}

#[test]
fn translating_twice_gives_identical_bytes() {
    for case in [
        "two-virtual-hosts",
        "weighted-split",
        "h2c-backend",
        "redirect",
        "https-two-chains",
        "tls-passthrough",
        "tls-terminate",
        "tcp",
        "udp",
        "backend-tls",
        "cors",
        "mirror",
        "retry-timeouts",
        "per-backend-headers",
        "invalid-weight",
    ] {
        let ir = load(case);
        let a = translate(&ir, &OPTS);
        let b = translate(&ir.clone(), &OPTS);
        assert_eq!(a, b);
        assert_eq!(bytes(&a.listeners), bytes(&b.listeners));
        assert_eq!(bytes(&a.route_configs), bytes(&b.route_configs));
        assert_eq!(bytes(&a.clusters), bytes(&b.clusters));
        assert_eq!(bytes(&a.endpoints), bytes(&b.endpoints));
        assert_eq!(bytes(&a.secrets), bytes(&b.secrets));
        assert_eq!(a.into_any(), b.into_any());
    }
}

#[test]
fn route_change_leaves_listeners_identical() {
    let before = load("two-virtual-hosts");
    let mut after = before.clone();
    let ListenerKind::Http(http) = &mut after.listeners[0].kind else {
        panic!("expected an HTTP listener");
    };
    let route = std::sync::Arc::make_mut(&mut http.virtual_hosts[0].routes[0]);
    std::sync::Arc::make_mut(&mut route.matcher).path = PathMatch::Prefix("/changed".into());
    http.virtual_hosts.pop();

    let a = translate(&before, &OPTS);
    let b = translate(&after, &OPTS);
    assert_ne!(bytes(&a.route_configs), bytes(&b.route_configs));
    assert_eq!(bytes(&a.listeners), bytes(&b.listeners));
    assert_eq!(bytes(&a.clusters), bytes(&b.clusters));
}

#[test]
fn endpoint_change_leaves_clusters_identical() {
    let before = load("two-virtual-hosts");
    let mut after = before.clone();
    let mut grown = after.backends[0].endpoints.to_vec();
    grown.push(Endpoint {
        address: "10.9.9.9".into(),
        port: 80,
    });
    after.backends[0].endpoints = grown.into();
    after.backends[1].endpoints = Vec::new().into();

    let a = translate(&before, &OPTS);
    let b = translate(&after, &OPTS);
    assert_ne!(bytes(&a.endpoints), bytes(&b.endpoints));
    assert_eq!(bytes(&a.clusters), bytes(&b.clusters));
    assert_eq!(bytes(&a.listeners), bytes(&b.listeners));
    assert_eq!(bytes(&a.route_configs), bytes(&b.route_configs));
    // The EDS-only path gives exactly what the full translation gives.
    assert_eq!(translate_endpoints(&after), b.endpoints);
}

#[test]
fn resources_are_sorted_by_name_and_complete() {
    let res = translate(&load("two-virtual-hosts"), &OPTS);
    let names = |v: Vec<String>| {
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(v, sorted);
        v
    };
    assert_eq!(
        names(res.listeners.iter().map(|l| l.name.clone()).collect()),
        ["http-10080", "http-18080", "ready"]
    );
    names(res.route_configs.iter().map(|r| r.name.clone()).collect());
    names(res.clusters.iter().map(|c| c.name.clone()).collect());
    names(
        res.endpoints
            .iter()
            .map(|e| e.cluster_name.clone())
            .collect(),
    );
    assert_eq!(res.clusters.len(), res.endpoints.len());
}

#[test]
fn into_any_packs_every_type() {
    let res: EnvoyResources = translate(&load("basic-forward"), &OPTS);
    let listener_hash = content_hash(&res.listeners[0]);
    let any = res.clone().into_any();
    assert_eq!(any.keys().copied().collect::<Vec<_>>(), {
        let mut k = vec![
            type_url::CLUSTER,
            type_url::ENDPOINT,
            type_url::LISTENER,
            type_url::ROUTE,
            type_url::SECRET,
        ];
        k.sort();
        k
    });
    let (name, packed) = &any[type_url::LISTENER][0];
    assert_eq!(name, &res.listeners[0].name);
    assert_eq!(packed.type_url, type_url::LISTENER);
    assert_eq!(packed.value, res.listeners[0].encode_to_vec());
    assert_eq!(listener_hash.len(), 16);
    assert_eq!(any[type_url::ROUTE][0].0, "http-8080");
    assert_eq!(any[type_url::CLUSTER][0].0, "default/web/80");
    assert_eq!(any[type_url::ENDPOINT][0].0, "default/web/80");
    assert!(any[type_url::SECRET].is_empty());

    let res = translate(&load("https-two-chains"), &OPTS);
    let any = res.clone().into_any();
    let names: Vec<&str> = any[type_url::SECRET]
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["default/api-cert", "default/wildcard-cert"]);
    assert_eq!(any[type_url::SECRET][0].1.type_url, type_url::SECRET);
    assert_eq!(
        any[type_url::SECRET][0].1.value,
        res.secrets[0].encode_to_vec()
    );
}

#[test]
fn cors_and_mirror_changes_leave_listeners_identical() {
    let before = load("basic-forward");
    let mut after = before.clone();
    let ListenerKind::Http(http) = &mut after.listeners[0].kind else {
        panic!("expected an HTTP listener");
    };
    let route = std::sync::Arc::make_mut(&mut http.virtual_hosts[0].routes[0]);
    route.cors = Some(Box::new(Cors {
        allow_origins: vec!["https://*.example.com".into()],
        allow_methods: vec!["GET".into()],
        max_age_seconds: Some(60),
        ..Default::default()
    }));
    let RouteAction::Forward(f) = std::sync::Arc::make_mut(&mut route.action) else {
        panic!("expected a forward action");
    };
    f.mirrors.push(Mirror {
        backend: f.backends[0].backend.clone(),
        numerator: 10,
        denominator: 100,
    });

    let a = translate(&before, &OPTS);
    let b = translate(&after, &OPTS);
    assert_ne!(bytes(&a.route_configs), bytes(&b.route_configs));
    assert_eq!(bytes(&a.listeners), bytes(&b.listeners));
    assert_eq!(bytes(&a.clusters), bytes(&b.clusters));
}

#[test]
fn https_route_and_certificate_changes_leave_listeners_identical() {
    let before = load("https-two-chains");
    let mut after = before.clone();
    let ListenerKind::Https(https) = &mut after.listeners[0].kind else {
        panic!("expected an HTTPS listener");
    };
    let route = std::sync::Arc::make_mut(&mut https.chains[0].virtual_hosts[0].routes[0]);
    std::sync::Arc::make_mut(&mut route.matcher).path = PathMatch::Prefix("/changed".into());
    after.secrets[0].certificate_chain.push('\n');

    let a = translate(&before, &OPTS);
    let b = translate(&after, &OPTS);
    assert_ne!(bytes(&a.route_configs), bytes(&b.route_configs));
    assert_ne!(bytes(&a.secrets), bytes(&b.secrets));
    assert_eq!(bytes(&a.listeners), bytes(&b.listeners));
}

#[test]
fn stream_listeners_without_backends_still_bind_and_proxy_to_their_empty_stream_cluster() {
    for case in ["tcp", "udp", "tls-passthrough"] {
        let out = translate(&load(case), &OPTS);
        let ir = load(case);
        // Every stream listener of the IR is emitted, backends or not.
        let streams = ir.listeners.iter().filter(|l| {
            matches!(
                l.kind,
                ListenerKind::Tcp(_) | ListenerKind::Udp(_) | ListenerKind::Tls(_)
            )
        });
        for l in streams {
            assert!(
                out.listeners.iter().any(|x| x.name == l.name),
                "{case}: listener {} missing",
                l.name
            );
        }
        // Every stream cluster exists, and one of them has no endpoints (the empty route).
        let stream: Vec<_> = out
            .clusters
            .iter()
            .filter(|c| c.name.starts_with("stream/"))
            .collect();
        assert!(!stream.is_empty(), "{case}: no stream cluster");
        assert!(
            out.endpoints
                .iter()
                .any(|e| e.cluster_name.starts_with("stream/") && e.endpoints.is_empty()),
            "{case}: expected a stream cluster without endpoints"
        );
    }
}

#[test]
fn a_stream_weight_change_changes_endpoints_but_not_listeners_or_clusters() {
    let before = load("tcp");
    let mut after = before.clone();
    let l = after.listeners.iter_mut().find_map(|l| match &mut l.kind {
        ListenerKind::Tcp(s) if !s.backends.is_empty() => Some(s),
        _ => None,
    });
    let stream = l.expect("a TCP listener with backends");
    stream.backends[0].weight += 7;
    let a = translate(&before, &OPTS);
    let b = translate(&after, &OPTS);
    assert_eq!(bytes(&a.listeners), bytes(&b.listeners));
    assert_eq!(bytes(&a.clusters), bytes(&b.clusters));
    assert_ne!(bytes(&a.endpoints), bytes(&b.endpoints));
}

#[test]
fn type_urls_match_generated_names() {
    use envoy_types::pb::envoy::config::{
        cluster::v3::Cluster, endpoint::v3::ClusterLoadAssignment, listener::v3::Listener,
        route::v3::RouteConfiguration,
    };
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
    use prost::Name;
    assert_eq!(Listener::type_url(), type_url::LISTENER);
    assert_eq!(RouteConfiguration::type_url(), type_url::ROUTE);
    assert_eq!(Cluster::type_url(), type_url::CLUSTER);
    assert_eq!(ClusterLoadAssignment::type_url(), type_url::ENDPOINT);
    assert_eq!(Secret::type_url(), type_url::SECRET);
}

/// The pipeline's path (routes encoded once and kept) publishes exactly the bytes of a whole
/// translation: fresh, again with every route kept, and after routes are edited, added and
/// removed while the others stay shared.
#[test]
fn routes_kept_between_translations_give_the_bytes_of_a_whole_translation() {
    for case in [
        "two-virtual-hosts",
        "weighted-split",
        "redirect",
        "https-two-chains",
        "cors",
        "mirror",
        "retry-timeouts",
        "per-backend-headers",
        "invalid-weight",
        "tcp",
    ] {
        let mut ir = load(case);
        let mut encodings = RouteEncodings::default();
        let whole = |ir: &GatewayIr| translate(ir, &OPTS).into_any();
        assert_eq!(
            translate_any(&ir, &OPTS, &mut encodings),
            whole(&ir),
            "{case}"
        );
        assert_eq!(
            translate_any(&ir, &OPTS, &mut encodings),
            whole(&ir),
            "{case}, kept"
        );
        for listener in &mut ir.listeners {
            let hosts = match &mut listener.kind {
                ListenerKind::Http(http) => &mut http.virtual_hosts,
                ListenerKind::Https(https) => match https.chains.first_mut() {
                    Some(chain) => &mut chain.virtual_hosts,
                    None => continue,
                },
                _ => continue,
            };
            for vh in hosts.iter_mut() {
                if let Some(first) = vh.routes.first().cloned() {
                    let mut edited = (*first).clone();
                    edited.name.push_str("-edited");
                    vh.routes.push(std::sync::Arc::new(edited));
                    vh.routes.remove(0);
                }
            }
        }
        assert_eq!(
            translate_any(&ir, &OPTS, &mut encodings),
            whole(&ir),
            "{case}, edited"
        );
    }
}
