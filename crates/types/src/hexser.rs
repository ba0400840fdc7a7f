//! Serde helpers for hex-encoded fixed-size codec values (keys, digests).

use commonware_codec::{DecodeExt, Encode};
use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

/// Hex string of a codec value.
pub fn to_hex<T: Encode>(v: &T) -> String {
    hex::encode(v.encode())
}

/// Parses a hex string (optionally `0x`-prefixed) into a codec value of fixed configuration.
pub fn from_hex<T: DecodeExt<()>>(s: &str) -> Result<T, String> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(s).map_err(|e| format!("invalid hex: {e}"))?;
    T::decode(bytes).map_err(|e| format!("invalid value: {e}"))
}

/// `#[serde(with = "unet_types::hexser")]` for any fixed codec value.
pub fn serialize<T: Encode, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_hex(v))
}

/// See [`serialize`].
pub fn deserialize<'de, T: DecodeExt<()>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    from_hex(&s).map_err(D::Error::custom)
}
