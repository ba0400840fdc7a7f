//! The working set of a block: reads through to the pre-state, records writes.

use crate::BlockError;
use commonware_codec::{DecodeExt, Encode};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use unet_types::{
    keys::{account_key, Account},
    Address, Digest,
};

/// Values of the keys a block touches, as they were before the block (`None` = absent).
///
/// A hash map (std's SipHash with random keys, so keys ground by an attacker cannot be made
/// to collide): execution only looks keys up, never walks them in order.
pub type PreState = HashMap<Digest, Option<Vec<u8>>>;

/// Entries read and written while executing a block.
pub(crate) struct Working<'a> {
    pre: &'a PreState,
    values: BTreeMap<Digest, Option<Vec<u8>>>,
    /// Keys written (only these become writes: rewriting an unchanged entry would still
    /// change the authenticated store's root).
    dirty: BTreeSet<Digest>,
}

fn hex(d: &Digest) -> String {
    unet_types::tx::hash_hex(d)
}

impl<'a> Working<'a> {
    pub(crate) fn new(pre: &'a PreState) -> Self {
        Self {
            pre,
            values: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
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
            Some(bytes) => T::decode(bytes.to_vec())
                .map(Some)
                .map_err(|_| BlockError::Corrupt(hex(key))),
        }
    }

    pub(crate) fn put<T: Encode>(&mut self, key: Digest, value: &T) {
        self.values.insert(key, Some(value.encode().to_vec()));
        self.dirty.insert(key);
    }

    pub(crate) fn delete(&mut self, key: Digest) {
        self.values.insert(key, None);
        self.dirty.insert(key);
    }

    pub(crate) fn account(&self, address: &Address) -> Result<Account, BlockError> {
        Ok(self.get(&account_key(address))?.unwrap_or_default())
    }

    pub(crate) fn set_account(&mut self, address: &Address, account: Account) {
        self.put(account_key(address), &account);
    }

    /// The changed entries (`None` = deleted).
    pub(crate) fn into_writes(self) -> BTreeMap<Digest, Option<Vec<u8>>> {
        let mut values = self.values;
        self.dirty
            .into_iter()
            .map(|k| {
                let v = values.remove(&k).expect("dirty keys have values");
                (k, v)
            })
            .collect()
    }
}
