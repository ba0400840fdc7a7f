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

use crate::{
    readset::{Memo, ReadSet, Round},
    BlockEnv, PreState,
};
use std::collections::BTreeSet;
use unet_types::{chip::Registry, keys::registry_key, Digest, SignedTx};

/// Every key execution may read or write for this block, given the entries loaded so far.
pub fn touched_keys(env: &BlockEnv<'_>, txs: &[SignedTx], pre: &PreState) -> BTreeSet<Digest> {
    plan(env, txs, pre, &mut Memo::default())
        .fresh
        .into_iter()
        .collect()
}

/// The keys a planning round declares that no earlier round (recorded in `memo`) declared,
/// reusing (and adding to) what earlier rounds decoded and derived.
fn plan(env: &BlockEnv<'_>, txs: &[SignedTx], pre: &PreState, memo: &mut Memo) -> Round {
    let mut rs = ReadSet::new(pre, memo);
    let registry: Option<Registry> = rs.read(registry_key());
    let chip_count = registry.as_ref().map(|r| r.chip_count);
    // The ledger's keys follow from the transactions alone, so the first round declares
    // all of them (a later round would only repeat them).
    if rs.first_round() {
        crate::exec::reads(&mut rs, env, txs);
    }
    crate::liveness::reads(&mut rs, env, txs, chip_count);
    crate::rewards::reads(&mut rs, env, chip_count);
    crate::registry::reads(&mut rs, env, txs, chip_count.unwrap_or(0));
    crate::validators::reads(&mut rs, env, txs);
    // Last: it reacts to the chips the other domains may take offline or move.
    crate::market::reads(&mut rs, env, txs);
    rs.finish()
}

/// Keys a block ends up loading, per key its first planning round declares, when that round
/// waits on values: only a capacity hint. Measured over the liveness blocks of a simulated
/// 20,000-chip network at a million chips' per-block rate: 4.9-8 (median 6.2).
const ROUND_GROWTH: usize = 6;

/// At most this many keys are reserved from that hint. A transfer block's first round
/// declares all its keys and then waits only on the registry entry: without a bound its
/// maps would be sized for six times a full block of transfers, megabytes of fresh pages
/// touched every block. A liveness block at a million chips loads under ten thousand.
const MAX_ROUND_HINT: usize = 1 << 14;

/// The loop that loads a block's pre-state, without doing the loading itself.
///
/// Ask [`PreStateLoader::missing`] for keys, fetch their values from wherever the state
/// lives, hand them back with [`PreStateLoader::supply`], and repeat until nothing is
/// missing. Every round only adds keys, so the loop ends.
pub struct PreStateLoader<'a> {
    env: &'a BlockEnv<'a>,
    txs: &'a [SignedTx],
    pre: PreState,
    /// What earlier rounds decoded and derived (each round would otherwise decode every chip
    /// record and hash every key again).
    memo: Memo,
    /// The last round looked only at loaded values: once its keys are supplied, nothing is
    /// missing (see [`Round::waiting`]).
    complete: bool,
}

impl<'a> PreStateLoader<'a> {
    /// A loader for executing `txs` in the block described by `env`.
    pub fn new(env: &'a BlockEnv<'a>, txs: &'a [SignedTx]) -> Self {
        Self {
            env,
            txs,
            pre: PreState::default(),
            memo: Memo::default(),
            complete: false,
        }
    }

    /// The touched keys not loaded yet (empty when the pre-state is complete).
    ///
    /// A round returns only the keys it declares that no earlier round did: every key an
    /// earlier round returned was supplied before this one (the loop's contract), and the
    /// values of those never change between rounds.
    ///
    /// A round that looked only at loaded values ends the loop: the next round would see the
    /// same values and declare nothing new, so it is not run (the state crate's test harness
    /// checks, for every block it executes, that a plan from scratch over the loaded
    /// pre-state finds nothing missing).
    pub fn missing(&mut self) -> Vec<Digest> {
        if self.complete {
            return Vec::new();
        }
        let first = self.memo.rounds() == 0;
        let Round { mut fresh, waiting } = plan(self.env, self.txs, &self.pre, &mut self.memo);
        self.complete = !waiting;
        fresh.retain(|k| !self.pre.contains_key(k));
        if first && waiting {
            // More rounds follow, each adding keys that the first one's values lead to (a
            // chip's record, then its owner's entries): size the maps once for about that
            // many instead of growing them by rehashing every round.
            let hint = (fresh.len() * ROUND_GROWTH).min(MAX_ROUND_HINT);
            self.pre.reserve(hint);
            self.memo.reserve(hint);
        }
        fresh
    }

    /// Planning rounds run so far: one per fetch, plus one where the last fetch answered a
    /// round that waited for a value and the round after it found nothing new.
    pub fn rounds(&self) -> u32 {
        self.memo.rounds()
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
