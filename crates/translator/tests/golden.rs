//! Golden tests: `testdata/<case>.in.yaml` (Kubernetes objects) -> statuses, IR and infra IR
//! in `<case>.out.yaml`. Regenerate with `UPDATE_GOLDEN=1`.

use std::path::Path;

use ferrogate_ir::{GatewayIr, InfraIr};
use ferrogate_status::StatusSet;
use ferrogate_store::{Snapshot, load_documents};
use ferrogate_translator::{Options, translate};
use serde::Serialize;

#[derive(Serialize)]
struct Golden<'a> {
    statuses: &'a StatusSet,
    ir: Vec<&'a GatewayIr>,
    infra: Vec<&'a InfraIr>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    parameters: std::collections::BTreeMap<String, &'a ferrogate_api::envoyproxy::EnvoyProxySpec>,
}

fn render(input: &str, case: &str) -> String {
    let (objects, errors) = load_documents(case, input);
    assert!(errors.is_empty(), "{case}: {errors:?}");
    let snapshot: Snapshot = objects.into_iter().collect();
    let translation = translate(&snapshot, &Options::default());
    let again = translate(&snapshot, &Options::default());
    assert_eq!(
        translation, again,
        "{case}: translation is not deterministic"
    );
    let golden = Golden {
        statuses: &translation.statuses,
        ir: translation.gateways.values().map(|g| g.as_ref()).collect(),
        infra: translation.infra.values().collect(),
        // Only non-default parameters, so cases without EnvoyProxy objects stay unchanged.
        parameters: translation
            .parameters
            .iter()
            .filter(|(_, p)| **p != ferrogate_api::envoyproxy::EnvoyProxySpec::default())
            .map(|(k, p)| (k.to_string(), p))
            .collect(),
    };
    yaml_serde::to_string(&golden).unwrap()
}

#[test]
fn translator_golden_files_match() {
    ferrogate_testkit::check_golden(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata"),
        "yaml",
        render,
    );
}
