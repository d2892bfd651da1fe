//! Content hashes, used for resource and snapshot versions.

use sha2::{Digest, Sha256};

/// Number of hex characters kept from the SHA-256 digest.
pub const HASH_LEN: usize = 16;

/// SHA-256 of the message's protobuf encoding, as the first 16 hex characters. Equal
/// messages give equal hashes (our messages encode deterministically).
pub fn content_hash(msg: &impl prost::Message) -> String {
    hash_bytes(&msg.encode_to_vec())
}

/// SHA-256 of `bytes`, as the first 16 hex characters.
pub fn hash_bytes(bytes: &[u8]) -> String {
    let mut hex = hex::encode(Sha256::digest(bytes));
    hex.truncate(HASH_LEN);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::google::protobuf::Duration;

    #[test]
    fn hash_is_16_hex_chars_and_stable() {
        let a = content_hash(&Duration {
            seconds: 5,
            nanos: 0,
        });
        assert_eq!(a.len(), HASH_LEN);
        assert_eq!(
            a,
            content_hash(&Duration {
                seconds: 5,
                nanos: 0
            })
        );
        assert_ne!(
            a,
            content_hash(&Duration {
                seconds: 6,
                nanos: 0
            })
        );
        // sha256("") starts with e3b0c442...
        assert_eq!(hash_bytes(b""), "e3b0c44298fc1c14");
    }
}
