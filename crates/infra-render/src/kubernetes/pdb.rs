//! The PodDisruptionBudget (policy/v1), when `envoyPDB` is set: `minAvailable` or
//! `maxUnavailable` as given (`minAvailable` wins if both are), `minAvailable: 1` if neither.

use std::collections::BTreeMap;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Ctx, selector_labels};

pub(super) fn render(ctx: &Ctx<'_>) -> Option<PodDisruptionBudget> {
    let pdb = ctx.proxy.pdb()?;
    let (min_available, max_unavailable) = match (&pdb.min_available, &pdb.max_unavailable) {
        (Some(min), _) => (Some(min.clone()), None),
        (None, Some(max)) => (None, Some(max.clone())),
        (None, None) => (Some(IntOrString::Int(1)), None),
    };
    Some(PodDisruptionBudget {
        metadata: ctx.metadata(ctx.name.clone(), &BTreeMap::new(), &BTreeMap::new()),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(ctx.infra)),
                ..LabelSelector::default()
            }),
            min_available,
            max_unavailable,
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}
