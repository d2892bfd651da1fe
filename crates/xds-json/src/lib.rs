//! Converts Envoy protobuf values (the `prost` types of the `envoy-types` crate) to proto3
//! canonical JSON.
//!
//! `envoy-types` has no serde support, so this crate carries a protobuf descriptor pool
//! compiled at build time (by `build.rs`, with `protox`) from the `.proto` sources that
//! `envoy-types` ships, and converts through `prost-reflect` dynamic messages. The JSON
//! follows the proto3 JSON mapping with its defaults: lowerCamelCase field names, enums by
//! name, 64-bit integers as strings, fields at their default value left out, and
//! `google.protobuf.Any` values expanded inline with an `"@type"` key (which Envoy accepts in
//! bootstrap and other JSON/YAML config).
//!
//! The pool holds every `.proto` file `envoy-types` ships (so every message type it has a
//! Rust type for). A type packed in an `Any`, at any depth, that is not in the pool makes
//! the conversion fail with [`Error::UnknownType`] rather than produce partial output.
//!
//! This crate does no I/O at run time.

use std::sync::LazyLock;

use envoy_types::pb::google::protobuf::Any;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

/// The encoded `FileDescriptorSet` written by `build.rs`.
static DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptor_set.bin"));

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(DESCRIPTOR_SET)
        .expect("the descriptor set compiled by build.rs decodes into a pool")
});

/// Why a value could not be converted to JSON.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message type (by full protobuf name, e.g. `envoy.config.listener.v3.Listener`) is
    /// not in the descriptor pool compiled into this crate.
    #[error("protobuf type {0:?} is not in the ferrogate-xds-json descriptor pool")]
    UnknownType(String),
    /// An `Any` has a type URL with no `/`-separated type name.
    #[error("invalid Any type URL {0:?}")]
    InvalidTypeUrl(String),
    /// The encoded bytes do not decode as the named message type.
    #[error("cannot decode {type_name}: {source}")]
    Decode {
        /// Full protobuf name of the type being decoded.
        type_name: String,
        /// The underlying decoding error.
        #[source]
        source: prost::DecodeError,
    },
    /// Serialization to JSON failed, e.g. because a nested `Any` holds a type that is not
    /// in the descriptor pool.
    #[error("cannot convert {type_name} to JSON: {source}")]
    Serialize {
        /// Full protobuf name of the top-level type being converted.
        type_name: String,
        /// The underlying serializer error.
        #[source]
        source: serde_json::Error,
    },
}

/// Converts a `google.protobuf.Any` to its proto3 JSON form: an object whose `"@type"` key
/// holds the type URL and whose other keys are the packed message's fields (or, for a
/// packed well-known type with a non-object JSON form, a `"value"` key).
///
/// # Errors
/// [`Error::UnknownType`] if the packed type (or the type of any nested `Any`) is not in the
/// descriptor pool, [`Error::InvalidTypeUrl`] for a type URL without a `/`, and
/// [`Error::Decode`] if the packed bytes are not a valid encoding of that type.
pub fn any_to_json(any: &Any) -> Result<serde_json::Value, Error> {
    // Decode the payload first so a bad payload is reported as such, not as a serde error.
    any_payload(any)?;
    encoded_to_json("google.protobuf.Any", &prost::Message::encode_to_vec(any))
}

/// Converts the message packed in a `google.protobuf.Any` to its proto3 JSON form, without
/// the `"@type"` key: what [`message_to_json`] gives for the unpacked message.
///
/// Use this to embed xDS resources held as `Any` (listeners, clusters, ...) in a static
/// Envoy bootstrap: Envoy accepts `"@type"` only where the field itself is an `Any` (such
/// as `typed_config`), and rejects it on e.g. `static_resources.clusters[0]`.
///
/// # Errors
/// As for [`any_to_json`].
pub fn any_payload_to_json(any: &Any) -> Result<serde_json::Value, Error> {
    let (type_name, _) = any_payload(any)?;
    encoded_to_json(type_name, &any.value)
}

/// The packed type name of `any` and its decoded payload.
fn any_payload(any: &Any) -> Result<(&str, DynamicMessage), Error> {
    let type_name = match any.type_url.rsplit_once('/') {
        Some((_, name)) if !name.is_empty() => name,
        _ => return Err(Error::InvalidTypeUrl(any.type_url.clone())),
    };
    let message =
        DynamicMessage::decode(descriptor(type_name)?, any.value.as_slice()).map_err(|source| {
            Error::Decode {
                type_name: type_name.to_owned(),
                source,
            }
        })?;
    Ok((type_name, message))
}

/// Converts a message to its proto3 JSON form (an object of its non-default fields, with
/// lowerCamelCase keys; nested `Any` values are expanded with `"@type"`).
///
/// # Errors
/// [`Error::UnknownType`] if `M` (or the type of any nested `Any`) is not in the descriptor
/// pool.
pub fn message_to_json<M: prost::Message + prost::Name>(
    msg: &M,
) -> Result<serde_json::Value, Error> {
    encoded_to_json(&M::full_name(), &msg.encode_to_vec())
}

/// Whether the descriptor pool knows the message type with this full protobuf name (e.g.
/// `envoy.extensions.filters.http.router.v3.Router`).
pub fn knows_type(full_name: &str) -> bool {
    POOL.get_message_by_name(full_name).is_some()
}

fn descriptor(full_name: &str) -> Result<MessageDescriptor, Error> {
    POOL.get_message_by_name(full_name)
        .ok_or_else(|| Error::UnknownType(full_name.to_owned()))
}

fn encoded_to_json(type_name: &str, bytes: &[u8]) -> Result<serde_json::Value, Error> {
    let message =
        DynamicMessage::decode(descriptor(type_name)?, bytes).map_err(|source| Error::Decode {
            type_name: type_name.to_owned(),
            source,
        })?;
    message
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .map_err(|source| {
            // prost-reflect reports an Any whose type is missing from the pool as a custom
            // serde error; surface it as UnknownType when we can tell.
            let text = source.to_string();
            match unknown_type_in(&text) {
                Some(name) => Error::UnknownType(name),
                None => Error::Serialize {
                    type_name: type_name.to_owned(),
                    source,
                },
            }
        })
}

/// Extracts the type name from prost-reflect's `message 'NAME' not found` error, which it
/// raises for an `Any` whose type is not in the pool.
fn unknown_type_in(text: &str) -> Option<String> {
    let rest = text.strip_prefix("message '")?;
    let (name, tail) = rest.split_once('\'')?;
    (tail.starts_with(" not found") && !knows_type(name)).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::POOL;

    /// The build script rewrites these relative type references (see
    /// `qualify_relative_names` in build.rs); they must land where `protoc` puts them.
    #[test]
    fn shadowed_relative_references_resolve_like_protoc() {
        for (message, field, expected) in [
            (
                "envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
                "dns_cache_config",
                "envoy.extensions.common.dynamic_forward_proxy.v3.DnsCacheConfig",
            ),
            (
                "envoy.extensions.filters.http.file_server.v3.FileServerConfig",
                "manager_config",
                "envoy.extensions.common.async_files.v3.AsyncFileManagerConfig",
            ),
            (
                "envoy.extensions.filters.common.jwks.v3.RemoteJwks",
                "http_uri",
                "envoy.config.core.v3.HttpUri",
            ),
        ] {
            let descriptor = POOL.get_message_by_name(message).expect(message);
            let field = descriptor.get_field_by_name(field).expect(field);
            let kind = field.kind();
            let target = kind.as_message().expect("a message field");
            assert_eq!(target.full_name(), expected, "{message}.{}", field.name());
        }
    }
}
