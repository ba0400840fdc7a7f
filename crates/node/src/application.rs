//! The consensus application: builds blocks from the mempool and verifies peers' blocks by
//! executing them on their parent's speculative state. Finalized blocks are applied by the
//! [`crate::finalizer`]; round seeds come from [`crate::seeds`].
//!
//! Wrapped by marshal's `Deferred` adapter, which checks each block's embedded consensus
//! context and height/parent links, disseminates blocks and delivers finalized ones in order.

use crate::{
    chain::ExecError,
    shared::{Scheme, Shared},
};
use commonware_consensus::{
    marshal::ancestry::Ancestry,
    simplex::scheme::bls12381_threshold::vrf::{Seed, Seedable},
    types::{Height, Round},
    Application as ConsensusApplication,
};
use commonware_cryptography::{Digested, Digestible};
use commonware_runtime::{Clock, Metrics, Spawner, Storage};
use commonware_utils::SystemTimeExt;
use futures::StreamExt;
use rand::Rng;
use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};
use tracing::{debug, warn};
use unet_store::StoreContext;
use unet_types::{Block, Digest, Params};

/// What the reshare wrapper hands a proposal: the reshare payload the block must carry.
pub type ReshareInput = commonware_glue::dkg::reshare::Input<
    (),
    commonware_cryptography::bls12381::primitives::variant::MinSig,
    commonware_cryptography::ed25519::PrivateKey,
    unet_types::block::Directory,
>;

/// Largest timestamp a block may carry (2200-01-01), so clock arithmetic cannot overflow.
const MAX_BLOCK_TIMESTAMP_MS: u64 = 7_258_118_400_000;
/// How far ahead of a verifier's clock a block timestamp may be before the verifier waits.
const MAX_FUTURE_SKEW_MS: u64 = 1_000;
/// How long a proposer waits for its parent round's seed to be reported.
const SEED_WAIT: Duration = Duration::from_secs(2);

/// The block-building and block-verifying half of the node.
pub struct Application<E: StoreContext> {
    shared: Arc<Shared<E>>,
    params: Params,
}

impl<E: StoreContext> Clone for Application<E> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            params: self.params.clone(),
        }
    }
}

impl<E: StoreContext> Application<E> {
    /// The application over the node's shared state, with the chain's parameters.
    pub fn new(shared: Arc<Shared<E>>, params: Params) -> Self {
        Self { shared, params }
    }

    /// Makes sure the state after `first` (and so every ancestor back to a known state) has
    /// been executed, pulling older ancestors from `ancestry` as needed. Returns false if the
    /// chain of blocks is invalid or conflicts with the finalized chain.
    async fn ensure_executed(
        &self,
        first: Digested<Block>,
        ancestry: &mut impl Ancestry<Block>,
    ) -> bool {
        let mut pending: Vec<Arc<Block>> = Vec::new();
        let mut next = Some(first);
        loop {
            let Some(block) = next.take() else {
                return false;
            };
            let digest = block.digest();
            let Ok((known, applied)) = self
                .shared
                .chain(move |chain| {
                    Box::pin(async move { (chain.knows(&digest), chain.applied_height()) })
                })
                .await
            else {
                return false;
            };
            if known {
                break;
            }
            if block.inner().height.get() <= applied {
                // Below the finalized tip but not on it: a conflicting fork.
                return false;
            }
            pending.push(block.inner_shared());
            next = ancestry.next().await;
        }
        if pending.is_empty() {
            return true;
        }
        // Signatures already checked on mempool admission are not checked again (asked of
        // the mempool's owner before the chain is locked, as in `verify`).
        let admitted = self
            .shared
            .mempool
            .pending(
                pending
                    .iter()
                    .flat_map(|b| b.txs.iter().map(|t| t.hash()))
                    .collect(),
            )
            .await;
        // Execute oldest first.
        self.shared
            .chain(move |chain| {
                Box::pin(async move {
                    for block in pending.into_iter().rev() {
                        let known = |h: &Digest| admitted.contains(h);
                        if let Err(e) = chain.verify_block_with(&block, known).await {
                            warn!(height = block.height.get(), error = %e, "ancestor failed to execute");
                            return false;
                        }
                    }
                    true
                })
            })
            .await
            .unwrap_or(false)
    }

    /// A block's seed must be the threshold VRF signature over its parent's consensus round
    /// (absent iff the parent is the genesis block). The group key survives every reshare,
    /// so one verifier checks seeds of every epoch, across epoch boundaries too.
    fn verify_seed(&self, block: &Block, parent: &Block) -> bool {
        match (&block.seed, parent.height.get() == 0) {
            (None, true) => true,
            (Some(sig), false) => {
                let seed =
                    Seed::<commonware_cryptography::bls12381::primitives::variant::MinSig>::new(
                        parent.context.round,
                        *sig,
                    );
                seed.verify(&self.shared.verifier)
            }
            _ => false,
        }
    }

    /// The seed of `round` (notarized or finalized), from consensus activity or, for a round
    /// of an earlier epoch this node did not see notarized, from its finalization certificate.
    async fn seed_of(
        &self,
        runtime: &E,
        round: Round,
        height: Height,
    ) -> Option<unet_types::block::SeedSignature>
    where
        E: Clock,
    {
        let key = (round.epoch().get(), round.view().get());
        let deadline = runtime.current() + SEED_WAIT;
        // Subscribe before looking, so a seed recorded in between still wakes us.
        let mut recorded = self.shared.seeds.subscribe();
        let mut asked_history = false;
        loop {
            if let Some(s) = recorded.borrow_and_update().get(&key).copied() {
                return Some(s);
            }
            if !asked_history {
                asked_history = true;
                if let Some(history) = self.shared.history.get() {
                    if let Some(f) = history.finalization(height.get()).await {
                        if f.round() == round {
                            return Some(f.seed().signature);
                        }
                    }
                }
            }
            let changed = recorded.changed();
            let timeout = runtime.sleep_until(deadline);
            futures::pin_mut!(changed, timeout);
            match futures::future::select(changed, timeout).await {
                futures::future::Either::Left((Ok(()), _)) => continue,
                // Timed out, or the node is shutting down.
                _ => {
                    return self.shared.seeds.borrow().get(&key).copied();
                }
            }
        }
    }
}

impl<E> ConsensusApplication<E> for Application<E>
where
    E: StoreContext + Rng + Spawner + Metrics + Clock + Storage,
{
    type SigningScheme = Scheme;
    type Context = unet_types::Context;
    type Block = Block;
    type Input = ReshareInput;

    async fn propose(
        &mut self,
        (runtime, context): (E, Self::Context),
        mut ancestry: impl Ancestry<Self::Block>,
        input: Self::Input,
    ) -> Option<Digested<Self::Block>> {
        let parent = ancestry.next().await?;
        let parent_digest = parent.digest();
        let parent_ts = parent.inner().timestamp;
        let parent_height = parent.inner().height;
        let parent_round = parent.inner().context.round;
        if !self.ensure_executed(parent, &mut ancestry).await {
            warn!("cannot propose: parent state unavailable");
            return None;
        }

        // Pace blocks: at least block_time_ms after the parent.
        let min_ts = parent_ts.checked_add(self.params.block_time_ms)?;
        let mut now = runtime.current().epoch_millis();
        if now < min_ts {
            runtime
                .sleep_until(SystemTime::UNIX_EPOCH + Duration::from_millis(min_ts))
                .await;
            now = runtime.current().epoch_millis();
        }
        let timestamp = now.max(min_ts);
        if timestamp > MAX_BLOCK_TIMESTAMP_MS {
            return None;
        }

        // The beacon of this block is the parent round's VRF seed.
        let seed = if parent_height.get() == 0 {
            None
        } else {
            match self.seed_of(&runtime, parent_round, parent_height).await {
                Some(s) => Some(s),
                None => {
                    warn!(
                        epoch = parent_round.epoch().get(),
                        view = parent_round.view().get(),
                        "no seed for parent round; skipping proposal"
                    );
                    return None;
                }
            }
        };

        let height = parent_height.next();
        // Transactions of the unfinalized blocks below this one are still pending: start each
        // of their senders after them, so the block carries new transactions, not stale ones.
        // (The chain lock is released before the mempool's owner is asked.)
        let in_flight = self
            .shared
            .chain(move |chain| Box::pin(async move { chain.nonces_after(&parent_digest) }))
            .await
            .ok()?;
        let candidates = self
            .shared
            .mempool
            .select_after(self.params.max_block_txs as usize, in_flight)
            .await;
        let params = self.params.clone();
        let payload = input.payload;
        let built = self
            .shared
            .chain(move |chain| {
                Box::pin(async move {
                    let probe = Block::new(
                        context.clone(),
                        parent_digest,
                        height,
                        timestamp,
                        seed,
                        Digest::from([0u8; 32]),
                        Vec::new(),
                    );
                    let env = chain.env(&probe, &params);
                    let built = match chain.build_on(&parent_digest, &env, candidates).await {
                        Ok(b) => b,
                        Err(e) => {
                            warn!(error = %e, "proposal execution failed");
                            return None;
                        }
                    };
                    let (candidates, excluded, dropped) = (
                        built.candidates,
                        built.outcome.excluded.clone(),
                        built.dropped,
                    );
                    let (outcome, state, txs) = (built.outcome, built.state, built.txs);
                    let block = Block::with_reshare(
                        context,
                        parent_digest,
                        height,
                        timestamp,
                        seed,
                        payload,
                        state.root(),
                        txs,
                    );
                    let digest = block.digest();
                    chain.remember(digest, &block, state, outcome);
                    Some((block, digest, candidates, excluded, dropped))
                })
            })
            .await
            .ok()
            .flatten();
        let (block, digest, candidates, excluded, dropped) = built?;
        debug!(
            height = height.get(),
            txs = block.txs.len(),
            "proposed block"
        );
        // Drop for good what was left out for a permanent reason (and expire old
        // transactions: see `Mempool::evict_excluded`), and what failed block execution:
        // every proposer would fail the same way.
        let failed = dropped.into_iter().map(|(tx, _)| tx).collect();
        self.shared
            .mempool
            .proposed(parent_height.get(), candidates, excluded, failed)
            .await;
        note_head(&self.shared, height.get(), digest);
        Some(Digested::precomputed(Arc::new(block), digest))
    }

    async fn verify(
        &mut self,
        (runtime, _context): (E, Self::Context),
        mut ancestry: impl Ancestry<Self::Block>,
    ) -> bool {
        let Some(block) = ancestry.next().await else {
            return false;
        };
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        let b = block.inner_shared();
        let p = parent.inner();
        if b.timestamp < p.timestamp.saturating_add(self.params.block_time_ms)
            || b.timestamp > MAX_BLOCK_TIMESTAMP_MS
        {
            debug!(height = b.height.get(), "bad timestamp");
            return false;
        }
        if !self.verify_seed(&b, p) {
            warn!(height = b.height.get(), "bad seed");
            return false;
        }
        // Never reject on the local clock (validity must be deterministic): wait instead.
        let deadline = SystemTime::UNIX_EPOCH
            + Duration::from_millis(b.timestamp.saturating_sub(MAX_FUTURE_SKEW_MS));
        runtime.sleep_until(deadline).await;

        if !self.ensure_executed(parent, &mut ancestry).await {
            return false;
        }
        // Signatures already checked on mempool admission are not checked again (asked of
        // the mempool's owner before the chain is locked).
        let known: std::collections::HashSet<Digest> = self
            .shared
            .mempool
            .pending(b.txs.iter().map(|t| t.hash()).collect())
            .await;
        let verifying = b.clone();
        let result = self
            .shared
            .chain(move |chain| {
                Box::pin(async move {
                    chain
                        .verify_block_with(&verifying, |h| known.contains(h))
                        .await
                })
            })
            .await
            .unwrap_or_else(|e| Err(e.into()));
        match result {
            Ok(()) => {
                note_head(&self.shared, b.height.get(), b.digest());
                true
            }
            Err(ExecError::Invalid(reason)) => {
                warn!(height = b.height.get(), reason, "rejected block");
                false
            }
            Err(e) => {
                warn!(height = b.height.get(), error = %e, "could not verify block");
                false
            }
        }
    }
}

fn note_head<E: StoreContext>(shared: &Shared<E>, height: u64, digest: Digest) {
    shared.status.send_if_modified(|s| {
        let ahead = height > s.head_height;
        if ahead {
            s.head_height = height;
            s.head_digest = Some(digest);
        }
        ahead
    });
}
