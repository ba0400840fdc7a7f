//! Where market entries live in the authenticated state (SHA-256 of a tag and an id).
//!
//! | entry | key | value |
//! |---|---|---|
//! | market counters | H("unet/market") | `MarketInfo` |
//! | offer | H("unet/market/offer" \|\| id u64) | `Offer` |
//! | lease | H("unet/market/lease" \|\| id u64) | `Lease` |
//! | chip's market role | H("unet/market/chip" \|\| chip_id) | `ChipMarket` |
//! | leases due at a height | H("unet/market/due" \|\| height u64) | `IdList` |
//! | renter's open leases | H("unet/market/renter" \|\| address) | `IdList` |
//! | provider's open leases | H("unet/market/provider" \|\| address) | `IdList` |

use crate::{Address, ChipId};
use commonware_cryptography::{sha256::Digest, Hasher, Sha256};

/// Key of the market counters.
pub fn market_key() -> Digest {
    Sha256::hash(&[b"unet/market"])
}

/// Key of offer `id`.
pub fn offer_key(id: u64) -> Digest {
    Sha256::hash(&[b"unet/market/offer", &id.to_be_bytes()])
}

/// Key of lease `id`.
pub fn lease_key(id: u64) -> Digest {
    Sha256::hash(&[b"unet/market/lease", &id.to_be_bytes()])
}

/// Key of a chip's market role (the offer listing it, the lease holding it).
pub fn chip_market_key(chip: &ChipId) -> Digest {
    Sha256::hash(&[b"unet/market/chip", chip])
}

/// Key of the leases whose scheduled settlement falls at the start of block `height`.
pub fn lease_due_key(height: u64) -> Digest {
    Sha256::hash(&[b"unet/market/due", &height.to_be_bytes()])
}

/// Key of the open leases an account rents.
pub fn renter_leases_key(renter: &Address) -> Digest {
    Sha256::hash(&[b"unet/market/renter", renter.as_ref()])
}

/// Key of the open leases an account provides.
pub fn provider_leases_key(provider: &Address) -> Digest {
    Sha256::hash(&[b"unet/market/provider", provider.as_ref()])
}
