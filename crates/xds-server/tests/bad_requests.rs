//! A request the server cannot decode ends its stream with a status that says why
//! (RESOURCE_EXHAUSTED for one over the size limit, INVALID_ARGUMENT for bytes that are no
//! DiscoveryRequest), never with OK, and is counted in the rejected-stream totals. A method
//! the service does not have gets UNIMPLEMENTED.

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use tokio_stream::StreamExt;
use tonic::codegen::http::uri::PathAndQuery;

mod support;
use support::{Harness, WAIT};

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

/// Not a DiscoveryRequest: field 1 (`version_info`, a string) sent as a varint.
#[derive(Clone, PartialEq, prost::Message)]
struct Bogus {
    #[prost(uint64, tag = "1")]
    version_info_as_number: u64,
}

async fn first_status<Req: prost::Message + Send + Sync + 'static>(
    harness: &Harness,
    request: Req,
) -> tonic::Status {
    first_status_at(harness, SOTW_PATH, request).await
}

async fn first_status_at<Req: prost::Message + Send + Sync + 'static>(
    harness: &Harness,
    path: &'static str,
    request: Req,
) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", harness.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<Req, DiscoveryResponse>::default();
    let requests = tokio_stream::iter([request]).chain(tokio_stream::pending());
    let response = grpc
        .streaming(
            tonic::Request::new(requests),
            PathAndQuery::from_static(path),
            codec,
        )
        .await;
    let mut stream = match response {
        Ok(r) => r.into_inner(),
        Err(status) => return status,
    };
    match tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("the server answers")
    {
        Some(Err(status)) => status,
        other => panic!("expected an error status, got {other:?}"),
    }
}

#[tokio::test]
async fn an_oversized_request_gets_resource_exhausted_and_is_counted() {
    let harness = Harness::start().await;
    let huge = DiscoveryRequest {
        resource_names: vec!["x".repeat(5 * 1024 * 1024)],
        ..Default::default()
    };
    let status = first_status(&harness, huge).await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    let stats = harness
        .stats_until(|s| s.totals.rejected_streams.contains_key("oversized_message"))
        .await;
    assert_eq!(stats.totals.rejected_streams["oversized_message"], 1);
}

#[tokio::test]
async fn a_malformed_request_gets_invalid_argument_and_is_counted() {
    let harness = Harness::start().await;
    let status = first_status(
        &harness,
        Bogus {
            version_info_as_number: 7,
        },
    )
    .await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let stats = harness
        .stats_until(|s| s.totals.rejected_streams.contains_key("malformed_message"))
        .await;
    assert_eq!(stats.totals.rejected_streams["malformed_message"], 1);
}

#[tokio::test]
async fn a_method_the_service_does_not_have_gets_unimplemented() {
    let harness = Harness::start().await;
    let status = first_status_at(
        &harness,
        "/envoy.service.discovery.v3.AggregatedDiscoveryService/FetchAggregatedResources",
        DiscoveryRequest::default(),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
}
