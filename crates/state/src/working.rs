//! The working set of a block: reads through to the pre-state, records writes.

use crate::BlockError;
use commonware_codec::{Copying, DecodeExt, Encode};
use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap, HashSet},
};
use unet_types::{
    chip::Chip,
    keys::{account_key_raw, revoked_cert_key, Account},
    Address, Digest,
};

/// The hasher of the per-block maps keyed by state keys: foldhash with a random seed per map.
///
/// The keys are SHA-256 digests of what transactions name, so an attacker chooses them only
/// by grinding preimages; with a seed drawn per map (and a map living for one block) there is
/// nothing to grind against. SipHash was about a tenth of a liveness block's path
/// (docs/benchmarks.md, "Per-block maps, one round less, a cheaper settlement cursor").
pub type KeyHasher = foldhash::fast::RandomState;

/// A per-block map keyed by state keys (see [`KeyHasher`]).
pub(crate) type KeyMap<K, V> = HashMap<K, V, KeyHasher>;

/// A per-block set of state keys (see [`KeyHasher`]).
pub(crate) type KeySet<K> = HashSet<K, KeyHasher>;

/// Values of the keys a block touches, as they were before the block (`None` = absent).
///
/// A hash map: execution only looks keys up, never walks them in order.
pub type PreState = HashMap<Digest, Option<Vec<u8>>, KeyHasher>;

/// Entries read and written while executing a block.
pub(crate) struct Working<'a> {
    pre: &'a PreState,
    /// What the block wrote (`None` = deleted). Only written keys are here, and only these
    /// become writes: rewriting an unchanged entry would still change the authenticated
    /// store's root.
    values: KeyMap<Digest, Option<Vec<u8>>>,
    /// Revocation entry key of each certificate id met: every rule that reads a chip checks
    /// its chain, and the chips of a model share their chain's intermediates.
    cert_keys: RefCell<KeyMap<[u8; 32], Digest>>,
    /// Balance key of each account met: a transfer reads and writes its sender's and its
    /// recipient's, and pays the proposer; the reward cursor reads and writes each owner's.
    account_keys: RefCell<KeyMap<[u8; 32], Digest>>,
    /// Chip records decoded by an earlier rule and handed to a later one (see
    /// [`Working::stash_chip`]); a write to the key drops its entry.
    stash: KeyMap<Digest, Chip>,
}

fn hex(d: &Digest) -> String {
    unet_types::tx::hash_hex(d)
}

impl<'a> Working<'a> {
    pub(crate) fn new(pre: &'a PreState) -> Self {
        Self {
            pre,
            values: KeyMap::default(),
            cert_keys: RefCell::default(),
            account_keys: RefCell::default(),
            stash: KeyMap::default(),
        }
    }

    /// Keeps `chip`, decoded from the current value of `key`, for [`Working::take_chip`]:
    /// the block's up-front answer checks decode every answered chip, and the answers then
    /// need the same records. Any write to `key` before then drops it.
    pub(crate) fn stash_chip(&mut self, key: Digest, chip: Chip) {
        self.stash.insert(key, chip);
    }

    /// The chip record at `key`, as [`Working::get`] decodes it: the stashed one if nothing
    /// wrote the key since it was stashed (the stash is then emptied for it).
    pub(crate) fn take_chip(&mut self, key: &Digest) -> Result<Option<Chip>, BlockError> {
        match self.stash.remove(key) {
            Some(chip) => Ok(Some(chip)),
            None => self.get(key),
        }
    }

    /// The revocation entry key of certificate `id` (`revoked_cert_key`), derived once per
    /// block.
    pub(crate) fn cert_key(&self, id: &[u8; 32]) -> Digest {
        *self
            .cert_keys
            .borrow_mut()
            .entry(*id)
            .or_insert_with(|| revoked_cert_key(id))
    }

    /// Whether certificate `id` is revoked (its revocation entry is present).
    pub(crate) fn cert_revoked(&self, id: &[u8; 32]) -> Result<bool, BlockError> {
        Ok(self.raw(&self.cert_key(id))?.is_some())
    }

    /// The current value of a touched key.
    pub(crate) fn raw(&self, key: &Digest) -> Result<Option<&[u8]>, BlockError> {
        if let Some(v) = self.values.get(key) {
            return Ok(v.as_deref());
        }
        match self.pre.get(key) {
            Some(v) => Ok(v.as_deref()),
            None => Err(BlockError::MissingKey(hex(key))),
        }
    }

    /// Decodes the current value of a touched key.
    pub(crate) fn get<T: DecodeExt<()>>(&self, key: &Digest) -> Result<Option<T>, BlockError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(bytes) => T::decode(Copying(bytes))
                .map(Some)
                .map_err(|_| BlockError::Corrupt(hex(key))),
        }
    }

    pub(crate) fn put<T: Encode>(&mut self, key: Digest, value: &T) {
        if !self.stash.is_empty() {
            self.stash.remove(&key);
        }
        self.values.insert(key, Some(Vec::from(value.encode_mut())));
    }

    pub(crate) fn delete(&mut self, key: Digest) {
        if !self.stash.is_empty() {
            self.stash.remove(&key);
        }
        self.values.insert(key, None);
    }

    /// The balance key of `address` (`account_key`), derived once per block.
    fn account_key(&self, address: &Address) -> Digest {
        let bytes: &[u8] = address.as_ref();
        let Ok(raw) = <[u8; 32]>::try_from(bytes) else {
            return account_key_raw(bytes);
        };
        *self
            .account_keys
            .borrow_mut()
            .entry(raw)
            .or_insert_with(|| account_key_raw(&raw))
    }

    pub(crate) fn account(&self, address: &Address) -> Result<Account, BlockError> {
        Ok(self.get(&self.account_key(address))?.unwrap_or_default())
    }

    pub(crate) fn set_account(&mut self, address: &Address, account: Account) {
        self.put(self.account_key(address), &account);
    }

    /// The changed entries (`None` = deleted), in key order.
    pub(crate) fn into_writes(self) -> BTreeMap<Digest, Option<Vec<u8>>> {
        self.values.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Every map draws its own seed: the same key hashes differently in different maps, so
    /// there is no one function whose collisions an attacker could grind keys for.
    #[test]
    fn each_map_hashes_with_its_own_seed() {
        let key = Digest::from([7u8; 32]);
        let hashes: std::collections::BTreeSet<u64> = (0..16)
            .map(|_| KeyHasher::default().hash_one(key))
            .collect();
        assert_eq!(hashes.len(), 16);
    }
}
