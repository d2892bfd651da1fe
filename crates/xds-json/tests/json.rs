//! JSON shape of converted Envoy resources.

mod common;

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    Secret, TlsCertificate, secret,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;
use ferrogate_xds_json::{Error, any_to_json, knows_type, message_to_json};
use serde_json::json;

#[test]
fn listener_with_http_connection_manager() {
    let value = any_to_json(&pack_any(common::listener())).unwrap();
    assert_eq!(
        value["@type"],
        "type.googleapis.com/envoy.config.listener.v3.Listener"
    );
    assert_eq!(value["name"], "http-10080");
    assert_eq!(
        value["address"],
        json!({"socketAddress": {"address": "127.0.0.1", "portValue": 10080}})
    );
    let filter = &value["filterChains"][0]["filters"][0];
    assert_eq!(
        filter["name"],
        "envoy.filters.network.http_connection_manager"
    );
    let hcm = &filter["typedConfig"];
    assert_eq!(
        hcm["@type"],
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    );
    assert_eq!(hcm["statPrefix"], "http-10080");
    // codec_type AUTO is the enum's zero value: left out like any default.
    assert!(hcm.get("codecType").is_none());
    let route = &hcm["routeConfig"]["virtualHosts"][0]["routes"][0];
    assert_eq!(route["match"], json!({"prefix": "/"}));
    assert_eq!(
        route["route"],
        json!({"cluster": "backend", "timeout": "15s"})
    );
    assert_eq!(
        hcm["httpFilters"][0],
        json!({
            "name": "envoy.filters.http.router",
            "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
        })
    );
}

#[test]
fn message_to_json_has_no_type_key() {
    let value = message_to_json(&common::listener()).unwrap();
    assert!(value.get("@type").is_none());
    assert_eq!(value["name"], "http-10080");
    assert_eq!(
        value["filterChains"][0]["filters"][0]["typedConfig"]["statPrefix"],
        "http-10080"
    );
}

#[test]
fn cluster_with_protocol_options_and_endpoints() {
    let value = message_to_json(&common::cluster()).unwrap();
    assert_eq!(
        value,
        json!({
            "name": "backend",
            // STATIC is DiscoveryType's zero value, but a set oneof member is always written.
            "type": "STATIC",
            "connectTimeout": "0.250s",
            "loadAssignment": {
                "clusterName": "backend",
                "endpoints": [{"lbEndpoints": [{"endpoint": {"address": {
                    "socketAddress": {"address": "127.0.0.1", "portValue": 3000}
                }}}]}]
            },
            "typedExtensionProtocolOptions": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicitHttpConfig": {"http2ProtocolOptions": {}}
                }
            }
        })
    );
}

#[test]
fn route_configuration_and_load_assignment() {
    let routes = any_to_json(&pack_any(common::route_config())).unwrap();
    assert_eq!(
        routes["@type"],
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    );
    assert_eq!(
        routes["virtualHosts"][0]["domains"],
        json!(["example.com", "*"])
    );
    let cla = any_to_json(&pack_any(common::load_assignment())).unwrap();
    assert_eq!(
        cla["@type"],
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    );
    assert_eq!(cla["clusterName"], "backend");
}

#[test]
fn secret() {
    let secret = Secret {
        name: "cert".to_owned(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineString("PEM".to_owned())),
                ..Default::default()
            }),
            ..Default::default()
        })),
    };
    let value = any_to_json(&pack_any(secret)).unwrap();
    assert_eq!(
        value,
        json!({
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
            "name": "cert",
            "tlsCertificate": {"certificateChain": {"inlineString": "PEM"}}
        })
    );
}

#[test]
fn well_known_type_in_any_uses_value_key() {
    let any = pack_any(envoy_types::pb::google::protobuf::Duration {
        seconds: 3,
        nanos: 0,
    });
    assert_eq!(
        any_to_json(&any).unwrap(),
        json!({"@type": "type.googleapis.com/google.protobuf.Duration", "value": "3s"})
    );
}

#[test]
fn extension_types_are_known() {
    for name in [
        "envoy.config.bootstrap.v3.Bootstrap",
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig",
        "envoy.extensions.filters.http.cors.v3.Cors",
        "envoy.extensions.filters.http.health_check.v3.HealthCheck",
        "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
        "envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "envoy.service.discovery.v3.DiscoveryResponse",
        "xds.type.matcher.v3.Matcher",
    ] {
        assert!(knows_type(name), "{name} missing from the descriptor pool");
    }
}

#[test]
fn unknown_type_is_an_error() {
    let any = Any {
        type_url: "type.googleapis.com/example.Nope".to_owned(),
        value: vec![],
    };
    assert!(matches!(any_to_json(&any), Err(Error::UnknownType(name)) if name == "example.Nope"));

    // The same type nested in a listener's typed_config.
    let mut listener: Listener = common::listener();
    listener.filter_chains[0].filters[0].config_type =
        Some(envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(any));
    let err = message_to_json(&listener).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownType(name) if name == "example.Nope"),
        "{err}"
    );
}

#[test]
fn bad_type_url_and_payload_are_errors() {
    let any = Any {
        type_url: "no-slash".to_owned(),
        value: vec![],
    };
    assert!(matches!(any_to_json(&any), Err(Error::InvalidTypeUrl(_))));
    let any = Any {
        type_url: "type.googleapis.com/envoy.config.listener.v3.Listener".to_owned(),
        value: vec![0xff, 0xff, 0xff],
    };
    assert!(matches!(any_to_json(&any), Err(Error::Decode { .. })));
}

#[test]
fn any_payload_to_json_drops_the_type_key() {
    let any = pack_any(common::cluster());
    let mut with_type = any_to_json(&any).unwrap();
    with_type.as_object_mut().unwrap().remove("@type");
    assert_eq!(
        ferrogate_xds_json::any_payload_to_json(&any).unwrap(),
        with_type
    );
    assert_eq!(with_type, message_to_json(&common::cluster()).unwrap());
}
