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
    /// A renter opened a lease on some of an offer's chips.
    LeaseOpened {
        lease_id: u64,
        offer_id: u64,
        #[serde(with = "unet_types::hexser")]
        renter: Address,
        #[serde(with = "unet_types::hexser")]
        provider: Address,
        #[serde(serialize_with = "ser_ids")]
        chips: Vec<[u8; 32]>,
        #[serde(with = "base_units")]
        deposit: Amount,
    },
    /// A lease closed: `paid` went to the provider and `refunded` back to the renter in this
    /// block; `total_paid` is what the provider received over the whole lease.
    LeaseClosed {
        lease_id: u64,
        reason: String,
        #[serde(with = "base_units")]
        total_paid: Amount,
        #[serde(with = "base_units")]
        paid: Amount,
        #[serde(with = "base_units")]
        refunded: Amount,
    },
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
            Event::LeaseOpened { .. } => "lease_opened",
            Event::LeaseClosed { .. } => "lease_closed",
        }
    }
}

fn ser_id<S: serde::Serializer>(id: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(id))
}

fn ser_ids<S: serde::Serializer>(ids: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ids.iter().map(hex::encode))
}

fn ser_digest<S: serde::Serializer>(d: &unet_types::Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(d))
}
