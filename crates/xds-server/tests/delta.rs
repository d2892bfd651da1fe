//! Delta (incremental) ADS against a real server and a tonic client.

mod support;

use std::collections::HashMap;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use ferrogate_xds_server::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE};
use support::*;

#[tokio::test]
async fn a_wildcard_stream_waits_for_the_first_snapshot_then_gets_every_cluster() {
    let h = Harness::start().await;
    let mut s = DeltaStream::open(&h, delta_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    s.assert_quiet().await;

    h.cache.set("default/eg", snapshot(&[("a", 1), ("b", 1)]));
    let resp = s.recv().await;
    assert_eq!(resp.type_url, CLUSTER_TYPE);
    assert_eq!(delta_names(&resp), ["a", "b"]);
    assert!(resp.removed_resources.is_empty());
    let snap = h.cache.get("default/eg").unwrap();
    assert_eq!(
        resp.system_version_info,
        snap.version(CLUSTER_TYPE).unwrap()
    );
    assert_eq!(
        resp.resources[0].version,
        snap.resource(CLUSTER_TYPE, "a").unwrap().version
    );
}

#[tokio::test]
async fn an_ack_is_recorded_in_stats() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1)]));
    let mut s = DeltaStream::open(&h, delta_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let resp = s.recv().await;
    s.ack(&resp).await;
    let stats = h
        .stats_until(|st| {
            st.gateways
                .get("default/eg")
                .is_some_and(|g| g.acked_versions.contains_key(CLUSTER_TYPE))
        })
        .await;
    assert_eq!(
        stats.gateways["default/eg"].acked_versions[CLUSTER_TYPE],
        resp.system_version_info
    );
    assert_eq!(stats.totals.acks[CLUSTER_TYPE], 1);
    s.assert_quiet().await;
}

#[tokio::test]
async fn a_nack_is_recorded_with_its_message_and_the_same_version_is_not_pushed_again() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1)]));
    let mut s = DeltaStream::open(&h, delta_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let good = s.recv().await;
    s.ack(&good).await;
    h.cache.set("default/eg", snapshot(&[("a", 2)]));
    let bad = s.recv().await;
    s.send(DeltaDiscoveryRequest {
        type_url: CLUSTER_TYPE.into(),
        response_nonce: bad.nonce.clone(),
        error_detail: nack_status("cluster a: bad"),
        ..Default::default()
    })
    .await;
    let stats = h
        .stats_until(|st| st.totals.nacks.get(CLUSTER_TYPE) == Some(&1))
        .await;
    let rec = stats.gateways["default/eg"].last_nack.clone().unwrap();
    assert_eq!(rec.message, "cluster a: bad");
    assert_eq!(rec.rejected_version, bad.system_version_info);
    assert_eq!(rec.accepted_version, good.system_version_info);
    s.assert_quiet().await;

    // An unrelated change (a listener) does not re-send the NACKed cluster either.
    s.send(delta_subscribe(LISTENER_TYPE, &[])).await;
    let l = s.recv().await;
    assert_eq!(l.type_url, LISTENER_TYPE);
    s.assert_quiet().await;
}

#[tokio::test]
async fn a_change_of_one_resource_sends_exactly_that_resource_and_removals_are_reported() {
    let h = Harness::start().await;
    h.cache
        .set("default/eg", snapshot(&[("a", 1), ("b", 1), ("c", 1)]));
    let mut s = DeltaStream::open(&h, delta_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let all = s.recv().await;
    assert_eq!(delta_names(&all), ["a", "b", "c"]);
    s.ack(&all).await;

    h.cache
        .set("default/eg", snapshot(&[("a", 1), ("b", 2), ("c", 1)]));
    let one = s.recv().await;
    assert_eq!(delta_names(&one), ["b"]);
    assert!(one.removed_resources.is_empty());
    s.ack(&one).await;

    h.cache.set("default/eg", snapshot(&[("a", 1), ("b", 2)]));
    let removal = s.recv().await;
    assert!(removal.resources.is_empty());
    assert_eq!(removal.removed_resources, ["c"]);
    s.assert_quiet().await;
}

#[tokio::test]
async fn explicit_subscriptions_get_only_their_names_and_missing_names_are_reported_removed() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1), ("b", 1)]));
    let mut s = DeltaStream::open(&h, delta_first("default/eg", ENDPOINT_TYPE, &["a"]))
        .await
        .unwrap();
    let first = s.recv().await;
    assert_eq!(delta_names(&first), ["a"]);
    s.ack(&first).await;

    s.send(delta_subscribe(ENDPOINT_TYPE, &["b", "nope"])).await;
    let more = s.recv().await;
    assert_eq!(delta_names(&more), ["b"]);
    assert_eq!(more.removed_resources, ["nope"]);
}

#[tokio::test]
async fn a_reconnect_with_initial_versions_gets_only_what_differs() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1), ("b", 1)]));
    let snap = h.cache.get("default/eg").unwrap();
    let mut first = delta_first("default/eg", CLUSTER_TYPE, &[]);
    first.initial_resource_versions = HashMap::from([
        (
            "a".to_string(),
            snap.resource(CLUSTER_TYPE, "a").unwrap().version.clone(),
        ),
        ("b".to_string(), "stale".to_string()),
        ("gone".to_string(), "old".to_string()),
    ]);
    let mut s = DeltaStream::open(&h, first).await.unwrap();
    let resp = s.recv().await;
    assert_eq!(delta_names(&resp), ["b"]);
    assert_eq!(resp.removed_resources, ["gone"]);
}

#[tokio::test]
async fn a_stream_of_gateway_a_never_receives_gateway_b_resources() {
    let h = Harness::start().await;
    h.cache.set("team-b/gw", snapshot(&[("only-b", 1)]));
    let mut a = DeltaStream::open(&h, delta_first("team-a/gw", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    a.assert_quiet().await;
    h.cache.set("team-b/gw", snapshot(&[("only-b", 2)]));
    a.assert_quiet().await;
    h.cache.set("team-a/gw", snapshot(&[("only-a", 1)]));
    assert_eq!(delta_names(&a.recv().await), ["only-a"]);
}

#[tokio::test]
async fn setting_an_identical_snapshot_sends_nothing() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1)]));
    let mut s = DeltaStream::open(&h, delta_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let resp = s.recv().await;
    s.ack(&resp).await;
    assert!(!h.cache.set("default/eg", snapshot(&[("a", 1)])));
    s.assert_quiet().await;
    // A change in another type that this stream did not subscribe to sends nothing either.
    let other = ferrogate_xds_server::Snapshot::new(std::collections::BTreeMap::from([
        (CLUSTER_TYPE.to_string(), vec![cluster("a", 1)]),
        (LISTENER_TYPE.to_string(), vec![listener("http-80", 9)]),
    ]));
    assert!(h.cache.set("default/eg", other));
    s.assert_quiet().await;
}

#[tokio::test]
async fn a_node_cluster_that_is_not_namespace_slash_name_is_rejected() {
    let h = Harness::start().await;
    let mut s = DeltaStream::open(&h, delta_first("a/b/c", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    assert_eq!(s.recv_status().await.code(), tonic::Code::InvalidArgument);
}
