//! State-of-the-world ADS: every response carries all subscribed resources of its type.

use std::collections::{BTreeSet, HashMap};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use tonic::Status;

use crate::acks::{Nonces, Reply};
use crate::server::{MAX_TYPES_PER_STREAM, Protocol, Session};
use crate::snapshot::{Snapshot, push_order};

/// Per-type state of one SotW stream.
#[derive(Debug, Default)]
struct TypeState {
    /// Subscribed to every resource of the type (LDS/CDS with no names, or `*`).
    wildcard: bool,
    /// Explicitly subscribed names.
    names: BTreeSet<String>,
    /// Responses sent and not yet answered.
    nonces: Nonces,
    /// Type version of the latest response; not re-sent, even when NACKed.
    last_version: Option<String>,
}

impl TypeState {
    fn subscribed(&self) -> bool {
        self.wildcard || !self.names.is_empty()
    }
}

/// The SotW state machine of one stream.
#[derive(Debug, Default)]
pub(crate) struct Sotw {
    types: HashMap<String, TypeState>,
}

impl Sotw {
    fn respond(
        type_url: &str,
        st: &mut TypeState,
        snapshot: &Snapshot,
        session: &mut Session,
        out: &mut Vec<DiscoveryResponse>,
    ) {
        let version = snapshot.version_or_empty(type_url).to_string();
        let resources = if st.wildcard {
            snapshot
                .resources(type_url)
                .map(|(_, r)| r.resource.clone())
                .collect()
        } else {
            st.names
                .iter()
                .filter_map(|n| snapshot.resource(type_url, n))
                .map(|r| r.resource.clone())
                .collect()
        };
        let nonce = session.next_nonce();
        st.nonces.sent(&nonce, &version);
        st.last_version = Some(version.clone());
        out.push(DiscoveryResponse {
            version_info: version,
            resources,
            type_url: type_url.to_string(),
            nonce,
            ..Default::default()
        });
    }
}

impl Protocol for Sotw {
    type Req = DiscoveryRequest;
    type Resp = DiscoveryResponse;

    fn node(req: &DiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }

    fn type_url(resp: &DiscoveryResponse) -> &str {
        &resp.type_url
    }

    fn on_request(
        &mut self,
        req: DiscoveryRequest,
        snapshot: Option<&Snapshot>,
        session: &mut Session,
        out: &mut Vec<DiscoveryResponse>,
    ) -> Result<(), Status> {
        if req.type_url.is_empty() {
            return Err(Status::invalid_argument(
                "type_url is required on an ADS stream",
            ));
        }
        if !self.types.contains_key(&req.type_url) && self.types.len() >= MAX_TYPES_PER_STREAM {
            return Err(Status::resource_exhausted(
                "too many resource types on one stream",
            ));
        }
        let type_url = req.type_url.as_str();
        let st = self.types.entry(req.type_url.clone()).or_default();
        let current = st.nonces.is_current(&req.response_nonce);
        let reply = st
            .nonces
            .classify(&req.response_nonce, req.error_detail.as_ref());
        let initial = reply == Reply::Initial;
        match reply {
            Reply::Ack(version) => session.ack(type_url, &version),
            Reply::Nack(version, message) => {
                session.nack(type_url, &version, &req.version_info, message)
            }
            Reply::Initial | Reply::Nothing => {}
        }
        if !current {
            // It answers an older response; Envoy sends its current names with the latest nonce.
            return Ok(());
        }
        let wildcard = req.resource_names.iter().any(|n| n == "*")
            || (req.resource_names.is_empty() && Snapshot::is_wildcard_type(type_url));
        let names: BTreeSet<String> = req
            .resource_names
            .iter()
            .filter(|n| *n != "*")
            .cloned()
            .collect();
        let changed = initial || wildcard != st.wildcard || names != st.names;
        st.wildcard = wildcard;
        st.names = names;
        if changed
            && st.subscribed()
            && let Some(snapshot) = snapshot
        {
            Self::respond(type_url, st, snapshot, session, out);
        }
        Ok(())
    }

    fn on_snapshot(
        &mut self,
        snapshot: &Snapshot,
        session: &mut Session,
        out: &mut Vec<DiscoveryResponse>,
    ) {
        let order: Vec<String> = push_order(self.types.keys().map(String::as_str))
            .into_iter()
            .map(str::to_string)
            .collect();
        for type_url in order {
            let Some(st) = self.types.get_mut(&type_url) else {
                continue;
            };
            if st.subscribed()
                && st.last_version.as_deref() != Some(snapshot.version_or_empty(&type_url))
            {
                Self::respond(&type_url, st, snapshot, session, out);
            }
        }
    }
}
