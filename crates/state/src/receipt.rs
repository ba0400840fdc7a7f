//! Receipts: what happened to each transaction of a block.

use serde::Serialize;
use unet_types::{amount::base_units, Amount, Digest};

/// Outcome of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// Applied.
    Ok,
    /// Included and charged its fee (its nonce is consumed) but its payload had no effect.
    Failed {
        /// Stable machine-readable code (`market_deposit_too_small`, ...).
        code: String,
        /// The refusal in words.
        reason: String,
    },
}

/// Receipt of one transaction in a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The transaction's hash (serialized as hex).
    #[serde(serialize_with = "ser_hex")]
    pub tx_hash: Digest,
    /// Position of the transaction in the block.
    pub index: u32,
    /// Applied or failed (flattened into the receipt: `status`, `code`, `reason`).
    #[serde(flatten)]
    pub status: TxStatus,
    /// Part of the fee destroyed, base units.
    #[serde(with = "base_units")]
    pub fee_burned: Amount,
    /// Part of the fee paid to the block's proposer, base units.
    #[serde(with = "base_units")]
    pub fee_to_proposer: Amount,
    /// Answers of a `Liveness` transaction that did not apply (the others did); empty for
    /// every other transaction.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedAnswer>,
}

/// One answer of a `Liveness` transaction that was skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedAnswer {
    /// Position of the answer in the transaction.
    pub index: u32,
    /// The chip the answer was for (serialized as hex).
    #[serde(serialize_with = "ser_id")]
    pub chip_id: [u8; 32],
    /// Why (`liveness_already_answered`, `liveness_bad_proof`, ...).
    pub code: String,
    /// The refusal in words.
    pub reason: String,
}

fn ser_id<S: serde::Serializer>(id: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(id))
}

fn ser_hex<S: serde::Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&unet_types::tx::hash_hex(d))
}
