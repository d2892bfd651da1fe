//! What every in-cluster test does first: a control plane, upstream's CRDs, the chart, and
//! `ferrogate controller` running as the chart's ServiceAccount.
#![allow(dead_code)]

use std::time::Duration;

use ferrogate_cluster::controller::certgen;
use ferrogate_cluster::{
    ControlPlane, ControlPlaneOptions, Controller, ControllerOptions, install,
};
use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(60);
pub const CONTROLLER_NAME: &str = "gateway.ferrogate.dev/gatewayclass-controller";

/// Chart values of the seed walkthrough, as docs/controller.md installs the chart on a local
/// control plane: the GatewayClass `ferrogate` and an EnvoyProxy with two replicas.
pub fn chart_values() -> String {
    std::fs::read_to_string(
        ferrogate_cluster::tools::repo_root().join("charts/ferrogate/ci/local-cluster-values.yaml"),
    )
    .unwrap()
}

pub struct Cluster {
    pub plane: ControlPlane,
    pub tls: tempfile::TempDir,
}

impl Cluster {
    /// A control plane with upstream's experimental CRDs and the chart installed.
    pub async fn start() -> Self {
        let plane = ControlPlane::start(ControlPlaneOptions::default())
            .await
            .expect("control plane");
        install::gateway_api_crds(&plane, "experimental").expect("upstream Gateway API CRDs");
        install::chart(&plane, &chart_values())
            .unwrap_or_else(|e| panic!("chart install: {e:#}\n{}", plane.logs(20)));
        let tls = tempfile::tempdir().unwrap();
        certgen(tls.path()).expect("ferrogate certgen");
        Self { plane, tls }
    }

    /// Starts a controller replica named `identity`.
    pub fn controller(&self, identity: &str) -> Controller {
        self.controller_with(&ControllerOptions::new(identity))
    }

    pub fn controller_with(&self, options: &ControllerOptions) -> Controller {
        Controller::start(&self.plane, self.tls.path(), options).expect("ferrogate controller")
    }

    /// `kubectl ARGS` as the admin; panics with the error.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.plane
            .kubectl_output(args)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `kubectl apply --server-side` of `yaml` as the admin (a user's own objects).
    pub fn apply(&self, yaml: &str) {
        self.try_apply(yaml).unwrap_or_else(|e| panic!("{e:#}"));
    }

    pub fn try_apply(&self, yaml: &str) -> anyhow::Result<String> {
        ferrogate_cluster::kubectl::run(
            &self.plane.binaries().kubectl,
            self.plane.kubeconfig(),
            &["apply", "--server-side", "--field-manager=user", "-f", "-"],
            Some(yaml),
        )
    }

    /// The object as JSON, `None` when it does not exist.
    pub fn get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let mut args = vec!["get", resource, name, "-o", "json", "--ignore-not-found"];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        let out = self.plane.kubectl_output(&args).ok()?;
        if out.trim().is_empty() {
            None
        } else {
            serde_json::from_str(&out).ok()
        }
    }

    /// Every object of `resource` in `namespace` (`items`).
    pub fn list(&self, resource: &str, namespace: &str) -> Vec<Value> {
        let out = self.kubectl(&["get", resource, "-n", namespace, "-o", "json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `check` of the object returns true.
    pub async fn wait_for(
        &self,
        what: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let found = ferrogate_cluster::wait::until(what, WAIT, || {
            let got = self.get(resource, namespace, name);
            let ok = got.as_ref().is_some_and(&check);
            async move {
                match got {
                    Some(v) if ok => Ok(v),
                    Some(v) => Err(short(&v["status"])),
                    None => Err("not found".to_string()),
                }
            }
        })
        .await;
        found.unwrap_or_else(|e| panic!("{e:#}\n{}", self.plane.logs(15)))
    }

    /// Waits until the object is gone.
    pub async fn wait_gone(&self, resource: &str, namespace: Option<&str>, name: &str) {
        ferrogate_cluster::wait::until(&format!("{resource} {name} deleted"), WAIT, || {
            let got = self.get(resource, namespace, name);
            async move {
                if got.is_none() {
                    Ok(())
                } else {
                    Err("still there".to_string())
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

/// The condition `type_` in the array at `pointer`.
pub fn condition<'a>(object: &'a Value, pointer: &str, type_: &str) -> Option<&'a Value> {
    object
        .pointer(pointer)?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// `status/reason` of condition `type_` at `pointer`, e.g. `True/Accepted`.
pub fn condition_is(object: &Value, pointer: &str, type_: &str, status: &str) -> bool {
    condition(object, pointer, type_).is_some_and(|c| c["status"] == status)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        format!("{}...", &s[..600])
    } else {
        s
    }
}

/// `status/reason` of condition `type_` at `pointer`, or "" when absent.
pub fn reason(object: &Value, pointer: &str, type_: &str) -> String {
    condition(object, pointer, type_)
        .map(|c| {
            format!(
                "{}/{}",
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default()
}

pub mod wait {
    use super::{Cluster, WAIT};

    /// Waits until exactly `n` Pods match `selector` in `namespace`.
    pub async fn pods(cluster: &Cluster, namespace: &str, selector: &str, n: usize) -> usize {
        ferrogate_cluster::wait::until(&format!("{n} Pods {selector}"), WAIT, || {
            let out = cluster
                .plane
                .kubectl_output(&["get", "pods", "-n", namespace, "-l", selector, "-o", "name"])
                .unwrap_or_default();
            let count = out.lines().filter(|l| !l.trim().is_empty()).count();
            async move {
                if count == n {
                    Ok(count)
                } else {
                    Err(format!("{count} Pods"))
                }
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cluster.plane.logs(10)))
    }
}

pub mod docs;
pub mod envoy;

/// The value of counter or gauge `name` (summed over its series) from `/metrics` on `port`.
pub async fn metric(port: u16, name: &str) -> f64 {
    let target: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let Ok(r) = ferrogate_e2e::client::get(target, "localhost", "/metrics", &[]).await else {
        return f64::NAN;
    };
    let body = String::from_utf8_lossy(&r.body).into_owned();
    body.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l[name.len()..].starts_with(' ') || l[name.len()..].starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until `GET http://127.0.0.1:port{path}` with `Host: host` answers 200; returns the body.
pub async fn http_200(port: u16, host: &str, path: &str) -> Value {
    let target: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    ferrogate_cluster::wait::until(&format!("200 from {host}{path}"), WAIT, || async move {
        match ferrogate_e2e::client::get(target, host, path, &[]).await {
            Ok(r) if r.status == 200 => r.json().map_err(|e| e.to_string()),
            Ok(r) => Err(format!("status {}", r.status)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// Waits until metric `name` on `port` satisfies `ok`.
pub async fn wait_metric(port: u16, name: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let ok = &ok;
    ferrogate_cluster::wait::until(&format!("metric {name}"), WAIT, || async move {
        let v = metric(port, name).await;
        if ok(v) { Ok(v) } else { Err(format!("{v}")) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// A Service `echo` (port 8080, named `http`) in `namespace` with an EndpointSlice naming the
/// echo backend a test runs at `echo` (a non-loopback host address: the API server refuses
/// loopback endpoints).
pub fn echo_backend_yaml(namespace: &str, echo: std::net::SocketAddr) -> String {
    let (ip, port) = (echo.ip(), echo.port());
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: {namespace}}}\nspec:\n  ports: [{{name: http, port: 8080, targetPort: {port}, protocol: TCP}}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: echo-1\n  namespace: {namespace}\n  labels: {{kubernetes.io/service-name: echo}}\n\
         addressType: IPv4\nports: [{{name: http, port: {port}, protocol: TCP}}]\nendpoints:\n- addresses: [{ip}]\n  conditions: {{ready: true}}\n"
    )
}
