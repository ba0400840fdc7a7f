//! The follower of a full node: follows one upstream at a time, checks what it sends, stores
//! and executes it, and forwards the node's admitted transactions to it.
//!
//! Nothing an upstream sends is taken on trust. Blocks must come at consecutive heights, each
//! naming the one before as its parent, starting at the node's applied tip. They are held
//! until a finalization certificate arrives for the last of them; the certificate must
//! finalize that block's digest and verify under the chain's group key (the same for every
//! epoch: resharing keeps it). A run of up to [`MAX_UNCERTIFIED`] blocks may wait for one.
//! Anything else is misbehaviour: the upstream is dropped, counted in [`FollowStats`], left
//! alone for [`PENALTY`] retries, and the next one is tried. Only verified runs are stored
//! and executed, through the same step as a validator's finalizer. An upstream that sends no
//! block for [`STALL`] is left for the next one, so a silent upstream cannot hold the node.

use super::{
    wire::{ToFollower, ToUpstream, MAX_SUBMIT_BATCH},
    Upstream, HANDSHAKE_TIMEOUT,
};
use crate::{
    finalizer::finalize_one,
    history::{Certificate, Followed},
    shared::Shared,
};
use commonware_codec::{Decode, Encode};
use commonware_cryptography::{ed25519, Digestible};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Handle, Network, Spawner};
use commonware_stream::{utils::Timeout, Receiver as _, Sender as _, Upgrader};
use futures::{channel::mpsc, SinkExt, StreamExt};
use rand::{CryptoRng, Rng};
use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tracing::{info, warn};
use unet_store::StoreContext;
use unet_types::{block::BlockCfg, Block, Digest, SignedTx};

/// Most blocks held while waiting for a certificate that finalizes them.
pub const MAX_UNCERTIFIED: usize = 256;

/// An upstream that sends no block for this long is left for the next one (a chain makes a
/// block every block time; one that truly halted loses nothing by the switch).
pub const STALL: Duration = Duration::from_secs(30);

/// Retries an upstream that misbehaved sits out.
pub const PENALTY: u32 = 10;

/// Transactions kept for forwarding while no upstream is connected (oldest dropped first;
/// they stay in the local mempool either way).
const MAX_QUEUED: usize = 10_000;

/// What the follower needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Nodes to follow, tried in turn.
    pub upstreams: Vec<Upstream>,
    /// Pause before the next attempt after one failed.
    pub retry: Duration,
    /// Codec limits of blocks.
    pub block_cfg: BlockCfg,
}

/// What the follower has seen (for the API, logs and tests).
#[derive(Debug, Default)]
pub struct FollowStats {
    /// Upstreams dropped for misbehaviour (forged certificate, unlinked block, ...).
    pub misbehaved: AtomicU64,
    /// Connections that ended otherwise (refused, closed, unreachable).
    pub disconnects: AtomicU64,
    /// Blocks verified and applied.
    pub applied: AtomicU64,
    /// Height whose state this node synced instead of replaying blocks (0: none).
    pub synced_height: AtomicU64,
    /// Why the last upstream was dropped for misbehaviour.
    pub last_misbehaviour: Mutex<Option<String>>,
    /// The upstream being followed now.
    pub current: Mutex<Option<String>>,
}

/// How a session with an upstream ended.
enum Ended {
    /// It broke the protocol or sent what does not verify: drop it for a while.
    Misbehaved(String),
    /// It closed, refused or could not be reached: try the next.
    Lost(String),
    /// This node cannot go on (storage failed, a certified block does not execute).
    Fatal(String),
}

/// Starts following `cfg.upstreams`; admitted transactions arriving on `forward` go to the
/// upstream being followed.
pub fn start<E, U>(
    context: E,
    cfg: Config,
    upgrader: U,
    shared: Arc<Shared<E>>,
    history: Followed,
    mut forward: mpsc::UnboundedReceiver<SignedTx>,
    stats: Arc<FollowStats>,
) -> Handle<()>
where
    E: Clock + Rng + CryptoRng + Spawner + Network + StoreContext + Send + Sync + 'static,
    U: Upgrader<PublicKey = ed25519::PublicKey>,
{
    context.spawn({
        move |context| async move {
            let upgrader = Timeout::new(upgrader, HANDSHAKE_TIMEOUT);
            let mut queued = VecDeque::new();
            let mut bench = vec![0u32; cfg.upstreams.len()];
            if cfg.upstreams.is_empty() {
                warn!("full node without upstreams ([follow] upstreams): it cannot follow");
            }
            let mut i = 0usize;
            loop {
                if cfg.upstreams.is_empty() {
                    futures::future::pending::<()>().await;
                }
                let k = i % cfg.upstreams.len();
                i += 1;
                if bench[k] > 0 {
                    bench[k] -= 1;
                    continue;
                }
                let upstream = cfg.upstreams[k].clone();
                *stats.current.lock().expect("stats") = Some(upstream.to_string());
                let ended = follow_one(
                    &context,
                    &upgrader,
                    &upstream,
                    &cfg.block_cfg,
                    &shared,
                    &history,
                    &mut forward,
                    &mut queued,
                    &stats,
                )
                .await;
                *stats.current.lock().expect("stats") = None;
                match ended {
                    Ended::Misbehaved(why) => {
                        warn!(%upstream, why, "upstream misbehaved; dropped");
                        stats.misbehaved.fetch_add(1, Ordering::Relaxed);
                        *stats.last_misbehaviour.lock().expect("stats") = Some(why);
                        bench[k] = PENALTY;
                    }
                    Ended::Lost(why) => {
                        info!(%upstream, why, "lost upstream");
                        stats.disconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    Ended::Fatal(why) => {
                        tracing::error!(why, "full node cannot follow; halting the follower");
                        return;
                    }
                }
                // Keep what was submitted meanwhile, bounded.
                while let Ok(t) = forward.try_recv() {
                    queue(&mut queued, t);
                }
                context.sleep(cfg.retry).await;
            }
        }
    })
}

fn queue(queued: &mut VecDeque<SignedTx>, t: SignedTx) {
    if queued.len() >= MAX_QUEUED {
        queued.pop_front();
    }
    queued.push_back(t);
}

#[allow(clippy::too_many_arguments)]
async fn follow_one<E, U>(
    context: &E,
    upgrader: &U,
    upstream: &Upstream,
    block_cfg: &BlockCfg,
    shared: &Arc<Shared<E>>,
    history: &Followed,
    forward: &mut mpsc::UnboundedReceiver<SignedTx>,
    queued: &mut VecDeque<SignedTx>,
    stats: &FollowStats,
) -> Ended
where
    E: Clock + Rng + CryptoRng + Spawner + Network + StoreContext + Send + Sync + 'static,
    U: Upgrader<PublicKey = ed25519::PublicKey>,
{
    let (mut sender, mut receiver) = match super::connect(context, upgrader, upstream).await {
        Ok(c) => c,
        Err(why) => return Ended::Lost(why),
    };
    let tip = shared
        .chain(|c| Box::pin(async move { (c.applied_height(), c.applied_digest()) }))
        .await;
    let Ok((mut height, mut digest)) = tip else {
        return Ended::Fatal("the chain's owner has stopped".into());
    };
    if digest == Digest::from([0u8; 32]) {
        return Ended::Fatal(format!(
            "the block of the applied height {height} is missing from the history"
        ));
    }
    let hello = ToUpstream::Follow {
        genesis: shared.genesis_digest,
        from: height + 1,
    };
    if let Err(e) = sender.send(hello.encode()).await {
        return Ended::Lost(format!("send: {e}"));
    }
    info!(%upstream, from = height + 1, "following");
    // The reader decodes on its own task: a receive must never be cancelled midway.
    let (mut incoming_tx, mut incoming) = mpsc::channel::<Result<ToFollower, Ended>>(64);
    let cfg = *block_cfg;
    let reader = context.child("reader").spawn(move |_| async move {
        loop {
            let next = match receiver.recv().await {
                Ok(m) => ToFollower::decode_cfg(m, &cfg)
                    .map_err(|e| Ended::Misbehaved(format!("undecodable message: {e}"))),
                Err(e) => Err(Ended::Lost(format!("receive: {e}"))),
            };
            let stop = next.is_err();
            if incoming_tx.send(next).await.is_err() || stop {
                return;
            }
        }
    });
    let mut pending: Vec<Arc<Block>> = Vec::new();
    let mut rng = context.child("verify");
    // An upstream that goes quiet (or never speaks) is left after STALL without a block.
    let mut last_block = context.current();
    let ended = loop {
        // Forward what waits first, in batches.
        if let Some(e) = flush(&mut sender, queued).await {
            break Ended::Lost(format!("send: {e}"));
        }
        let mut stalled = Box::pin(futures::FutureExt::fuse(
            context.sleep_until(last_block + STALL),
        ));
        futures::select! {
            _ = stalled => {
                break Ended::Lost(format!("no block for {} s", STALL.as_secs()));
            }
            t = forward.next() => {
                let Some(t) = t else { continue };
                queue(queued, t);
                while queued.len() < MAX_SUBMIT_BATCH {
                    match forward.try_recv() {
                        Ok(t) => queue(queued, t),
                        _ => break,
                    }
                }
            }
            m = incoming.next() => {
                let message = match m {
                    Some(Ok(m)) => m,
                    Some(Err(ended)) => break ended,
                    None => break Ended::Lost("reader stopped".into()),
                };
                last_block = context.current();
                let (block, certificate) = match message {
                    ToFollower::Block { block, certificate } => (*block, certificate.map(|c| *c)),
                    ToFollower::Refused(why) => break Ended::Lost(format!("refused: {why}")),
                    ToFollower::SyncTarget { .. } | ToFollower::SyncOps(_) => {
                        break Ended::Misbehaved("sent state sync to a follower".into())
                    }
                };
                match accept(&mut rng, shared, &mut pending, height, digest, block, certificate) {
                    Err(why) => break Ended::Misbehaved(why),
                    Ok(None) => {}
                    Ok(Some(certificate)) => {
                        let run = std::mem::take(&mut pending);
                        if let Err(e) = history.put(run.clone(), certificate).await {
                            break Ended::Fatal(e.to_string());
                        }
                        let mut failed = None;
                        for b in &run {
                            if let Err(e) = finalize_one(shared, b).await {
                                failed = Some(format!(
                                    "certified block {} does not execute here: {e}",
                                    b.height.get()
                                ));
                                break;
                            }
                        }
                        if let Some(why) = failed {
                            break Ended::Fatal(why);
                        }
                        let last = run.last().expect("a certified run is not empty");
                        (height, digest) = (last.height.get(), last.digest());
                        stats.applied.fetch_add(run.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        }
    };
    reader.abort();
    ended
}

/// Sends the queued transactions in batches; the send error, if one failed.
async fn flush<S: commonware_stream::Sender>(
    sender: &mut S,
    queued: &mut VecDeque<SignedTx>,
) -> Option<String> {
    while !queued.is_empty() {
        let batch: Vec<SignedTx> = queued.drain(..queued.len().min(MAX_SUBMIT_BATCH)).collect();
        if let Err(e) = sender.send(ToUpstream::Submit(batch).encode()).await {
            return Some(e.to_string());
        }
    }
    None
}

/// Checks one block from the upstream against the run held so far. Returns the certificate
/// once it closes the run (the run is then complete and verified), `None` while the run
/// waits for one, or why the upstream misbehaved.
fn accept<E: StoreContext, R: Rng + CryptoRng>(
    rng: &mut R,
    shared: &Shared<E>,
    pending: &mut Vec<Arc<Block>>,
    applied_height: u64,
    applied_digest: Digest,
    block: Block,
    certificate: Option<Certificate>,
) -> Result<Option<Certificate>, String> {
    let expected = applied_height + pending.len() as u64 + 1;
    if block.height.get() != expected {
        return Err(format!(
            "sent height {} where {expected} was next",
            block.height.get()
        ));
    }
    let parent = pending.last().map(|b| b.digest()).unwrap_or(applied_digest);
    if block.parent != parent {
        return Err(format!(
            "block {expected} does not extend the block before it"
        ));
    }
    let digest = block.digest();
    pending.push(Arc::new(block));
    let Some(certificate) = certificate else {
        if pending.len() > MAX_UNCERTIFIED {
            return Err(format!(
                "{MAX_UNCERTIFIED} blocks without a certificate that finalizes them"
            ));
        }
        return Ok(None);
    };
    if certificate.proposal.payload != digest {
        return Err(format!(
            "the certificate sent with block {expected} finalizes another block"
        ));
    }
    if !certificate.verify(rng, &shared.verifier, &Sequential) {
        return Err(format!(
            "forged certificate for block {expected}: it does not verify under the chain's group key"
        ));
    }
    Ok(Some(certificate))
}
