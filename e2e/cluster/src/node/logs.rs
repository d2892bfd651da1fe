//! The kubelet's log endpoint, so `kubectl logs` works: kube-apiserver answers
//! `pods/{name}/log` by calling `GET /containerLogs/{namespace}/{pod}/{container}` on the
//! node's API ([`super::kubelet_api`]).
//!
//! The container log files hold timestamped CRI records ([`crate::cri_log`]); the query's
//! `sinceTime`, `sinceSeconds`, `timestamps`, `tailLines` and `limitBytes` select from them
//! as the kubelet does, and the answer is the containers' text ([`super::log_query`]).
//! Not supported: `follow`, `previous`, `stream` (the answer is what the file holds now).

use tokio::sync::Mutex;

use super::kubelet::Pods;
use super::kubelet_api::{Request, respond};
use super::log_query;

/// The answer to `GET /containerLogs/...`.
pub async fn answer(request: &Request, pods: &Mutex<Pods>) -> Vec<u8> {
    let parts: Vec<&str> = request.path().trim_start_matches('/').split('/').collect();
    let ["containerLogs", namespace, name, container] = parts[..] else {
        return respond(
            404,
            b"only /containerLogs/{namespace}/{pod}/{container} is served".to_vec(),
        );
    };
    let file = {
        let pods = pods.lock().await;
        pods.find(namespace, name)
            .and_then(|p| p.log(container))
            .map(|p| p.to_path_buf())
    };
    let Some(file) = file else {
        return respond(
            404,
            format!("container {container} of Pod {namespace}/{name} is not on this node")
                .into_bytes(),
        );
    };
    let options = match log_query::parse(request.query(), time::OffsetDateTime::now_utc()) {
        Ok(o) => o,
        Err(e) => return respond(400, e.into_bytes()),
    };
    let file = std::fs::read(&file).unwrap_or_default();
    let body = log_query::render(&file, &options);
    respond(200, body)
}
