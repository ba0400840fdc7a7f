//! State sync: a fresh full node fetches the chain's current state from its upstreams instead
//! of replaying every block from genesis.
//!
//! Trust comes from one certificate. An upstream offers its applied state
//! ([`ToFollower::SyncTarget`]): the finalized block at that height, the certificate that
//! finalizes it and a [`unet_store::SyncTarget`]. The node checks the certificate under the
//! chain's group key, that it finalizes that block, and that the target's witness binds the
//! operation log's root to the block's `state_root` ([`unet_store::SyncTarget::verify`]).
//! The offering upstream must then prove its offer with one chunk at the target's size, so
//! a chunk that fails later is its sender's fault. Then the node fetches the state's
//! operations from every upstream at once
//! ([`unet_store::PeerSource`]); each chunk is checked by proof against that root, a chunk
//! that fails is counted against the upstream that sent it (it sits out the rest of the sync)
//! and fetched from another, and the rebuilt store must have the certified root and height.
//! The block and its certificate go into the node's history, and the follower goes on from
//! the next height as after any restart.
//!
//! A sync runs only on a fresh store (no state written yet) or after one that did not finish
//! (a marker partition, `{prefix}-statesync`, is present from the start of a sync until the
//! synced block is in the history); otherwise the node replays blocks as before. A fresh node
//! also replays when the chain is young (the offered height is below
//! [`SyncSettings::min_height`]: replaying that much costs less and keeps every block, or an
//! upstream says the chain is still at genesis). Unreachable upstreams are retried, never
//! taken for a young chain. A failed sync (every upstream gone or lying,
//! the upstream pruned past the target) starts over with a fresh target.

use super::{
    client::{Config, FollowStats},
    wire::{ToFollower, ToUpstream, AT_GENESIS},
    Upstream, HANDSHAKE_TIMEOUT,
};
use crate::{history::Certificate, shared::Scheme};
use commonware_codec::{Decode, Encode};
use commonware_cryptography::{ed25519, Digestible};
use commonware_parallel::Sequential;
use commonware_runtime::{Blob as _, Clock, Network, SinkOf, Spawner, Storage, StreamOf};
use commonware_stream::{utils::Timeout, Receiver as _, Sender as _, Upgrader};
use futures::lock::Mutex as AsyncMutex;
use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};
use std::{
    sync::{atomic::Ordering, Arc, Mutex},
    time::Duration,
};
use tracing::{info, warn};
use unet_store::{
    PeerSource, StateDb, StoreConfig, StoreContext, SyncPeers, SyncRequest, SyncResponse,
    SyncTarget, SyncTuning,
};
use unet_types::{block::BlockCfg, Block, Digest};

/// How long one request to an upstream may take before the next upstream is asked.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a full node with no state gets it (`[follow] sync`, `--sync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Fetch the current state, proved against a certified block, then follow from there.
    #[default]
    State,
    /// Replay every block from genesis.
    Replay,
}

impl std::str::FromStr for SyncMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "state" => Ok(Self::State),
            "replay" => Ok(Self::Replay),
            other => Err(format!(
                "sync mode {other:?} is not \"state\" or \"replay\""
            )),
        }
    }
}

/// When a fresh full node syncs state rather than replays.
#[derive(Clone, Copy, Debug)]
pub struct SyncSettings {
    /// Replay instead when the chain's finalized height is below this.
    pub min_height: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self { min_height: 1024 }
    }
}

/// A state offer that checked out: the certified block and the state to fetch.
pub struct Offer {
    /// The finalized block whose state is offered.
    pub block: Arc<Block>,
    /// Its finalization certificate.
    pub certificate: Certificate,
    /// What to fetch.
    pub target: SyncTarget,
}

fn marker_partition(prefix: &str) -> String {
    format!("{prefix}-statesync")
}

/// Whether this node should sync state: its state store was never written, or a sync did
/// not finish.
pub async fn wanted<E: Storage>(context: &E, prefix: &str) -> bool {
    if marker_present(context, prefix).await {
        return true;
    }
    match context.scan(&format!("{prefix}-state-log")).await {
        Ok(blobs) => blobs.is_empty(),
        Err(_) => true,
    }
}

async fn marker_present<E: Storage>(context: &E, prefix: &str) -> bool {
    matches!(context.scan(&marker_partition(prefix)).await, Ok(blobs) if !blobs.is_empty())
}

async fn set_marker<E: Storage>(context: &E, prefix: &str) -> anyhow::Result<()> {
    let (blob, _) = context.open(&marker_partition(prefix), b"syncing").await?;
    blob.resize(1).await?;
    blob.sync().await?;
    Ok(())
}

/// Marks the sync finished (the synced block is in the history).
pub async fn clear_marker<E: Storage>(context: &E, prefix: &str) -> anyhow::Result<()> {
    match context.remove(&marker_partition(prefix), None).await {
        Ok(()) | Err(commonware_runtime::Error::PartitionMissing(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Checks an upstream's offer; why it is a lie, if it is one.
fn check_offer<R: Rng + CryptoRng>(
    rng: &mut R,
    verifier: &Scheme,
    block: Block,
    certificate: Certificate,
    target: SyncTarget,
) -> Result<Offer, String> {
    if certificate.proposal.payload != block.digest() {
        return Err("the offered certificate finalizes another block".into());
    }
    if !certificate.verify(rng, verifier, &Sequential) {
        return Err("forged certificate for the offered state".into());
    }
    if target.height != block.height.get() {
        return Err(format!(
            "the offered state is at height {}, its block at {}",
            target.height,
            block.height.get()
        ));
    }
    target
        .verify(&block.state_root)
        .map_err(|e| format!("the offered state is not the certified block's: {e}"))?;
    Ok(Offer {
        block: Arc::new(block),
        certificate,
        target,
    })
}

type Conn<E, U> = super::Session<E, U>;

/// What an upstream offered.
enum Offered {
    /// A state, checked and proved.
    State(Box<Offer>),
    /// Nothing yet: the chain is at genesis.
    AtGenesis,
}

/// How one exchange with an upstream failed.
enum Failure {
    /// Protocol broken or a proven lie.
    Misbehaved(String),
    /// Unreachable, closed, refused, too slow.
    Lost(String),
}

/// The upstreams a sync fetches from, one connection each (opened on first use, dropped on
/// any failure).
struct Upstreams<E: Network, U: Upgrader> {
    context: E,
    upgrader: Timeout<U>,
    upstreams: Vec<Upstream>,
    genesis: Digest,
    block_cfg: BlockCfg,
    conns: Vec<AsyncMutex<Option<Conn<E, U>>>>,
    /// Upstreams caught lying: not asked again during this node's syncs.
    benched: Arc<Mutex<Vec<bool>>>,
    stats: Arc<FollowStats>,
}

impl<E, U> Upstreams<E, U>
where
    E: Clock + Rng + CryptoRng + Spawner + Network + Send + Sync + 'static,
    U: Upgrader<PublicKey = ed25519::PublicKey>,
{
    async fn receive(
        &self,
        receiver: &mut <U as Upgrader>::Receiver<StreamOf<E>, SinkOf<E>>,
    ) -> Result<ToFollower, Failure> {
        let message = futures::select! {
            m = futures::FutureExt::fuse(receiver.recv()) => m,
            _ = futures::FutureExt::fuse(self.context.sleep(REQUEST_TIMEOUT)) => {
                return Err(Failure::Lost("no answer in time".into()));
            }
        };
        let message = message.map_err(|e| Failure::Lost(format!("receive: {e}")))?;
        ToFollower::decode_cfg(message, &self.block_cfg)
            .map_err(|e| Failure::Misbehaved(format!("undecodable message: {e}")))
    }

    /// Connects to upstream `k` and asks for its state offer.
    async fn open(&self, k: usize) -> Result<(Conn<E, U>, ToFollower), Failure> {
        let (mut sender, mut receiver) =
            super::connect(&self.context, &self.upgrader, &self.upstreams[k])
                .await
                .map_err(Failure::Lost)?;
        let hello = ToUpstream::Sync {
            genesis: self.genesis,
        };
        sender
            .send(hello.encode())
            .await
            .map_err(|e| Failure::Lost(format!("send: {e}")))?;
        let offer = self.receive(&mut receiver).await?;
        Ok(((sender, receiver), offer))
    }

    async fn exchange(&self, k: usize, request: SyncRequest) -> Result<SyncResponse, Failure> {
        let mut slot = self.conns[k].lock().await;
        if slot.is_none() {
            match self.open(k).await? {
                (conn, ToFollower::SyncTarget { .. }) => *slot = Some(conn),
                (_, ToFollower::Refused(why)) => {
                    return Err(Failure::Lost(format!("refused: {why}")))
                }
                _ => return Err(Failure::Misbehaved("answered Sync with no offer".into())),
            }
        }
        let (sender, receiver) = slot.as_mut().expect("connected above");
        let result = async {
            sender
                .send(ToUpstream::SyncOps(request).encode())
                .await
                .map_err(|e| Failure::Lost(format!("send: {e}")))?;
            match self.receive(receiver).await? {
                ToFollower::SyncOps(response) => Ok(*response),
                ToFollower::Refused(why) => Err(Failure::Lost(format!("refused: {why}"))),
                _ => Err(Failure::Misbehaved(
                    "answered a request with no operations".into(),
                )),
            }
        }
        .await;
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// Asks upstream `k` for its state and checks the offer: the certificate, the target's
    /// binding to the block's state root, and then one boundary chunk at the target's size.
    /// That chunk authenticates the target end to end, so a chunk that fails later is its
    /// sender's fault (without it, an offer with a wrong size would make every honest
    /// upstream's chunks fail, and they would be blamed). The connection is kept for the sync.
    async fn offer<R: Rng + CryptoRng>(
        &self,
        k: usize,
        rng: &mut R,
        verifier: &Scheme,
    ) -> Result<Offered, Failure> {
        let (conn, (block, certificate, target)) = match self.open(k).await? {
            (
                conn,
                ToFollower::SyncTarget {
                    block,
                    certificate,
                    target,
                },
            ) => (conn, (*block, *certificate, *target)),
            (_, ToFollower::Refused(why)) if why == AT_GENESIS => return Ok(Offered::AtGenesis),
            (_, ToFollower::Refused(why)) => return Err(Failure::Lost(format!("refused: {why}"))),
            _ => return Err(Failure::Misbehaved("answered Sync with no offer".into())),
        };
        let offer =
            check_offer(rng, verifier, block, certificate, target).map_err(Failure::Misbehaved)?;
        *self.conns[k].lock().await = Some(conn);
        let boundary = SyncRequest::Boundary {
            size: offer.target.size.into(),
            start: offer.target.start.into(),
        };
        let response = self.exchange(k, boundary).await?;
        if !offer.target.check(&boundary, &response) {
            return Err(Failure::Misbehaved(
                "its offer's first chunk does not match its proof".into(),
            ));
        }
        Ok(Offered::State(Box::new(offer)))
    }

    fn punish(&self, k: usize, why: String) {
        warn!(upstream = %self.upstreams[k], why, "sync upstream misbehaved; benched");
        self.benched.lock().expect("benched")[k] = true;
        self.stats.misbehaved.fetch_add(1, Ordering::Relaxed);
        *self.stats.last_misbehaviour.lock().expect("stats") = Some(why);
    }
}

impl<E, U> SyncPeers for Upstreams<E, U>
where
    E: Clock + Rng + CryptoRng + Spawner + Network + Send + Sync + 'static,
    U: Upgrader<PublicKey = ed25519::PublicKey>,
{
    type Peer = usize;

    fn peers(&self) -> Vec<usize> {
        let benched = self.benched.lock().expect("benched");
        (0..self.upstreams.len()).filter(|k| !benched[*k]).collect()
    }

    async fn fetch(
        &self,
        peer: &usize,
        request: SyncRequest,
    ) -> Result<SyncResponse, unet_store::Error> {
        match self.exchange(*peer, request).await {
            Ok(response) => Ok(response),
            Err(Failure::Lost(why)) => {
                self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
                Err(unet_store::Error::Sync(why))
            }
            Err(Failure::Misbehaved(why)) => {
                self.punish(*peer, why.clone());
                Err(unet_store::Error::Sync(why))
            }
        }
    }

    fn misbehaved(&self, peer: &usize) {
        self.punish(*peer, "sent state that does not match its proof".into());
    }
}

/// Syncs the state of a certified block into `{prefix}-state` from `cfg.upstreams`, trying
/// again (with a newer offer) until it succeeds; returns the synced block and its certificate
/// (the caller stores them in the history and then calls [`clear_marker`]), or `None` where
/// replaying is the better way (see the module's docs).
#[allow(clippy::too_many_arguments)]
pub async fn sync_state<E, U>(
    context: &E,
    prefix: &str,
    genesis: Digest,
    verifier: &Scheme,
    cfg: &Config,
    settings: SyncSettings,
    upgrader: U,
    stats: &Arc<FollowStats>,
) -> anyhow::Result<Option<Offer>>
where
    E: Clock + Rng + CryptoRng + Spawner + Network + Storage + StoreContext + Send + Sync,
    E: 'static,
    U: Upgrader<PublicKey = ed25519::PublicKey>,
{
    // A sync cut short left partial state behind: only a sync can finish it.
    let resuming = marker_present(context, prefix).await;
    if cfg.upstreams.is_empty() {
        if resuming {
            anyhow::bail!("a state sync was cut short and no upstream is configured to finish it");
        }
        // Nothing to sync from (the follower says so too); nothing written.
        return Ok(None);
    }
    let n = cfg.upstreams.len();
    let benched = Arc::new(Mutex::new(vec![false; n]));
    let mut rng = context.child("verify");
    let mut attempt = 0usize;
    loop {
        // Everyone benched: give them all another chance (after a pause) rather than stop.
        let all_benched = {
            let mut b = benched.lock().expect("benched");
            let all = b.iter().all(|x| *x);
            if all {
                b.iter_mut().for_each(|x| *x = false);
            }
            all
        };
        if all_benched {
            context.sleep(cfg.retry).await;
        }
        let upstreams = Arc::new(Upstreams {
            context: context.child("sync_net"),
            upgrader: Timeout::new(upgrader.clone(), HANDSHAKE_TIMEOUT),
            upstreams: cfg.upstreams.clone(),
            genesis,
            block_cfg: cfg.block_cfg,
            conns: (0..n).map(|_| AsyncMutex::new(None)).collect(),
            benched: benched.clone(),
            stats: stats.clone(),
        });
        let k = attempt % n;
        attempt += 1;
        if benched.lock().expect("benched")[k] {
            continue;
        }
        let upstream = &cfg.upstreams[k];
        *stats.current.lock().expect("stats") = Some(upstream.to_string());
        let offer = match upstreams.offer(k, &mut rng, verifier).await {
            Ok(Offered::State(offer)) => *offer,
            Ok(Offered::AtGenesis) if !resuming => {
                info!("the chain is at genesis; replaying blocks instead of syncing state");
                return Ok(None);
            }
            Ok(Offered::AtGenesis) => {
                context.sleep(cfg.retry).await;
                continue;
            }
            Err(Failure::Misbehaved(why)) => {
                upstreams.punish(k, why);
                continue;
            }
            Err(Failure::Lost(why)) => {
                info!(%upstream, why, "no state offer");
                stats.disconnects.fetch_add(1, Ordering::Relaxed);
                context.sleep(cfg.retry).await;
                continue;
            }
        };
        if !resuming && offer.target.height < settings.min_height {
            info!(
                height = offer.target.height,
                min = settings.min_height,
                "the chain is young; replaying blocks instead of syncing state"
            );
            return Ok(None);
        }
        let height = offer.target.height;
        info!(
            %upstream,
            height,
            operations = offer.target.size - offer.target.start,
            "syncing state"
        );
        set_marker(context, prefix).await?;
        let result = StateDb::sync(
            context.child("state_sync"),
            StoreConfig::new(&format!("{prefix}-state")),
            &offer.target,
            PeerSource::new(context.child("sync_source"), upstreams.clone()),
            &SyncTuning::default(),
        )
        .await;
        match result {
            Ok(db) => {
                db.close().await?;
                stats.synced_height.store(height, Ordering::Relaxed);
                info!(height, "state synced");
                *stats.current.lock().expect("stats") = None;
                return Ok(Some(offer));
            }
            Err(e) => {
                warn!(height, error = %e, "state sync failed; starting over");
                context.sleep(cfg.retry).await;
            }
        }
    }
}
