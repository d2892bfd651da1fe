//! The ServiceAccount of a Gateway's Envoy pods. Envoy never calls the Kubernetes API, so no
//! token is mounted (the pod spec sets `automountServiceAccountToken: false` as well).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;

use super::Ctx;

pub(super) fn render(ctx: &Ctx<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: ctx.metadata(ctx.name.clone(), &BTreeMap::new(), &BTreeMap::new()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
