//! The CRD files the Helm chart and `manifests/` ship, generated from the Rust types and
//! compared with the checked-in files (`UPDATE_GOLDEN=1` rewrites them; `make manifests` does).
//!
//! - `charts/ferrogate/crds/ferrogate.yaml`: Ferrogate's `EnvoyProxy` (what `ferrogate crds`
//!   prints).
//! - `charts/ferrogate/crds/gateway-api.yaml` and `manifests/crds/gateway-api-standard.yaml`:
//!   the Gateway API v1.5.1 CRDs, experimental and standard channel. The upstream YAML cannot
//!   be fetched on the machines this project is built on and no reachable package registry
//!   ships it, so they are generated from the `gateway-api` crate's types (kopium output of
//!   that release) with `kube::CustomResourceExt::crd()`. Compared with upstream they have the
//!   same group, kinds, names, scope, storage version, status subresource and fields, but
//!   serve only that one version per kind and lack upstream's enums, defaults, CEL rules and
//!   printer columns.

use std::path::{Path, PathBuf};

use gateway_api::apis::{experimental as x, standard as s};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

const BUNDLE_VERSION: &str = "v1.5.1";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn standard() -> Vec<CustomResourceDefinition> {
    vec![
        s::gatewayclasses::GatewayClass::crd(),
        s::gateways::Gateway::crd(),
        s::httproutes::HttpRoute::crd(),
        s::grpcroutes::GrpcRoute::crd(),
        s::tlsroutes::TlsRoute::crd(),
        s::referencegrants::ReferenceGrant::crd(),
        s::backendtlspolicies::BackendTlsPolicy::crd(),
        s::listenersets::ListenerSet::crd(),
    ]
}

fn experimental() -> Vec<CustomResourceDefinition> {
    vec![
        x::gatewayclasses::GatewayClass::crd(),
        x::gateways::Gateway::crd(),
        x::httproutes::HttpRoute::crd(),
        x::grpcroutes::GrpcRoute::crd(),
        x::tlsroutes::TlsRoute::crd(),
        x::tcproutes::TcpRoute::crd(),
        x::udproutes::UdpRoute::crd(),
        x::referencegrants::ReferenceGrant::crd(),
        // The crate has no experimental BackendTLSPolicy; the standard one is the same release's.
        s::backendtlspolicies::BackendTlsPolicy::crd(),
        x::listenersets::ListenerSet::crd(),
        x::xbackendtrafficpolicies::XBackendTrafficPolicy::crd(),
        x::xmeshes::XMesh::crd(),
    ]
}

fn gateway_api_yaml(channel: &str, mut crds: Vec<CustomResourceDefinition>) -> String {
    crds.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut out = format!(
        "# Gateway API {BUNDLE_VERSION} CRDs, {channel} channel, generated from the Rust types of the\n\
         # gateway-api crate by crates/api/tests/crds.rs (`make manifests`). Do not edit.\n"
    );
    for mut crd in crds {
        let annotations = crd.metadata.annotations.get_or_insert_with(Default::default);
        annotations.insert("gateway.networking.k8s.io/bundle-version".into(), BUNDLE_VERSION.into());
        annotations.insert("gateway.networking.k8s.io/channel".into(), channel.into());
        annotations.insert("gateway.ferrogate.dev/generated-from".into(), "gateway-api-rust-types".into());
        out.push_str("---\n");
        out.push_str(&yaml_serde::to_string(&crd).expect("a CRD always serializes"));
    }
    out
}

/// Compares `content` with the file, or rewrites it under `UPDATE_GOLDEN=1`.
fn check(relative: &str, content: &str) -> Option<String> {
    let path = repo_root().join(relative);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(old) if old == content => None,
        _ => Some(format!("{relative} is stale: run `make manifests`")),
    }
}

#[test]
fn chart_and_manifest_crds_are_generated_from_the_types() {
    let envoyproxy = format!(
        "# Ferrogate's EnvoyProxy CRD, generated from the Rust types (`ferrogate crds`,\n\
         # crates/api/tests/crds.rs, `make manifests`). Do not edit.\n---\n{}",
        ferrogate_api::envoyproxy::crd_yaml()
    );
    let problems: Vec<String> = [
        check("charts/ferrogate/crds/ferrogate.yaml", &envoyproxy),
        check("charts/ferrogate/crds/gateway-api.yaml", &gateway_api_yaml("experimental", experimental())),
        check("manifests/crds/gateway-api-standard.yaml", &gateway_api_yaml("standard", standard())),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
