//! Transaction admission and gossip.
//!
//! A transaction enters through the API or from a peer. Either way it passes the same
//! admission (stateless checks, then the sender's finalized nonce and the mempool bounds).
//! Locally submitted transactions are batched and sent to every peer on the `txs` channel;
//! transactions received from peers are admitted but not relayed again (validators are fully
//! connected, so one hop reaches everyone).

use crate::shared::Shared;
use commonware_codec::{Decode, Encode, RangeCfg};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Spawner};
use futures::{channel::mpsc, StreamExt};
use std::{sync::Arc, time::Duration};
use tracing::debug;
use unet_state::check_stateless_batch;
use unet_store::StoreContext;
use unet_types::{Digest, SignedTx, TxError};

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
    /// Queues a transaction for broadcast to peers.
    pub fn publish(&self, stx: SignedTx) {
        let _ = self.tx.unbounded_send(stx);
    }
}

/// Admits a batch of transactions into the mempool. Returns one result per transaction.
pub async fn admit<E: StoreContext>(
    shared: &Shared<E>,
    txs: Vec<SignedTx>,
) -> Vec<Result<Digest, TxError>> {
    let genesis = {
        let chain = shared.chain().await;
        (chain.genesis.chain_id, chain.genesis.params.min_fee)
    };
    // Stateless checks: batch-verify, and on failure check one by one to name each failure.
    let mut results: Vec<Result<Digest, TxError>> = Vec::with_capacity(txs.len());
    if check_stateless_batch(&txs, genesis.0, genesis.1, |_| false).is_ok() {
        results.extend(txs.iter().map(|t| Ok(t.hash())));
    } else {
        for t in &txs {
            results.push(t.check_stateless(genesis.0, genesis.1).map(|_| t.hash()));
        }
    }
    // Finalized nonces of the senders.
    let mut nonces = Vec::with_capacity(txs.len());
    {
        let chain = shared.chain().await;
        for (t, r) in txs.iter().zip(&results) {
            if r.is_ok() {
                match chain.account(&t.tx.sender).await {
                    Ok(a) => nonces.push(Some(a.nonce)),
                    Err(_) => nonces.push(None),
                }
            } else {
                nonces.push(None);
            }
        }
    }
    let mut mempool = shared.mempool.lock().expect("mempool lock");
    for ((t, r), nonce) in txs.into_iter().zip(results.iter_mut()).zip(nonces) {
        if r.is_err() {
            continue;
        }
        let Some(nonce) = nonce else {
            *r = Err(TxError::Malformed("sender account unreadable".into()));
            continue;
        };
        if let Err(e) = mempool.insert(t, nonce) {
            *r = Err(e);
        }
    }
    results
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
