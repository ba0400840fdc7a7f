//! Results about the compute rental market: offers and leases.

use crate::hex;
use serde::{Deserialize, Serialize};
use unet_types::{
    amount::base_units,
    hexser,
    market::{CloseReason as StoredCloseReason, OfferTerms},
    Address, Amount,
};

/// Offer terms as the API shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsView {
    /// The chips offered.
    #[serde(with = "hex::ids")]
    pub chips: Vec<[u8; 32]>,
    /// Base units per chip per block.
    #[serde(with = "base_units")]
    pub price_per_block: Amount,
    /// Shortest lease.
    pub min_blocks: u64,
    /// Longest lease.
    pub max_blocks: u64,
    /// Where renters submit work.
    pub endpoint: String,
    /// The chips' model.
    pub model: String,
    /// Memory per chip, MiB.
    pub memory_mib: u64,
    /// Free-form capabilities.
    pub tags: Vec<String>,
}

impl From<&OfferTerms> for TermsView {
    fn from(t: &OfferTerms) -> Self {
        Self {
            chips: t.chips.clone(),
            price_per_block: t.price_per_block,
            min_blocks: t.min_blocks,
            max_blocks: t.max_blocks,
            endpoint: t.endpoint.clone(),
            model: t.capabilities.model.clone(),
            memory_mib: t.capabilities.memory_mib,
            tags: t.capabilities.tags.clone(),
        }
    }
}

/// An offer with its free chips.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferView {
    /// Its id.
    pub id: u64,
    /// Who offers.
    #[serde(with = "hexser")]
    pub provider: Address,
    /// When it was created.
    pub created: u64,
    /// When its terms last changed.
    pub updated: u64,
    /// Chips Online and not leased.
    #[serde(with = "hex::ids")]
    pub free_chips: Vec<[u8; 32]>,
    /// The terms.
    #[serde(flatten)]
    pub terms: TermsView,
}

/// `unet_listOffers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferList {
    /// The finalized height that answered.
    pub height: u64,
    /// The offers of this page.
    pub offers: Vec<OfferView>,
    /// The cursor of the next page (null at the end).
    pub next: Option<u64>,
}

/// Whether a lease runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Running.
    Open,
    /// Ended (`closed_at`, `close_reason`).
    Closed,
}

/// Why a lease closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The renter closed it.
    Renter,
    /// The provider closed it.
    Provider,
    /// The deposit could not cover the next period.
    DepositExhausted,
    /// A leased chip missed a challenge.
    ChipUnresponsive,
    /// A leased chip was revoked.
    ChipRevoked,
    /// A leased chip was deregistered or transferred.
    ChipRemoved,
    /// It reached its longest term.
    Expired,
}

impl From<StoredCloseReason> for CloseReason {
    fn from(r: StoredCloseReason) -> Self {
        match r {
            StoredCloseReason::Renter => Self::Renter,
            StoredCloseReason::Provider => Self::Provider,
            StoredCloseReason::DepositExhausted => Self::DepositExhausted,
            StoredCloseReason::ChipUnresponsive => Self::ChipUnresponsive,
            StoredCloseReason::ChipRevoked => Self::ChipRevoked,
            StoredCloseReason::ChipRemoved => Self::ChipRemoved,
            StoredCloseReason::Expired => Self::Expired,
        }
    }
}

/// A lease with what it owes the provider now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseView {
    /// Its id.
    pub id: u64,
    /// The offer it rents from.
    pub offer_id: u64,
    /// Who rents.
    #[serde(with = "hexser")]
    pub renter: Address,
    /// Who provides.
    #[serde(with = "hexser")]
    pub provider: Address,
    /// The chips rented.
    #[serde(with = "hex::ids")]
    pub chips: Vec<[u8; 32]>,
    /// Base units per block, all chips together.
    #[serde(with = "base_units")]
    pub price_per_block: Amount,
    /// Where the renter submits work.
    pub endpoint: String,
    /// First block served.
    pub start: u64,
    /// A renter closing earlier still pays up to here.
    pub min_end: u64,
    /// It closes by itself at the start of this block.
    pub end: u64,
    /// First block not yet paid.
    pub paid_until: u64,
    /// The next scheduled settlement (null when closed).
    pub next_settlement: Option<u64>,
    /// Escrow left, base units.
    #[serde(with = "base_units")]
    pub deposit: Amount,
    /// Paid to the provider so far.
    #[serde(with = "base_units")]
    pub total_paid: Amount,
    /// What it owes the provider now.
    #[serde(with = "base_units")]
    pub owed_now: Amount,
    /// Open or closed.
    pub status: LeaseState,
    /// When it closed.
    pub closed_at: Option<u64>,
    /// Why it closed.
    pub close_reason: Option<CloseReason>,
}

/// `unet_getLease`: the lease and the finalized height that answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseAt {
    /// The lease.
    #[serde(flatten)]
    pub lease: LeaseView,
    /// The finalized height that answered.
    pub height: u64,
}

/// `unet_listLeases`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseList {
    /// The renter or provider asked about.
    #[serde(with = "hexser")]
    pub account: Address,
    /// The finalized height that answered.
    pub height: u64,
    /// The leases of this page.
    pub leases: Vec<LeaseView>,
    /// The cursor of the next page (null at the end).
    pub next: Option<u64>,
}
