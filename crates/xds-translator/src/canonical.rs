//! Deterministic bytes for RouteConfigurations. `prost` encodes a protobuf map from a
//! `HashMap`, so a map with two or more entries encodes in a random order, and equal
//! configurations would get different bytes, versions and pushes. A route's
//! `typed_per_filter_config` can hold two entries (CORS and stateful session), so route
//! configurations are encoded here with every such map's entries sorted by key. Protobuf
//! allows fields in any order on the wire, so Envoy reads the same message.
//!
//! The layout is always the same: the configuration without its virtual hosts, then each
//! virtual host (itself without its routes, then each route, itself with its map entries
//! last). So a configuration can also be put together from routes encoded earlier
//! (`route_encodings`), with the same bytes as encoding it whole.

use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

/// `RouteConfiguration.virtual_hosts`.
pub(crate) const VIRTUAL_HOSTS_TAG: u32 = 2;
/// `VirtualHost.routes`.
pub(crate) const ROUTES_TAG: u32 = 3;
/// `Route.typed_per_filter_config`.
const ROUTE_FILTER_CONFIG_TAG: u32 = 13;

/// The encoding of `rc`, with route filter-config map entries sorted by key.
pub fn route_configuration(mut rc: RouteConfiguration) -> Vec<u8> {
    let virtual_hosts = std::mem::take(&mut rc.virtual_hosts);
    let mut out = rc.encode_to_vec();
    for vh in virtual_hosts {
        nested(VIRTUAL_HOSTS_TAG, &virtual_host(vh), &mut out);
    }
    out
}

fn virtual_host(mut vh: VirtualHost) -> Vec<u8> {
    let routes = std::mem::take(&mut vh.routes);
    let mut out = vh.encode_to_vec();
    for r in routes {
        nested(ROUTES_TAG, &route(r), &mut out);
    }
    out
}

/// The encoding of one route, its filter-config map entries last and sorted by key.
pub(crate) fn route(mut r: Route) -> Vec<u8> {
    let filter_configs = std::mem::take(&mut r.typed_per_filter_config);
    let mut out = r.encode_to_vec();
    let mut entries: Vec<_> = filter_configs.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (key, value) in entries {
        let mut entry = Vec::new();
        prost::encoding::string::encode(1, key, &mut entry);
        prost::encoding::message::encode(2, value, &mut entry);
        nested(ROUTE_FILTER_CONFIG_TAG, &entry, &mut out);
    }
    out
}

pub(crate) fn nested(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::google::protobuf::Any;

    fn config(keys: &[&str]) -> RouteConfiguration {
        let mut r = Route {
            name: "r".into(),
            ..Default::default()
        };
        for k in keys {
            r.typed_per_filter_config.insert(
                (*k).to_string(),
                Any {
                    type_url: format!("t/{k}"),
                    value: k.as_bytes().to_vec(),
                },
            );
        }
        RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vec![VirtualHost {
                name: "vh".into(),
                domains: vec!["*".into()],
                routes: vec![r],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn two_filter_configs_encode_the_same_bytes_whatever_the_map_order_and_decode_back() {
        let bytes: Vec<Vec<u8>> = (0..20)
            .map(|_| route_configuration(config(&["b.filter", "a.filter", "c.filter"])))
            .collect();
        assert!(
            bytes.windows(2).all(|w| w[0] == w[1]),
            "canonical bytes must not depend on HashMap order"
        );
        let decoded = RouteConfiguration::decode(bytes[0].as_slice()).unwrap();
        assert_eq!(decoded, config(&["a.filter", "b.filter", "c.filter"]));
    }
}
