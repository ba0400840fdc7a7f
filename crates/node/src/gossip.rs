//! Transaction admission and gossip.
//!
//! A transaction enters through the API or from a peer. Either way it passes the same
//! admission (stateless checks, then the mempool's rules against the sender's finalized
//! nonce and balance; see [`crate::mempool`]).
//! Locally submitted transactions are batched and sent to every peer on the `txs` channel;
//! transactions received from peers are admitted but not relayed again (validators are fully
//! connected, so one hop reaches everyone).

use crate::{chain::read_account, shared::Shared};
use commonware_codec::{Decode, Encode, RangeCfg};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Spawner};
use futures::{channel::mpsc, StreamExt};
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};
use tracing::debug;
use unet_state::{admit_answers, check_stateless_batch};
use unet_store::StoreContext;
use unet_types::{
    chip::Chip,
    keys::{account_key, chip_key, Account},
    Address, Digest, Payload, SignedTx, TxError,
};

/// Most transactions in one gossip message.
pub const MAX_GOSSIP_BATCH: usize = 512;
/// How long a submitted transaction may wait to be batched.
const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// Handle to queue admitted transactions for gossip.
#[derive(Clone)]
pub struct TxGossip {
    tx: mpsc::UnboundedSender<SignedTx>,
}

impl TxGossip {
    /// A handle whose transactions go to the returned receiver instead of peers (for an API
    /// served without a p2p network, as in tests).
    pub fn detached() -> (Self, mpsc::UnboundedReceiver<SignedTx>) {
        let (tx, rx) = mpsc::unbounded();
        (Self { tx }, rx)
    }

    /// Queues a transaction for broadcast to peers.
    pub fn publish(&self, stx: SignedTx) {
        let _ = self.tx.unbounded_send(stx);
    }
}

/// Admits a batch of transactions into the mempool. Returns one result per transaction.
///
/// Transactions already pending are duplicates (no signature work). The rest pass the
/// stateless checks (batch-verified signatures; on failure one by one, to name each failure),
/// then the mempool's rules against each sender's finalized account, read once per sender
/// from a finalized view that does not hold the chain's lock (see
/// [`crate::chain::Chain::finalized_view`]).
pub async fn admit<E: StoreContext>(
    shared: &Shared<E>,
    txs: Vec<SignedTx>,
) -> Vec<Result<Digest, TxError>> {
    let (chain_id, min_fee) = (shared.genesis.chain_id, shared.genesis.params.min_fee);
    let Ok((mut view, mut height)) = tip(shared).await else {
        return txs
            .iter()
            .map(|_| Err(TxError::Malformed("the node is stopping".into())))
            .collect();
    };
    let pending: HashSet<Digest> = shared
        .mempool
        .pending(txs.iter().map(|t| t.hash()).collect())
        .await;
    let mut results: Vec<Result<Digest, TxError>> = Vec::with_capacity(txs.len());
    if check_stateless_batch(&txs, chain_id, min_fee, |h| pending.contains(h)).is_ok() {
        results.extend(txs.iter().map(|t| Ok(t.hash())));
    } else {
        for t in &txs {
            results.push(if pending.contains(&t.hash()) {
                Ok(t.hash())
            } else {
                t.check_stateless(chain_id, min_fee).map(|_| t.hash())
            });
        }
    }
    for (t, r) in txs.iter().zip(results.iter_mut()) {
        if r.is_ok() && pending.contains(&t.hash()) {
            *r = Err(TxError::Duplicate);
        }
    }
    // Finalized accounts of the senders, each read once.
    let mut accounts: HashMap<Address, Option<Account>> = HashMap::new();
    for (t, r) in txs.iter().zip(&results) {
        if r.is_err() || accounts.contains_key(&t.tx.sender) {
            continue;
        }
        let key = account_key(&t.tx.sender);
        let mut account = None;
        for _ in 0..3 {
            match view.get(&key).await {
                Ok(bytes) => {
                    account = read_account(bytes).ok();
                    break;
                }
                Err(unet_store::Error::StaleBatch) => {
                    // A block was applied meanwhile: read from the new tip.
                    match tip(shared).await {
                        Ok((v, h)) => (view, height) = (v, h),
                        Err(_) => break,
                    }
                }
                Err(_) => break,
            }
        }
        accounts.insert(t.tx.sender.clone(), account);
    }
    let mut answers = Vec::new();
    let mut admitted = Vec::new();
    let mut slots = Vec::new();
    for (i, (t, r)) in txs.into_iter().zip(results.iter_mut()).enumerate() {
        if r.is_err() {
            continue;
        }
        let Some(Some(account)) = accounts.get(&t.tx.sender) else {
            *r = Err(TxError::Malformed("sender account unreadable".into()));
            continue;
        };
        if let Payload::Liveness { responses } = &t.tx.payload {
            answers.extend(responses.iter().cloned());
        }
        admitted.push((t, *account));
        slots.push(i);
    }
    for (i, outcome) in slots
        .into_iter()
        .zip(shared.mempool.insert(admitted, height).await)
    {
        if let Err(e) = outcome {
            results[i] = Err(e);
        }
    }
    verify_answers(shared, chain_id, view, answers).await;
    results
}

/// A view of the finalized state and its height, read without holding the chain.
async fn tip<E: StoreContext>(
    shared: &Shared<E>,
) -> Result<(unet_store::Batch<E>, u64), crate::chain::owner::ChainStopped> {
    shared
        .chain(|chain| Box::pin(async move { (chain.finalized_view(), chain.applied_height()) }))
        .await
}

/// Checks admitted liveness answers against the chips as the finalized state holds them (on
/// all cores) and has the chain remember the ones that verified, so block execution does not
/// check them again (see [`unet_state::admit_answer`]). Answers whose challenge is not pending
/// in the finalized state yet, or that fail, are left for the block to check in full: this
/// only moves work, it never decides a verdict.
async fn verify_answers<E: StoreContext>(
    shared: &Shared<E>,
    chain_id: u64,
    view: unet_store::Batch<E>,
    answers: Vec<unet_types::liveness::LivenessResponse>,
) {
    use commonware_codec::DecodeExt;
    if answers.is_empty() {
        return;
    }
    let mut checks = Vec::with_capacity(answers.len());
    for r in answers {
        // A stale view (a block applied meanwhile) just leaves the rest to the block.
        let Ok(Some(bytes)) = view.get(&chip_key(&r.chip_id)).await else {
            continue;
        };
        if let Ok(chip) = Chip::decode(bytes) {
            checks.push((chip, r));
        }
    }
    let keys: Vec<Digest> = admit_answers(chain_id, &checks)
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    if !keys.is_empty() {
        let _ = shared
            .chain(move |chain| Box::pin(async move { chain.remember_verified_answers(keys) }))
            .await;
    }
}

/// Starts the gossip tasks on the `txs` channel.
pub fn start<E>(
    context: E,
    shared: Arc<Shared<E>>,
    (mut sender, mut receiver): (
        impl Sender<PublicKey = unet_types::PublicKey>,
        impl Receiver<PublicKey = unet_types::PublicKey>,
    ),
) -> TxGossip
where
    E: StoreContext + Spawner + Clock,
{
    let (tx, mut rx) = mpsc::unbounded::<SignedTx>();
    // Outbound: batch and broadcast.
    context.child("out").spawn(move |context| async move {
        let mut batch: Vec<SignedTx> = Vec::new();
        loop {
            let next =
                futures::future::select(rx.next(), Box::pin(context.sleep(FLUSH_EVERY))).await;
            match next {
                futures::future::Either::Left((Some(stx), _)) => {
                    batch.push(stx);
                    if batch.len() < MAX_GOSSIP_BATCH {
                        continue;
                    }
                }
                futures::future::Either::Left((None, _)) => return,
                futures::future::Either::Right(_) => {}
            }
            if batch.is_empty() {
                continue;
            }
            let msg = std::mem::take(&mut batch).encode().to_vec();
            sender.send(Recipients::All, msg, false);
        }
    });
    // Inbound: decode, admit.
    context.child("in").spawn(move |_| async move {
        while let Ok((peer, msg)) = receiver.recv().await {
            let bytes = msg.as_ref().to_vec();
            let txs = match Vec::<SignedTx>::decode_cfg(
                bytes,
                &(RangeCfg::from(..=MAX_GOSSIP_BATCH), ()),
            ) {
                Ok(t) => t,
                Err(e) => {
                    debug!(?peer, error = %e, "undecodable tx gossip");
                    continue;
                }
            };
            let n = txs.len();
            let admitted = admit(&shared, txs)
                .await
                .iter()
                .filter(|r| r.is_ok())
                .count();
            debug!(n, admitted, "tx gossip");
        }
    });
    TxGossip { tx }
}
