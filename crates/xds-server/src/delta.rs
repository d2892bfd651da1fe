//! Delta (incremental) ADS: only resources whose version differs from the client's are sent,
//! and names that disappeared are reported as removed.

use std::collections::{BTreeSet, HashMap};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use tonic::Status;

use crate::acks::{Nonces, Reply};
use crate::server::{MAX_TYPES_PER_STREAM, Protocol, Session};
use crate::snapshot::{Snapshot, push_order};

/// Per-type state of one delta stream.
#[derive(Debug, Default)]
struct TypeState {
    /// Subscribed to every resource of the type.
    wildcard: bool,
    /// Explicitly subscribed names.
    names: BTreeSet<String>,
    /// What the client has: name -> version (from `initial_resource_versions`, then from what
    /// was sent). A NACKed version stays here, so it is not sent again.
    client: HashMap<String, String>,
    /// Responses sent and not yet answered.
    nonces: Nonces,
    /// Latest ACKed `system_version_info`.
    acked_version: String,
    /// Whether a response was sent since the type was first requested (the first one is
    /// sent even when empty, so Envoy can finish initializing).
    responded: bool,
}

impl TypeState {
    fn in_scope(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }
}

/// The delta state machine of one stream.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    types: HashMap<String, TypeState>,
}

impl Delta {
    /// Sends what differs between `snapshot` and what the client has. `newly` are names just
    /// subscribed to: those absent from the snapshot are reported as removed (does not exist).
    fn respond(
        type_url: &str,
        st: &mut TypeState,
        snapshot: &Snapshot,
        newly: &[String],
        session: &mut Session,
        out: &mut Vec<DeltaDiscoveryResponse>,
    ) {
        let mut resources = Vec::new();
        let mut consider = |name: &str, st: &mut TypeState| {
            let Some(r) = snapshot.resource(type_url, name) else {
                return;
            };
            if st.client.get(name) != Some(&r.version) {
                st.client.insert(name.to_string(), r.version.clone());
                resources.push(Resource {
                    name: name.to_string(),
                    version: r.version.clone(),
                    resource: Some(r.resource.clone()),
                    ..Default::default()
                });
            }
        };
        if st.wildcard {
            for name in snapshot.resource_names(type_url) {
                consider(name, st);
            }
        } else {
            let names: Vec<String> = st.names.iter().cloned().collect();
            for name in &names {
                consider(name, st);
            }
        }
        let mut removed: BTreeSet<String> = st
            .client
            .keys()
            .filter(|n| snapshot.resource(type_url, n).is_none())
            .cloned()
            .collect();
        for name in &removed {
            st.client.remove(name);
        }
        removed.extend(
            newly
                .iter()
                .filter(|n| snapshot.resource(type_url, n).is_none() && st.in_scope(n))
                .cloned(),
        );
        if resources.is_empty() && removed.is_empty() && st.responded {
            return;
        }
        let version = snapshot.version_or_empty(type_url).to_string();
        let nonce = session.next_nonce();
        st.nonces.sent(&nonce, &version);
        st.responded = true;
        out.push(DeltaDiscoveryResponse {
            system_version_info: version,
            resources,
            type_url: type_url.to_string(),
            removed_resources: removed.into_iter().collect(),
            nonce,
            ..Default::default()
        });
    }
}

impl Protocol for Delta {
    type Req = DeltaDiscoveryRequest;
    type Resp = DeltaDiscoveryResponse;

    fn node(req: &DeltaDiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }

    fn type_url(resp: &DeltaDiscoveryResponse) -> &str {
        &resp.type_url
    }

    fn on_request(
        &mut self,
        req: DeltaDiscoveryRequest,
        snapshot: Option<&Snapshot>,
        session: &mut Session,
        out: &mut Vec<DeltaDiscoveryResponse>,
    ) -> Result<(), Status> {
        if req.type_url.is_empty() {
            return Err(Status::invalid_argument(
                "type_url is required on an ADS stream",
            ));
        }
        let first = !self.types.contains_key(&req.type_url);
        if first && self.types.len() >= MAX_TYPES_PER_STREAM {
            return Err(Status::resource_exhausted(
                "too many resource types on one stream",
            ));
        }
        let type_url = req.type_url.as_str();
        let st = self.types.entry(req.type_url.clone()).or_default();
        if first {
            st.client = req.initial_resource_versions;
            st.wildcard =
                req.resource_names_subscribe.is_empty() && Snapshot::is_wildcard_type(type_url);
        }
        match st
            .nonces
            .classify(&req.response_nonce, req.error_detail.as_ref())
        {
            Reply::Ack(version) => {
                session.ack(type_url, &version);
                st.acked_version = version;
            }
            Reply::Nack(version, message) => {
                session.nack(type_url, &version, &st.acked_version, message)
            }
            // Subscription changes count whatever the nonce: delta requests are increments.
            Reply::Nothing | Reply::Initial => {}
        }
        let was_wildcard = st.wildcard;
        let mut newly = Vec::new();
        for name in req.resource_names_subscribe {
            if name == "*" {
                st.wildcard = true;
            } else if st.names.insert(name.clone()) {
                newly.push(name);
            }
        }
        for name in req.resource_names_unsubscribe {
            if name == "*" {
                st.wildcard = false;
            } else {
                st.names.remove(&name);
                if !st.wildcard {
                    st.client.remove(&name);
                }
            }
        }
        let widened = st.wildcard && !was_wildcard;
        if let Some(snapshot) = snapshot
            && (first || widened || !newly.is_empty())
        {
            Self::respond(type_url, st, snapshot, &newly, session, out);
        }
        Ok(())
    }

    fn on_snapshot(
        &mut self,
        snapshot: &Snapshot,
        session: &mut Session,
        out: &mut Vec<DeltaDiscoveryResponse>,
    ) {
        let order: Vec<String> = push_order(self.types.keys().map(String::as_str))
            .into_iter()
            .map(str::to_string)
            .collect();
        for type_url in order {
            let Some(st) = self.types.get_mut(&type_url) else {
                continue;
            };
            Self::respond(&type_url, st, snapshot, &[], session, out);
        }
    }
}
