//! Transaction admission and gossip.
//!
//! A transaction enters through the API or from a peer. Either way it passes the same
//! admission (stateless checks, then the mempool's rules against the sender's finalized
//! nonce and balance; see [`crate::mempool`]).
//! Locally submitted transactions are batched and sent to every peer on the `txs` channel;
//! transactions received from peers are admitted but not relayed again (validators are fully
//! connected, so one hop reaches everyone).
//!
//! On a validator one worker admits everything: API submissions, followers' forwarded
//! transactions and peers' gossip join one queue, and what waits there is verified as one
//! batch, so many small submissions cost what one large one does.

use crate::{chain::read_account, shared::Shared};
use commonware_codec::{Decode, Encode, RangeCfg};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{
    telemetry::metrics::{Counter, MetricsExt},
    Clock, Spawner,
};
use futures::{
    channel::{mpsc, oneshot},
    SinkExt, StreamExt,
};
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
/// Most transactions admitted (and batch-verified) together from queued gossip messages.
pub const MAX_ADMIT_BATCH: usize = 2_048;
/// How long a submitted transaction may wait to be batched.
const FLUSH_EVERY: Duration = Duration::from_millis(10);

/// Most requests and gossip messages waiting for the admission worker; beyond it, senders
/// wait (API calls and the peer reader alike), which is the node's backpressure.
const ADMISSION_QUEUE: usize = 64;

/// Handle to the node's transaction admission and gossip: [`TxGossip::admit`] queues
/// transactions for the admission worker, [`TxGossip::publish`] queues admitted ones for
/// broadcast.
#[derive(Clone)]
pub struct TxGossip {
    tx: mpsc::UnboundedSender<SignedTx>,
    admission: Option<mpsc::Sender<Inbound>>,
    /// Batches the admission worker verified (`tx_admission_batches` in the metrics).
    batches: Option<Counter>,
}

/// Work for the admission worker: a peer's gossip message, or a local submission (API or
/// follower) that waits for its results.
enum Inbound {
    Gossip(Vec<SignedTx>),
    Local {
        txs: Vec<SignedTx>,
        reply: oneshot::Sender<Vec<Result<Digest, TxError>>>,
    },
}

impl Inbound {
    fn take(&mut self) -> Vec<SignedTx> {
        match self {
            Self::Gossip(txs) | Self::Local { txs, .. } => std::mem::take(txs),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Gossip(txs) | Self::Local { txs, .. } => txs.len(),
        }
    }
}

impl TxGossip {
    /// A handle whose transactions go to the returned receiver instead of peers (for an API
    /// served without a p2p network, as in tests). It admits each call on its own.
    pub fn detached() -> (Self, mpsc::UnboundedReceiver<SignedTx>) {
        let (tx, rx) = mpsc::unbounded();
        (
            Self {
                tx,
                admission: None,
                batches: None,
            },
            rx,
        )
    }

    /// Batches the admission worker has verified so far (0 for a detached handle).
    pub fn admission_batches(&self) -> u64 {
        self.batches.as_ref().map_or(0, |c| c.get())
    }

    /// Queues a transaction for broadcast to peers.
    pub fn publish(&self, stx: SignedTx) {
        let _ = self.tx.unbounded_send(stx);
    }

    /// Admits locally submitted transactions ([`admit`]); one result per transaction.
    ///
    /// With a p2p network, the call joins the admission worker's queue: whatever API calls
    /// and peer messages are waiting when it starts are verified as one batch (see
    /// [`start`]), so many small submissions cost what one large one does. Without one, it
    /// admits the transactions here.
    pub async fn admit<E: StoreContext>(
        &self,
        shared: &Shared<E>,
        txs: Vec<SignedTx>,
    ) -> Vec<Result<Digest, TxError>> {
        let Some(queue) = &self.admission else {
            return admit(shared, txs).await;
        };
        let n = txs.len();
        let (reply, answer) = oneshot::channel();
        if queue
            .clone()
            .send(Inbound::Local { txs, reply })
            .await
            .is_err()
        {
            return (0..n).map(|_| Err(stopping())).collect();
        }
        answer
            .await
            .unwrap_or_else(|_| (0..n).map(|_| Err(stopping())).collect())
    }
}

fn stopping() -> TxError {
    TxError::Malformed("the node is stopping".into())
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
    let n = txs.len();
    admit_checked(shared, txs, &[n]).await
}

/// Stateless checks of transactions that arrived in groups (one per source, `sizes` long
/// each, in order): one batch verification for all of them; if it fails, each group on its
/// own, and within a failing group one by one. A source that sends a bad signature thus costs
/// only the first, shared batch and its own group the slow path.
fn check_groups(
    txs: &[SignedTx],
    sizes: &[usize],
    chain_id: u64,
    min_fee: unet_types::Amount,
    pending: &HashSet<Digest>,
) -> Vec<Result<Digest, TxError>> {
    let known = |h: &Digest| pending.contains(h);
    if check_stateless_batch(txs, chain_id, min_fee, known).is_ok() {
        return txs.iter().map(|t| Ok(t.hash())).collect();
    }
    let mut results = Vec::with_capacity(txs.len());
    let mut rest = txs;
    for &size in sizes {
        let (group, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        if sizes.len() > 1 && check_stateless_batch(group, chain_id, min_fee, known).is_ok() {
            results.extend(group.iter().map(|t| Ok(t.hash())));
            continue;
        }
        for t in group {
            results.push(if known(&t.hash()) {
                Ok(t.hash())
            } else {
                t.check_stateless(chain_id, min_fee).map(|_| t.hash())
            });
        }
    }
    results
}

/// [`admit`] for transactions received together from several sources (see [`check_groups`]);
/// one result list per group.
pub async fn admit_groups<E: StoreContext>(
    shared: &Shared<E>,
    groups: Vec<Vec<SignedTx>>,
) -> Vec<Vec<Result<Digest, TxError>>> {
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    let mut txs: Vec<SignedTx> = Vec::with_capacity(sizes.iter().sum());
    for group in groups {
        txs.extend(group);
    }
    let mut results = admit_checked(shared, txs, &sizes).await.into_iter();
    sizes
        .into_iter()
        .map(|n| results.by_ref().take(n).collect())
        .collect()
}

async fn admit_checked<E: StoreContext>(
    shared: &Shared<E>,
    txs: Vec<SignedTx>,
    sizes: &[usize],
) -> Vec<Result<Digest, TxError>> {
    let (chain_id, min_fee) = (shared.genesis.chain_id, shared.genesis.params.min_fee);
    let Ok((mut view, mut height)) = tip(shared).await else {
        return txs.iter().map(|_| Err(stopping())).collect();
    };
    let pending: HashSet<Digest> = shared
        .mempool
        .pending(txs.iter().map(|t| t.hash()).collect())
        .await;
    let mut results = check_groups(&txs, sizes, chain_id, min_fee, &pending);
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
    let mut admitted = Vec::with_capacity(txs.len());
    let mut slots = Vec::with_capacity(txs.len());
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

/// One gossip message's transactions, or `None` (logged) if it does not decode.
fn decode_gossip<P: std::fmt::Debug>(
    (peer, message): (P, impl AsRef<[u8]>),
) -> Option<Vec<SignedTx>> {
    let bytes = message.as_ref().to_vec();
    match Vec::<SignedTx>::decode_cfg(bytes, &(RangeCfg::from(..=MAX_GOSSIP_BATCH), ())) {
        Ok(txs) => Some(txs),
        Err(e) => {
            debug!(?peer, error = %e, "undecodable tx gossip");
            None
        }
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
    // Inbound: a reader decodes peers' messages into the admission queue, which local
    // submissions join too (`TxGossip::admit`).
    let (admission, mut queue) = mpsc::channel::<Inbound>(ADMISSION_QUEUE);
    let mut from_peers = admission.clone();
    let batches = context.counter(
        "tx_admission_batches",
        "transaction batches verified together (API, followers and peers)",
    );
    let admitted_total = context.counter(
        "tx_admitted",
        "transactions admitted into the mempool (API, followers and peers)",
    );
    let counted = batches.clone();
    context.child("in").spawn(move |_| async move {
        while let Ok(message) = receiver.recv().await {
            if let Some(txs) = decode_gossip(message) {
                if from_peers.send(Inbound::Gossip(txs)).await.is_err() {
                    return;
                }
            }
        }
    });
    // Admission: what waits in the queue when the worker gets to it (never waiting for more)
    // is admitted together. A batch of 100 signatures costs 1.65x per signature what one of
    // 1,000 does (`cargo bench -p unet-state --bench tx_path`), so under load the batches grow
    // with the backlog instead of staying one request long.
    context.child("admit").spawn(move |_| async move {
        while let Some(first) = queue.next().await {
            let mut n = first.len();
            let mut batch = vec![first];
            while n < MAX_ADMIT_BATCH {
                match queue.try_recv() {
                    Ok(next) => {
                        n += next.len();
                        batch.push(next);
                    }
                    _ => break,
                }
            }
            let groups = batch.iter_mut().map(Inbound::take).collect();
            let results = admit_groups(&shared, groups).await;
            let mut admitted = 0;
            for (inbound, results) in batch.into_iter().zip(results) {
                admitted += results.iter().filter(|r| r.is_ok()).count();
                if let Inbound::Local { reply, .. } = inbound {
                    let _ = reply.send(results);
                }
            }
            counted.inc();
            admitted_total.inc_by(admitted as u64);
            debug!(n, admitted, "admitted");
        }
    });
    TxGossip {
        tx,
        admission: Some(admission),
        batches: Some(batches),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer;
    use unet_types::{PrivateKey, Transaction};

    fn transfer(seed: u64, nonce: u64) -> SignedTx {
        let key = PrivateKey::from_seed(seed);
        Transaction {
            chain_id: 1,
            sender: key.public_key(),
            nonce,
            fee: 1,
            payload: Payload::Transfer {
                to: PrivateKey::from_seed(99).public_key(),
                amount: 1,
            },
        }
        .sign(&key)
    }

    /// Signed by another key than the sender's.
    fn forged(seed: u64, nonce: u64) -> SignedTx {
        let honest = transfer(seed, nonce);
        let signature = transfer(seed + 1_000, nonce).signature;
        SignedTx::new(honest.tx, signature)
    }

    #[test]
    fn one_batch_for_every_group_when_all_verify() {
        let groups = [vec![transfer(1, 0), transfer(2, 0)], vec![transfer(3, 0)]];
        let txs: Vec<SignedTx> = groups.concat();
        let results = check_groups(&txs, &[2, 1], 1, 1, &HashSet::new());
        assert_eq!(
            results,
            txs.iter().map(|t| Ok(t.hash())).collect::<Vec<_>>()
        );
    }

    /// Attack: a peer puts a forged signature among the transactions coalesced with other
    /// peers' into one batch. The forgery alone is refused; every other transaction, in its
    /// group and in the others, is admitted.
    #[test]
    fn a_forged_signature_fails_only_itself() {
        let txs = vec![
            transfer(1, 0),
            transfer(2, 0),
            transfer(3, 0),
            forged(4, 0),
            transfer(5, 0),
        ];
        let results = check_groups(&txs, &[2, 2, 1], 1, 1, &HashSet::new());
        for (i, (t, r)) in txs.iter().zip(&results).enumerate() {
            if i == 3 {
                assert_eq!(r, &Err(TxError::BadSignature));
            } else {
                assert_eq!(r, &Ok(t.hash()), "transaction {i}");
            }
        }
    }
}
