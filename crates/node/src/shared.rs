//! State shared by the consensus application, the finalizer, the mempool gossip and the API.
//!
//! The chain and the mempool each have one owner, a task reached through a mailbox
//! ([`crate::chain::owner`], [`crate::mempool::actor`]); what is left here is immutable
//! (genesis, the seed verifier) or small and written by one part (status, recent blocks,
//! roles, seeds), with waits on `watch` channels.

use crate::{
    chain::{
        owner::{self, ChainMailbox, ChainStopped},
        Chain,
    },
    history::History,
    mempool::MempoolMailbox,
};
use commonware_consensus::{
    marshal::{core::Mailbox, standard::Standard},
    simplex::scheme::bls12381_threshold::vrf,
};
use commonware_cryptography::bls12381::primitives::variant::MinSig;
use commonware_cryptography::Digestible;
use commonware_runtime::Spawner;
use futures::future::BoxFuture;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};
use unet_state::Receipt;
use unet_store::StoreContext;
use unet_types::{block::SeedSignature, Block, Digest, Genesis, PublicKey};

/// The consensus signing scheme: threshold BLS12-381 (MinSig) with a VRF seed per round.
pub type Scheme = vrf::Scheme<PublicKey, MinSig>;

/// Marshal's mailbox for our block type.
pub type MarshalMailbox = Mailbox<Scheme, Standard<Block>>;

/// What the API and tests can observe of a node's progress.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// Height of the last finalized block applied to the store (0: genesis).
    pub finalized_height: u64,
    /// Its digest (None before the first finalized block).
    pub finalized_digest: Option<Digest>,
    /// The state root after it (set from the store at start).
    pub finalized_root: Option<Digest>,
    /// Its timestamp, Unix ms.
    pub finalized_timestamp: u64,
    /// Highest block this node has proposed or verified (not yet final).
    pub head_height: u64,
    /// Digest of the head block.
    pub head_digest: Option<Digest>,
    /// Transactions in the finalized blocks this process applied (not persisted: 0 after a
    /// restart).
    pub finalized_txs: u64,
}

/// What a node is on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    /// It runs consensus (signing when its epoch's committee holds it).
    Validator,
    /// A full node: it follows finalized blocks and certificates from upstream nodes,
    /// verifies and executes them, serves the API and forwards transactions (see
    /// [`crate::follow`]).
    Full,
}

impl NodeRole {
    /// The role's name, as `unet_status` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validator => "validator",
            Self::Full => "full",
        }
    }
}

/// This node's part in one epoch's consensus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsensusRole {
    /// A committee member holding a share of the threshold key: it votes and signs.
    Signer,
    /// A committee member without a share (its dealing failed): it follows the votes.
    Member,
    /// Outside the committee: it verifies certificates and applies finalized blocks.
    Verifier,
}

impl ConsensusRole {
    /// The role's name, as logs and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signer => "signer",
            Self::Member => "member",
            Self::Verifier => "verifier",
        }
    }
}

/// A finalized block with its receipts (what subscribers receive).
#[derive(Clone, Debug)]
pub struct FinalizedBlock {
    /// The finalized block.
    pub block: Arc<Block>,
    /// Its receipts, one per transaction in order.
    pub receipts: Arc<Vec<Receipt>>,
    /// Protocol events (chip status changes, challenges, rewards, committees).
    pub events: Arc<Vec<unet_state::Event>>,
}

/// Everything the node's actors share.
pub struct Shared<E: StoreContext> {
    /// The executed chain and its store, through its owner (see [`Shared::chain`]).
    chain: ChainMailbox<E>,
    /// The genesis document (never changes).
    pub genesis: Arc<Genesis>,
    /// Pending transactions: the mailbox of their owner ([`crate::mempool::actor`]).
    pub mempool: MempoolMailbox,
    /// Seed (VRF) signatures of notarized rounds, by (epoch, view), pruned as rounds finalize.
    /// Written only by the seed collector ([`crate::seeds`]); a proposer waiting for its
    /// parent's seed subscribes.
    pub seeds: tokio::sync::watch::Sender<BTreeMap<(u64, u64), SeedSignature>>,
    /// Progress the API reports: the finalized fields written by the finalizer, the head by
    /// the application (see [`Shared::status`]).
    pub status: tokio::sync::watch::Sender<Status>,
    /// Recent finalized blocks, by height (bounded). Written only by the finalizer.
    pub recent: Mutex<BTreeMap<u64, FinalizedBlock>>,
    /// Publishes every finalized block to API subscribers.
    pub finalized_tx: tokio::sync::broadcast::Sender<FinalizedBlock>,
    /// Verifies seeds embedded in blocks.
    pub verifier: Scheme,
    /// Digest of the genesis block.
    pub genesis_digest: Digest,
    /// Number of other validators in the peer set.
    pub peers: usize,
    /// This node's role in each epoch's consensus as registered, recent epochs only. Written
    /// only by the epoch registrar ([`Shared::set_role`]).
    pub roles: tokio::sync::watch::Sender<BTreeMap<u64, ConsensusRole>>,
    /// Finalized blocks and certificates outside the in-memory window: marshal's archives on
    /// a validator, the followed archives on a full node (set once, at start).
    pub history: std::sync::OnceLock<History>,
    /// Whether this node votes in consensus or only follows it.
    pub role: NodeRole,
    /// The height the store has applied; the finalizer publishes each new one, so waits
    /// subscribe instead of polling.
    pub applied: tokio::sync::watch::Sender<u64>,
    /// Serves the finalized state to syncing nodes ([`crate::follow::server`]).
    pub state_sync: unet_store::SyncServer<E>,
}

/// How many recent finalized blocks the node keeps in memory for the API.
pub const RECENT_BLOCKS: usize = 4096;

impl<E: StoreContext> Shared<E> {
    /// Shared state over `chain` (its owner started on `context`) and the mempool's owner,
    /// its status starting at the chain's applied height; `verifier` checks seeds and
    /// certificates, `genesis` is the genesis block, `role` what the node is.
    pub fn new(
        context: impl Spawner,
        chain: Chain<E>,
        mempool: MempoolMailbox,
        verifier: Scheme,
        genesis: &Block,
        role: NodeRole,
    ) -> Self {
        let (finalized_tx, _) = tokio::sync::broadcast::channel(1024);
        let status = Status {
            finalized_height: chain.applied_height(),
            finalized_root: Some(chain.root()),
            ..Default::default()
        };
        let peers = chain.genesis.validators.len().saturating_sub(1);
        let genesis_doc = Arc::new(chain.genesis.clone());
        let (applied, _) = tokio::sync::watch::channel(chain.applied_height());
        let state_sync = chain.sync_server();
        Self {
            state_sync,
            applied,
            peers,
            genesis: genesis_doc,
            chain: owner::start(context, chain).0,
            mempool,
            seeds: tokio::sync::watch::Sender::new(BTreeMap::new()),
            status: tokio::sync::watch::Sender::new(status),
            recent: Mutex::new(BTreeMap::new()),
            finalized_tx,
            verifier,
            genesis_digest: genesis.digest(),
            roles: tokio::sync::watch::Sender::new(BTreeMap::new()),
            history: std::sync::OnceLock::new(),
            role,
        }
    }

    /// Runs `f` on the executed chain, through its owner, after the requests sent before it.
    /// After a restart the store knows its height but not the digest of the block it
    /// reflects; the first request asks the history for it first, so nothing that builds on the
    /// finalized tip (proposals, verification, the API) ever sees it unknown.
    pub async fn chain<R, F>(&self, f: F) -> Result<R, ChainStopped>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut Chain<E>) -> BoxFuture<'c, R> + Send + 'static,
    {
        let history = self.history.get().cloned();
        let genesis = self.genesis_digest;
        let (r, resolved) = self
            .chain
            .with(move |chain| {
                Box::pin(async move {
                    let mut resolved = None;
                    if chain.applied_digest() == Digest::from([0u8; 32]) {
                        if let Some(history) = history {
                            resolve_applied_digest(chain, &history, genesis).await;
                            let digest = chain.applied_digest();
                            if digest != Digest::from([0u8; 32]) {
                                resolved = Some(digest);
                            }
                        }
                    }
                    (f(chain).await, resolved)
                })
            })
            .await?;
        if let Some(digest) = resolved {
            self.status.send_if_modified(|s| {
                let unknown = s.finalized_digest.is_none();
                if unknown {
                    s.finalized_digest = Some(digest);
                }
                unknown
            });
        }
        Ok(r)
    }

    /// A finalized block by height: from memory if recent, else from the history.
    pub async fn block_at(&self, height: u64) -> Option<Arc<Block>> {
        if let Some(b) = self.recent.lock().expect("recent lock").get(&height) {
            return Some(b.block.clone());
        }
        if height > self.status().finalized_height {
            return None;
        }
        self.history.get()?.block(height).await
    }

    /// This node's registered role in `epoch`'s consensus, if known.
    pub fn role(&self, epoch: u64) -> Option<ConsensusRole> {
        self.roles.borrow().get(&epoch).copied()
    }

    /// Records this node's role in `epoch` (keeps the last 16 epochs).
    pub fn set_role(&self, epoch: u64, role: ConsensusRole) {
        self.roles.send_modify(|roles| {
            roles.insert(epoch, role);
            while roles.len() > 16 {
                roles.pop_first();
            }
        });
    }

    /// Records a round seed and wakes whoever waits for one.
    pub fn record_seed(&self, epoch: u64, view: u64, seed: SeedSignature) {
        self.seeds.send_modify(|seeds| {
            seeds.insert((epoch, view), seed);
        });
    }

    /// Waits until the store has applied `height` (returns at once if it has).
    pub async fn applied_at_least(&self, height: u64) {
        let mut rx = self.applied.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail while we borrow it.
        let _ = rx.wait_for(|h| *h >= height).await;
    }

    /// A snapshot of the node's status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }
}

/// After a restart the store knows its height but not the digest of that block: ask the
/// history.
pub async fn resolve_applied_digest<E: StoreContext>(
    chain: &mut Chain<E>,
    history: &History,
    genesis_digest: Digest,
) {
    if chain.applied_digest() != Digest::from([0u8; 32]) {
        return;
    }
    let height = chain.applied_height();
    if height == 0 {
        chain.set_applied(genesis_digest);
        return;
    }
    match history.block(height).await {
        Some(b) => chain.set_applied(b.digest()),
        None => tracing::error!(height, "finalized block of the applied state is missing"),
    }
}
