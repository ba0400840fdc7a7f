//! A lease as the job protocol needs it, read from the node's `unet_getLease`.

use serde_json::Value;

/// A lease as the job server needs it (from `unet_getLease`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease id.
    pub id: u64,
    /// Renter address, hex.
    pub renter: String,
    /// Chip ids, hex.
    pub chips: Vec<String>,
    /// `open` or `closed`.
    pub status: String,
    /// Why it closed, when it did.
    pub close_reason: Option<String>,
    /// First block the lease no longer serves.
    pub end: u64,
    /// The chain height the answer is from.
    pub height: u64,
}

impl LeaseInfo {
    /// Parses an `unet_getLease` answer.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            id: v["id"].as_u64()?,
            renter: v["renter"].as_str()?.to_lowercase(),
            chips: v["chips"]
                .as_array()?
                .iter()
                .map(|c| c.as_str().map(str::to_lowercase))
                .collect::<Option<_>>()?,
            status: v["status"].as_str()?.to_string(),
            close_reason: v["close_reason"].as_str().map(str::to_string),
            end: v["end"].as_u64()?,
            height: v["height"].as_u64()?,
        })
    }
}
