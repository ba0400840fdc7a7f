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
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

mod codec;
pub mod error;
pub mod keys;
pub mod lease;
pub mod offer;

pub use error::MarketError;
pub use lease::{CloseReason, Lease, LeaseStatus, Settlement};
pub use offer::{Capabilities, ChipMarket, IdList, MarketInfo, Offer, OfferTerms};

/// An account address (the account's ed25519 public key).
pub use unet_address::Address;
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

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode, EncodeSize};
    use commonware_cryptography::{ed25519::PrivateKey, Signer};

    fn terms() -> OfferTerms {
        OfferTerms {
            chips: vec![[1; 32], [2; 32]],
            price_per_block: 1_000,
            min_blocks: 5,
            max_blocks: 100,
            endpoint: "https://p.example".into(),
            capabilities: Capabilities {
                model: "H100".into(),
                memory_mib: 81_920,
                tags: vec!["onnx".into(), "fp8".into()],
            },
        }
    }

    fn lease() -> Lease {
        Lease {
            id: 3,
            offer: 1,
            renter: PrivateKey::from_seed(1).public_key(),
            provider: PrivateKey::from_seed(2).public_key(),
            chips: vec![[1; 32]],
            price_per_block: 1_000,
            endpoint: "https://p.example".into(),
            start: 10,
            min_end: 15,
            end: 110,
            paid_until: 10,
            next_settle: 30,
            deposit: 30_000,
            total_paid: 0,
            status: LeaseStatus::Open,
        }
    }

    #[test]
    fn encodings_round_trip_and_reject_every_truncation() {
        let offer = Offer {
            id: 7,
            provider: PrivateKey::from_seed(2).public_key(),
            terms: terms(),
            created: 4,
            updated: 9,
        };
        let bytes = offer.encode().to_vec();
        assert_eq!(Offer::decode(bytes.clone()).unwrap(), offer);
        for len in 0..bytes.len() {
            assert!(Offer::decode(bytes[..len].to_vec()).is_err());
        }
        let mut closed = lease();
        closed.close(20, CloseReason::Provider);
        for l in [lease(), closed] {
            let b = l.encode().to_vec();
            assert_eq!(b.len(), l.encode_size());
            assert_eq!(Lease::decode(b.clone()).unwrap(), l);
            for len in 0..b.len() {
                assert!(Lease::decode(b[..len].to_vec()).is_err());
            }
        }
        let role = ChipMarket {
            offer: Some(1),
            lease: None,
        };
        assert_eq!(ChipMarket::decode(role.encode()).unwrap(), role);
    }

    #[test]
    fn decoding_is_bounded() {
        let mut t = terms();
        t.capabilities.tags = vec!["x".into(); MAX_TAGS + 1];
        assert!(OfferTerms::decode(t.encode()).is_err());
        let mut t = terms();
        t.endpoint = "h".repeat(MAX_ENDPOINT + 1);
        assert!(OfferTerms::decode(t.encode()).is_err());
        let mut t = terms();
        t.chips = vec![[0; 32]; MAX_LEASE_CHIPS + 1];
        assert!(OfferTerms::decode(t.encode()).is_err());
        t.chips.clear();
        assert!(OfferTerms::decode(t.encode()).is_err());
    }

    #[test]
    fn terms_are_validated() {
        assert_eq!(terms().validate(), Ok(()));
        let mut t = terms();
        t.price_per_block = 0;
        assert_eq!(t.validate(), Err(MarketError::ZeroPrice));
        let mut t = terms();
        t.min_blocks = 0;
        assert_eq!(t.validate().unwrap_err().code(), "market_bad_duration");
        let mut t = terms();
        t.chips.push([1; 32]);
        assert_eq!(t.validate().unwrap_err().code(), "market_duplicate_chip");
        let mut t = terms();
        t.endpoint = "https://a b".into();
        assert_eq!(t.validate().unwrap_err().code(), "market_bad_endpoint");
    }

    #[test]
    fn settlement_pays_served_blocks_and_closes_when_the_next_period_is_not_covered() {
        assert_eq!(lease::required_deposit(1_000, 10, 5, 110, 20), 20_000);
        assert_eq!(lease::required_deposit(1_000, 10, 50, 110, 20), 50_000);
        assert_eq!(lease::required_deposit(1_000, 10, 1, 13, 20), 3_000);
        let mut l = lease();
        assert_eq!(l.owed_at(17), 7_000);
        assert_eq!(l.settle(17), 7_000);
        assert_eq!((l.paid_until, l.deposit, l.total_paid), (17, 23_000, 7_000));
        // At 30: 13 more blocks paid, 10,000 left < 20 blocks -> closed, 10,000 refunded.
        let (s, next) = l.scheduled(30, 20);
        assert_eq!(next, None);
        assert_eq!(
            s,
            Settlement {
                paid: 13_000,
                refunded: 10_000
            }
        );
        assert_eq!(
            l.status,
            LeaseStatus::Closed {
                height: 30,
                reason: CloseReason::DepositExhausted
            }
        );
        assert_eq!(l.owed_at(50), 0);
        // A renter closing before min_end pays up to min_end; a provider close does not.
        let mut r = lease();
        assert_eq!(
            r.close(12, CloseReason::Renter),
            Settlement {
                paid: 5_000,
                refunded: 25_000
            }
        );
        let mut p = lease();
        assert_eq!(
            p.close(12, CloseReason::Provider),
            Settlement {
                paid: 2_000,
                refunded: 28_000
            }
        );
        // Reaching the end closes it as expired.
        let mut e = lease();
        e.deposit = 200_000;
        let (s, next) = e.scheduled(110, 20);
        assert_eq!((s.paid, s.refunded, next), (100_000, 100_000, None));
    }
}
