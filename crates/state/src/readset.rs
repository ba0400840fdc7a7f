//! The read-set a block's planning builds: the keys it declares, and the one way planning
//! code sees a loaded value ([`ReadSet::read`], which declares the key too).
//!
//! The domains (`exec`, `liveness`, `rewards`, `registry`, `validators`, `market`) write into
//! it from their `reads` functions; `plan.rs` runs them and the loading rounds. This file
//! imports none of them.

use crate::PreState;
use commonware_codec::DecodeExt;
use std::{
    any::Any,
    collections::{BTreeMap, BTreeSet, HashMap},
};
use unet_types::{
    chip::{Chip, ChipId},
    keys::{account_key, chip_key, owner_chips_key, revoked_cert_key},
    liveness::owner_compute_keys,
    rewards::owner_rewards_key,
    Address, Digest,
};

/// Values decoded by earlier planning rounds of the same block, by key. Loaded values never
/// change between rounds (a round only adds keys), so a decoded value stays right.
pub(crate) type Decoded = HashMap<Digest, Box<dyn Any + Send + Sync>>;

/// The keys a block touches, declared by the domains while they look at what is loaded.
pub(crate) struct ReadSet<'p> {
    pre: &'p PreState,
    decoded: &'p mut Decoded,
    keys: BTreeSet<Digest>,
    /// Accounts whose balance entry is read.
    accounts: BTreeSet<Address>,
    /// Chips whose record is read, with the entries of their owner.
    chips: BTreeSet<ChipId>,
    /// Chips the reward cursor pays, with the epochs it settles for them.
    settled: BTreeMap<ChipId, Vec<u64>>,
    /// Owners a chip may have after this block's chip transfers.
    new_owners: BTreeMap<ChipId, BTreeSet<Address>>,
    /// Chips that may go offline, be revoked or change hands in this block.
    affected: BTreeSet<ChipId>,
}

impl<'p> ReadSet<'p> {
    pub(crate) fn new(pre: &'p PreState, decoded: &'p mut Decoded) -> Self {
        Self {
            pre,
            decoded,
            keys: BTreeSet::new(),
            accounts: BTreeSet::new(),
            chips: BTreeSet::new(),
            settled: BTreeMap::new(),
            new_owners: BTreeMap::new(),
            affected: BTreeSet::new(),
        }
    }

    /// Declares a key execution may read or write.
    pub(crate) fn touch(&mut self, key: Digest) {
        self.keys.insert(key);
    }

    /// Declares `key` and returns its loaded value, decoded (`None` while it is not loaded
    /// yet, when absent, or when it does not decode: execution reports a corrupt entry).
    pub(crate) fn read<T: DecodeExt<()> + Clone + Send + Sync + 'static>(
        &mut self,
        key: Digest,
    ) -> Option<T> {
        self.keys.insert(key);
        if let Some(v) = self.decoded.get(&key).and_then(|v| v.downcast_ref::<T>()) {
            return Some(v.clone());
        }
        let bytes = self.pre.get(&key)?.as_deref()?;
        let value = T::decode(bytes.to_vec()).ok()?;
        self.decoded.insert(key, Box::new(value.clone()));
        Some(value)
    }

    /// Declares an account's balance entry.
    pub(crate) fn account(&mut self, address: &Address) {
        self.accounts.insert(address.clone());
    }

    /// Declares a chip's record and, once it is loaded, its owner's compute entries, its
    /// owner's chip list and the revocation entries of its certificate chain.
    pub(crate) fn chip(&mut self, id: ChipId) {
        self.chips.insert(id);
    }

    /// The reward cursor settles `epoch` for this chip: its owner's account and reward tally
    /// (and those of any owner a transfer in this block gives it).
    pub(crate) fn settled_chip(&mut self, id: ChipId, epoch: u64) {
        self.chips.insert(id);
        self.settled.entry(id).or_default().push(epoch);
    }

    /// A transfer in this block may give the chip to `to`.
    pub(crate) fn new_owner(&mut self, id: ChipId, to: &Address) {
        self.new_owners.entry(id).or_default().insert(to.clone());
    }

    /// The chip may go offline, be revoked or change hands in this block (whoever reacts to
    /// that, such as the market, reads its entries: see [`ReadSet::affected`]).
    pub(crate) fn affect(&mut self, id: ChipId) {
        self.affected.insert(id);
    }

    /// Chips declared with [`ReadSet::affect`] so far.
    pub(crate) fn affected(&self) -> Vec<ChipId> {
        self.affected.iter().copied().collect()
    }

    /// The declared keys, with every chip's and account's entries expanded.
    pub(crate) fn finish(mut self) -> BTreeSet<Digest> {
        for id in std::mem::take(&mut self.chips) {
            let Some(chip) = self.read::<Chip>(chip_key(&id)) else {
                continue;
            };
            self.keys.extend(owner_compute_keys(&chip.owner));
            self.keys.insert(owner_chips_key(&chip.owner));
            for fp in &chip.chain {
                self.keys.insert(revoked_cert_key(fp));
            }
            if let Some(epochs) = self.settled.get(&id) {
                let owners = std::iter::once(&chip.owner)
                    .chain(self.new_owners.get(&id).into_iter().flatten());
                for owner in owners {
                    self.accounts.insert(owner.clone());
                    for e in epochs {
                        self.keys.insert(owner_rewards_key(owner, *e));
                    }
                }
            }
        }
        for a in &self.accounts {
            self.keys.insert(account_key(a));
        }
        self.keys
    }
}
