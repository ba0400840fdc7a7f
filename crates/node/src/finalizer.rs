//! The finalizer: applies each finalized block marshal delivers (in height order) to the
//! store, prunes the mempool of what the block made stale, publishes the block to the API's
//! subscribers and the applied height to whoever waits for it, and only then acknowledges
//! the block to marshal. A finalized block that does not execute halts the finalizer rather
//! than let local state diverge.

use crate::{
    chain::ExecError,
    shared::{FinalizedBlock, Shared, RECENT_BLOCKS},
};
use commonware_actor::Feedback;
use commonware_consensus::{marshal::Update, Reporter};
use commonware_cryptography::Digestible;
use commonware_runtime::Spawner;
use commonware_utils::Acknowledgement;
use futures::{channel::mpsc, StreamExt};
use std::{collections::HashSet, sync::Arc};
use tracing::{debug, info};
use unet_store::StoreContext;
use unet_types::Block;

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

/// Applies one finalized block (the finalizer's step; a full node's follower takes it too):
/// executes it unless already verified, records it, prunes the mempool and publishes it.
///
/// The block, its receipts and the finalized status are published inside the same step of the
/// chain actor that applies the state, so no reader can see the state at a height whose block
/// it cannot find (an account proof at height `h` whose header lookup says "no block at `h`").
pub(crate) async fn finalize_one<E: StoreContext>(
    shared: &Arc<Shared<E>>,
    block: &Arc<Block>,
) -> Result<(), ExecError> {
    // A block this node has not executed (consensus finalized it before this node's own
    // verification finished, or it came by catch-up) is executed in the step below. Its
    // transactions that this node admitted had their signatures checked then: ask the
    // mempool's owner which, before the chain is locked, so they are not checked again.
    let digest = block.digest();
    let executed = shared
        .chain(move |chain| Box::pin(async move { chain.knows(&digest) }))
        .await?;
    let admitted = if executed {
        HashSet::new()
    } else {
        shared
            .mempool
            .pending(block.txs.iter().map(|t| t.hash()).collect())
            .await
    };
    let applying = block.clone();
    let publisher = shared.clone();
    let applied = shared
        .chain(move |chain| {
            Box::pin(async move {
                let block = applying;
                let finalized = chain.finalize(&block, |h| admitted.contains(h)).await?;
                let Some(receipts) = finalized else {
                    return Ok(None);
                };
                let events = std::mem::take(&mut chain.last_events);
                // Each sender's next nonce, to prune the mempool of what this block made stale.
                let mut senders = std::collections::BTreeSet::new();
                for tx in &block.txs {
                    senders.insert(tx.tx.sender.clone());
                }
                let mut nonces = Vec::with_capacity(senders.len());
                for s in senders {
                    let nonce = chain.account(&s).await?.nonce;
                    nonces.push((s, nonce));
                }
                let fb = FinalizedBlock {
                    block,
                    receipts: Arc::new(receipts),
                    events: Arc::new(events),
                };
                publish(&publisher, &fb, chain.root());
                Ok::<_, ExecError>(Some((fb, nonces)))
            })
        })
        .await??;
    let Some((fb, nonces)) = applied else {
        return Ok(());
    };
    let height = block.height.get();
    shared.mempool.finalized(nonces).await;
    let _ = shared.finalized_tx.send(fb);
    shared.applied.send_replace(height);
    if height.is_multiple_of(100) {
        info!(height, txs = block.txs.len(), "finalized");
    } else {
        debug!(height, txs = block.txs.len(), "finalized");
    }
    Ok(())
}

/// Makes a just-applied block visible: the finalized status and the recent-blocks window.
fn publish<E: StoreContext>(shared: &Shared<E>, fb: &FinalizedBlock, root: unet_types::Digest) {
    let block = &fb.block;
    let height = block.height.get();
    shared.status.send_modify(|s| {
        s.finalized_height = height;
        s.finalized_digest = Some(block.digest());
        s.finalized_root = Some(root);
        s.finalized_timestamp = block.timestamp;
        s.finalized_txs += block.txs.len() as u64;
        if height > s.head_height {
            s.head_height = height;
            s.head_digest = Some(block.digest());
        }
    });
    let mut recent = shared.recent.lock().expect("recent lock");
    recent.insert(height, fb.clone());
    while recent.len() > RECENT_BLOCKS {
        recent.pop_first();
    }
}
