//! Which state entries a block reads and writes, and the one loader that fetches them.
//!
//! Each domain declares its reads next to the code that applies it: `exec::reads` (the
//! ledger), `liveness::reads`, `rewards::reads`, `registry::reads`, `validators::reads` and
//! `market::reads`. They all write into one [`ReadSet`], whose only way to look at a stored
//! value is [`ReadSet::read`], which also declares the key: planning code cannot use a value
//! it has not declared. What execution then reads outside the set fails the block with
//! `BlockError::MissingKey` (the fuzzing harness replays its corpus against that).
//!
//! Some keys depend on values: a challenged registry position names a chip id, the chip
//! names its owner. [`touched_keys`] is therefore a fixpoint: call it with what has been
//! loaded so far, load the keys it returns that are not loaded yet, and call again until it
//! returns nothing new (at most four rounds). [`PreStateLoader`] runs that loop without doing
//! I/O itself, so the synchronous [`load_touched`] and the node's asynchronous store reads
//! drive the same loop. The cost follows the number of chips the block touches, never the
//! number of chips registered.

use crate::{BlockEnv, PreState};
use commonware_codec::DecodeExt;
use std::{
    any::Any,
    collections::{BTreeMap, BTreeSet, HashMap},
};
use unet_types::{
    chip::{Chip, ChipId, Registry},
    keys::{account_key, chip_key, owner_chips_key, registry_key, revoked_cert_key},
    liveness::owner_compute_keys,
    rewards::owner_rewards_key,
    Address, Digest, SignedTx,
};

/// Values decoded by earlier planning rounds of the same block, by key. Loaded values never
/// change between rounds (a round only adds keys), so a decoded value stays right.
type Decoded = HashMap<Digest, Box<dyn Any + Send + Sync>>;

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
    fn new(pre: &'p PreState, decoded: &'p mut Decoded) -> Self {
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
    fn finish(mut self) -> BTreeSet<Digest> {
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

/// Every key execution may read or write for this block, given the entries loaded so far.
pub fn touched_keys(env: &BlockEnv<'_>, txs: &[SignedTx], pre: &PreState) -> BTreeSet<Digest> {
    plan(env, txs, pre, &mut Decoded::new())
}

/// [`touched_keys`], reusing (and adding to) the values decoded by earlier rounds.
fn plan(
    env: &BlockEnv<'_>,
    txs: &[SignedTx],
    pre: &PreState,
    decoded: &mut Decoded,
) -> BTreeSet<Digest> {
    let mut rs = ReadSet::new(pre, decoded);
    let registry: Option<Registry> = rs.read(registry_key());
    let chip_count = registry.as_ref().map(|r| r.chip_count);
    crate::exec::reads(&mut rs, env, txs);
    crate::liveness::reads(&mut rs, env, txs, chip_count);
    crate::rewards::reads(&mut rs, env, chip_count);
    crate::registry::reads(&mut rs, env, txs, chip_count.unwrap_or(0));
    crate::validators::reads(&mut rs, env, txs);
    // Last: it reacts to the chips the other domains may take offline or move.
    crate::market::reads(&mut rs, env, txs);
    rs.finish()
}

/// The loop that loads a block's pre-state, without doing the loading itself.
///
/// Ask [`PreStateLoader::missing`] for keys, fetch their values from wherever the state
/// lives, hand them back with [`PreStateLoader::supply`], and repeat until nothing is
/// missing. Every round only adds keys, so the loop ends.
pub struct PreStateLoader<'a> {
    env: &'a BlockEnv<'a>,
    txs: &'a [SignedTx],
    pre: PreState,
    /// Entries decoded by earlier rounds (each round would otherwise decode every chip
    /// record again).
    decoded: Decoded,
}

impl<'a> PreStateLoader<'a> {
    /// A loader for executing `txs` in the block described by `env`.
    pub fn new(env: &'a BlockEnv<'a>, txs: &'a [SignedTx]) -> Self {
        Self {
            env,
            txs,
            pre: PreState::new(),
            decoded: Decoded::new(),
        }
    }

    /// The touched keys not loaded yet (empty when the pre-state is complete).
    pub fn missing(&mut self) -> Vec<Digest> {
        plan(self.env, self.txs, &self.pre, &mut self.decoded)
            .into_iter()
            .filter(|k| !self.pre.contains_key(k))
            .collect()
    }

    /// Records the values of `keys` (`None` = absent), in the same order.
    pub fn supply(&mut self, keys: Vec<Digest>, values: Vec<Option<Vec<u8>>>) {
        self.pre.extend(keys.into_iter().zip(values));
    }

    /// The pre-state loaded so far.
    pub fn into_pre_state(self) -> PreState {
        self.pre
    }
}

/// Loads the touched keys of a block through `load` until the set is complete.
///
/// `load` returns the current value of each key (`None` = absent). The node's asynchronous
/// store reads drive the same [`PreStateLoader`].
pub fn load_touched<E>(
    env: &BlockEnv<'_>,
    txs: &[SignedTx],
    mut load: impl FnMut(&[Digest]) -> Result<Vec<Option<Vec<u8>>>, E>,
) -> Result<PreState, E> {
    let mut loader = PreStateLoader::new(env, txs);
    loop {
        let missing = loader.missing();
        if missing.is_empty() {
            return Ok(loader.into_pre_state());
        }
        let values = load(&missing)?;
        loader.supply(missing, values);
    }
}
