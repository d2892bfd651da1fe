//! Routes held as their JSON text, decoded when read.
//!
//! Routes are most of the objects of a large world, and a typed route is over a kilobyte of
//! small allocations (every optional field of every rule, match and backendRef) where its
//! JSON text is a few hundred bytes. The translator reads a route only to convert it, and
//! keeps the conversion: it decodes a route when the route or what it references changed,
//! so the typed form would sit unread for the route's whole life. At 10 000 one-rule routes
//! the typed forms were 12 MB of live heap and the packed ones are 4 MB (heaptrack), for a
//! decode per conversion (a one-route edit decodes that one route).

use std::fmt;
use std::marker::PhantomData;

use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ObjectKey;
use crate::object::key_of;

/// An object of type `T` held as its JSON text, with what the store reads of it without
/// decoding (its key and uid).
pub struct Packed<T> {
    key: ObjectKey,
    uid: Option<Box<str>>,
    json: Box<[u8]>,
    kind: PhantomData<fn() -> T>,
}

impl<T: Resource<DynamicType = ()> + Serialize + DeserializeOwned> Packed<T> {
    /// Packs `object`, with its key and uid read from its metadata.
    pub(crate) fn pack(object: &T) -> Self {
        let json = serde_json::to_vec(object).expect("typed objects always serialize");
        Self {
            key: key_of(object.meta()),
            uid: object.meta().uid.as_deref().map(Into::into),
            json: without_type_header::<T>(json).into_boxed_slice(),
            kind: PhantomData,
        }
    }

    /// The typed object.
    pub fn unpack(&self) -> T {
        // The text was written from a `T` by `pack`: reading it back is a round trip of the
        // type's own serde, which the store's tests check for every route kind.
        serde_json::from_slice(&self.json).expect("a packed object decodes as its own type")
    }
}

/// `json` without its leading `"apiVersion":..,"kind":..,`: every packed text of a type
/// would repeat them (about 60 bytes a route), and the type says them. The derived
/// resource types write them first and do not read them back; a text that does not start
/// so (a value that needs escaping, another field order) is kept whole.
fn without_type_header<T: Resource<DynamicType = ()>>(mut json: Vec<u8>) -> Vec<u8> {
    let rest = json
        .strip_prefix(br#"{"apiVersion":""#.as_slice())
        .and_then(|r| r.strip_prefix(T::api_version(&()).as_bytes()))
        .and_then(|r| r.strip_prefix(br#"","kind":""#.as_slice()))
        .and_then(|r| r.strip_prefix(T::kind(&()).as_bytes()))
        .and_then(|r| r.strip_prefix(br#"","#.as_slice()));
    if let Some(rest) = rest {
        let header = json.len() - rest.len();
        json.drain(1..header);
    }
    json
}

impl<T> Packed<T> {
    /// Namespace and name.
    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// `metadata.uid`.
    pub fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }
}

impl<T> Clone for Packed<T> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            uid: self.uid.clone(),
            json: self.json.clone(),
            kind: PhantomData,
        }
    }
}

/// Equal when the texts are: `pack` writes a value's fields in a fixed order, so equal
/// objects have equal texts (and the key and uid are read from what the text holds).
impl<T> PartialEq for Packed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl<T> fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packed")
            .field("key", &self.key)
            .field("uid", &self.uid)
            .field("json", &String::from_utf8_lossy(&self.json))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use ferrogate_api::gateway::{GrpcRoute, HttpRoute, TcpRoute, TlsRoute, UdpRoute};
    use kube::Resource;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use crate::{Object, load_object};

    fn meta() -> Value {
        json!({
            "name": "r", "namespace": "apps", "uid": "u-1", "generation": 3,
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "labels": {"team": "a"}, "resourceVersion": "17",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"},
        })
    }

    /// Every field a user commonly sets, so a lossy round trip shows.
    fn http_spec() -> Value {
        json!({
            "parentRefs": [{"name": "gw", "sectionName": "http", "port": 80}],
            "hostnames": ["a.example.com"],
            "rules": [{
                "name": "first",
                "matches": [{
                    "path": {"type": "RegularExpression", "value": "/v[0-9]+"},
                    "headers": [{"name": "x-a", "value": "b"}],
                    "queryParams": [{"type": "Exact", "name": "q", "value": "1"}],
                    "method": "GET",
                }],
                "filters": [{"type": "RequestHeaderModifier",
                             "requestHeaderModifier": {"set": [{"name": "x", "value": "y"}]}}],
                "backendRefs": [{"name": "svc", "port": 8080, "weight": 3,
                                 "filters": [{"type": "ResponseHeaderModifier",
                                              "responseHeaderModifier": {"remove": ["z"]}}]}],
                "timeouts": {"request": "10s"},
            }, {
                "filters": [{"type": "Frobnicate"}],
            }],
        })
    }

    fn object(kind: &str, version: &str, spec: Value) -> Object {
        load_object(json!({
            "apiVersion": format!("gateway.networking.k8s.io/{version}"), "kind": kind,
            "metadata": meta(), "spec": spec,
        }))
        .unwrap()
    }

    /// What a store holding typed routes would hold: decoded, unsupported values recorded,
    /// stripped.
    fn direct<T: DeserializeOwned + Resource<DynamicType = ()>>(
        kind: &str,
        version: &str,
        spec: Value,
    ) -> T {
        let (mut object, unsupported) = crate::open_enum::decode::<T>(json!({
            "apiVersion": format!("gateway.networking.k8s.io/{version}"), "kind": kind,
            "metadata": meta(), "spec": spec,
        }))
        .unwrap();
        crate::open_enum::record(object.meta_mut(), &unsupported);
        crate::object::strip(object.meta_mut());
        object
    }

    #[test]
    fn every_route_kind_reads_back_as_a_typed_store_would_hold_it() {
        let stream = json!({"parentRefs": [{"name": "gw"}],
                            "rules": [{"backendRefs": [{"name": "svc", "port": 9000}]}]});
        let tls = json!({"parentRefs": [{"name": "gw"}], "hostnames": ["t.example.com"],
                         "rules": [{"backendRefs": [{"name": "svc", "port": 443}]}]});
        let grpc = json!({"parentRefs": [{"name": "gw"}],
                          "rules": [{"matches": [{"method": {"service": "s", "method": "m"}}],
                                     "backendRefs": [{"name": "svc", "port": 50051}]}]});
        let Object::HttpRoute(p) = object("HTTPRoute", "v1", http_spec()) else {
            panic!("expected an HTTPRoute");
        };
        let route: HttpRoute = p.unpack();
        assert_eq!(route, direct("HTTPRoute", "v1", http_spec()));
        assert_eq!(
            route.metadata.resource_version, None,
            "stripped before packing"
        );
        let annotations = route.metadata.annotations.clone().unwrap_or_default();
        assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(
            annotations.contains_key(crate::UNSUPPORTED_VALUES_ANNOTATION),
            "the substituted filter type is still recorded: {annotations:?}"
        );
        assert_eq!(
            (p.key().namespace.as_str(), p.key().name.as_str()),
            ("apps", "r")
        );
        assert_eq!(p.uid(), Some("u-1"));

        let Object::GrpcRoute(p) = object("GRPCRoute", "v1", grpc.clone()) else {
            panic!("expected a GRPCRoute");
        };
        assert_eq!(p.unpack(), direct::<GrpcRoute>("GRPCRoute", "v1", grpc));
        let Object::TlsRoute(p) = object("TLSRoute", "v1alpha2", tls.clone()) else {
            panic!("expected a TLSRoute");
        };
        assert_eq!(p.unpack(), direct::<TlsRoute>("TLSRoute", "v1alpha2", tls));
        let Object::TcpRoute(p) = object("TCPRoute", "v1alpha2", stream.clone()) else {
            panic!("expected a TCPRoute");
        };
        assert_eq!(
            p.unpack(),
            direct::<TcpRoute>("TCPRoute", "v1alpha2", stream.clone())
        );
        let Object::UdpRoute(p) = object("UDPRoute", "v1alpha2", stream.clone()) else {
            panic!("expected a UDPRoute");
        };
        assert_eq!(
            p.unpack(),
            direct::<UdpRoute>("UDPRoute", "v1alpha2", stream)
        );
    }

    #[test]
    fn equal_routes_pack_equal_and_a_change_shows() {
        let a = object("HTTPRoute", "v1", http_spec());
        let b = object("HTTPRoute", "v1", http_spec());
        let mut spec = http_spec();
        spec["hostnames"] = json!(["b.example.com"]);
        let c = object("HTTPRoute", "v1", spec);
        let (Object::HttpRoute(a), Object::HttpRoute(b), Object::HttpRoute(c)) = (a, b, c) else {
            panic!("expected HTTPRoutes");
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn texts_leave_out_what_their_type_says() {
        let Object::HttpRoute(p) = object("HTTPRoute", "v1", http_spec()) else {
            panic!("expected an HTTPRoute");
        };
        let text = std::str::from_utf8(&p.json).unwrap();
        assert!(text.starts_with("{\"metadata\":"), "{text}");
        assert!(!text.contains("apiVersion") && !text.contains("\"kind\":\"HTTPRoute\""));
        let route: HttpRoute = p.unpack();
        assert_eq!(route.metadata.name.as_deref(), Some("r"));
    }
}
