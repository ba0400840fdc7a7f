//! Serde helpers for the hex encodings of the wire: 32-byte ids and raw bytes.
//!
//! Inputs may carry a `0x` prefix and surrounding whitespace; outputs are lower-case hex
//! without prefix. Codec values (addresses, digests) use `unet_types::hexser`.

use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

fn strip(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix("0x").unwrap_or(s)
}

/// Decodes hex bytes (optional `0x`).
pub fn decode(s: &str) -> Result<Vec<u8>, String> {
    ::hex::decode(strip(s)).map_err(|e| format!("not hex: {e}"))
}

/// Decodes a 32-byte id (optional `0x`).
pub fn decode32(s: &str) -> Result<[u8; 32], String> {
    decode(s)?
        .try_into()
        .map_err(|_| "must be 32 bytes".to_string())
}

/// `#[serde(with = "unet_api::hex::id")]`: a 32-byte id (chip id, beacon, root).
pub mod id {
    use super::*;

    /// Hex of the id.
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&::hex::encode(v))
    }

    /// The id from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        decode32(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "unet_api::hex::ids")]`: a list of 32-byte ids.
pub mod ids {
    use super::*;

    /// Hex of each id.
    pub fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(::hex::encode))
    }

    /// The ids from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| decode32(s).map_err(D::Error::custom))
            .collect()
    }
}

/// `#[serde(with = "unet_api::hex::opt_id")]`: an optional 32-byte id (`null` when absent).
pub mod opt_id {
    use super::*;

    /// Hex of the id, or null.
    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&::hex::encode(v)),
            None => s.serialize_none(),
        }
    }

    /// The id from hex, or `None` for null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| decode32(&s).map_err(D::Error::custom))
            .transpose()
    }
}

/// `#[serde(with = "unet_api::hex::bytes")]`: raw bytes.
pub mod bytes {
    use super::*;

    /// Hex of the bytes.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&::hex::encode(v))
    }

    /// The bytes from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        decode(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "unet_api::hex::byte_lists")]`: a list of raw byte strings.
pub mod byte_lists {
    use super::*;

    /// Hex of each item.
    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(::hex::encode))
    }

    /// Each item from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| decode(s).map_err(D::Error::custom))
            .collect()
    }
}

/// `#[serde(with = "unet_api::hex::opt_bytes")]`: optional raw bytes (`null` when absent).
pub mod opt_bytes {
    use super::*;

    /// Hex of the bytes, or null.
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&::hex::encode(v)),
            None => s.serialize_none(),
        }
    }

    /// The bytes from hex, or `None` for null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| decode(&s).map_err(D::Error::custom))
            .transpose()
    }
}

/// `#[serde(with = "unet_api::hex::opt_digest")]`: an optional digest (`null` when absent).
pub mod opt_digest {
    use super::*;
    use unet_types::{
        hexser::{from_hex, to_hex},
        Digest,
    };

    /// Hex of the digest, or null.
    pub fn serialize<S: Serializer>(v: &Option<Digest>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&to_hex(v)),
            None => s.serialize_none(),
        }
    }

    /// The digest from hex, or `None` for null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Digest>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| from_hex(&s).map_err(D::Error::custom))
            .transpose()
    }
}
