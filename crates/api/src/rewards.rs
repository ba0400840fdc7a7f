//! Results about rewards, online compute, committees and validators.

use crate::hex;
use serde::{Deserialize, Serialize};
use unet_types::{
    amount::base_units,
    epoch::CommitteeMember,
    hexser,
    liveness::ModelCompute,
    rewards::{EpochRewards, Settlement},
    Address, Amount,
};

/// A reward paid for one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochAmount {
    /// The epoch.
    pub epoch: u64,
    /// Base units.
    #[serde(with = "base_units")]
    pub amount: Amount,
}

/// What a chip earned in the epoch asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipEpochReward {
    /// The epoch asked about.
    pub epoch: u64,
    /// What the chip earned (null: older than the chip's record keeps).
    #[serde(with = "opt_amount")]
    pub amount: Option<Amount>,
}

/// `unet_getRewards {chip_id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipRewards {
    /// The chip.
    #[serde(with = "hex::id")]
    pub chip_id: [u8; 32],
    /// Its owner.
    #[serde(with = "hexser")]
    pub owner: Address,
    /// The current epoch.
    pub current_epoch: u64,
    /// Recent non-zero rewards.
    pub recent_rewards: Vec<EpochAmount>,
    /// Lifetime total, base units.
    #[serde(with = "base_units")]
    pub total_rewards: Amount,
    /// The last epoch settled for it (null: none yet).
    pub settled_through_epoch: Option<u64>,
    /// The epoch asked about (when one was).
    #[serde(flatten)]
    pub asked: Option<ChipEpochReward>,
}

/// `unet_getRewards {owner}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRewards {
    /// The owner.
    #[serde(with = "hexser")]
    pub owner: Address,
    /// The epoch.
    pub epoch: u64,
    /// The current epoch.
    pub current_epoch: u64,
    /// What the owner's chips earned in it, base units.
    #[serde(with = "base_units")]
    pub amount: Amount,
    /// Whether the epoch's settlement finished.
    pub epoch_settled: bool,
    /// The settlement (null until it finished).
    pub settlement: Option<EpochRewards>,
}

/// `unet_getRewards`: a chip's or an owner's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rewards {
    /// Asked by `chip_id`.
    Chip(ChipRewards),
    /// Asked by `owner`.
    Owner(OwnerRewards),
}

/// `unet_getEpochRewards`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRewardsView {
    /// The epoch.
    pub epoch: u64,
    /// The current epoch.
    pub current_epoch: u64,
    /// Whether its settlement finished.
    pub settled: bool,
    /// The settlement (null until it finished).
    pub settlement: Option<EpochRewards>,
}

/// `unet_networkCompute`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkComputeView {
    /// The finalized height that answered.
    pub height: u64,
    /// Its epoch.
    pub epoch: u64,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// Online chips.
    pub online_chips: u64,
    /// Their rated compute, milli-TOPS (decimal string).
    #[serde(with = "base_units")]
    pub online_compute_milli_tops: u128,
    /// Per model.
    pub models: Vec<ModelCompute>,
    /// This epoch's emission, base units.
    #[serde(with = "base_units")]
    pub epoch_emission: Amount,
    /// Online weight accrued this epoch so far.
    #[serde(with = "base_units")]
    pub epoch_weight_so_far: u128,
    /// The previous epoch being paid (null when none is).
    pub settling: Option<Settlement>,
}

/// `unet_getCommittee`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeView {
    /// The epoch.
    pub epoch: u64,
    /// The current epoch.
    pub current_epoch: u64,
    /// Sum of the members' weights (decimal string).
    #[serde(with = "base_units")]
    pub total_weight: u128,
    /// The validators.
    pub members: Vec<CommitteeMember>,
}

/// A registered validator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorView {
    /// Its account (whose compute is its weight).
    #[serde(with = "hexser")]
    pub account: Address,
    /// Its node's identity key.
    #[serde(with = "hexser")]
    pub node_key: Address,
    /// Its p2p endpoint.
    pub p2p_address: String,
    /// When it registered.
    pub registered_height: u64,
    /// The account's online compute, milli-TOPS (decimal string).
    #[serde(with = "base_units")]
    pub online_compute_milli_tops: u128,
}

/// `unet_listValidators`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorList {
    /// The finalized height that answered.
    pub height: u64,
    /// The validators of this page.
    pub validators: Vec<ValidatorView>,
    /// The cursor of the next page (null at the end).
    pub next: Option<u64>,
}

/// Optional amount (null when absent).
pub(crate) mod opt_amount {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
    use unet_types::Amount;

    pub fn serialize<S: Serializer>(v: &Option<Amount>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Amount>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(|_| D::Error::custom("invalid amount")))
            .transpose()
    }
}
