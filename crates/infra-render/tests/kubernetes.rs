//! Golden tests of the Kubernetes objects rendered for a Gateway:
//! `testdata/kubernetes-<case>.in.yaml` (keys `infra:` — an infra IR, `envoyProxy:` — the
//! GatewayClass-level EnvoyProxy spec, optional `gatewayEnvoyProxy:` — the Gateway-level one,
//! merged over it, and `options:` — render options) renders to
//! `testdata/kubernetes-<case>.out.yaml` (all objects, multi-document YAML). Regenerate with
//! `UPDATE_GOLDEN=1` and review the diff. `validate_manifests.rs` checks the outputs against
//! the Kubernetes schemas.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferrogate_api::envoyproxy::{EnvoyProxySpec, merge};
use ferrogate_infra_render::kubernetes::{RenderOptions, render, to_yaml};
use ferrogate_ir::InfraIr;
use serde::Deserialize;
use serde_json::Value;

mod common;
use common::{envoy, kubernetes_files, testdata};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    infra: InfraIr,
    #[serde(default)]
    envoy_proxy: EnvoyProxySpec,
    #[serde(default)]
    gateway_envoy_proxy: Option<EnvoyProxySpec>,
    #[serde(default)]
    options: RenderOptions,
}

/// Every `kubernetes-*.in.yaml`, sorted.
fn cases() -> Vec<PathBuf> {
    kubernetes_files(".in.yaml")
}

fn render_case(input: &Path) -> String {
    let text = std::fs::read_to_string(input).unwrap();
    let case: Case =
        yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    let proxy = match &case.gateway_envoy_proxy {
        Some(over) => merge(&case.envoy_proxy, over),
        None => case.envoy_proxy.clone(),
    };
    to_yaml(&render(&case.infra, &proxy, &case.options))
}

#[test]
fn golden_kubernetes_objects() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 8,
        "expected the case matrix, found {cases:?}"
    );
    let mut failures = Vec::new();
    for input in cases {
        let output = PathBuf::from(input.to_string_lossy().replace(".in.yaml", ".out.yaml"));
        let actual = render_case(&input);
        assert_eq!(
            actual,
            render_case(&input),
            "rendering is not deterministic"
        );
        if update {
            std::fs::write(&output, &actual).unwrap();
            continue;
        }
        match std::fs::read_to_string(&output) {
            Ok(expected) if expected == actual => {}
            Ok(_) => failures.push(format!(
                "{} differs from the rendering:\n{actual}",
                output.display()
            )),
            Err(e) => failures.push(format!(
                "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
                output.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "rerun with UPDATE_GOLDEN=1 and review the diff:\n{}",
        failures.join("\n")
    );
}

/// No output file without an input (a renamed case must not leave a stale golden behind).
#[test]
fn no_orphan_outputs() {
    for entry in std::fs::read_dir(testdata()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("kubernetes-") && name.ends_with(".out.yaml") {
            let input = testdata().join(name.replace(".out.yaml", ".in.yaml"));
            assert!(input.exists(), "{name} has no input {}", input.display());
        }
    }
}

/// The documents of a golden output.
fn golden_objects(output: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(output).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .collect()
}

/// Writes a throwaway CA and client certificate as the xDS Secret's files into `dir`, since
/// Envoy's validate mode loads the files a bootstrap names.
fn write_xds_tls_files(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["envoy".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
}

/// A real Envoy accepts each golden ConfigMap's bootstrap with the exact arguments of the
/// golden Deployment (`--mode validate`; `$(POD_NAME)` and the mount paths substituted).
#[test]
fn envoy_accepts_rendered_bootstrap_and_args() {
    let envoy = envoy();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let xds_dir = tmp.join("infra-render-xds-tls");
    write_xds_tls_files(&xds_dir);
    for input in cases() {
        let output = PathBuf::from(input.to_string_lossy().replace(".in.yaml", ".out.yaml"));
        let objects = golden_objects(&output);
        let of_kind = |kind: &str| {
            objects
                .iter()
                .find(|o| o["kind"] == kind)
                .unwrap_or_else(|| panic!("{}: no {kind}", output.display()))
        };
        let bootstrap = of_kind("ConfigMap")["data"]["bootstrap.json"]
            .as_str()
            .unwrap();
        let stem = output
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".out.yaml", "");
        let path = tmp.join(format!("{stem}-bootstrap.json"));
        let bootstrap = bootstrap.replace(
            ferrogate_infra_render::kubernetes::XDS_TLS_DIR,
            &xds_dir.to_string_lossy(),
        );
        std::fs::write(&path, bootstrap).unwrap();
        let container = &of_kind("Deployment")["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["command"][0], "envoy");
        let args: Vec<String> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| match a.as_str().unwrap() {
                "/etc/envoy/bootstrap.json" => path.to_string_lossy().to_string(),
                "$(POD_NAME)" => "pod-0".to_string(),
                other => other.to_string(),
            })
            .collect();
        let run = Command::new(&envoy)
            .args(["--mode", "validate"])
            .args(&args)
            .output()
            .expect("run envoy --mode validate");
        assert!(
            run.status.success(),
            "envoy rejected {stem} with {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
}
