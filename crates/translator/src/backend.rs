//! backendRefs: resolution of a Service port to a backend with endpoints from
//! EndpointSlices and the upstream TLS of the BackendTLSPolicy that applies to the port, with
//! the ResolvedRefs reason when that fails.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use ferrogate_api::GATEWAY_GROUP;
use ferrogate_ir::{Backend, BackendProtocol, Endpoint};
use ferrogate_status::ParentRef;
use ferrogate_store::Snapshot;

use crate::backend_tls::{Policies, Targets};
use crate::conditions::{Problem, reasons};
use crate::refs::{self, From, To};
use crate::shared::Shared;

/// A backendRef as written in a route.
pub(crate) struct BackendRef<'a> {
    pub group: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub port: Option<i32>,
}

/// A [`BackendRef`] borrowing from any of the generated backendRef types (HTTPRoute,
/// GRPCRoute, TLS/TCP/UDPRoute rules, mirror filters): they are distinct types with the same
/// fields.
macro_rules! backend_ref {
    ($r:expr) => {
        $crate::backend::BackendRef {
            group: $r.group.as_deref(),
            kind: $r.kind.as_deref(),
            name: &$r.name,
            namespace: $r.namespace.as_deref(),
            port: $r.port,
        }
    };
}
pub(crate) use backend_ref;

/// Why a backendRef cannot be used: a `ResolvedRefs: False` problem.
pub(crate) type RefProblem = Problem;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MULTICLUSTER_SERVICE_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";
const MULTICLUSTER_GROUP: &str = "multicluster.x-k8s.io";

/// One Service port's ready endpoints, or why its reference does not resolve.
type EndpointList = Result<Arc<[Endpoint]>, RefProblem>;

/// Resolves backendRefs against one snapshot, with its BackendTLSPolicies judged once.
pub(crate) struct Resolver<'a> {
    pub snapshot: &'a Snapshot,
    pub policies: Policies<'a>,
    /// Namespaces of the references resolved since the last [`Resolver::take_touched`]:
    /// everything a resolution reads (Services, ServiceImports, EndpointSlices,
    /// ReferenceGrants, BackendTLSPolicies and their CA ConfigMaps and Secrets) lives there.
    touched: RefCell<BTreeSet<String>>,
    /// Endpoint lists already gathered, by what gathering reads (namespace, Service, port
    /// name, label). Routes to the same Service port share one list instead of each walking
    /// every EndpointSlice and keeping its own copy.
    /// Keyed `namespace/Service/port name/label`: the first three are DNS labels (no `/`),
    /// so the key is unambiguous, and a hit is looked up through `endpoints_key` without
    /// allocating.
    endpoint_lists: RefCell<HashMap<String, EndpointList>>,
    endpoints_key: RefCell<String>,
    /// Backends already resolved, by name. Every route keeps the backends it resolved, and
    /// routes to the same Service port resolve equal ones: they share one instead of each
    /// keeping its own copy (and its own name).
    backends: RefCell<HashMap<String, Arc<Backend>>>,
    /// parentRefs already converted. Not a resolution, but routes keep them for the same
    /// reason: most routes of a Gateway name it alike, and share one.
    parents: RefCell<Shared<ParentRef>>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(snapshot: &'a Snapshot) -> Self {
        Self {
            snapshot,
            policies: Policies::judge(snapshot),
            touched: RefCell::default(),
            endpoint_lists: RefCell::default(),
            endpoints_key: RefCell::default(),
            backends: RefCell::default(),
            parents: RefCell::default(),
        }
    }

    /// The parentRef equal to `parent`, shared with the routes converted before that named
    /// it alike.
    pub(crate) fn share_parent(&self, parent: ParentRef) -> Arc<ParentRef> {
        self.parents.borrow_mut().share(parent)
    }

    /// The ready endpoints of a Service port, gathered once per translation.
    fn endpoint_list(
        &self,
        namespace: &str,
        service: &str,
        port_name: &str,
        label: &str,
    ) -> EndpointList {
        let mut key = self.endpoints_key.borrow_mut();
        key.clear();
        for part in [namespace, service, port_name, label] {
            key.push_str(part);
            key.push('/');
        }
        let mut lists = self.endpoint_lists.borrow_mut();
        if let Some(list) = lists.get(key.as_str()) {
            return list.clone();
        }
        let list = endpoints(self.snapshot, namespace, service, port_name, label).map(Arc::from);
        lists.insert(key.clone(), list.clone());
        list
    }

    /// The namespaces resolutions read since the last call (see `route_cache`).
    pub(crate) fn take_touched(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.touched.borrow_mut())
    }

    fn touch(&self, route_ns: &str, r: &BackendRef<'_>) {
        let namespace = r.namespace.unwrap_or(route_ns);
        let mut touched = self.touched.borrow_mut();
        if !touched.contains(namespace) {
            touched.insert(namespace.to_string());
        }
    }

    /// Resolves a reference made by a route of `route_kind` in `route_ns`; records the
    /// BackendTLSPolicies it meets in `met`.
    pub(crate) fn resolve(
        &self,
        route_kind: &str,
        route_ns: &str,
        r: &BackendRef<'_>,
        force_http2: bool,
        met: &mut Targets,
    ) -> Result<Arc<Backend>, RefProblem> {
        self.touch(route_ns, r);
        let port = resolve_port(self, route_kind, route_ns, r, "TCP")?;
        let declared = match port.app_protocol.as_deref() {
            Some("kubernetes.io/h2c" | "grpc" | "h2c") => BackendProtocol::Http2,
            _ => BackendProtocol::Http1,
        };
        // gRPC needs HTTP/2 whatever the Service says; such a backend gets its own cluster
        // name so an HTTPRoute to the same Service port keeps HTTP/1.1.
        let (protocol, suffix) = match (force_http2, declared) {
            (true, BackendProtocol::Http1) => (BackendProtocol::Http2, "/h2c"),
            (_, p) => (p, ""),
        };
        self.backend(port, r.name, protocol, suffix, met)
    }

    /// Resolves a backendRef of a TLS/TCP (or, with `udp`, UDP) route.
    pub(crate) fn resolve_stream(
        &self,
        route_kind: &str,
        route_ns: &str,
        r: &BackendRef<'_>,
        udp: bool,
        met: &mut Targets,
    ) -> Result<Arc<Backend>, RefProblem> {
        self.touch(route_ns, r);
        let transport = if udp { "UDP" } else { "TCP" };
        let port = resolve_port(self, route_kind, route_ns, r, transport)?;
        let (protocol, suffix) = if udp {
            (BackendProtocol::Udp, "/udp")
        } else {
            (BackendProtocol::Tcp, "/tcp")
        };
        self.backend(port, r.name, protocol, suffix, met)
    }

    /// The backend of a resolved Service port, with the upstream TLS its BackendTLSPolicy
    /// asks for.
    fn backend(
        &self,
        port: Port,
        service: &str,
        protocol: BackendProtocol,
        suffix: &str,
        met: &mut Targets,
    ) -> Result<Arc<Backend>, RefProblem> {
        let name = format!("{}/{service}/{}{suffix}", port.namespace, port.number);
        let tls = self.policies.upstream_tls(
            self.snapshot,
            (&port.namespace, service, port.number),
            &name,
            met,
        )?;
        Ok(self.share(Backend {
            name,
            protocol,
            endpoints: port.endpoints,
            tls,
        }))
    }

    /// The resolved backend equal to `backend` (the first one of its name; an unequal one,
    /// which one snapshot cannot give, stands alone).
    fn share(&self, backend: Backend) -> Arc<Backend> {
        let mut backends = self.backends.borrow_mut();
        match backends.get(&backend.name) {
            Some(shared) if **shared == backend => Arc::clone(shared),
            Some(_) => Arc::new(backend),
            None => {
                let shared = Arc::new(backend);
                backends.insert(shared.name.clone(), Arc::clone(&shared));
                shared
            }
        }
    }
}

/// The Service (or ServiceImport) port a reference names.
struct Port {
    namespace: String,
    number: i32,
    app_protocol: Option<String>,
    endpoints: Arc<[Endpoint]>,
}

/// Finds the Service port a reference names.
fn resolve_port(
    resolver: &Resolver<'_>,
    route_kind: &str,
    route_ns: &str,
    r: &BackendRef<'_>,
    transport: &str,
) -> Result<Port, RefProblem> {
    let snapshot = resolver.snapshot;
    let group = r.group.unwrap_or("");
    let kind = r.kind.unwrap_or("Service");
    let import = match (group, kind) {
        ("" | "core", "Service") => false,
        (MULTICLUSTER_GROUP, "ServiceImport") => true,
        _ => {
            return Err(Problem::unresolved(
                reasons::INVALID_KIND,
                format!(
                    "backendRef {group}/{kind} {} is not a supported kind (Service or ServiceImport)",
                    r.name
                ),
            ));
        }
    };
    let target_group = if import { MULTICLUSTER_GROUP } else { "" };
    let namespace = r.namespace.unwrap_or(route_ns);
    let from = From {
        group: GATEWAY_GROUP,
        kind: route_kind,
        namespace: route_ns,
    };
    let to = To {
        group: target_group,
        kind,
        namespace,
        name: r.name,
    };
    if !refs::permitted(snapshot, &from, &to) {
        return Err(Problem::unresolved(
            reasons::REF_NOT_PERMITTED,
            format!(
                "backendRef to {kind} {namespace}/{} is not permitted by any ReferenceGrant",
                r.name
            ),
        ));
    }
    let Some(port) = r.port else {
        // The CRD requires a port for Services (a CEL rule), so only files and older API
        // servers hold such refs; Envoy Gateway's reason for them.
        return Err(Problem::unresolved(
            reasons::PORT_NOT_SPECIFIED,
            format!(
                "A valid port number corresponding to a port on the {kind} {namespace}/{} must be specified",
                r.name
            ),
        ));
    };
    // (port name, appProtocol) of the referenced port.
    let found: Option<(Option<String>, Option<String>)> = if import {
        let Some(si) = snapshot.service_imports.get(namespace, r.name) else {
            return Err(Problem::unresolved(
                reasons::BACKEND_NOT_FOUND,
                format!("ServiceImport {namespace}/{} not found", r.name),
            ));
        };
        si.spec
            .ports
            .iter()
            .find(|p| p.port == port && p.protocol.as_deref().unwrap_or("TCP") == transport)
            .map(|p| (p.name.clone(), p.app_protocol.clone()))
    } else {
        let Some(service) = snapshot.services.get(namespace, r.name) else {
            return Err(Problem::unresolved(
                reasons::BACKEND_NOT_FOUND,
                format!("Service {namespace}/{} not found", r.name),
            ));
        };
        service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|ports| {
                ports
                    .iter()
                    .find(|p| p.port == port && p.protocol.as_deref().unwrap_or("TCP") == transport)
            })
            .map(|p| (p.name.clone(), p.app_protocol.clone()))
    };
    let Some((port_name, app_protocol)) = found else {
        return Err(Problem::unresolved(
            reasons::PORT_NOT_FOUND,
            format!(
                "{transport} port {port} not found on {kind} {namespace}/{}",
                r.name
            ),
        ));
    };
    let label = if import {
        MULTICLUSTER_SERVICE_NAME_LABEL
    } else {
        SERVICE_NAME_LABEL
    };
    let port_name = port_name.as_deref().unwrap_or("");
    let endpoints = resolver.endpoint_list(namespace, r.name, port_name, label)?;
    Ok(Port {
        namespace: namespace.to_string(),
        number: port,
        app_protocol,
        endpoints,
    })
}

/// Ready endpoints of a Service port, from every EndpointSlice of the Service, sorted.
fn endpoints(
    snapshot: &Snapshot,
    namespace: &str,
    service: &str,
    port_name: &str,
    label: &str,
) -> Result<Vec<Endpoint>, RefProblem> {
    let mut out = Vec::new();
    let mut address_types = std::collections::BTreeSet::new();
    for (key, slice) in snapshot.endpoint_slices.iter() {
        let owned = key.namespace == namespace
            && slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(label))
                .is_some_and(|s| s == service);
        if !owned {
            continue;
        }
        address_types.insert(slice.address_type.clone());
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // Unknown readiness counts as ready, as the EndpointSlice API says.
            if endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for address in &endpoint.addresses {
                out.push(Endpoint {
                    address: address.clone(),
                    port,
                });
            }
        }
    }
    // Dual-stack IPv4 + IPv6 slices are fine; names (FQDN) mixed with addresses are not.
    if address_types.contains("FQDN") && address_types.len() > 1 {
        return Err(Problem::unresolved(
            reasons::UNSUPPORTED_ADDRESS_TYPE,
            format!(
                "the EndpointSlices of {namespace}/{service} mix address types {address_types:?}"
            ),
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The endpoints a full translation would give `backend` in `snapshot`, for the EDS-only
/// path (a change that touched only EndpointSlices). `None` when that cannot be told from the
/// backend alone and a full translation must decide: a name of an unknown shape, a Service
/// and a ServiceImport of the same name, a port that is not there, or EndpointSlices whose
/// resolution is a problem (which is a status).
pub(crate) fn endpoints_of(snapshot: &Snapshot, backend: &Backend) -> Option<Vec<Endpoint>> {
    let mut parts = backend.name.split('/');
    let (namespace, service) = (parts.next()?, parts.next()?);
    let port: i32 = parts.next()?.parse().ok()?;
    let transport = match parts.next() {
        None | Some("h2c" | "tcp") => "TCP",
        Some("udp") => "UDP",
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let matches =
        |p: i32, protocol: Option<&str>| p == port && protocol.unwrap_or("TCP") == transport;
    let (port_name, label) = match (
        snapshot.services.get(namespace, service),
        snapshot.service_imports.get(namespace, service),
    ) {
        (Some(s), None) => {
            let ports = s.spec.as_ref()?.ports.as_ref()?;
            let p = ports
                .iter()
                .find(|p| matches(p.port, p.protocol.as_deref()))?;
            (p.name.clone(), SERVICE_NAME_LABEL)
        }
        (None, Some(si)) => {
            let p = si
                .spec
                .ports
                .iter()
                .find(|p| matches(p.port, p.protocol.as_deref()))?;
            (p.name.clone(), MULTICLUSTER_SERVICE_NAME_LABEL)
        }
        _ => return None,
    };
    endpoints(
        snapshot,
        namespace,
        service,
        port_name.as_deref().unwrap_or(""),
        label,
    )
    .ok()
}
