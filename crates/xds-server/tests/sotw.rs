//! State-of-the-world ADS against a real server and a tonic client.

mod support;

use ferrogate_xds_server::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
use support::*;

#[tokio::test]
async fn a_stream_waits_for_the_first_snapshot_then_gets_every_cluster() {
    let h = Harness::start().await;
    let mut s = SotwStream::open(&h, sotw_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    s.assert_quiet().await;

    h.cache.set("default/eg", snapshot(&[("a", 1), ("b", 1)]));
    let resp = s.recv().await;
    assert_eq!(resp.type_url, CLUSTER_TYPE);
    assert_eq!(names_of(&resp.resources), ["a", "b"]);
    let snap = h.cache.get("default/eg").unwrap();
    assert_eq!(resp.version_info, snap.version(CLUSTER_TYPE).unwrap());
    assert!(!resp.nonce.is_empty());
}

#[tokio::test]
async fn endpoints_and_routes_are_sent_only_for_requested_names_that_exist() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1), ("b", 1)]));
    let mut s = SotwStream::open(
        &h,
        sotw_first("default/eg", ENDPOINT_TYPE, &["b", "missing"]),
    )
    .await
    .unwrap();
    let resp = s.recv().await;
    assert_eq!(names_of(&resp.resources), ["b"]);

    s.send(sotw_req(ROUTE_TYPE, &["http-80"], "", "")).await;
    let resp = s.recv().await;
    assert_eq!(resp.type_url, ROUTE_TYPE);
    assert_eq!(names_of(&resp.resources), ["http-80"]);
}

#[tokio::test]
async fn changing_the_requested_names_gets_a_fresh_response() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1), ("b", 1)]));
    let mut s = SotwStream::open(&h, sotw_first("default/eg", ENDPOINT_TYPE, &["a"]))
        .await
        .unwrap();
    let first = s.recv().await;
    s.ack(&first, &["a"]).await;
    s.assert_quiet().await;
    s.send(sotw_req(
        ENDPOINT_TYPE,
        &["a", "b"],
        &first.version_info,
        &first.nonce,
    ))
    .await;
    let second = s.recv().await;
    assert_eq!(names_of(&second.resources), ["a", "b"]);
    assert_ne!(second.nonce, first.nonce);
}

#[tokio::test]
async fn an_ack_is_recorded_in_stats() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1)]));
    let mut s = SotwStream::open(&h, sotw_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let resp = s.recv().await;
    s.ack(&resp, &[]).await;

    let stats = h
        .stats_until(|st| {
            st.gateways
                .get("default/eg")
                .is_some_and(|g| g.acked_versions.contains_key(CLUSTER_TYPE))
        })
        .await;
    let g = &stats.gateways["default/eg"];
    assert_eq!(g.acked_versions[CLUSTER_TYPE], resp.version_info);
    assert_eq!(g.connected_streams, 1);
    assert!(g.has_snapshot);
    assert_eq!(stats.totals.acks[CLUSTER_TYPE], 1);
    assert_eq!(stats.totals.pushes[CLUSTER_TYPE], 1);
    assert!(stats.totals.bytes_sent > 0);
    s.assert_quiet().await;
}

#[tokio::test]
async fn a_nack_is_recorded_with_its_message_and_the_same_version_is_not_pushed_again() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1)]));
    let mut s = SotwStream::open(&h, sotw_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let good = s.recv().await;
    s.ack(&good, &[]).await;

    h.cache.set("default/eg", snapshot(&[("a", 2)]));
    let bad = s.recv().await;
    let mut nack = sotw_req(CLUSTER_TYPE, &[], &good.version_info, &bad.nonce);
    nack.error_detail = nack_status("cluster a: invalid thing");
    s.send(nack).await;

    let stats = h
        .stats_until(|st| st.totals.nacks.get(CLUSTER_TYPE) == Some(&1))
        .await;
    let g = &stats.gateways["default/eg"];
    let rec = g.last_nack.as_ref().unwrap();
    assert_eq!(rec.message, "cluster a: invalid thing");
    assert_eq!(rec.rejected_version, bad.version_info);
    assert_eq!(rec.accepted_version, good.version_info);
    assert_eq!(rec.type_url, CLUSTER_TYPE);
    assert_eq!(
        g.active_nacks[CLUSTER_TYPE].rejected_version,
        bad.version_info
    );
    assert_eq!(g.acked_versions[CLUSTER_TYPE], good.version_info);
    s.assert_quiet().await;

    // The next change is pushed, and its ACK clears the active NACK.
    h.cache.set("default/eg", snapshot(&[("a", 3)]));
    let fixed = s.recv().await;
    assert_ne!(fixed.version_info, bad.version_info);
    s.ack(&fixed, &[]).await;
    let stats = h
        .stats_until(|st| {
            st.gateways["default/eg"].acked_versions[CLUSTER_TYPE] == fixed.version_info
        })
        .await;
    assert!(stats.gateways["default/eg"].active_nacks.is_empty());
}

#[tokio::test]
async fn a_change_pushes_only_changed_types_in_cluster_endpoint_listener_route_order() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1)]));
    let mut s = SotwStream::open(&h, sotw_first("default/eg", LISTENER_TYPE, &[]))
        .await
        .unwrap();
    for (type_url, names) in [
        (LISTENER_TYPE, vec![]),
        (CLUSTER_TYPE, vec![]),
        (ROUTE_TYPE, vec!["http-80"]),
        (ENDPOINT_TYPE, vec!["a", "b"]),
    ] {
        if type_url != LISTENER_TYPE {
            s.send(sotw_req(type_url, &names, "", "")).await;
        }
        let resp = s.recv().await;
        assert_eq!(resp.type_url, type_url);
        s.ack(&resp, &names).await;
    }
    s.assert_quiet().await;

    // A new cluster "b" changes CDS and EDS only; listener and route stay.
    h.cache.set("default/eg", snapshot(&[("a", 1), ("b", 1)]));
    let first = s.recv().await;
    let second = s.recv().await;
    assert_eq!(
        (first.type_url.as_str(), second.type_url.as_str()),
        (CLUSTER_TYPE, ENDPOINT_TYPE)
    );
    assert_eq!(names_of(&second.resources), ["a", "b"]);
    s.assert_quiet().await;
}

#[tokio::test]
async fn a_stream_of_gateway_a_never_receives_gateway_b_resources() {
    let h = Harness::start().await;
    h.cache.set("team-b/gw", snapshot(&[("only-b", 1)]));
    let mut a = SotwStream::open(&h, sotw_first("team-a/gw", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    a.assert_quiet().await;
    h.cache.set("team-b/gw", snapshot(&[("only-b", 2)]));
    a.assert_quiet().await;
    h.cache.set("team-a/gw", snapshot(&[("only-a", 1)]));
    let resp = a.recv().await;
    assert_eq!(names_of(&resp.resources), ["only-a"]);
}

#[tokio::test]
async fn setting_an_identical_snapshot_sends_nothing() {
    let h = Harness::start().await;
    assert!(h.cache.set("default/eg", snapshot(&[("a", 1)])));
    let mut s = SotwStream::open(&h, sotw_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let resp = s.recv().await;
    s.ack(&resp, &[]).await;
    assert!(!h.cache.set("default/eg", snapshot(&[("a", 1)])));
    s.assert_quiet().await;
    assert_eq!(h.cache.stats().totals.pushes[CLUSTER_TYPE], 1);
}

#[tokio::test]
async fn a_node_cluster_that_is_not_namespace_slash_name_is_rejected() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1)]));
    let mut s = SotwStream::open(&h, sotw_first("eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let status = s.recv_status().await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    let mut req = sotw_first("default/eg", CLUSTER_TYPE, &[]);
    req.node = None;
    let mut s = SotwStream::open(&h, req).await.unwrap();
    assert_eq!(s.recv_status().await.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn shutdown_closes_open_streams_and_serve_returns() {
    let mut h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1)]));
    let mut s = SotwStream::open(&h, sotw_first("default/eg", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    s.recv().await;
    h.shutdown();
    assert_eq!(s.recv_status().await.code(), tonic::Code::Unavailable);
    let result = tokio::time::timeout(WAIT, &mut h.handle)
        .await
        .expect("serve did not return");
    result.unwrap().unwrap();
    let stats = h
        .stats_until(|st| st.gateways["default/eg"].connected_streams == 0)
        .await;
    assert!(stats.gateways["default/eg"].has_snapshot);
}

#[tokio::test]
async fn replicas_of_one_gateway_are_served_alike_and_a_late_ack_does_not_hide_a_nack() {
    let h = Harness::start().await;
    h.cache.set("default/eg", snapshot(&[("a", 1)]));
    let first = |id| sotw_first_as("default/eg", id, CLUSTER_TYPE, &[]);
    let mut r0 = SotwStream::open(&h, first("default/eg/host"))
        .await
        .unwrap();
    let mut r1 = SotwStream::open(&h, first("default/eg/host-1"))
        .await
        .unwrap();
    let (good0, good1) = (r0.recv().await, r1.recv().await);
    assert_eq!(good0.version_info, good1.version_info);
    assert_eq!(names_of(&good1.resources), ["a"]);
    r0.ack(&good0, &[]).await;
    h.stats_until(|st| {
        st.gateways
            .get("default/eg")
            .is_some_and(|g| g.connected_streams == 2 && !g.acked_versions.is_empty())
    })
    .await;

    // A bad change: replica 0 rejects it, then replica 1 answers the previous push late.
    h.cache.set("default/eg", snapshot(&[("a", 2)]));
    let (bad0, bad1) = (r0.recv().await, r1.recv().await);
    assert_eq!(bad0.version_info, bad1.version_info);
    let mut nack = sotw_req(CLUSTER_TYPE, &[], &good0.version_info, &bad0.nonce);
    nack.error_detail = nack_status("cluster a: invalid thing");
    r0.send(nack).await;
    h.stats_until(|st| st.totals.nacks.get(CLUSTER_TYPE) == Some(&1))
        .await;
    r1.ack(&good1, &[]).await;
    let stats = h
        .stats_until(|st| st.totals.acks.get(CLUSTER_TYPE) == Some(&2))
        .await;
    let g = &stats.gateways["default/eg"];
    let active = &g.active_nacks[CLUSTER_TYPE];
    assert_eq!(active.rejected_version, bad0.version_info, "still shown");
    assert_eq!(
        active.node_id, "default/eg/host",
        "the replica that rejected it"
    );

    // A fix, accepted by both, clears it.
    h.cache.set("default/eg", snapshot(&[("a", 3)]));
    let (fixed0, fixed1) = (r0.recv().await, r1.recv().await);
    r0.ack(&fixed0, &[]).await;
    r1.ack(&fixed1, &[]).await;
    let stats = h
        .stats_until(|st| st.totals.acks.get(CLUSTER_TYPE) == Some(&4))
        .await;
    assert!(stats.gateways["default/eg"].active_nacks.is_empty());
}
