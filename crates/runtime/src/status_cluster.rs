//! `ferrogate status` against a cluster: lists GatewayClasses, Gateways and routes through
//! the API server and keeps what Ferrogate wrote (classes with our controller name, route
//! parents our controller reports on), as a [`StatusSet`].
//!
//! Objects are read as `DynamicObject`s: only `metadata` and `status` are needed, and a
//! route kind whose CRD is not installed (a cluster without the TCPRoute CRD) is
//! skipped instead of failing the whole table.

use ferrogate_status::{
    Condition, GatewayAddress, GatewayClassStatus, GatewayStatus, ListenerStatus, ParentRef,
    RouteParentStatus, RouteStatus, StatusSet,
};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

const GROUP: &str = "gateway.networking.k8s.io";

/// Reads the statuses of every object of ours in the cluster.
pub(crate) async fn read_cluster(client: kube::Client) -> Result<StatusSet, kube::Error> {
    let mut set = StatusSet::default();
    let mut ours = std::collections::BTreeSet::new();
    for class in list(&client, "v1", "GatewayClass").await? {
        if class
            .data
            .pointer("/spec/controllerName")
            .and_then(Value::as_str)
            != Some(ferrogate_api::CONTROLLER_NAME)
        {
            continue;
        }
        let name = class.metadata.name.clone().unwrap_or_default();
        ours.insert(name.clone());
        set.gateway_classes.push(GatewayClassStatus {
            name,
            conditions: conditions(class.data.pointer("/status/conditions")),
            // The table shows conditions only.
            supported_features: Vec::new(),
        });
    }
    for gw in list(&client, "v1", "Gateway").await? {
        let class = gw
            .data
            .pointer("/spec/gatewayClassName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !ours.contains(class) {
            continue;
        }
        let status = gw.data.get("status");
        set.gateways.push(GatewayStatus {
            namespace: gw.metadata.namespace.clone().unwrap_or_default(),
            name: gw.metadata.name.clone().unwrap_or_default(),
            conditions: conditions(status.and_then(|s| s.get("conditions"))),
            addresses: status
                .and_then(|s| s.get("addresses"))
                .and_then(|a| serde_json::from_value::<Vec<GatewayAddress>>(a.clone()).ok())
                .unwrap_or_default(),
            listeners: status
                .and_then(|s| s.get("listeners"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|l| ListenerStatus {
                    name: l["name"].as_str().unwrap_or_default().to_string(),
                    attached_routes: l["attachedRoutes"].as_i64().unwrap_or_default() as i32,
                    supported_kinds: Vec::new(),
                    conditions: conditions(l.get("conditions")),
                })
                .collect(),
            ..Default::default()
        });
    }
    // Each kind at the newest version a cluster may serve first: TCPRoute and UDPRoute are
    // v1 from Gateway API v1.6, v1alpha2 before.
    for (versions, kind) in [
        (&["v1"][..], "HTTPRoute"),
        (&["v1"][..], "GRPCRoute"),
        (&["v1"][..], "TLSRoute"),
        (&["v1", "v1alpha2"][..], "TCPRoute"),
        (&["v1", "v1alpha2"][..], "UDPRoute"),
    ] {
        let Some(routes) = list_served(&client, versions, kind).await? else {
            continue; // CRD not installed: nothing of that kind to show
        };
        for r in routes {
            let namespace = r.metadata.namespace.clone().unwrap_or_default();
            let parents: Vec<RouteParentStatus> = r
                .data
                .pointer("/status/parents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| p["controllerName"].as_str() == Some(ferrogate_api::CONTROLLER_NAME))
                .map(|p| RouteParentStatus {
                    parent_ref: serde_json::from_value::<ParentRef>(p["parentRef"].clone())
                        .unwrap_or_default()
                        .into(),
                    conditions: conditions(p.get("conditions")).into(),
                })
                .collect();
            if parents.is_empty() {
                continue; // not attached to any Gateway of ours
            }
            set.routes.push_back(std::sync::Arc::new(RouteStatus {
                kind: kind.to_string(),
                namespace,
                name: r.metadata.name.clone().unwrap_or_default(),
                parents,
            }));
        }
    }
    Ok(set)
}

/// The objects of `kind` at the first of `versions` the cluster serves (`None`: none is).
async fn list_served(
    client: &kube::Client,
    versions: &[&str],
    kind: &str,
) -> Result<Option<Vec<DynamicObject>>, kube::Error> {
    for version in versions {
        match list(client, version, kind).await {
            Ok(items) => return Ok(Some(items)),
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

async fn list(
    client: &kube::Client,
    version: &str,
    kind: &str,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, version, kind));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut items = api.list(&ListParams::default()).await?.items;
    items.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    Ok(items)
}

/// Conditions as Kubernetes writes them (extra fields such as `lastTransitionTime` ignored);
/// a malformed entry is left out rather than hiding the others.
fn conditions(value: Option<&Value>) -> Vec<Condition> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| serde_json::from_value(c.clone()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use ferrogate_testkit::fake_apiserver::FakeApiServer;
    use serde_json::json;

    use super::*;

    fn condition(type_: &str, status: &str, reason: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": "m", "lastTransitionTime": "2026-12-02T00:00:00Z", "observedGeneration": 1})
    }

    #[tokio::test]
    async fn only_our_classes_gateways_and_route_parents_are_read_with_their_conditions() {
        let server = FakeApiServer::start().await;
        let gw = "gateway.networking.k8s.io/v1";
        server.create(json!({"apiVersion": gw, "kind": "GatewayClass", "metadata": {"name": "ours"}, "spec": {"controllerName": ferrogate_api::CONTROLLER_NAME}}));
        server.create(json!({"apiVersion": gw, "kind": "GatewayClass", "metadata": {"name": "theirs"}, "spec": {"controllerName": "example.com/other"}}));
        server.create(json!({"apiVersion": gw, "kind": "Gateway", "metadata": {"name": "web", "namespace": "apps"}, "spec": {"gatewayClassName": "ours", "listeners": []}}));
        server.create(json!({"apiVersion": gw, "kind": "Gateway", "metadata": {"name": "other", "namespace": "apps"}, "spec": {"gatewayClassName": "theirs", "listeners": []}}));
        server.create(json!({"apiVersion": gw, "kind": "HTTPRoute", "metadata": {"name": "echo", "namespace": "apps"}, "spec": {}}));
        server.set_status(
            gw,
            "GatewayClass",
            None,
            "ours",
            json!({"conditions": [condition("Accepted", "True", "Accepted")]}),
        );
        server.set_status(gw, "Gateway", Some("apps"), "web", json!({
            "conditions": [condition("Accepted", "True", "Accepted"), condition("Programmed", "False", "AddressNotAssigned")],
            "addresses": [{"type": "IPAddress", "value": "192.0.2.7"}],
            "listeners": [{"name": "http", "attachedRoutes": 1, "supportedKinds": [], "conditions": [condition("Programmed", "True", "Programmed")]}],
        }));
        server.set_status(gw, "HTTPRoute", Some("apps"), "echo", json!({"parents": [
            {"parentRef": {"name": "web"}, "controllerName": ferrogate_api::CONTROLLER_NAME, "conditions": [condition("Accepted", "True", "Accepted")]},
            {"parentRef": {"name": "other"}, "controllerName": "example.com/other", "conditions": [condition("Accepted", "False", "Nope")]},
        ]}));

        let set = read_cluster(server.client()).await.unwrap();
        let table = crate::status_cmd::render_table(&set);
        assert_eq!(set.gateway_classes.len(), 1, "{table}");
        assert_eq!(set.gateways.len(), 1, "{table}");
        assert_eq!(set.routes.len(), 1, "{table}");
        assert_eq!(
            set.routes[0].parents.len(),
            1,
            "only the parent our controller reports on: {table}"
        );
        assert!(
            table.contains("apps/web") && table.contains("address 192.0.2.7"),
            "{table}"
        );
        assert!(
            table.contains("Programmed=False(AddressNotAssigned)"),
            "{table}"
        );
        assert!(
            table.contains("parent apps/web") && !table.contains("Nope"),
            "{table}"
        );
    }
}
