//! The executed chain: the authenticated state store plus the speculative states of
//! notarized-but-unfinalized blocks.
//!
//! Every block a node proposes or verifies is executed on its parent's state into a qmdb
//! batch; the batch's root must equal the block's `state_root`. Batches stay cached by block
//! digest until their block is finalized (applied to the store) or falls off the canonical
//! chain (dropped). Finalized blocks arrive in height order from marshal and are applied
//! exactly once: a block at or below the store's applied height is skipped, which makes the
//! redelivery after a restart harmless.

use commonware_cryptography::Digestible;
use std::collections::HashMap;
use unet_state::{
    check_stateless_batch, execute_with, genesis_writes, BlockEnv, Mode, Outcome, PreState,
    PreStateLoader, Receipt,
};
use unet_store::{Batch, Merkleized, StateDb, StoreContext};
use unet_types::{
    keys::{account_key, registry_key, supply_key, Account, Supply},
    Address, Block, Digest, Genesis, SignedTx,
};

/// Why a block could not be executed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The block breaks a rule (which one, in words); it must not be voted for.
    #[error("invalid block: {0}")]
    Invalid(String),
    /// The block's parent has not been executed on this node.
    #[error("parent state unknown")]
    UnknownParent,
    /// The store failed (I/O or a corrupt entry); the node, not the block, is at fault.
    #[error("storage: {0}")]
    Store(#[from] unet_store::Error),
    /// The transaction index failed to record or read (the node, not the block, is at fault).
    #[error("{0}")]
    TxIndex(#[from] crate::tx_index::TxIndexError),
    /// The chain's owner has stopped (the node is shutting down).
    #[error("{0}")]
    Stopped(#[from] owner::ChainStopped),
}

/// A block executed on top of its parent, not yet finalized.
#[derive(Clone)]
pub struct Executed<E: StoreContext> {
    /// The block's height.
    pub height: u64,
    /// The block's parent.
    pub parent: Digest,
    /// Each sender's next nonce after this block's transactions (senders of the block only).
    pub next_nonces: HashMap<Address, u64>,
    /// The state after the block, merkleized but not yet written to the store.
    pub state: Merkleized<E>,
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// Supply counters after the block.
    pub supply: Supply,
    /// Protocol events of the block (status changes, challenges, rewards, leases).
    pub events: Vec<unet_state::Event>,
}

/// Most transactions one proposal drops for failing block execution (see [`Chain::build_on`]).
pub const MAX_DROPPED_PER_PROPOSAL: usize = 8;

/// A block built from mempool candidates by [`Chain::build_on`].
pub struct Built<E: StoreContext> {
    /// Which candidates were included and excluded, with the block's receipts.
    pub outcome: Outcome,
    /// The state after the built block, merkleized but not yet written.
    pub state: Merkleized<E>,
    /// The block's transactions (the included candidates, in order).
    pub txs: Vec<SignedTx>,
    /// The candidates the final execution ran on (`outcome.included` and `outcome.excluded`
    /// index this list): the input less the dropped transactions. Empty when every one was
    /// included (they are moved into `txs`, not copied; nothing indexes them then).
    pub candidates: Vec<SignedTx>,
    /// Candidates dropped because block execution failed with them, and why.
    pub dropped: Vec<(SignedTx, String)>,
}

use crate::tx_index::TxIndex;
pub use crate::tx_index::TxLocation;

/// The executed chain of one node.
pub struct Chain<E: StoreContext> {
    /// The chain's genesis document.
    pub genesis: Genesis,
    db: StateDb<E>,
    /// Digest of the block the store reflects (the last finalized block applied).
    applied_digest: Digest,
    /// Speculative states by block digest.
    executed: HashMap<Digest, Executed<E>>,
    /// Where finalized transactions landed, kept on disk across restarts (absent in a chain
    /// opened without one, e.g. the genesis-state store).
    tx_index: Option<TxIndex<E>>,
    /// Finalized supply counters.
    pub supply: Supply,
    /// Receives reward dust (from genesis).
    treasury: Option<unet_types::Address>,
    /// Protocol events of the last finalized block (taken by the finalizer).
    pub last_events: Vec<unet_state::Event>,
    /// Keys of liveness answers this node verified itself at admission
    /// ([`unet_state::admit_answer`]): execution skips their proof check (the key is derived
    /// from the verifier's own pre-state and the proof, see `unet_state`'s `answers.rs`, so a
    /// leader cannot make it skip anything else). Bounded, oldest dropped first.
    verified_answers: std::collections::HashSet<Digest>,
    verified_order: std::collections::VecDeque<Digest>,
}

/// Most remembered verified-answer keys (a few epochs of a large registry's answers).
const VERIFIED_ANSWERS_LIMIT: usize = 1 << 21;

impl<E: StoreContext> Chain<E> {
    /// Opens the store; on a fresh store writes the genesis state.
    pub async fn open(context: E, partition: &str, genesis: Genesis) -> Result<Self, ExecError> {
        let mut db = StateDb::open(context, partition).await?;
        let fresh = db.get(&supply_key()).await?.is_none();
        if fresh {
            let mut batch = db.new_batch();
            let writes = genesis_writes(&genesis).map_err(|e| ExecError::Invalid(e.to_string()))?;
            for (k, v) in writes {
                batch.put(k, v)?;
            }
            let m = batch.merkleize(0).await?;
            db.apply(&m).await?;
        }
        let supply = read_supply(db.get(&supply_key()).await?)?;
        let treasury = genesis
            .treasury_address()
            .map_err(|e| ExecError::Invalid(e.to_string()))?;
        Ok(Self {
            treasury,
            last_events: Vec::new(),
            genesis,
            db,
            applied_digest: Digest::from([0u8; 32]),
            executed: HashMap::new(),
            tx_index: None,
            supply,
            verified_answers: Default::default(),
            verified_order: Default::default(),
        })
    }

    /// Gives the chain its lasting transaction index: from now on every finalized block's
    /// receipts are recorded there before the block's state is applied.
    pub fn attach_tx_index(&mut self, index: TxIndex<E>) {
        self.tx_index = Some(index);
    }

    /// Where the finalized transaction `hash` landed, with its receipt (`None`: not finalized,
    /// pruned from the index, or no index attached).
    pub async fn transaction(&self, hash: &Digest) -> Result<Option<TxLocation>, ExecError> {
        match &self.tx_index {
            Some(index) => Ok(index.get(hash).await?),
            None => Ok(None),
        }
    }

    /// The receipts of the finalized block `block` at `height`, if the transaction index
    /// holds them.
    pub async fn block_receipts(
        &self,
        height: u64,
        block: &Digest,
    ) -> Result<Option<Vec<Receipt>>, ExecError> {
        match &self.tx_index {
            Some(index) => Ok(index.receipts_at(height, block).await?),
            None => Ok(None),
        }
    }

    /// Lowest height whose transactions [`Chain::transaction`] answers (0: every height).
    pub fn tx_index_floor(&self) -> u64 {
        self.tx_index.as_ref().map_or(0, |i| i.floor())
    }

    /// Tells the chain which block its store reflects (the genesis block on a fresh store, the
    /// last finalized block otherwise).
    pub fn set_applied(&mut self, digest: Digest) {
        self.applied_digest = digest;
    }

    /// Height of the last applied (finalized) block.
    pub fn applied_height(&self) -> u64 {
        self.db.applied_height()
    }

    /// Digest of the last applied block.
    pub fn applied_digest(&self) -> Digest {
        self.applied_digest
    }

    /// Root of the finalized state.
    pub fn root(&self) -> Digest {
        self.db.root()
    }

    /// Serves the finalized state to nodes that sync it (reads under the store's read lock,
    /// so it never waits on this chain's owner).
    pub fn sync_server(&self) -> unet_store::SyncServer<E> {
        self.db.sync_server()
    }

    /// A read-only view of the finalized state that does not borrow the chain, so long reads
    /// (the API's lists, mempool admission) need not hold the chain's lock, which consensus
    /// needs. Its reads fail with [`unet_store::Error::StaleBatch`] once a newer block is
    /// applied: every read of one view sees the same state.
    pub fn finalized_view(&self) -> Batch<E> {
        self.db.new_batch()
    }

    /// Finalized account.
    pub async fn account(&self, address: &Address) -> Result<Account, ExecError> {
        read_account(self.db.get(&account_key(address)).await?)
    }

    /// A finalized state entry.
    pub async fn get(&self, key: &Digest) -> Result<Option<Vec<u8>>, ExecError> {
        Ok(self.db.get(key).await?)
    }

    /// A finalized state entry, decoded (`None` if absent).
    pub async fn get_decoded<T: commonware_codec::DecodeExt<()>>(
        &self,
        key: &Digest,
    ) -> Result<Option<T>, ExecError> {
        match self.db.get(key).await? {
            None => Ok(None),
            Some(b) => T::decode(b)
                .map(Some)
                .map_err(|_| ExecError::Invalid(format!("corrupt entry {}", hex::encode(key)))),
        }
    }

    /// The finalized POCI registry.
    pub async fn registry(&self) -> Result<unet_types::chip::Registry, ExecError> {
        Ok(self.get_decoded(&registry_key()).await?.unwrap_or_default())
    }

    /// Proof of a finalized state entry.
    pub async fn prove(&self, key: &Digest) -> Result<unet_store::StateProof, ExecError> {
        Ok(self.db.prove(key).await?)
    }

    /// Whether a block's post-state is known (executed speculatively or applied).
    pub fn knows(&self, digest: &Digest) -> bool {
        *digest == self.applied_digest || self.executed.contains_key(digest)
    }

    /// The speculative execution of a block, if any.
    pub fn executed(&self, digest: &Digest) -> Option<&Executed<E>> {
        self.executed.get(digest)
    }

    fn batch_on(&self, parent: &Digest) -> Result<Batch<E>, ExecError> {
        if *parent == self.applied_digest {
            return Ok(self.db.new_batch());
        }
        match self.executed.get(parent) {
            Some(e) => Ok(e.state.child()),
            None => Err(ExecError::UnknownParent),
        }
    }

    /// Reads every key executing `txs` on `batch` touches.
    async fn load_pre(
        batch: &Batch<E>,
        env: &BlockEnv<'_>,
        txs: &[SignedTx],
    ) -> Result<PreState, ExecError> {
        // The touched keys depend on values (a challenged position names a chip, a chip its
        // owner): the state crate's loader asks for them in rounds until none is missing.
        let mut loader = PreStateLoader::new(env, txs);
        loop {
            let missing = loader.missing();
            if missing.is_empty() {
                return Ok(loader.into_pre_state());
            }
            let mut values = Vec::with_capacity(missing.len());
            for key in &missing {
                values.push(batch.get(key).await?);
            }
            loader.supply(missing, values);
        }
    }

    /// Whether `txs` execute on the state after `parent` in proposal mode (no merkleization).
    async fn executes(
        &self,
        parent: &Digest,
        env: &BlockEnv<'_>,
        txs: &[SignedTx],
    ) -> Result<bool, ExecError> {
        let batch = self.batch_on(parent)?;
        let pre = Self::load_pre(&batch, env, txs).await?;
        let known = &self.verified_answers;
        Ok(execute_with(env, &pre, txs, Mode::Propose, &|k| known.contains(k)).is_ok())
    }

    /// Builds a block on `parent` from mempool `candidates`.
    ///
    /// Execution in proposal mode already leaves out transactions that cannot run (bad nonce,
    /// cannot pay). A transaction whose execution fails for an *internal* reason (a key the
    /// read-set missed, a corrupt entry) would fail the whole block at every proposer and stop
    /// the chain, so such a transaction is found (the shortest failing prefix, by bisection)
    /// and dropped, and the block is built without it. At most
    /// [`MAX_DROPPED_PER_PROPOSAL`] are dropped; after that the block carries the prefix that
    /// is known to execute. Only a block that fails with no transactions at all is an error.
    pub async fn build_on(
        &self,
        parent: &Digest,
        env: &BlockEnv<'_>,
        candidates: Vec<SignedTx>,
    ) -> Result<Built<E>, ExecError> {
        let mut txs = candidates;
        let mut dropped = Vec::new();
        loop {
            let reason = match self.execute_on(parent, env, &txs, Mode::Propose).await {
                Ok((outcome, state)) => {
                    // Included in order, so all of them included means exactly `txs`.
                    let (included, candidates) = if outcome.included.len() == txs.len() {
                        (txs, Vec::new())
                    } else {
                        let included = outcome.included.iter().map(|&i| txs[i].clone()).collect();
                        (included, txs)
                    };
                    return Ok(Built {
                        outcome,
                        state,
                        txs: included,
                        candidates,
                        dropped,
                    });
                }
                Err(ExecError::Invalid(reason)) if !txs.is_empty() => reason,
                Err(e) => return Err(e),
            };
            if !self.executes(parent, env, &[]).await? {
                return Err(ExecError::Invalid(format!(
                    "block fails without transactions: {reason}"
                )));
            }
            // txs[..lo] executes, txs[..hi] does not.
            let (mut lo, mut hi) = (0, txs.len());
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.executes(parent, env, &txs[..mid]).await? {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let culprit = txs.remove(lo);
            tracing::warn!(
                height = env.height,
                tx = %hex::encode(culprit.hash()),
                kind = culprit.tx.payload.kind(),
                reason,
                "dropping a transaction that fails block execution"
            );
            dropped.push((culprit, reason));
            if dropped.len() >= MAX_DROPPED_PER_PROPOSAL {
                txs.truncate(lo);
            }
        }
    }

    /// Executes `txs` on the state after `parent` and returns the outcome and the merkleized
    /// speculative state (not cached: see [`Chain::remember`]).
    pub async fn execute_on(
        &self,
        parent: &Digest,
        env: &BlockEnv<'_>,
        txs: &[SignedTx],
        mode: Mode,
    ) -> Result<(Outcome, Merkleized<E>), ExecError> {
        let mut batch = self.batch_on(parent)?;
        let pre = Self::load_pre(&batch, env, txs).await?;
        let known = &self.verified_answers;
        let outcome = execute_with(env, &pre, txs, mode, &|k| known.contains(k))
            .map_err(|e| ExecError::Invalid(e.to_string()))?;
        for (k, v) in &outcome.writes {
            match v {
                Some(v) => batch.put(*k, v.clone())?,
                None => batch.delete(*k),
            }
        }
        let state = batch.merkleize(env.height).await?;
        tracing::debug!(
            height = env.height,
            parent = %hex::encode(parent),
            ?mode,
            txs = txs.len(),
            included = outcome.included.len(),
            writes = outcome.writes.len(),
            root = %hex::encode(state.root()),
            from_applied = (*parent == self.applied_digest),
            "executed"
        );
        Ok((outcome, state))
    }

    /// Fully verifies a peer's block on top of its (known) parent and caches its state.
    ///
    /// `known_valid` names transactions whose signatures were already checked (on mempool
    /// admission), so they are not checked again.
    pub async fn verify_block_with(
        &mut self,
        block: &Block,
        known_valid: impl Fn(&Digest) -> bool,
    ) -> Result<(), ExecError> {
        let digest = block.digest();
        if self.executed.contains_key(&digest) {
            return Ok(());
        }
        let params = self.genesis.params.clone();
        if block.txs.len() > params.max_block_txs as usize {
            return Err(ExecError::Invalid("too many transactions".into()));
        }
        check_stateless_batch(
            &block.txs,
            self.genesis.chain_id,
            params.min_fee,
            known_valid,
        )
        .map_err(|(i, e)| ExecError::Invalid(format!("transaction {i}: {e}")))?;
        let env = self.env(block, &params);
        let (outcome, state) = self
            .execute_on(&block.parent, &env, &block.txs, Mode::Verify)
            .await?;
        if state.root() != block.state_root {
            return Err(ExecError::Invalid(format!(
                "state root mismatch: block says {}, execution gives {}",
                hex::encode(block.state_root),
                hex::encode(state.root())
            )));
        }
        self.remember(digest, block, state, outcome);
        Ok(())
    }

    /// Caches a speculative state under its block's digest.
    pub fn remember(&mut self, digest: Digest, block: &Block, state: Merkleized<E>, o: Outcome) {
        let mut next_nonces: HashMap<Address, u64> = HashMap::new();
        for stx in &block.txs {
            let next = next_nonces.entry(stx.tx.sender.clone()).or_default();
            *next = (*next).max(stx.tx.nonce.saturating_add(1));
        }
        self.executed.insert(
            digest,
            Executed {
                height: block.height.get(),
                parent: block.parent,
                next_nonces,
                state,
                receipts: o.receipts,
                supply: o.supply,
                events: o.events,
            },
        );
    }

    /// The execution environment of a block.
    pub fn env<'a>(&self, block: &Block, params: &'a unet_types::Params) -> BlockEnv<'a> {
        BlockEnv {
            chain_id: self.genesis.chain_id,
            params,
            proposer: block.proposer().clone(),
            height: block.height.get(),
            parent: block.parent,
            timestamp_ms: block.timestamp,
            beacon: block.beacon(),
            treasury: self.treasury.clone(),
        }
    }

    /// Applies a finalized block (executing it first if it was never verified here, as for
    /// blocks fetched during catch-up, or a block consensus finalized before this node's own
    /// verification finished). Returns its receipts, or `None` if it was already applied.
    ///
    /// `known_valid` names transactions whose signatures were already checked (on mempool
    /// admission), as for [`Chain::verify_block_with`]; it is asked only if the block must
    /// be executed here.
    pub async fn finalize(
        &mut self,
        block: &Block,
        known_valid: impl Fn(&Digest) -> bool,
    ) -> Result<Option<Vec<Receipt>>, ExecError> {
        let height = block.height.get();
        if height <= self.db.applied_height() && height != 0 {
            return Ok(None);
        }
        if height == 0 {
            return Ok(None);
        }
        let digest = block.digest();
        if block.parent != self.applied_digest {
            return Err(ExecError::Invalid(format!(
                "finalized block {height} does not extend the applied tip"
            )));
        }
        if !self.executed.contains_key(&digest) {
            self.verify_block_with(block, known_valid).await?;
        }
        let executed = self.executed.remove(&digest).expect("just verified");
        // The receipts are durable before the state: after a crash in between, the block is
        // delivered again and its second record is a no-op, so no applied block is missing.
        if let Some(index) = self.tx_index.as_mut() {
            index.record(height, digest, &executed.receipts).await?;
        }
        self.db.apply(&executed.state).await?;
        self.applied_digest = digest;
        self.supply = executed.supply;
        self.last_events = executed.events;
        // Everything at or below the finalized height is now either applied or orphaned.
        self.executed.retain(|_, e| e.height > height);
        Ok(Some(executed.receipts))
    }

    /// Each sender's next nonce after the unfinalized blocks from the last applied block up to
    /// and including `tip`, for the senders those blocks carry: a proposal on `tip` must not
    /// pick their transactions again (they are still pending until finalized). Empty when
    /// `tip` is the applied block or unknown.
    pub fn nonces_after(&self, tip: &Digest) -> HashMap<Address, u64> {
        let mut out: HashMap<Address, u64> = HashMap::new();
        let mut at = *tip;
        // Each step goes one height down, so the walk ends within the cached heights.
        while at != self.applied_digest {
            let Some(e) = self.executed.get(&at) else {
                break;
            };
            for (sender, next) in &e.next_nonces {
                let n = out.entry(sender.clone()).or_default();
                *n = (*n).max(*next);
            }
            at = e.parent;
        }
        out
    }

    /// Remembers liveness answers verified at admission (see `verified_answers`).
    pub fn remember_verified_answers(&mut self, keys: impl IntoIterator<Item = Digest>) {
        for key in keys {
            if self.verified_answers.insert(key) {
                self.verified_order.push_back(key);
            }
        }
        while self.verified_order.len() > VERIFIED_ANSWERS_LIMIT {
            if let Some(old) = self.verified_order.pop_front() {
                self.verified_answers.remove(&old);
            }
        }
    }

    /// Number of remembered verified-answer keys (for metrics and tests).
    pub fn verified_answers(&self) -> usize {
        self.verified_answers.len()
    }

    /// Number of cached speculative states (for metrics and tests).
    pub fn pending_states(&self) -> usize {
        self.executed.len()
    }
}

/// Decodes an account entry (absent = empty account).
pub fn read_account(bytes: Option<Vec<u8>>) -> Result<Account, ExecError> {
    use commonware_codec::DecodeExt;
    match bytes {
        None => Ok(Account::default()),
        Some(b) => Account::decode(b).map_err(|_| ExecError::Invalid("corrupt account".into())),
    }
}

fn read_supply(bytes: Option<Vec<u8>>) -> Result<Supply, ExecError> {
    use commonware_codec::DecodeExt;
    match bytes {
        None => Ok(Supply::default()),
        Some(b) => Supply::decode(b).map_err(|_| ExecError::Invalid("corrupt supply".into())),
    }
}

pub mod owner;

#[cfg(test)]
mod tests;
