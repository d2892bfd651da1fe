//! The ADS gRPC service, served by hand instead of through the generated tonic server, so
//! that every response is encoded into an allocation of its own size.
//!
//! Why: the generated server encodes all responses of a stream into one buffer, which grows
//! to the largest response the stream ever sent and keeps that size for the stream's life
//! (tonic reuses it for the next, smaller responses). A RouteConfiguration of 10 000 routes
//! is 728 KB, so one Envoy's stream kept 1.46 MB (heaptrack); in the fleet of 100 Gateways
//! with ten proxies each, a thousand streams each kept twice their largest response. Here a
//! response is framed in a vector of exactly its size, handed to the connection, and freed
//! once written.
//!
//! What the generated server does and this one keeps: requests are decoded by tonic's
//! `Streaming` (prost messages, the same size limit), the request's metadata and extensions
//! (the peer's TLS certificates) reach [`XdsServer::spawn`], a refusal is a trailers-only
//! response, and the stream ends with `grpc-status` trailers. Not kept: compression, which
//! Envoy does not ask for on xDS streams unless configured to, and which we never configure.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::SERVICE_NAME;
use futures::{Stream, StreamExt};
use http_body::Frame;
use prost::Message;
use tonic::body::Body;
use tonic::codec::Streaming;
use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::{Request, Status};

use crate::delta::Delta;
use crate::server::{Protocol, XdsServer};
use crate::sotw::Sotw;

/// Largest request accepted, as tonic's default (an Envoy's requests are a few KB).
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The ADS service on a tonic server (see the module docs).
#[derive(Clone)]
pub struct AdsService {
    server: XdsServer,
}

impl AdsService {
    pub(crate) fn new(server: XdsServer) -> Self {
        Self { server }
    }

    /// Starts a stream of `proto` for `request`: its messages go to the stream task, the
    /// task's responses come back as the response body.
    fn stream<P>(&self, proto: P, request: http::Request<Body>) -> http::Response<Body>
    where
        P: Protocol,
        P::Req: Message + Default,
        Streaming<P::Req>: Stream<Item = Result<P::Req, Status>>,
    {
        let (parts, body) = request.into_parts();
        let messages = Streaming::new_request(
            tonic_prost::ProstDecoder::<P::Req>::default(),
            body,
            None,
            Some(MAX_REQUEST_BYTES),
        );
        let request = Request::from_parts(
            MetadataMap::from_headers(parts.headers),
            parts.extensions,
            messages,
        );
        match self.server.spawn(proto, request) {
            Ok(responses) => response(responses),
            Err(status) => status.into_http(),
        }
    }
}

/// Under the service name the generated server has, so clients and tonic's router see the
/// same service.
impl NamedService for AdsService {
    const NAME: &'static str = SERVICE_NAME;
}

impl tower_service::Service<http::Request<Body>> for AdsService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// tonic's router hands this service only paths under its name: the method is what
    /// follows the last `/`.
    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        let response = match method {
            "StreamAggregatedResources" => self.stream(Sotw::default(), request),
            "DeltaAggregatedResources" => self.stream(Delta::default(), request),
            _ => Status::unimplemented("no such method").into_http(),
        };
        ready(Ok(response))
    }
}

/// A streaming gRPC response: one data frame per message, then the `grpc-status` trailers
/// (the error that ended the stream, or OK when it ran out).
fn response<M>(
    messages: impl Stream<Item = Result<M, Status>> + Send + 'static,
) -> http::Response<Body>
where
    M: Message + 'static,
{
    let frames = futures::stream::unfold(Some(Box::pin(messages)), |messages| async move {
        let mut messages = messages?;
        let frame = match messages.next().await {
            Some(Ok(message)) => match framed(&message) {
                Ok(bytes) => return Some((Ok(Frame::data(bytes)), Some(messages))),
                Err(status) => trailers(&status),
            },
            Some(Err(status)) => trailers(&status),
            None => trailers(&Status::ok("")),
        };
        Some((Ok::<_, Infallible>(frame), None))
    });
    let mut response = http::Response::new(Body::new(http_body_util::StreamBody::new(frames)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// `message` as one gRPC message: an uncompressed flag, its length, its bytes, in a vector
/// of exactly that size. A message too long for the 32-bit length ends the stream instead.
fn framed(message: &impl Message) -> Result<Bytes, Status> {
    let len = message.encoded_len();
    let prefix = u32::try_from(len)
        .map_err(|_| Status::resource_exhausted("xDS response longer than gRPC can frame"))?;
    let mut out = Vec::with_capacity(5 + len);
    out.push(0);
    out.extend_from_slice(&prefix.to_be_bytes());
    // Into a vector, encoding cannot run out of room (`encode` would check it).
    message.encode_raw(&mut out);
    Ok(Bytes::from(out))
}

fn trailers(status: &Status) -> Frame<Bytes> {
    let mut headers = http::HeaderMap::new();
    if status.add_header(&mut headers).is_err() {
        // Only a message that is not a valid header value gets here; the code still goes.
        headers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    }
    Frame::trailers(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;

    #[test]
    fn a_framed_message_is_flag_length_bytes_in_an_exact_allocation() {
        let message = DeltaDiscoveryResponse {
            type_url: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration".into(),
            nonce: "7".into(),
            ..Default::default()
        };
        let frame = framed(&message).unwrap();
        assert_eq!(frame[0], 0);
        let len = u32::from_be_bytes(frame[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, message.encoded_len());
        assert_eq!(frame.len(), 5 + len);
        assert_eq!(
            DeltaDiscoveryResponse::decode(&frame[5..]).unwrap(),
            message
        );
    }

    #[test]
    fn trailers_carry_the_status_code() {
        let ok = trailers(&Status::ok(""));
        assert_eq!(ok.trailers_ref().unwrap()["grpc-status"], "0");
        let failed = trailers(&Status::unavailable("xDS server is shutting down"));
        let failed = failed.trailers_ref().unwrap();
        assert_eq!(failed["grpc-status"], "14");
        assert_eq!(
            failed["grpc-message"],
            "xDS%20server%20is%20shutting%20down"
        );
    }
}
