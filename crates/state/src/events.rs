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
        /// The chip (serialized as hex).
        #[serde(serialize_with = "ser_id")]
        chip_id: [u8; 32],
        /// Its status before the block.
        from: ChipStatus,
        /// Its status after the block.
        to: ChipStatus,
        /// Why it changed, in words (`answered a challenge`, `revoked by governance`, ...).
        reason: String,
    },
    /// A chip was challenged; it must answer within the response window (blocks
    /// `height + 1 ..= deadline`) by signing `response_digest(chain_id, height, beacon,
    /// chip_id)`.
    Challenge {
        /// The challenged chip (serialized as hex).
        #[serde(serialize_with = "ser_id")]
        chip_id: [u8; 32],
        /// The block that drew the challenge (the challenge's height).
        height: u64,
        /// That block's beacon, which the chip's answer signs (serialized as hex).
        #[serde(serialize_with = "ser_digest")]
        beacon: unet_types::Digest,
        /// The last block in which an answer counts.
        deadline: u64,
    },
    /// A chip's owner was paid its share of an epoch's emission.
    Reward {
        /// The paid chip (serialized as hex).
        #[serde(serialize_with = "ser_id")]
        chip_id: [u8; 32],
        /// The account paid: the chip's owner (serialized as hex).
        #[serde(with = "unet_types::hexser")]
        owner: Address,
        /// The epoch the reward is for.
        epoch: u64,
        /// Base units paid (serialized as a decimal string).
        #[serde(with = "base_units")]
        amount: Amount,
    },
    /// Every chip of an epoch has been paid; dust and forfeits went to the treasury.
    EpochSettled {
        /// The settled epoch.
        epoch: u64,
        /// The epoch's emission, base units.
        #[serde(with = "base_units")]
        emission: Amount,
        /// Paid to chip owners in total, base units.
        #[serde(with = "base_units")]
        paid: Amount,
        /// Dust and forfeited rewards sent to the treasury, base units.
        #[serde(with = "base_units")]
        to_treasury: Amount,
    },
    /// The committee of a future epoch was chosen.
    Committee {
        /// The chosen committee (its epoch and validators).
        committee: Committee,
    },
    /// A renter opened a lease on some of an offer's chips.
    LeaseOpened {
        /// The new lease's id.
        lease_id: u64,
        /// The offer it was opened on.
        offer_id: u64,
        /// The account that pays (serialized as hex).
        #[serde(with = "unet_types::hexser")]
        renter: Address,
        /// The offer's provider, who is paid (serialized as hex).
        #[serde(with = "unet_types::hexser")]
        provider: Address,
        /// The leased chips (each serialized as hex).
        #[serde(serialize_with = "ser_ids")]
        chips: Vec<[u8; 32]>,
        /// Base units moved from the renter's balance into escrow.
        #[serde(with = "base_units")]
        deposit: Amount,
    },
    /// A lease closed: `paid` went to the provider and `refunded` back to the renter in this
    /// block; `total_paid` is what the provider received over the whole lease.
    LeaseClosed {
        /// The closed lease's id.
        lease_id: u64,
        /// Why it closed ([`unet_types::market::CloseReason::as_str`]: `renter`, `expired`,
        /// ...).
        reason: String,
        /// Base units the provider received over the whole lease.
        #[serde(with = "base_units")]
        total_paid: Amount,
        /// Base units paid to the provider in this block.
        #[serde(with = "base_units")]
        paid: Amount,
        /// Base units returned to the renter in this block.
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
