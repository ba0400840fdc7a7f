//! The compute rental market: what a provider offers, what a renter leases, and how a lease
//! pays from escrow. Pure types and rules, no state access: `unet-state` applies them.
//!
//! ```text
//! Capabilities := model str (<= 64) | memory_mib u64 | tags vec<str (<= 32)> (<= 8)
//! OfferTerms   := chips vec<[32]> (1..=64) | price_per_block u128 (per chip)
//!               | min_blocks u64 | max_blocks u64 | endpoint str (<= 256) | capabilities
//! Offer        := id u64 | provider [32] | terms | created u64 | updated u64
//! Lease        := id u64 | offer u64 | renter [32] | provider [32] | chips vec<[32]> (1..=64)
//!               | price_per_block u128 (all chips) | endpoint str (<= 256) | start u64
//!               | min_end u64 | end u64 | paid_until u64 | next_settle u64 | deposit u128
//!               | total_paid u128 | status (0 Open | 1 Closed height u64 reason u8)
//! ChipMarket   := offer option<u64> | lease option<u64>
//! MarketInfo   := next_offer u64 | next_lease u64 | open_offers u64 | open_leases u64
//! IdList       := vec<u64> (<= 4096)
//! ```
//!
//! # Payment
//!
//! A lease serves block `b` if it is open at the end of `b`: a lease opened in block `h`
//! serves `h`, a lease closed in block `h` does not. `paid_until` is the first block not yet
//! paid; settling at height `h` moves `price_per_block * (h - paid_until)` from the escrowed
//! deposit to the provider and sets `paid_until = h`. Settlement happens whenever a
//! transaction or a chip status change touches the lease, and on a fixed schedule: every
//! `period` blocks after the opening height (`period` = the epoch length), the lease is
//! settled from a per-height due list, so a block only looks at the leases due in it.
//!
//! At every scheduled settlement the deposit must cover the whole next period (up to the
//! lease's end); if it does not, the lease closes there and the rest of the deposit is
//! refunded. Opening requires the same for the first period, and a deposit only shrinks by
//! payment for served blocks, so at every block the escrow covers every block served since
//! the last settlement: a lease never runs unpaid.

mod codec;
pub mod error;
pub mod keys;
pub mod lease;
pub mod offer;

pub use error::MarketError;
pub use lease::{CloseReason, Lease, LeaseStatus, Settlement};
pub use offer::{Capabilities, ChipMarket, IdList, MarketInfo, Offer, OfferTerms};

/// An account address (the account's ed25519 public key).
pub type Address = commonware_cryptography::ed25519::PublicKey;
/// A chip id: SHA-256 of the chip's hardware identity.
pub type ChipId = [u8; 32];
/// UNC base units.
pub type Amount = u128;

/// Most chips in one offer or lease.
pub const MAX_LEASE_CHIPS: usize = 64;
/// Longest endpoint URL.
pub const MAX_ENDPOINT: usize = 256;
/// Longest model name (same bound as the chip registry's model names).
pub const MAX_MODEL: usize = 64;
/// Most free-text tags of an offer.
pub const MAX_TAGS: usize = 8;
/// Longest tag.
pub const MAX_TAG: usize = 32;
/// Most open leases an account may hold, as renter or as provider (each list bound).
pub const MAX_OPEN_LEASES: usize = 4096;
