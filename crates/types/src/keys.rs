//! How state entries are addressed in the authenticated store, and their encodings.
//!
//! Every entry lives under a 32-byte key = SHA-256(tag || id). Tags keep kinds apart so no
//! account can collide with a protocol entry.
//!
//! | entry | key | value |
//! |---|---|---|
//! | account | H("unet/account" \|\| pubkey) | `Account` = balance u128 \|\| nonce u64 |
//! | supply | H("unet/supply") | `Supply` = genesis u128 \|\| minted u128 \|\| burned u128 \|\| escrowed u128 |

use crate::{Address, Amount, Digest};
use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, FixedSize, Read, ReadExt, Write};
use commonware_cryptography::{Hasher, Sha256};

/// Key of an account entry.
pub fn account_key(address: &Address) -> Digest {
    account_key_raw(address.as_ref())
}

/// [`account_key`] from the account key's bytes, not checked to be a curve point (as
/// [`crate::chip::ChipRefs`] leaves a chip's owner).
pub fn account_key_raw(address: &[u8]) -> Digest {
    Sha256::hash(&[b"unet/account", address])
}

/// Key of the supply counters.
pub fn supply_key() -> Digest {
    Sha256::hash(&[b"unet/supply"])
}

/// An account's balance and next nonce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Spendable balance, base units.
    pub balance: Amount,
    /// The nonce the account's next transaction must carry (transactions applied so far).
    pub nonce: u64,
}

impl Write for Account {
    fn write(&self, buf: &mut impl BufMut) {
        self.balance.write(buf);
        self.nonce.write(buf);
    }
}

impl FixedSize for Account {
    const SIZE: usize = 16 + 8;
}

impl Read for Account {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            balance: u128::read(buf)?,
            nonce: u64::read(buf)?,
        })
    }
}

/// Chain-wide supply counters. Invariant after every block:
/// `genesis + minted - burned == sum(balances) + escrowed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Supply {
    /// Base units allocated at genesis.
    #[serde(with = "crate::amount::base_units")]
    pub genesis: Amount,
    /// Base units minted since (rewards).
    #[serde(with = "crate::amount::base_units")]
    pub minted: Amount,
    /// Base units destroyed since (the burned part of fees).
    #[serde(with = "crate::amount::base_units")]
    pub burned: Amount,
    /// Base units held in lease escrow (deposits not yet paid or refunded).
    #[serde(with = "crate::amount::base_units")]
    pub escrowed: Amount,
}

impl Supply {
    /// Tokens in existence: genesis + minted - burned.
    pub fn total(&self) -> Amount {
        self.genesis + self.minted - self.burned
    }

    /// Tokens held in accounts (total minus escrow).
    pub fn circulating(&self) -> Amount {
        self.total() - self.escrowed
    }
}

impl Write for Supply {
    fn write(&self, buf: &mut impl BufMut) {
        self.genesis.write(buf);
        self.minted.write(buf);
        self.burned.write(buf);
        self.escrowed.write(buf);
    }
}

impl FixedSize for Supply {
    const SIZE: usize = 16 * 4;
}

impl Read for Supply {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            genesis: u128::read(buf)?,
            minted: u128::read(buf)?,
            burned: u128::read(buf)?,
            escrowed: u128::read(buf)?,
        })
    }
}

// Fixed-size types get EncodeSize from FixedSize via the codec's blanket impl; assert it.
const _: fn() = || {
    fn assert_encode_size<T: EncodeSize>() {}
    assert_encode_size::<Account>();
    assert_encode_size::<Supply>();
};

/// Key of a chip record.
pub fn chip_key(chip_id: &[u8; 32]) -> Digest {
    Sha256::hash(&[b"unet/chip", chip_id])
}

/// Key of the POCI registry (models, roots, governance).
pub fn registry_key() -> Digest {
    Sha256::hash(&[b"unet/registry"])
}

/// Marker: this chip was revoked by governance (it can never register again).
pub fn revoked_chip_key(chip_id: &[u8; 32]) -> Digest {
    Sha256::hash(&[b"unet/revoked/chip", chip_id])
}

/// Marker: this certificate (SHA-256 of its DER) was revoked by governance.
pub fn revoked_cert_key(fingerprint: &[u8; 32]) -> Digest {
    Sha256::hash(&[b"unet/revoked/cert", fingerprint])
}

/// Ring slot of recent block hashes (anchors for registration nonces).
pub fn block_hash_key(slot: u64) -> Digest {
    Sha256::hash(&[b"unet/blockhash", &slot.to_be_bytes()])
}

/// Chips owned by an account (list of chip ids).
pub fn owner_chips_key(owner: &Address) -> Digest {
    owner_chips_key_raw(owner.as_ref())
}

/// [`owner_chips_key`] from the owner key's bytes.
pub fn owner_chips_key_raw(owner: &[u8]) -> Digest {
    Sha256::hash(&[b"unet/owner", owner])
}

/// The chip id at position `index` of the registry (for paging through every chip).
pub fn chip_index_key(index: u64) -> Digest {
    Sha256::hash(&[b"unet/chipindex", &index.to_be_bytes()])
}
