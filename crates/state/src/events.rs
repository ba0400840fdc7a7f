//! Events a block emits besides its receipts: chip status changes, challenges, rewards,
//! committees. They are derived by every validator from the same transition, so they are as
//! final as the block.

use serde::Serialize;
use unet_types::{amount::base_units, chip::ChipStatus, epoch::Committee, Address, Amount};

/// Something the protocol did in a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A chip's status changed.
    ChipStatus {
        #[serde(serialize_with = "ser_id")]
        chip_id: [u8; 32],
        from: ChipStatus,
        to: ChipStatus,
        reason: String,
    },
    /// A chip was challenged; it must answer within the response window (blocks
    /// `height + 1 ..= deadline`) by signing `response_digest(chain_id, height, beacon,
    /// chip_id)`.
    Challenge {
        #[serde(serialize_with = "ser_id")]
        chip_id: [u8; 32],
        height: u64,
        #[serde(serialize_with = "ser_digest")]
        beacon: unet_types::Digest,
        deadline: u64,
    },
    /// A chip's owner was paid its share of an epoch's emission.
    Reward {
        #[serde(serialize_with = "ser_id")]
        chip_id: [u8; 32],
        #[serde(with = "unet_types::hexser")]
        owner: Address,
        epoch: u64,
        #[serde(with = "base_units")]
        amount: Amount,
    },
    /// Every chip of an epoch has been paid; dust and forfeits went to the treasury.
    EpochSettled {
        epoch: u64,
        #[serde(with = "base_units")]
        emission: Amount,
        #[serde(with = "base_units")]
        paid: Amount,
        #[serde(with = "base_units")]
        to_treasury: Amount,
    },
    /// The committee of a future epoch was chosen.
    Committee { committee: Committee },
}

impl Event {
    /// The event's kind, as used by the `events` subscription filter.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ChipStatus { .. } => "chip_status",
            Event::Challenge { .. } => "challenge",
            Event::Reward { .. } => "reward",
            Event::EpochSettled { .. } => "epoch_settled",
            Event::Committee { .. } => "committee",
        }
    }
}

fn ser_id<S: serde::Serializer>(id: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(id))
}

fn ser_digest<S: serde::Serializer>(d: &unet_types::Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(d))
}
