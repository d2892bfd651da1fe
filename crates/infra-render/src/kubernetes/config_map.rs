//! The ConfigMap holding the Envoy bootstrap (`bootstrap.json`), mounted read-only at
//! `/etc/envoy`. In a pod the admin interface listens on 127.0.0.1:19000 only, Prometheus
//! stats on 19001 (static listener in the bootstrap) and readiness on 19003 (delivered over
//! xDS); the xDS server is `RenderOptions::xds_service:xds_port`, reached over mutual TLS with
//! the files of the Gateway's xDS Secret at [`XDS_TLS_DIR`] when `RenderOptions::xds_tls`.

use std::collections::BTreeMap;

use ferrogate_api::{ENVOY_ADMIN_PORT, ENVOY_STATS_PORT};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

use super::Ctx;
use crate::bootstrap::{BootstrapParams, XdsTlsPaths, bootstrap_hash, render_bootstrap};

/// Key of the bootstrap in the ConfigMap.
pub const BOOTSTRAP_KEY: &str = "bootstrap.json";
/// Where Envoy reads the bootstrap in the pod.
pub const BOOTSTRAP_PATH: &str = "/etc/envoy/bootstrap.json";
/// Where the Gateway's xDS client Secret (`ca.crt`, `tls.crt`, `tls.key`) is mounted.
pub const XDS_TLS_DIR: &str = "/etc/ferrogate/xds";

pub(super) fn render(ctx: &Ctx<'_>) -> ConfigMap {
    let params = BootstrapParams {
        gateway: ctx.infra.gateway.clone(),
        // Replaced per pod by `--service-node $(POD_NAME)`.
        node_id: format!("{}/{}", ctx.infra.gateway.namespace, ctx.infra.gateway.name),
        xds_host: ctx.opts.xds_service.clone(),
        xds_port: ctx.opts.xds_port,
        admin_address: "127.0.0.1".into(),
        admin_port: ENVOY_ADMIN_PORT,
        stats_port: ENVOY_STATS_PORT,
        delta: ctx.opts.delta,
        xds_tls: ctx.opts.xds_tls.then(|| XdsTlsPaths::in_dir(XDS_TLS_DIR)),
    };
    let bootstrap = serde_json::to_string_pretty(&sorted(render_bootstrap(&params)))
        .expect("JSON always serializes")
        + "\n";
    ConfigMap {
        metadata: ctx.metadata(ctx.name.clone(), &BTreeMap::new(), &BTreeMap::new()),
        data: Some(BTreeMap::from([(BOOTSTRAP_KEY.to_string(), bootstrap)])),
        ..ConfigMap::default()
    }
}

/// [`bootstrap_hash`] of the bootstrap in `cm`: the pod annotation that restarts Envoy when
/// (and only when) the bootstrap changes.
pub(super) fn hash(cm: &ConfigMap) -> String {
    let text = &cm.data.as_ref().expect("rendered with data")[BOOTSTRAP_KEY];
    bootstrap_hash(&serde_json::from_str(text).expect("rendered JSON parses"))
}

/// Rebuilds `v` with object keys inserted in sorted order, so the text is the same whether
/// or not serde_json's `preserve_order` feature is unified in.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let entries: BTreeMap<String, Value> = map.into_iter().collect();
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
