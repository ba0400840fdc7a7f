//! Wires one validator: simplex consensus, marshal (ordered finalized blocks, backfill),
//! buffered block broadcast, archives, the application and the mempool gossip.
//!
//! Generic over the runtime (tokio in `unet node`, deterministic in tests) and over the p2p
//! transport (authenticated TCP `lookup` in `unet node`, `simulated` in tests).

use crate::{
    application::{start_finalizer, Application, SeedCollector},
    chain::Chain,
    gossip,
    mempool::{Mempool, MempoolLimits},
    shared::{Scheme, Shared},
};
use commonware_broadcast::buffered;
use commonware_consensus::{
    marshal::{
        self,
        core::{Actor as MarshalActor, Mailbox},
        resolver::handler,
        standard::{Deferred, Standard},
    },
    simplex::{self, elector::Random, Engine as Consensus},
    types::{Epoch, FixedEpocher, Height, ViewDelta},
    Reporters,
};
use commonware_cryptography::{
    certificate::ConstantProvider, ed25519, sha256::Sha256, Digested, Digestible,
};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_resolver::TargetedResolver;
use commonware_runtime::{
    buffer::paged::{page_size, CacheRef},
    Clock, Handle, Metrics, Spawner, Storage,
};
use commonware_storage::archive::immutable;
use commonware_utils::{NZUsize, NZU64};
use rand::{CryptoRng, Rng};
use std::{num::NonZero, sync::Arc, time::Duration};
use unet_store::StoreContext;
use unet_types::{block::BlockCfg, Block, Digest, Genesis};

/// Marshal's mailbox for our block type.
pub type MarshalMailbox = Mailbox<Scheme, Standard<Block>>;
type Marshaled<E> = Deferred<E, Scheme, Application<E>, Block, FixedEpocher>;
type Elector = Random<Sha256>;
type Marshal<E> = MarshalActor<
    E,
    Standard<Block>,
    ConstantProvider<Scheme, Epoch>,
    immutable::Archive<E, Digest, simplex::types::Finalization<Scheme, Digest>>,
    immutable::Archive<E, Digest, Arc<Block>>,
    FixedEpocher,
    Sequential,
>;
type ConsensusEngine<E, B> = Consensus<
    E,
    Scheme,
    Elector,
    B,
    Digest,
    Marshaled<E>,
    Marshaled<E>,
    Reporters<Marshaled<E>, SeedCollector<E>>,
    Sequential,
>;

/// The simplex epoch (validator-set changes come with the epoch issue; until then one epoch).
pub const EPOCH: Epoch = Epoch::zero();
const EPOCH_LENGTH: u64 = u64::MAX;

const PRUNABLE_ITEMS_PER_SECTION: NonZero<u64> = NZU64!(4_096);
const IMMUTABLE_ITEMS_PER_SECTION: NonZero<u64> = NZU64!(262_144);
const FREEZER_JOURNAL_TARGET_SIZE: u64 = 1024 * 1024 * 1024;
const REPLAY_BUFFER: NonZero<usize> = NZUsize!(8 * 1024 * 1024);
const WRITE_BUFFER: NonZero<usize> = NZUsize!(1024 * 1024);
const PAGE_CACHE_PAGE_SIZE: NonZero<u16> = page_size(4096);
const PAGE_CACHE_CAPACITY: NonZero<usize> = NZUsize!(8_192);

/// Consensus timing.
#[derive(Clone, Debug)]
pub struct Timeouts {
    pub leader: Duration,
    pub certification: Duration,
    pub timeout_retry: Duration,
    pub skip: Duration,
    pub fetch: Duration,
    pub activity: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            leader: Duration::from_secs(1),
            certification: Duration::from_secs(2),
            timeout_retry: Duration::from_millis(2_100),
            skip: Duration::from_millis(2_200),
            fetch: Duration::from_secs(1),
            activity: 10,
        }
    }
}

/// Everything needed to run one validator.
pub struct Config<B, P> {
    pub blocker: B,
    pub provider: P,
    /// Prefix of every storage partition of this node.
    pub partition_prefix: String,
    pub me: ed25519::PublicKey,
    /// This validator's threshold scheme (with its private share).
    pub scheme: Scheme,
    pub genesis: Genesis,
    pub timeouts: Timeouts,
    pub mempool: MempoolLimits,
    /// Size of freezer tables (small in tests: the deterministic runtime keeps them in RAM).
    pub freezer_table_initial_size: u32,
}

/// A validator, built and ready to start.
pub struct Engine<E, B, P>
where
    E: Clock + Rng + CryptoRng + Spawner + Storage + Metrics + StoreContext,
    B: Blocker<PublicKey = ed25519::PublicKey>,
    P: Provider<PublicKey = ed25519::PublicKey>,
{
    context: E,
    pub shared: Arc<Shared<E>>,
    buffer: buffered::Engine<E, ed25519::PublicKey, Block, P, Sequential>,
    buffer_mailbox: buffered::Mailbox<ed25519::PublicKey, Block>,
    marshal: Marshal<E>,
    marshaled: Marshaled<E>,
    consensus: ConsensusEngine<E, B>,
    provider: P,
    me: ed25519::PublicKey,
}

/// Marshal's backfill resolver (fetches missing blocks and certificates from peers).
pub fn backfill_config<
    P: Provider<PublicKey = ed25519::PublicKey>,
    B: Blocker<PublicKey = ed25519::PublicKey>,
>(
    me: ed25519::PublicKey,
    peers: P,
    blocker: B,
) -> marshal::resolver::p2p::Config<ed25519::PublicKey, P, B> {
    marshal::resolver::p2p::Config {
        public_key: me,
        peer_provider: peers,
        blocker,
        mailbox_size: NZUsize!(4096),
        fetch_timeout: commonware_utils::NZDuration!(Duration::from_secs(2)),
        fetch_retry_delay: Duration::from_millis(100),
        priority_requests: false,
        priority_responses: false,
    }
}

/// Codec limits for blocks under this genesis.
pub fn block_cfg(genesis: &Genesis) -> BlockCfg {
    BlockCfg {
        max_txs: genesis.params.max_block_txs as usize,
    }
}

/// The genesis block of a genesis document, given its state root.
pub fn genesis_block(genesis: &Genesis, state_root: Digest) -> Block {
    Block::genesis(genesis.hash(), state_root, genesis.genesis_time_ms)
}

/// Opens the state and computes the genesis block (same on every node of the network).
async fn open_chain<E: StoreContext>(
    context: &E,
    prefix: &str,
    genesis: &Genesis,
) -> anyhow::Result<(Chain<E>, Block)> {
    // The genesis state lives in its own tiny store so its root is known on every restart:
    // fresh or reopened, that store only ever holds the genesis state.
    let genesis_chain = Chain::open(
        context.child("genesis_state"),
        &format!("{prefix}-genesis"),
        genesis.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("opening the genesis state: {e}"))?;
    let genesis_root = genesis_chain.root();
    drop(genesis_chain);
    let mut chain = Chain::open(
        context.child("state"),
        &format!("{prefix}-state"),
        genesis.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("opening the state store: {e}"))?;
    let block = genesis_block(genesis, genesis_root);
    if chain.applied_height() == 0 {
        chain.set_applied(block.digest());
    }
    Ok((chain, block))
}

/// After a restart the store knows its height but not the digest of that block: ask marshal.
pub async fn resolve_applied_digest<E: StoreContext>(
    chain: &mut Chain<E>,
    marshal: &MarshalMailbox,
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
    match marshal.get_block(Height::new(height)).await {
        Some(b) => chain.set_applied(b.digest()),
        None => tracing::error!(height, "finalized block of the applied state is missing"),
    }
}

impl<E, B, P> Engine<E, B, P>
where
    E: Clock + Rng + CryptoRng + Spawner + Storage + Metrics + StoreContext,
    B: Blocker<PublicKey = ed25519::PublicKey>,
    P: Provider<PublicKey = ed25519::PublicKey>,
{
    /// Opens storage and builds every actor. Fails with a clear error if storage cannot be
    /// opened (e.g. corrupt files).
    pub async fn new(context: E, cfg: Config<B, P>) -> anyhow::Result<Self> {
        let mailbox_size = NZUsize!(1024);
        let prefix = cfg.partition_prefix.clone();
        let genesis = cfg.genesis.clone();
        let (chain, genesis_block) = open_chain(&context, &prefix, &genesis).await?;
        let verifier =
            Scheme::certificate_verifier(unet_types::CONSENSUS_NAMESPACE, *cfg.scheme.identity());
        let shared = Arc::new(Shared::new(
            chain,
            Mempool::new(cfg.mempool),
            verifier,
            &genesis_block,
        ));

        let (buffer, buffer_mailbox) = buffered::Engine::new(
            context.child("buffer"),
            buffered::Config {
                public_key: cfg.me.clone(),
                mailbox_size,
                deque_size: 10,
                priority: true,
                codec_config: block_cfg(&genesis),
                peer_provider: cfg.provider.clone(),
                strategy: Sequential,
            },
        );
        let page_cache = CacheRef::new(PAGE_CACHE_PAGE_SIZE, PAGE_CACHE_CAPACITY);
        let finalizations = immutable::Archive::init(
            context.child("finalizations_by_height"),
            archive_config(
                &prefix,
                "finalizations",
                cfg.freezer_table_initial_size,
                &page_cache,
                // Certificates of this scheme decode with a unit configuration.
                (),
            ),
        )
        .await
        .map_err(|e| anyhow::anyhow!("opening the finalizations archive: {e}"))?;
        let blocks = immutable::Archive::init(
            context.child("finalized_blocks"),
            archive_config(
                &prefix,
                "blocks",
                cfg.freezer_table_initial_size,
                &page_cache,
                block_cfg(&genesis),
            ),
        )
        .await
        .map_err(|e| anyhow::anyhow!("opening the blocks archive: {e}"))?;

        let epocher = FixedEpocher::new(NZU64!(EPOCH_LENGTH));
        let (marshal, marshal_mailbox, _floor) = MarshalActor::init(
            context.child("marshal"),
            finalizations,
            blocks,
            marshal::Config {
                provider: ConstantProvider::new(cfg.scheme.clone()),
                epocher: epocher.clone(),
                start: marshal::Start::Genesis(Digested::precomputed(
                    Arc::new(genesis_block.clone()),
                    genesis_block.digest(),
                )),
                partition_prefix: prefix.clone(),
                mailbox_size,
                view_retention: ViewDelta::new(cfg.timeouts.activity * 10),
                prunable_items_per_section: PRUNABLE_ITEMS_PER_SECTION,
                page_cache: page_cache.clone(),
                replay_buffer: REPLAY_BUFFER,
                key_write_buffer: WRITE_BUFFER,
                value_write_buffer: WRITE_BUFFER,
                block_codec_config: block_cfg(&genesis),
                max_repair: NZUsize!(20),
                max_pending_acks: NZUsize!(16),
                strategy: Sequential,
            },
        )
        .await;

        let _ = shared.marshal.set(marshal_mailbox.clone());
        let app = Application::new(shared.clone(), genesis.params.clone());
        let marshaled = Marshaled::new(
            context.child("marshaled"),
            app,
            marshal_mailbox.clone(),
            epocher,
        );
        let reporter: Reporters<Marshaled<E>, SeedCollector<E>> = (
            Some(marshaled.clone()),
            Some(SeedCollector {
                shared: shared.clone(),
            }),
        )
            .into();
        let t = &cfg.timeouts;
        let consensus = Consensus::new(
            context.child("consensus"),
            simplex::Config {
                scheme: cfg.scheme,
                elector: Random::new(simplex::elector::RandomVersion::V1),
                blocker: cfg.blocker,
                automaton: marshaled.clone(),
                relay: marshaled.clone(),
                reporter,
                track_historical_votes: false,
                strategy: Sequential,
                partition: format!("{prefix}-consensus"),
                mailbox_size,
                epoch: EPOCH,
                floor: simplex::Floor::Genesis(genesis_block.digest()),
                replay_buffer: REPLAY_BUFFER,
                write_buffer: WRITE_BUFFER,
                page_cache,
                leader_timeout: t.leader,
                certification_timeout: t.certification,
                timeout_retry: t.timeout_retry,
                view_retention: ViewDelta::new(t.activity),
                skip: simplex::SkipPolicy::Enabled {
                    timeout: t.skip,
                    budget: simplex::SkipBudget::Participants,
                },
                fetch_timeout: commonware_utils::NZDuration!(t.fetch),
                fetch_retry_delay: Duration::from_millis(100),
                forward: simplex::ForwardPolicy::Disabled,
            },
        );
        Ok(Self {
            context,
            shared,
            buffer,
            buffer_mailbox,
            marshal,
            marshaled,
            consensus,
            provider: cfg.provider,
            me: cfg.me,
        })
    }

    /// Starts every actor on the given channels.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        self,
        votes: (
            impl Sender<PublicKey = ed25519::PublicKey>,
            impl Receiver<PublicKey = ed25519::PublicKey>,
        ),
        certificates: (
            impl Sender<PublicKey = ed25519::PublicKey>,
            impl Receiver<PublicKey = ed25519::PublicKey>,
        ),
        resolver: (
            impl Sender<PublicKey = ed25519::PublicKey>,
            impl Receiver<PublicKey = ed25519::PublicKey>,
        ),
        blocks: (
            impl Sender<PublicKey = ed25519::PublicKey>,
            impl Receiver<PublicKey = ed25519::PublicKey>,
        ),
        backfill: (
            handler::Receiver<Digest>,
            impl TargetedResolver<
                Key = handler::Key<Digest>,
                Subscriber = handler::Annotation,
                PublicKey = ed25519::PublicKey,
            >,
        ),
        txs: (
            impl Sender<PublicKey = ed25519::PublicKey>,
            impl Receiver<PublicKey = ed25519::PublicKey>,
        ),
    ) -> (Arc<Shared<E>>, gossip::TxGossip, Vec<Handle<()>>) {
        let shared = self.shared.clone();
        let sink = start_finalizer(self.context.child("finalizer"), shared.clone());
        let buffer = self.buffer.start(blocks);
        let marshal = self.marshal.start(sink, self.buffer_mailbox, backfill);
        let consensus = self.consensus.start(votes, certificates, resolver);
        let gossip = gossip::start(self.context.child("tx_gossip"), shared.clone(), txs);
        // Learn the digest of the block the store reflects as soon as marshal answers.
        let eager = shared.clone();
        self.context.child("resume").spawn(move |_| async move {
            drop(eager.chain().await);
        });
        let _ = (&self.marshaled, &self.provider, &self.me);
        (shared, gossip, vec![buffer, marshal, consensus])
    }
}

fn archive_config<C>(
    prefix: &str,
    name: &str,
    table_size: u32,
    page_cache: &CacheRef,
    codec_config: C,
) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: table_size,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 1 << 16,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: FREEZER_JOURNAL_TARGET_SIZE,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: IMMUTABLE_ITEMS_PER_SECTION,
        freezer_key_write_buffer: WRITE_BUFFER,
        freezer_value_write_buffer: WRITE_BUFFER,
        ordinal_write_buffer: WRITE_BUFFER,
        replay_buffer: REPLAY_BUFFER,
        codec_config,
    }
}
