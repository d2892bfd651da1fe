//! Every status Ferrogate writes must pass upstream's real schema and CEL rules, large ones
//! included, and every served version of the kinds users still apply must work.

mod support;

use std::fmt::Write;

use support::{CONTROLLER_NAME, Cluster, condition, condition_is};

const NS: &str = "apps";

/// A Gateway with 64 listeners (upstream's maximum), one with a hostname 253 characters
/// long (long condition messages), and an HTTPRoute with 32 parentRefs (the maximum).
fn large_world() -> String {
    let mut y = String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\n");
    y += "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: big, namespace: apps}\nspec:\n  gatewayClassName: ferrogate\n  listeners:\n";
    for i in 0..64 {
        writeln!(
            y,
            "  - {{name: l{i}, port: {}, protocol: HTTP, hostname: \"h{i}.example.com\"}}",
            10000 + i
        )
        .unwrap();
    }
    // 32 parents: sections of the big Gateway.
    y += "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: many-parents, namespace: apps}\nspec:\n  parentRefs:\n";
    for i in 0..32 {
        writeln!(y, "  - {{name: big, sectionName: l{i}}}").unwrap();
    }
    y += "  rules:\n  - backendRefs: [{name: missing, port: 80}]\n";
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_statuses_pass_the_real_schema() {
    let cluster = Cluster::start().await;
    let _controller = cluster.controller("replica-a");
    cluster.apply(&large_world());

    let gw = cluster
        .wait_for("64 listener statuses", "gateway", Some(NS), "big", |g| {
            g["status"]["listeners"]
                .as_array()
                .is_some_and(|l| l.len() == 64)
        })
        .await;
    assert!(
        condition_is(&gw, "/status/conditions", "Accepted", "True"),
        "{}",
        gw["status"]
    );
    let accepted = condition(&gw, "/status/conditions", "Accepted").unwrap();
    assert_eq!(accepted["observedGeneration"], gw["metadata"]["generation"]);
    let route = cluster
        .wait_for(
            "32 parent statuses",
            "httproute",
            Some(NS),
            "many-parents",
            |r| {
                r["status"]["parents"]
                    .as_array()
                    .is_some_and(|p| p.len() == 32)
            },
        )
        .await;
    for parent in route["status"]["parents"].as_array().unwrap() {
        assert_eq!(parent["controllerName"], CONTROLLER_NAME);
        // The backend does not exist: ResolvedRefs False with BackendNotFound, a long message.
        assert!(
            condition_is(parent, "/conditions", "ResolvedRefs", "False"),
            "{parent}"
        );
    }

    // observedGeneration follows the spec; lastTransitionTime moves only when a condition flips.
    let before =
        condition(&gw, "/status/conditions", "Accepted").unwrap()["lastTransitionTime"].clone();
    cluster.kubectl(&[
        "annotate",
        "gateway",
        "big",
        "-n",
        NS,
        "example.com/touched=yes",
    ]); // no generation change
    cluster.kubectl(&[
        "patch",
        "gateway",
        "big",
        "-n",
        NS,
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/listeners/0/hostname","value":"renamed.example.com"}]"#,
    ]);
    let gw = cluster
        .wait_for("observedGeneration 2", "gateway", Some(NS), "big", |g| {
            condition(g, "/status/conditions", "Accepted")
                .is_some_and(|c| c["observedGeneration"] == 2)
        })
        .await;
    assert_eq!(
        condition(&gw, "/status/conditions", "Accepted").unwrap()["lastTransitionTime"],
        before,
        "Accepted did not flip"
    );
}

/// ReferenceGrant v1beta1 and v1, TLSRoute v1alpha2/v1alpha3/v1, TCPRoute v1 (GA in Gateway
/// API v1.6) and UDPRoute v1alpha2 (deprecated, still served): each as a user applies it,
/// each gets its status.
const VERSIONS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: Namespace
metadata: {name: backends}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: backends}
spec: {ports: [{port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: apps}
spec: {ports: [{port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: apps}
spec: {ports: [{port: 53, protocol: UDP}]}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-apps-beta, namespace: backends}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]
  to: [{group: "", kind: Service}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: multi, namespace: apps}
spec:
  gatewayClassName: ferrogate
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: tls, port: 443, protocol: TLS, tls: {mode: Passthrough}, allowedRoutes: {kinds: [{kind: TLSRoute}]}}
  - {name: tcp, port: 5000, protocol: TCP, allowedRoutes: {kinds: [{kind: TCPRoute}]}}
  - {name: udp, port: 5300, protocol: UDP, allowedRoutes: {kinds: [{kind: UDPRoute}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cross-ns, namespace: apps}
spec:
  parentRefs: [{name: multi, sectionName: http}]
  rules: [{backendRefs: [{name: echo, namespace: backends, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: tls-alpha2, namespace: apps}
spec:
  parentRefs: [{name: multi, sectionName: tls}]
  hostnames: [a.example.com]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha3
kind: TLSRoute
metadata: {name: tls-alpha3, namespace: apps}
spec:
  parentRefs: [{name: multi, sectionName: tls}]
  hostnames: [b.example.com]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: tls-v1, namespace: apps}
spec:
  parentRefs: [{name: multi, sectionName: tls}]
  hostnames: [c.example.com]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: tcp, namespace: apps}
spec:
  parentRefs: [{name: multi, sectionName: tcp}]
  rules: [{backendRefs: [{name: echo, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: udp, namespace: apps}
spec:
  parentRefs: [{name: multi, sectionName: udp}]
  rules: [{backendRefs: [{name: dns, port: 53}]}]
"#;

fn accepted_and_resolved(route: &serde_json::Value) -> bool {
    route["status"]["parents"].as_array().is_some_and(|p| {
        p.iter().any(|p| {
            p["controllerName"] == CONTROLLER_NAME
                && condition_is(p, "/conditions", "Accepted", "True")
                && condition_is(p, "/conditions", "ResolvedRefs", "True")
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_version_users_apply_works() {
    let cluster = Cluster::start().await;
    let _controller = cluster.controller("replica-a");
    cluster.apply(VERSIONS);
    cluster
        .wait_for(
            "cross-namespace route allowed by a v1beta1 ReferenceGrant",
            "httproute",
            Some(NS),
            "cross-ns",
            accepted_and_resolved,
        )
        .await;
    for (resource, name) in [
        ("tlsroutes.v1alpha2.gateway.networking.k8s.io", "tls-alpha2"),
        ("tlsroutes.v1alpha3.gateway.networking.k8s.io", "tls-alpha3"),
        ("tlsroutes.v1.gateway.networking.k8s.io", "tls-v1"),
        ("tcproute", "tcp"),
        ("udproute", "udp"),
    ] {
        cluster
            .wait_for(
                &format!("{resource} {name}"),
                resource,
                Some(NS),
                name,
                accepted_and_resolved,
            )
            .await;
    }
    let gw = cluster
        .wait_for("attached routes", "gateway", Some(NS), "multi", |g| {
            g["status"]["listeners"]
                .as_array()
                .is_some_and(|l| l.len() == 4)
        })
        .await;
    let attached: Vec<i64> = gw["status"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["attachedRoutes"].as_i64().unwrap())
        .collect();
    assert_eq!(
        attached,
        vec![1, 3, 1, 1],
        "http, tls (three TLSRoute versions), tcp, udp"
    );

    // The same grant as v1 instead: delete the v1beta1 one (access goes), create a v1 one.
    cluster.kubectl(&[
        "delete",
        "referencegrants.v1beta1.gateway.networking.k8s.io",
        "from-apps-beta",
        "-n",
        "backends",
    ]);
    cluster
        .wait_for(
            "RefNotPermitted without a grant",
            "httproute",
            Some(NS),
            "cross-ns",
            |r| {
                r["status"]["parents"].as_array().is_some_and(|p| {
                    p.iter().any(|p| {
                        support::reason(p, "/conditions", "ResolvedRefs") == "False/RefNotPermitted"
                    })
                })
            },
        )
        .await;
    cluster.apply("apiVersion: gateway.networking.k8s.io/v1\nkind: ReferenceGrant\nmetadata: {name: from-apps, namespace: backends}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]\n  to: [{group: \"\", kind: Service}]\n");
    cluster
        .wait_for(
            "allowed again by a v1 ReferenceGrant",
            "httproute",
            Some(NS),
            "cross-ns",
            accepted_and_resolved,
        )
        .await;
}
