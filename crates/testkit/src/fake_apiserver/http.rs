//! HTTP/1.1 front end: request log, fault injection, path routing and the verbs' wire format.
//!
//! Paths: `/api/v1/[namespaces/{ns}/]{plural}[/{name}[/status]]`,
//! `/apis/{group}/{version}/[namespaces/{ns}/]{plural}[/{name}[/status]]`, discovery (`/api`,
//! `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}`; aggregated discovery when the
//! `Accept` header asks for `as=APIGroupDiscoveryList`) and `/version`.

use super::errors::ApiError;
use super::ops::{self, DeleteOpts, Sub, partial_metadata, present};
use super::registry::ResourceDef;
use super::selectors::Selector;
use super::watch::{WatchRequest, watch};
use super::{RequestRecord, Shared};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(body).expect("json"));
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(bytes).boxed_unsync())
        .expect("response")
}

fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && hex(bytes[i + 1]).is_some()
                && hex(bytes[i + 2]).is_some() =>
            {
                out.push(
                    (hex(bytes[i + 1]).unwrap_or(0) * 16 + hex(bytes[i + 2]).unwrap_or(0)) as u8,
                );
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type");
    let accept = header("accept").unwrap_or_default();
    let record = RequestRecord {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
    };
    tracing::debug!(method = %record.method, path = %record.path, query = %record.query, "fake apiserver request");
    shared.requests.lock().expect("requests lock").push(record);
    let body = match req.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return Ok(error_response(&ApiError::bad_request(format!(
                "reading body: {e}"
            ))));
        }
    };
    if matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        let mut held = shared.writes_held.subscribe();
        let _ = held.wait_for(|hold| !*hold).await;
    }
    let ctx = Ctx {
        shared,
        method,
        path,
        query: parse_query(&query),
        content_type: content_type.unwrap_or_default(),
        accept,
        body,
    };
    Ok(match route(&ctx) {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    })
}

struct Ctx {
    shared: Arc<Shared>,
    method: Method,
    path: String,
    query: HashMap<String, String>,
    content_type: String,
    accept: String,
    body: Bytes,
}

impl Ctx {
    fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true" | "1"))
    }
    fn dry_run(&self) -> bool {
        self.q("dryRun") == Some("All")
    }
    fn metadata_only(&self) -> bool {
        self.accept.contains("as=PartialObjectMetadata")
    }
    fn json_body(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

fn not_found() -> ApiError {
    ApiError::not_found(
        "resource",
        "the server could not find the requested resource",
    )
}

/// Consumes one matching injected conflict, if any.
fn injected_conflict(ctx: &Ctx) -> bool {
    let status = ctx.path.ends_with("/status");
    let mut rules = ctx.shared.conflicts.lock().expect("conflicts lock");
    if let Some(rule) = rules.iter_mut().find(|r| {
        r.remaining > 0
            && (r.method == "*" || r.method.eq_ignore_ascii_case(ctx.method.as_str()))
            && r.status == status
    }) {
        rule.remaining -= 1;
        true
    } else {
        false
    }
}

fn route(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = ctx
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let aggregated = ctx.accept.contains("as=APIGroupDiscoveryList");
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => {
            return Ok(json_response(
                200,
                &json!({"major": "1", "minor": "35", "gitVersion": "v1.35.0-ferrogate-fake", "gitCommit": "", "gitTreeState": "clean",
                        "buildDate": "1970-01-01T00:00:00Z", "goVersion": "", "compiler": "rustc", "platform": "linux/amd64"}),
            ));
        }
        ["api"] => {
            let store = ctx.shared.store.lock().expect("store lock");
            return Ok(discovery_response(
                if aggregated {
                    store.registry.aggregated(true)
                } else {
                    store.registry.core_versions()
                },
                aggregated,
            ));
        }
        ["apis"] => {
            let store = ctx.shared.store.lock().expect("store lock");
            return Ok(discovery_response(
                if aggregated {
                    store.registry.aggregated(false)
                } else {
                    store.registry.group_list()
                },
                aggregated,
            ));
        }
        ["apis", group] => {
            let store = ctx.shared.store.lock().expect("store lock");
            return store
                .registry
                .group(group)
                .map(|g| json_response(200, &g))
                .ok_or_else(not_found);
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found()),
    };
    let store = ctx.shared.store.lock().expect("store lock");
    if rest.is_empty() {
        return store
            .registry
            .resource_list(group, version)
            .map(|l| json_response(200, &l))
            .ok_or_else(not_found);
    }
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && store.registry.by_plural(group, version, rest[2]).is_some();
    let (ns, rest) = if namespaced_path {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let def = store
        .registry
        .by_plural(group, version, rest[0])
        .cloned()
        .ok_or_else(not_found)?;
    drop(store);
    let name = rest.get(1).map(|s| s.to_string());
    let sub = match rest.get(2) {
        None => Sub::Main,
        Some(&"status") if def.status => Sub::Status,
        Some(_) => return Err(not_found()),
    };
    if rest.len() > 3
        || (def.namespaced && ns.is_none() && name.is_some())
        || (!def.namespaced && ns.is_some())
    {
        return Err(not_found());
    }
    let ns_str = ns.clone().unwrap_or_default();
    let is_write = matches!(
        ctx.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if is_write && injected_conflict(ctx) {
        return Err(ApiError::conflict(
            def.plural,
            name.as_deref().unwrap_or(""),
            "injected conflict (FakeApiServer::conflict_next)",
        ));
    }
    match (&ctx.method, name) {
        (&Method::GET, None) if ctx.flag("watch") => watch_response(ctx, def, ns),
        (&Method::GET, None) => list(ctx, &def, ns.as_deref()),
        (&Method::GET, Some(name)) => {
            let store = ctx.shared.store.lock().expect("store lock");
            let obj = store
                .get(&super::store::obj_key(&def, &ns_str, &name))
                .ok_or_else(|| ApiError::not_found(def.plural, &name))?;
            let obj = present(&def, obj);
            Ok(json_response(
                200,
                &if ctx.metadata_only() {
                    partial_metadata(&obj)
                } else {
                    obj
                },
            ))
        }
        (&Method::POST, None) if def.namespaced == ns.is_some() => {
            let body = ctx.json_body()?;
            let mut store = ctx.shared.store.lock().expect("store lock");
            let obj = ops::create(&mut store, &def, &ns_str, body, false, ctx.dry_run())?;
            Ok(json_response(201, &obj))
        }
        (&Method::PUT, Some(name)) => {
            let body = ctx.json_body()?;
            let mut store = ctx.shared.store.lock().expect("store lock");
            let obj = ops::update(
                &mut store,
                &def,
                &ns_str,
                &name,
                body,
                sub,
                true,
                ctx.dry_run(),
            )?;
            Ok(json_response(200, &obj))
        }
        (&Method::PATCH, Some(name)) => patch(ctx, &def, &ns_str, &name, sub),
        (&Method::DELETE, Some(name)) => {
            let opts = delete_opts(ctx)?;
            let mut store = ctx.shared.store.lock().expect("store lock");
            let (obj, gone) = ops::delete(&mut store, &def, &ns_str, &name, &opts)?;
            if gone {
                let details = json!({"name": name, "group": def.group, "kind": def.plural, "uid": obj.pointer("/metadata/uid")});
                Ok(json_response(
                    200,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
                ))
            } else {
                Ok(json_response(200, &obj))
            }
        }
        (&Method::DELETE, None) => {
            let opts = delete_opts(ctx)?;
            let (labels, fields) = selectors(ctx)?;
            let mut store = ctx.shared.store.lock().expect("store lock");
            let names: Vec<(String, String)> = store
                .list(&def, ns.as_deref())
                .into_iter()
                .filter(|o| labels.matches(o) && fields.matches(o))
                .map(|o| {
                    (
                        o.pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        o.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            let mut items = Vec::new();
            for (ns, name) in names {
                if let Ok((obj, _)) = ops::delete(&mut store, &def, &ns, &name, &opts) {
                    items.push(obj);
                }
            }
            let rv = store.current_rv().to_string();
            Ok(json_response(
                200,
                &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {"resourceVersion": rv}, "items": items}),
            ))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{} is not supported on {}", ctx.method, ctx.path),
        )),
    }
}

fn discovery_response(doc: Value, aggregated: bool) -> Response<Body> {
    let mut resp = json_response(200, &doc);
    if aggregated {
        resp.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            ),
        );
    }
    resp
}

fn selectors(ctx: &Ctx) -> Result<(Selector, Selector), ApiError> {
    let labels = Selector::parse_labels(ctx.q("labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = Selector::parse_fields(ctx.q("fieldSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn list(ctx: &Ctx, def: &ResourceDef, ns: Option<&str>) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(ctx)?;
    let store = ctx.shared.store.lock().expect("store lock");
    let items: Vec<Value> = store
        .list(def, ns)
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .map(|o| {
            let o = present(def, o);
            if ctx.metadata_only() {
                partial_metadata(&o)
            } else {
                o
            }
        })
        .collect();
    let meta = json!({"resourceVersion": store.current_rv().to_string()});
    let doc = if ctx.metadata_only() {
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items})
    } else {
        json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": meta, "items": items})
    };
    Ok(json_response(200, &doc))
}

fn watch_response(
    ctx: &Ctx,
    def: ResourceDef,
    ns: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(ctx)?;
    let timeout = ctx
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let req = WatchRequest {
        def,
        namespace: ns,
        labels,
        fields,
        resource_version: ctx.q("resourceVersion").map(str::to_string),
        timeout,
        bookmarks: ctx.flag("allowWatchBookmarks"),
        send_initial_events: ctx.flag("sendInitialEvents"),
        metadata_only: ctx.metadata_only(),
    };
    let stream = watch(ctx.shared.clone(), req)?.map(|b| Ok::<_, Infallible>(Frame::data(b)));
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
        .expect("response"))
}

fn patch(
    ctx: &Ctx,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    sub: Sub,
) -> Result<Response<Body>, ApiError> {
    let ct = ctx
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let dry_run = ctx.dry_run();
    match ct {
        "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json" => {
            let body = ctx.json_body()?;
            let mut store = ctx.shared.store.lock().expect("store lock");
            let obj = ops::patch(
                &mut store,
                def,
                ns,
                name,
                &body,
                ct == "application/json-patch+json",
                sub,
                dry_run,
            )?;
            Ok(json_response(200, &obj))
        }
        "application/apply-patch+yaml" => {
            let manager = ctx
                .q("fieldManager")
                .filter(|m| !m.is_empty())
                .ok_or_else(|| {
                    ApiError::bad_request("fieldManager is required for apply requests")
                })?;
            let body: Value = match serde_json::from_slice(&ctx.body) {
                Ok(v) => v,
                Err(_) => yaml_serde::from_slice(&ctx.body)
                    .map_err(|e| ApiError::bad_request(format!("invalid apply body: {e}")))?,
            };
            let mut store = ctx.shared.store.lock().expect("store lock");
            let existed = store.get(&super::store::obj_key(def, ns, name)).is_some();
            let obj = ops::apply(&mut store, def, ns, name, body, manager, sub, dry_run)?;
            Ok(json_response(if existed { 200 } else { 201 }, &obj))
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
            ),
        )),
    }
}

fn delete_opts(ctx: &Ctx) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        dry_run: ctx.dry_run(),
        orphan: ctx.q("propagationPolicy") == Some("Orphan"),
        ..Default::default()
    };
    if !ctx.body.is_empty() {
        let body = ctx.json_body()?;
        opts.precondition_rv = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        opts.precondition_uid = body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        opts.orphan |= body.get("propagationPolicy").and_then(Value::as_str) == Some("Orphan")
            || body.get("orphanDependents").and_then(Value::as_bool) == Some(true);
        opts.dry_run |= body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("labelSelector=a%3Db%2Cc%21%3Dd&watch=true&x");
        assert_eq!(q["labelSelector"], "a=b,c!=d");
        assert_eq!(q["watch"], "true");
        assert_eq!(q["x"], "");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a+b%2"), "a b%2");
    }
}
