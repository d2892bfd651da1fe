//! The admin HTTP server: `/healthz` (process alive), `/readyz` (first translation done),
//! `/metrics` (Prometheus text).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Metrics;

/// What the admin server reports.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub metrics: Metrics,
    pub ready: Arc<AtomicBool>,
    /// Serve `/metrics` here (standalone serves health and metrics on separate ports, like a pod).
    pub serve_metrics: bool,
    pub serve_health: bool,
}

pub(crate) async fn serve(
    listener: TcpListener,
    state: AdminState,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&req, &state)) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn handle(req: &Request<hyper::body::Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/healthz" if state.serve_health => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" if state.serve_health => {
            if state.ready.load(Ordering::Acquire) {
                (StatusCode::OK, "text/plain", "ready\n".to_string())
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "waiting for the first translation\n".to_string(),
                )
            }
        }
        "/metrics" if state.serve_metrics => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.render(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
