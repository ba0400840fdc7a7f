//! The consensus application: builds blocks from the mempool, verifies peers' blocks by
//! executing them, and applies finalized blocks to the store.
//!
//! Wrapped by marshal's `Deferred` adapter, which checks each block's embedded consensus
//! context and height/parent links, disseminates blocks and delivers finalized ones in order.

use crate::{
    chain::ExecError,
    shared::{FinalizedBlock, Shared, RECENT_BLOCKS},
};
use commonware_actor::Feedback;
use commonware_consensus::{
    marshal::{ancestry::Ancestry, Update},
    simplex::{
        scheme::bls12381_threshold::vrf::{Seed, Seedable},
        types::Activity,
    },
    types::{Height, Round},
    Application as ConsensusApplication, Reporter,
};
use commonware_cryptography::{Digested, Digestible};
use commonware_runtime::{Clock, Metrics, Spawner, Storage};
use commonware_utils::{channel::oneshot, Acknowledgement, SystemTimeExt};
use futures::{channel::mpsc, StreamExt};
use rand::Rng;
use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};
use tracing::{debug, info, warn};
use unet_store::StoreContext;
use unet_types::{Block, Digest, Params};

use crate::shared::Scheme;

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
            {
                let chain = self.shared.chain().await;
                if chain.knows(&digest) {
                    break;
                }
                if block.inner().height.get() <= chain.applied_height() {
                    // Below the finalized tip but not on it: a conflicting fork.
                    return false;
                }
            }
            pending.push(block.inner_shared());
            next = ancestry.next().await;
        }
        // Execute oldest first.
        let mut chain = self.shared.chain().await;
        for block in pending.into_iter().rev() {
            if let Err(e) = chain.verify_block_with(&block, |_| false).await {
                warn!(height = block.height.get(), error = %e, "ancestor failed to execute");
                return false;
            }
        }
        true
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
        let mut asked_marshal = false;
        loop {
            if let Some(s) = self.shared.seeds.lock().expect("seeds").get(&key) {
                return Some(*s);
            }
            if !asked_marshal {
                asked_marshal = true;
                if let Some(marshal) = self.shared.marshal.get() {
                    if let Some(f) = marshal.get_finalization(height).await {
                        if f.round() == round {
                            return Some(f.seed().signature);
                        }
                    }
                }
            }
            if runtime.current() >= deadline {
                return None;
            }
            runtime.sleep(Duration::from_millis(5)).await;
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
        let mut chain = self.shared.chain().await;
        // Transactions of the unfinalized blocks below this one are still pending: start each
        // of their senders after them, so the block carries new transactions, not stale ones.
        let in_flight = chain.nonces_after(&parent_digest);
        let candidates = self
            .shared
            .mempool
            .lock()
            .expect("mempool lock")
            .select_after(self.params.max_block_txs as usize, &in_flight);
        let probe = Block::new(
            context.clone(),
            parent_digest,
            height,
            timestamp,
            seed,
            Digest::from([0u8; 32]),
            Vec::new(),
        );
        let env = chain.env(&probe, &self.params);
        let built = match chain.build_on(&parent_digest, &env, &candidates).await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "proposal execution failed");
                return None;
            }
        };
        {
            // Drop for good what was left out for a permanent reason (and expire old
            // transactions: see `Mempool::evict_excluded`), and what failed block execution:
            // every proposer would fail the same way.
            let mut mempool = self.shared.mempool.lock().expect("mempool lock");
            mempool.evict_excluded(
                parent_height.get(),
                &built.candidates,
                &built.outcome.excluded,
            );
            for (tx, _) in &built.dropped {
                mempool.evict_failed(tx);
            }
        }
        let (outcome, state, txs) = (built.outcome, built.state, built.txs);
        let block = Block::with_reshare(
            context,
            parent_digest,
            height,
            timestamp,
            seed,
            input.payload,
            state.root(),
            txs,
        );
        let digest = block.digest();
        debug!(
            height = height.get(),
            txs = block.txs.len(),
            "proposed block"
        );
        chain.remember(digest, &block, state, outcome);
        drop(chain);
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
        let mut chain = self.shared.chain().await;
        let result = {
            // Signatures already checked on mempool admission are not checked again.
            let known: std::collections::HashSet<Digest> = {
                let m = self.shared.mempool.lock().expect("mempool lock");
                b.txs
                    .iter()
                    .map(|t| t.hash())
                    .filter(|h| m.contains(h))
                    .collect()
            };
            chain.verify_block_with(&b, |h| known.contains(h)).await
        };
        match result {
            Ok(()) => {
                drop(chain);
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
    let mut s = shared.status.lock().expect("status lock");
    if height > s.head_height {
        s.head_height = height;
        s.head_digest = Some(digest);
    }
}

/// Collects round seeds from consensus activity (the proposer of the next block needs them).
pub struct SeedCollector<E: StoreContext> {
    /// The node's shared state, where seeds are recorded.
    pub shared: Arc<Shared<E>>,
}

impl<E: StoreContext> Clone for SeedCollector<E> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<E: StoreContext> Reporter for SeedCollector<E> {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let seed = match &activity {
            Activity::Notarization(n) | Activity::Certification(n) => Some(n.seed()),
            Activity::Finalization(f) => {
                let s = f.seed();
                // Older rounds can no longer be built on.
                let keep_from = (
                    s.round.epoch().get(),
                    s.round.view().get().saturating_sub(64),
                );
                let mut seeds = self.shared.seeds.lock().expect("seeds");
                *seeds = seeds.split_off(&keep_from);
                Some(s)
            }
            _ => None,
        };
        if let Some(seed) = seed {
            self.shared.seeds.lock().expect("seeds").insert(
                (seed.round.epoch().get(), seed.round.view().get()),
                seed.signature,
            );
        }
        Feedback::Ok
    }
}

/// Receives finalized blocks from marshal (in height order) and hands them to the
/// finalizer task, which applies them and then acknowledges.
#[derive(Clone)]
pub struct FinalizedSink {
    tx: mpsc::UnboundedSender<Update<Block>>,
}

impl Reporter for FinalizedSink {
    type Activity = Update<Block>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match self.tx.unbounded_send(activity) {
            Ok(()) => Feedback::Ok,
            Err(_) => Feedback::Closed,
        }
    }
}

/// Starts the finalizer: applies each finalized block to the store, prunes the mempool,
/// publishes the block, then acknowledges it to marshal.
pub fn start_finalizer<E>(context: E, shared: Arc<Shared<E>>) -> FinalizedSink
where
    E: StoreContext + Spawner,
{
    let (tx, mut rx) = mpsc::unbounded::<Update<Block>>();
    context.spawn(move |_| async move {
        while let Some(update) = rx.next().await {
            let Update::Block(block, ack) = update else {
                continue;
            };
            let block = block.inner_shared();
            match finalize_one(&shared, &block).await {
                Ok(()) => ack.acknowledge(),
                Err(e) => {
                    // A finalized block that does not execute means local state is corrupt:
                    // stop applying (never acknowledge) rather than diverge.
                    tracing::error!(height = block.height.get(), error = %e, "cannot apply finalized block; halting finalizer");
                    return;
                }
            }
        }
    });
    FinalizedSink { tx }
}

async fn finalize_one<E: StoreContext>(
    shared: &Shared<E>,
    block: &Arc<Block>,
) -> Result<(), ExecError> {
    let mut chain = shared.chain().await;
    let Some(receipts) = chain.finalize(block).await? else {
        return Ok(());
    };
    let height = block.height.get();
    let events = std::mem::take(&mut chain.last_events);
    // Prune the mempool of everything this block made stale.
    let mut senders = std::collections::BTreeSet::new();
    for tx in &block.txs {
        senders.insert(tx.tx.sender.clone());
    }
    let mut nonces = Vec::with_capacity(senders.len());
    for s in senders {
        nonces.push((s.clone(), chain.account(&s).await?.nonce));
    }
    let root = chain.root();
    drop(chain);
    {
        let mut m = shared.mempool.lock().expect("mempool lock");
        for (s, n) in nonces {
            m.prune_sender(&s, n);
        }
    }
    {
        let mut s = shared.status.lock().expect("status lock");
        s.finalized_height = height;
        s.finalized_digest = Some(block.digest());
        s.finalized_root = Some(root);
        s.finalized_timestamp = block.timestamp;
        s.finalized_txs += block.txs.len() as u64;
        if height > s.head_height {
            s.head_height = height;
            s.head_digest = Some(block.digest());
        }
    }
    let fb = FinalizedBlock {
        block: block.clone(),
        receipts: Arc::new(receipts),
        events: Arc::new(events),
    };
    {
        let mut recent = shared.recent.lock().expect("recent lock");
        recent.insert(height, fb.clone());
        while recent.len() > RECENT_BLOCKS {
            recent.pop_first();
        }
    }
    let _ = shared.finalized_tx.send(fb);
    if height.is_multiple_of(100) {
        info!(height, txs = block.txs.len(), "finalized");
    } else {
        debug!(height, txs = block.txs.len(), "finalized");
    }
    Ok(())
}

/// Wraps the (marshaled) application handed to every epoch's consensus engine so the engine's
/// activity also reaches the [`SeedCollector`] (proposers need their parent round's seed).
pub struct SeedTap<A, E: StoreContext> {
    /// The application that consensus drives.
    pub inner: A,
    /// Where the seeds seen in the engine's activity go.
    pub seeds: SeedCollector<E>,
}

impl<A: Clone, E: StoreContext> Clone for SeedTap<A, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            seeds: self.seeds.clone(),
        }
    }
}

impl<A, E> commonware_consensus::Automaton for SeedTap<A, E>
where
    A: commonware_consensus::Automaton,
    E: StoreContext,
{
    type Context = A::Context;
    type Digest = A::Digest;

    fn propose(
        &mut self,
        context: Self::Context,
    ) -> impl std::future::Future<Output = oneshot::Receiver<Self::Digest>> + Send {
        self.inner.propose(context)
    }

    fn verify(
        &mut self,
        context: Self::Context,
        payload: Self::Digest,
    ) -> impl std::future::Future<Output = oneshot::Receiver<bool>> + Send {
        self.inner.verify(context, payload)
    }
}

impl<A, E> commonware_consensus::CertifiableAutomaton for SeedTap<A, E>
where
    A: commonware_consensus::CertifiableAutomaton,
    E: StoreContext,
{
    fn prepare(
        &mut self,
        context: Self::Context,
    ) -> impl std::future::Future<
        Output = oneshot::Receiver<commonware_consensus::Handoff<Self::Digest>>,
    > + Send {
        self.inner.prepare(context)
    }

    fn certify(
        &mut self,
        round: Round,
        payload: Self::Digest,
    ) -> impl std::future::Future<Output = oneshot::Receiver<bool>> + Send {
        self.inner.certify(round, payload)
    }
}

impl<A, E> commonware_consensus::Relay for SeedTap<A, E>
where
    A: commonware_consensus::Relay,
    E: StoreContext,
{
    type Digest = A::Digest;
    type PublicKey = A::PublicKey;
    type Plan = A::Plan;

    fn broadcast(&mut self, payload: Self::Digest, plan: Self::Plan) -> Feedback {
        self.inner.broadcast(payload, plan)
    }
}

impl<A, E> Reporter for SeedTap<A, E>
where
    A: Reporter<Activity = Activity<Scheme, Digest>>,
    E: StoreContext,
{
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let _ = self.seeds.report(activity.clone());
        self.inner.report(activity)
    }
}
