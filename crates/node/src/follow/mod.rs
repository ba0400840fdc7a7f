//! Full nodes: nodes that follow the chain without being validators.
//!
//! A validator serves followers on its follow address (`[follow] listen`): any node may
//! connect, up to `max_followers` at once, over an authenticated, encrypted stream
//! (commonware stream) that sits beside the committee's p2p network and never feeds it, so a
//! validator never depends on its followers. A follower asks for every finalized block from
//! the first height it lacks ([`wire`]); the upstream streams them in order, each with the
//! finalization certificate it holds for it.
//!
//! A full node ([`start_full`]) runs no consensus. Its follower ([`client`]) checks every
//! block it receives against the chain's threshold group key, which resharing never changes:
//! a certificate must verify under that key and finalize the last block of a run whose
//! parent links reach the node's applied tip. Only then are the blocks stored (the node's
//! [`crate::history::Followed`] archives) and executed through the same state transition as
//! on a validator. An upstream that sends a forged certificate, a block that does not link or
//! a run that no certificate closes is dropped and the next one is tried.
//!
//! The full node serves the whole API. Transactions submitted to it pass the same admission
//! as on a validator and are forwarded to its upstream, which admits and spreads them. A full
//! node can in turn serve followers of its own.

pub mod client;
pub mod server;
pub mod sync;
pub mod wire;

pub use sync::SyncMode;

use crate::{
    engine::{genesis_digest, open_chain, open_history},
    gossip::TxGossip,
    history::{Followed, FollowedArchives, History, RetiredArchives},
    mempool::{Mempool, MempoolLimits},
    shared::{NodeRole, Scheme, Shared},
};
use commonware_cryptography::ed25519;
use commonware_runtime::{
    buffer::paged::CacheRef, Clock, Handle, Metrics, Network, Spawner, Storage,
};
use commonware_stream::Upgrader;
use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};
use std::{fmt, net::SocketAddr, str::FromStr, sync::Arc, time::Duration};
use unet_store::StoreContext;
use unet_types::{block::EpochInfo, Genesis, PublicKey};

/// Followers a node serves at once unless `[follow] max_followers` says otherwise.
pub const DEFAULT_MAX_FOLLOWERS: usize = 8;

/// How long a follow handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// `[follow]` in `config.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowConfig {
    /// Run as a full node (also chosen when the home holds no key share of any epoch, is not
    /// a genesis validator and names upstreams).
    #[serde(default)]
    pub full: bool,
    /// Where this node serves followers (none: it serves none).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Most followers served at once; more are turned away.
    #[serde(default = "default_max_followers")]
    pub max_followers: usize,
    /// The nodes a full node follows, tried in turn: `"<ed25519 key hex>@<host:port>"`.
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
    /// How a full node with no state gets it: `"state"` (sync the state of a certified block,
    /// then follow) or `"replay"` (every block from genesis).
    #[serde(default)]
    pub sync: SyncMode,
    /// A fresh full node replays instead of syncing state while the chain is below this height.
    #[serde(default = "default_sync_min_height")]
    pub sync_min_height: u64,
}

impl Default for FollowConfig {
    fn default() -> Self {
        Self {
            full: false,
            listen: None,
            max_followers: DEFAULT_MAX_FOLLOWERS,
            upstreams: Vec::new(),
            sync: SyncMode::default(),
            sync_min_height: default_sync_min_height(),
        }
    }
}

fn default_sync_min_height() -> u64 {
    sync::SyncSettings::default().min_height
}

fn default_max_followers() -> usize {
    DEFAULT_MAX_FOLLOWERS
}

/// A node to follow: its identity (the handshake proves it) and its follow address.
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its ed25519 identity.
    pub key: PublicKey,
    /// Its follow address.
    pub address: SocketAddr,
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}",
            hex::encode(commonware_codec::Encode::encode(&self.key)),
            self.address
        )
    }
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Upstream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (key, address) = s
            .split_once('@')
            .ok_or_else(|| format!("upstream {s:?} is not <key hex>@<host:port>"))?;
        let bytes = hex::decode(key.trim_start_matches("0x"))
            .map_err(|e| format!("upstream key {key:?} is not hex: {e}"))?;
        let key = <PublicKey as commonware_codec::DecodeExt<()>>::decode(
            commonware_codec::Copying(bytes.as_slice()),
        )
        .map_err(|e| format!("upstream key {key:?} is not an ed25519 key: {e}"))?;
        let address = address
            .parse()
            .map_err(|e| format!("upstream address {address:?}: {e}"))?;
        Ok(Self { key, address })
    }
}

impl Serialize for Upstream {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Upstream {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The two halves of an authenticated, encrypted session with an upstream.
pub type Session<E, U> = (
    <U as Upgrader>::Sender<commonware_runtime::StreamOf<E>, commonware_runtime::SinkOf<E>>,
    <U as Upgrader>::Receiver<commonware_runtime::StreamOf<E>, commonware_runtime::SinkOf<E>>,
);

/// Dials `upstream` and authenticates it (the handshake proves its key); why not, in words.
pub(crate) async fn connect<E, U>(
    context: &E,
    upgrader: &U,
    upstream: &Upstream,
) -> Result<Session<E, U>, String>
where
    E: Clock + CryptoRng + Network + Spawner,
    U: Upgrader<PublicKey = ed25519::PublicKey>,
{
    let (sink, stream) = context
        .dial(upstream.address)
        .await
        .map_err(|e| format!("dial: {e}"))?;
    upgrader
        .clone()
        .dial(
            context.child("handshake"),
            wire::NAMESPACE,
            crate::run::MAX_MESSAGE_SIZE,
            upstream.key.clone(),
            stream,
            sink,
        )
        .await
        .map_err(|e| format!("handshake: {e}"))
}

/// What a full node needs.
pub struct FullConfig {
    /// Prefix of every storage partition.
    pub partition_prefix: String,
    /// The chain's genesis document.
    pub genesis: Genesis,
    /// Epoch zero's public description (its group key verifies every certificate).
    pub epoch_zero: EpochInfo,
    /// The nodes to follow, tried in turn.
    pub upstreams: Vec<Upstream>,
    /// Mempool bounds (admission of the transactions its API forwards).
    pub mempool: MempoolLimits,
    /// Size of freezer tables.
    pub freezer_table_initial_size: u32,
    /// Finalized heights the transaction index keeps (0: all).
    pub tx_index_keep: u64,
    /// How long to wait before trying the next upstream after one failed.
    pub retry: Duration,
    /// How to get the state when the node has none.
    pub sync: SyncMode,
    /// When state sync is chosen over replay.
    pub sync_settings: sync::SyncSettings,
    /// The node was a validator on this storage ([`crate::retire`]): it keeps serving the
    /// blocks and certificates marshal stored, and goes on from the state it applied.
    pub retired: bool,
}

/// A started full node.
pub struct FullNode<E: StoreContext> {
    /// What the API and tests observe.
    pub shared: Arc<Shared<E>>,
    /// What its API submits through (admitted transactions are forwarded upstream).
    pub gossip: TxGossip,
    /// Its long-running tasks.
    pub handles: Vec<Handle<()>>,
    /// What its follower has seen.
    pub stats: Arc<client::FollowStats>,
}

/// Opens a full node's storage and starts its follower.
pub async fn start_full<E, U>(
    context: E,
    cfg: FullConfig,
    upgrader: U,
) -> anyhow::Result<FullNode<E>>
where
    E: Clock + Rng + CryptoRng + Spawner + Storage + Metrics + Network + StoreContext,
    E: Send + Sync + 'static,
    U: Upgrader<PublicKey = ed25519::PublicKey>,
{
    let prefix = cfg.partition_prefix.clone();
    let identity = *cfg.epoch_zero.output.public().public();
    let verifier = Scheme::certificate_verifier(unet_types::CONSENSUS_NAMESPACE, identity);
    let page_cache = CacheRef::new(
        crate::engine::PAGE_CACHE_PAGE_SIZE,
        crate::engine::PAGE_CACHE_CAPACITY,
    );
    let (certificates, blocks) = open_history(
        &context,
        &prefix,
        ("followed_certificates", "followed_blocks"),
        cfg.freezer_table_initial_size,
        &page_cache,
        &cfg.genesis,
    )
    .await?;
    let retired = if cfg.retired {
        let (certificates, blocks) = open_history(
            &context,
            &prefix,
            crate::engine::MARSHAL_ARCHIVES,
            cfg.freezer_table_initial_size,
            &page_cache,
            &cfg.genesis,
        )
        .await?;
        Some(RetiredArchives {
            blocks,
            certificates,
        })
    } else {
        None
    };
    let (followed, history_handle) = Followed::start(
        context.child("history"),
        FollowedArchives {
            blocks,
            certificates,
            retired,
        },
    );
    let follower_cfg = client::Config {
        upstreams: cfg.upstreams,
        retry: cfg.retry,
        block_cfg: crate::engine::block_cfg(&cfg.genesis),
    };
    let stats = Arc::new(client::FollowStats::default());
    // A retired validator has its state; it never syncs another.
    if cfg.sync == SyncMode::State && !cfg.retired && sync::wanted(&context, &prefix).await {
        let genesis_digest =
            genesis_digest(&context, &prefix, &cfg.genesis, &cfg.epoch_zero).await?;
        let offer = sync::sync_state(
            &context,
            &prefix,
            genesis_digest,
            &verifier,
            &follower_cfg,
            cfg.sync_settings,
            upgrader.clone(),
            &stats,
        )
        .await?;
        if let Some(offer) = offer {
            // The synced block goes into the history: the chain resolves its applied block
            // from there, and the follower goes on from the next height.
            followed
                .put(vec![offer.block], offer.certificate)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            sync::clear_marker(&context, &prefix).await?;
        }
    }
    let (chain, genesis_block) = open_chain(
        &context,
        &prefix,
        &cfg.genesis,
        &cfg.epoch_zero,
        cfg.tx_index_keep,
    )
    .await?;
    let (mempool, mempool_handle) =
        crate::mempool::actor::start(context.child("mempool"), Mempool::new(cfg.mempool));
    let shared = Arc::new(Shared::new(
        context.child("chain"),
        chain,
        mempool,
        verifier,
        &genesis_block,
        NodeRole::Full,
    ));
    let _ = shared.history.set(History::Followed(followed.clone()));
    let (gossip, forward) = TxGossip::detached();
    let follower = client::start(
        context.child("follower"),
        follower_cfg,
        upgrader,
        shared.clone(),
        followed,
        forward,
        stats.clone(),
    );
    Ok(FullNode {
        shared,
        gossip,
        handles: vec![follower, history_handle, mempool_handle],
        stats,
    })
}
