//! Wires one node: epoch-based simplex consensus (commonware-glue's `dkg` orchestrator runs one
//! simplex engine per epoch, its reshare actor moves the threshold key to each epoch's
//! committee), marshal (ordered finalized blocks, backfill), buffered block broadcast,
//! archives, the application and the mempool gossip.
//!
//! Generic over the runtime (tokio in `unet node`, deterministic in tests) and over the p2p
//! transport (authenticated TCP `lookup` in `unet node`, `simulated` in tests).

use crate::{
    application::Application,
    chain::Chain,
    elector::{WeightBook, Weighted},
    epochs::{DynamicProvider, Registrar, SecretStore, StateParticipants},
    finalizer::start_finalizer,
    gossip,
    history::History,
    mempool::{Mempool, MempoolLimits},
    seeds::{SeedCollector, SeedTap},
    shared::{NodeRole, Scheme, Shared},
    tx_index::TxIndex,
};
use commonware_broadcast::buffered;
use commonware_consensus::{
    marshal::{
        self,
        core::Actor as MarshalActor,
        resolver::handler,
        standard::{Deferred, Standard},
    },
    simplex,
    types::{Epoch, FixedEpocher, ViewDelta},
    Reporters,
};
use commonware_cryptography::{
    bls12381::dkg::feldman_desmedt::Reveal,
    bls12381::primitives::{sharing::Mode as SharingMode, variant::MinSig},
    certificate::ConstantProvider,
    ed25519, Digested, Digestible, Signer as _,
};
use commonware_glue::dkg::{
    fence::Fence,
    network::Manager as DkgManager,
    orchestrator, reshare,
    state_sync::{Config as StateSyncConfig, Plan as StateSyncPlan},
    types::SchemeInfo,
};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_resolver::TargetedResolver;
use commonware_runtime::{
    buffer::paged::{page_size, CacheRef},
    Clock, Handle, Metrics, Network, Spawner, Storage,
};
use commonware_storage::archive::immutable;
use commonware_utils::{NZUsize, NZU64};
use rand::{CryptoRng, Rng};
use std::{
    num::{NonZero, NonZeroU64},
    sync::Arc,
    time::Duration,
};
use unet_store::StoreContext;
use unet_types::{
    block::{max_sharing_mode, BlockCfg, Directory, EpochInfo, MAX_PARTICIPANTS},
    Block, Digest, Genesis,
};

/// The genesis epoch. The epoch of a height is `unet_types::epoch::epoch_of(height,
/// params.epoch_length)`; this constant stays for callers that report the starting epoch.
pub const EPOCH: Epoch = Epoch::zero();

/// Namespace of reshare messages and dealer logs.
pub const RESHARE_NAMESPACE: &[u8] = b"UNET_RESHARE";

const PRUNABLE_ITEMS_PER_SECTION: NonZero<u64> = NZU64!(4_096);
const IMMUTABLE_ITEMS_PER_SECTION: NonZero<u64> = NZU64!(262_144);
const FREEZER_JOURNAL_TARGET_SIZE: u64 = 1024 * 1024 * 1024;
const REPLAY_BUFFER: NonZero<usize> = NZUsize!(8 * 1024 * 1024);
const WRITE_BUFFER: NonZero<usize> = NZUsize!(1024 * 1024);
pub(crate) const PAGE_CACHE_PAGE_SIZE: NonZero<u16> = page_size(4096);
pub(crate) const PAGE_CACHE_CAPACITY: NonZero<usize> = NZUsize!(8_192);

/// Consensus timing.
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// Simplex `leader_timeout`: how long a view waits for its leader's proposal.
    pub leader: Duration,
    /// Simplex `certification_timeout`: how long a view waits for its certificate.
    pub certification: Duration,
    /// Simplex `timeout_retry`: pause before a timed-out view's votes are sent again.
    pub timeout_retry: Duration,
    /// Timeout of simplex's skip policy (`SkipPolicy::Enabled`, budget: the participants).
    pub skip: Duration,
    /// Simplex `fetch_timeout`: how long a request for missing data waits for a peer.
    pub fetch: Duration,
    /// Views of consensus activity kept (simplex view retention; the marshal keeps ten times
    /// as many).
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

/// Everything needed to run one node.
pub struct Config<B, M> {
    /// Blocks misbehaving peers at the p2p layer.
    pub blocker: B,
    /// Peer manager: activates each epoch's peers (from the epoch's directory) and answers
    /// which peers are tracked (block broadcast, backfill).
    pub manager: M,
    /// Prefix of every storage partition of this node.
    pub partition_prefix: String,
    /// This node's identity (p2p, consensus participant, reshare dealer/player).
    pub signer: ed25519::PrivateKey,
    /// Epoch zero's public description (genesis threshold output and committee).
    pub epoch_zero: EpochInfo,
    /// This node's shares and reshare secrets.
    pub secrets: SecretStore,
    /// The chain's genesis document.
    pub genesis: Genesis,
    /// Consensus timing.
    pub timeouts: Timeouts,
    /// Mempool bounds and expiry.
    pub mempool: MempoolLimits,
    /// Size of freezer tables (small in tests: the deterministic runtime keeps them in RAM).
    pub freezer_table_initial_size: u32,
    /// Finalized heights whose transactions `unet_getTransaction` keeps answering (0: all);
    /// see [`crate::tx_index`].
    pub tx_index_keep: u64,
}

/// The p2p channels a node uses (each a sender/receiver pair).
pub struct Channels<S, R> {
    /// Consensus votes.
    pub votes: (S, R),
    /// Consensus certificates.
    pub certificates: (S, R),
    /// Consensus resolver (fetching missing certificates).
    pub resolver: (S, R),
    /// Block broadcast.
    pub blocks: (S, R),
    /// Threshold-key reshare messages (dealer logs and acknowledgements).
    pub reshare: (S, R),
    /// Transaction gossip.
    pub txs: (S, R),
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

/// The genesis block of a genesis document, given its state root and epoch zero's info.
pub fn genesis_block(genesis: &Genesis, state_root: Digest, epoch_zero: &EpochInfo) -> Block {
    Block::genesis(
        genesis.hash(),
        state_root,
        genesis.genesis_time_ms,
        epoch_zero.clone(),
    )
}

/// Blocks per epoch under this genesis (`Params.epoch_length`, at least 2 so every epoch has a
/// midpoint before its final block).
pub fn epoch_length(genesis: &Genesis) -> NonZeroU64 {
    NonZeroU64::new(genesis.params.epoch_length.max(2)).unwrap_or(NZU64!(2))
}

/// Opens the state and computes the genesis block (same on every node of the network).
/// Root of the genesis state. The genesis state lives in its own tiny store so its root is
/// known on every restart: fresh or reopened, that store only ever holds the genesis state.
async fn genesis_root<E: StoreContext>(
    context: &E,
    prefix: &str,
    genesis: &Genesis,
) -> anyhow::Result<Digest> {
    let genesis_chain = Chain::open(
        context.child("genesis_state"),
        &format!("{prefix}-genesis"),
        genesis.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("opening the genesis state: {e}"))?;
    Ok(genesis_chain.root())
}

/// Digest of the chain's genesis block.
pub(crate) async fn genesis_digest<E: StoreContext>(
    context: &E,
    prefix: &str,
    genesis: &Genesis,
    epoch_zero: &EpochInfo,
) -> anyhow::Result<Digest> {
    let root = genesis_root(context, prefix, genesis).await?;
    Ok(genesis_block(genesis, root, epoch_zero).digest())
}

pub(crate) async fn open_chain<E: StoreContext>(
    context: &E,
    prefix: &str,
    genesis: &Genesis,
    epoch_zero: &EpochInfo,
    tx_index_keep: u64,
) -> anyhow::Result<(Chain<E>, Block)> {
    let genesis_root = genesis_root(context, prefix, genesis).await?;
    let mut chain = Chain::open(
        context.child("state"),
        &format!("{prefix}-state"),
        genesis.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("opening the state store: {e}"))?;
    let tx_index = TxIndex::open(
        context.child("tx_index"),
        &format!("{prefix}-txindex"),
        tx_index_keep,
        chain.applied_height(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("opening the transaction index: {e}"))?;
    chain.attach_tx_index(tx_index);
    let block = genesis_block(genesis, genesis_root, epoch_zero);
    if chain.applied_height() == 0 {
        chain.set_applied(block.digest());
    }
    Ok((chain, block))
}

type Marshaled<E> = Deferred<E, Scheme, ReshareApp<E>, Block, FixedEpocher>;
type ReshareApp<E> = reshare::Application<Application<E>, Block, MinSig, ed25519::PrivateKey>;
type Marshal<E> = MarshalActor<
    E,
    Standard<Block>,
    ConstantProvider<Scheme, Epoch>,
    immutable::Archive<E, Digest, simplex::types::Finalization<Scheme, Digest>>,
    immutable::Archive<E, Digest, Arc<Block>>,
    FixedEpocher,
    Sequential,
>;

/// Opens storage, builds every actor and starts them on the given channels. Fails with a
/// clear error if storage cannot be opened (e.g. corrupt files).
///
/// Returns what the API and tests observe of the node, the transaction gossip handle and the
/// handles of the long-running actors.
pub async fn start<E, B, M, S, R, K>(
    context: E,
    cfg: Config<B, M>,
    channels: Channels<S, R>,
    backfill: (handler::Receiver<Digest>, K),
) -> anyhow::Result<(Arc<Shared<E>>, gossip::TxGossip, Vec<Handle<()>>)>
where
    E: Clock + Rng + CryptoRng + Spawner + Storage + Metrics + Network + StoreContext,
    E: Send + Sync + 'static,
    B: Blocker<PublicKey = ed25519::PublicKey>,
    M: DkgManager<PublicKey = ed25519::PublicKey, Directory = Directory>
        + Provider<PublicKey = ed25519::PublicKey>
        + Clone,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    K: TargetedResolver<
        Key = handler::Key<Digest>,
        Subscriber = handler::Annotation,
        PublicKey = ed25519::PublicKey,
    >,
{
    let mailbox_size = NZUsize!(1024);
    let prefix = cfg.partition_prefix.clone();
    let genesis = cfg.genesis.clone();
    let me = cfg.signer.public_key();
    let length = epoch_length(&genesis);
    let epocher = FixedEpocher::new(length);
    let (chain, genesis_block) = open_chain(
        &context,
        &prefix,
        &genesis,
        &cfg.epoch_zero,
        cfg.tx_index_keep,
    )
    .await?;
    // The group key never changes (resharing preserves it): one verifier checks seeds and
    // certificates of every epoch.
    let identity = *cfg.epoch_zero.output.public().public();
    let verifier = Scheme::certificate_verifier(unet_types::CONSENSUS_NAMESPACE, identity);
    let (mempool, _) =
        crate::mempool::actor::start(context.child("mempool"), Mempool::new(cfg.mempool));
    let shared = Arc::new(Shared::new(
        context.child("chain"),
        chain,
        mempool,
        verifier.clone(),
        &genesis_block,
        NodeRole::Validator,
    ));

    // Epoch zero's scheme and leader weights (later epochs are registered by the reshare
    // actor through the registrar as they begin).
    let provider = DynamicProvider::default();
    let book = WeightBook::default();
    let registrar = Registrar {
        provider: provider.clone(),
        book: book.clone(),
        shared: shared.clone(),
        clock: context.child("registrar"),
    };
    registrar
        .install(
            Epoch::zero(),
            SchemeInfo::new(
                &me,
                cfg.epoch_zero.output.players().clone(),
                cfg.epoch_zero.output.public().clone(),
                cfg.secrets.share(Epoch::zero()),
            ),
        )
        .await;

    let (buffer, buffer_mailbox) = buffered::Engine::new(
        context.child("buffer"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size,
            deque_size: 10,
            priority: true,
            codec_config: block_cfg(&genesis),
            peer_provider: cfg.manager.clone(),
            strategy: Sequential,
        },
    );
    let page_cache = CacheRef::new(PAGE_CACHE_PAGE_SIZE, PAGE_CACHE_CAPACITY);
    let (finalizations, blocks) = open_history(
        &context,
        &prefix,
        MARSHAL_ARCHIVES,
        cfg.freezer_table_initial_size,
        &page_cache,
        &genesis,
    )
    .await?;

    let (marshal, marshal_mailbox, _floor): (Marshal<E>, _, _) = MarshalActor::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::new(verifier),
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
    let _ = shared
        .history
        .set(History::Marshal(marshal_mailbox.clone()));

    // No state sync: a node always replays finalized blocks from genesis (marshal backfill),
    // so the plan starts empty.
    let state_sync = StateSyncPlan::init(
        context.child("dkg_state_sync_plan"),
        StateSyncConfig {
            partition_prefix: format!("{prefix}-dkg"),
            max_participants: MAX_PARTICIPANTS,
            max_supported_mode: max_sharing_mode(),
        },
        None,
    )
    .await;
    let (fence, gate) = Fence::new();
    let (reshare_actor, reshare_mailbox) = reshare::Actor::new(
        context.child("reshare"),
        reshare::Config {
            signer: cfg.signer.clone(),
            manager: cfg.manager.clone(),
            blocker: cfg.blocker.clone(),
            participants_provider: StateParticipants {
                shared: shared.clone(),
                clock: context.child("participants"),
            },
            secret_store: cfg.secrets.clone(),
            strategy: Sequential,
            registrar,
            marshal: marshal_mailbox.clone(),
            state_sync: state_sync.clone(),
            fence,
            namespace: RESHARE_NAMESPACE,
            sharing_mode: SharingMode::NonZeroCounter,
            reveal: Reveal::V1,
            mailbox_size,
            partition_prefix: format!("{prefix}-reshare"),
            page_cache: page_cache.clone(),
            write_buffer: WRITE_BUFFER,
            replay_buffer: REPLAY_BUFFER,
            max_participants: MAX_PARTICIPANTS,
            blocks_per_epoch: length,
        },
    );

    let app = Application::new(shared.clone(), genesis.params.clone());
    let marshaled: Marshaled<E> = Deferred::new(
        context.child("marshaled"),
        reshare::Application::new(app, reshare_mailbox.clone(), length),
        marshal_mailbox.clone(),
        epocher,
    );
    let tapped = SeedTap {
        inner: marshaled,
        seeds: SeedCollector {
            shared: shared.clone(),
        },
    };
    let t = &cfg.timeouts;
    let (orchestrator_actor, orchestrator_mailbox) = orchestrator::Actor::new(
        context.child("orchestrator"),
        orchestrator::Config {
            oracle: cfg.blocker.clone(),
            manager: cfg.manager.clone(),
            provider,
            marshal: marshal_mailbox.clone(),
            application: tapped,
            strategy: Sequential,
            simplex: orchestrator::SimplexConfig {
                elector: Weighted { book },
                mailbox_size,
                replay_buffer: REPLAY_BUFFER,
                write_buffer: WRITE_BUFFER,
                page_cache,
                leader_timeout: t.leader,
                certification_timeout: t.certification,
                timeout_retry: t.timeout_retry,
                fetch_timeout: commonware_utils::NZDuration!(t.fetch),
                fetch_retry_delay: Duration::from_millis(100),
                view_retention: ViewDelta::new(t.activity),
                skip: simplex::SkipPolicy::Enabled {
                    timeout: t.skip,
                    budget: simplex::SkipBudget::Participants,
                },
                forward: simplex::ForwardPolicy::Disabled,
                track_historical_votes: false,
            },
            gate,
            state_sync,
            blocks_per_epoch: length,
            mailbox_size,
            partition_prefix: format!("{prefix}-orchestrator"),
        },
    );

    let sink = start_finalizer(context.child("finalizer"), shared.clone());
    let buffer_handle = buffer.start(channels.blocks);
    let reporters = Reporters::from((
        sink,
        Reporters::from((orchestrator_mailbox, reshare_mailbox)),
    ));
    let marshal_handle = marshal.start(reporters, buffer_mailbox, backfill);
    let reshare_handle = reshare_actor.start(channels.reshare);
    let orchestrator_handle =
        orchestrator_actor.start(channels.votes, channels.certificates, channels.resolver);
    let gossip = gossip::start(context.child("tx_gossip"), shared.clone(), channels.txs);
    // Learn the digest of the block the store reflects as soon as marshal answers.
    let eager = shared.clone();
    context.child("resume").spawn(move |_| async move {
        let _ = eager.chain(|_| Box::pin(async {})).await;
    });
    Ok((
        shared,
        gossip,
        vec![
            buffer_handle,
            marshal_handle,
            reshare_handle,
            orchestrator_handle,
        ],
    ))
}

/// The partition names of marshal's archives of finalized certificates and blocks.
pub(crate) const MARSHAL_ARCHIVES: (&str, &str) = ("finalizations", "blocks");

/// Opens the two archives of finalized history under `prefix`: finalization certificates
/// and blocks, both by height and keyed by the block's digest (`names`: their partition
/// names, so marshal's and a full node's never share files).
pub(crate) async fn open_history<E: Storage + Metrics + Clock + Spawner + StoreContext>(
    context: &E,
    prefix: &str,
    (certificates, blocks): (&'static str, &'static str),
    table_size: u32,
    page_cache: &CacheRef,
    genesis: &Genesis,
) -> anyhow::Result<(
    immutable::Archive<E, Digest, crate::history::Certificate>,
    immutable::Archive<E, Digest, Arc<Block>>,
)> {
    let certificates_archive = immutable::Archive::init(
        context.child(certificates),
        // Certificates of this scheme decode with a unit configuration.
        archive_config(prefix, certificates, table_size, page_cache, ()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("opening the {certificates} archive: {e}"))?;
    let blocks_archive = immutable::Archive::init(
        context.child(blocks),
        archive_config(prefix, blocks, table_size, page_cache, block_cfg(genesis)),
    )
    .await
    .map_err(|e| anyhow::anyhow!("opening the {blocks} archive: {e}"))?;
    Ok((certificates_archive, blocks_archive))
}

pub(crate) fn archive_config<C>(
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
