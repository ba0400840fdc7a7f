//! The mempool's owner: one task holds the [`Mempool`] and everything else talks to it
//! through a [`MempoolMailbox`] (a bounded channel of messages; questions carry a oneshot
//! for the answer), as commonware's actors do. Admission (gossip and the API), the proposer,
//! the finalizer and the API's reads never share a lock on it: each request is handled whole,
//! in the order it was sent, so a proposer's eviction is applied before its next selection.
//!
//! The actor ends when every mailbox is dropped. A request to a stopped actor gets an empty
//! answer (nothing pending, nothing admitted: `Malformed("the mempool stopped")`).

use super::{Mempool, MempoolStats};
use commonware_runtime::{Handle, Spawner};
use futures::{
    channel::{mpsc, oneshot},
    SinkExt, StreamExt,
};
use std::collections::{HashMap, HashSet};
use unet_types::{keys::Account, Address, Digest, SignedTx, TxError};

/// Requests a mailbox can hold before senders wait.
const CAPACITY: usize = 1024;

/// The pool's size and counters, as metrics and the API report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MempoolFigures {
    /// Pending transactions.
    pub len: usize,
    /// Their encoded bytes.
    pub bytes: usize,
    /// What left the pool other than by inclusion.
    pub stats: MempoolStats,
}

/// What the owner does for a sender.
enum Message {
    Pending {
        hashes: Vec<Digest>,
        reply: oneshot::Sender<HashSet<Digest>>,
    },
    Insert {
        txs: Vec<(SignedTx, Account)>,
        height: u64,
        reply: oneshot::Sender<Vec<Result<(), TxError>>>,
    },
    Select {
        max: usize,
        in_flight: HashMap<Address, u64>,
        reply: oneshot::Sender<Vec<SignedTx>>,
    },
    Proposed {
        parent_height: u64,
        candidates: Vec<SignedTx>,
        excluded: Vec<(usize, TxError)>,
        failed: Vec<SignedTx>,
    },
    Finalized {
        nonces: Vec<(Address, u64)>,
    },
    NextNonce {
        sender: Address,
        account_nonce: u64,
        reply: oneshot::Sender<u64>,
    },
    Get {
        hash: Digest,
        reply: oneshot::Sender<Option<SignedTx>>,
    },
    Figures {
        reply: oneshot::Sender<MempoolFigures>,
    },
}

/// A handle on the mempool's owner (cheap to clone).
#[derive(Clone)]
pub struct MempoolMailbox {
    tx: mpsc::Sender<Message>,
}

/// Starts the owner of `pool` on `context`; the returned mailbox (and its clones) reach it.
pub fn start<E: Spawner>(context: E, pool: Mempool) -> (MempoolMailbox, Handle<()>) {
    let (tx, rx) = mpsc::channel(CAPACITY);
    let handle = context.spawn(move |_| run(pool, rx));
    (MempoolMailbox { tx }, handle)
}

async fn run(mut pool: Mempool, mut rx: mpsc::Receiver<Message>) {
    // A requester that went away (its oneshot dropped) is not an error: the answer is dropped.
    while let Some(m) = rx.next().await {
        match m {
            Message::Pending { hashes, reply } => {
                let _ = reply.send(hashes.into_iter().filter(|h| pool.contains(h)).collect());
            }
            Message::Insert { txs, height, reply } => {
                let results = txs
                    .into_iter()
                    .map(|(t, account)| pool.insert(t, &account, height))
                    .collect();
                let _ = reply.send(results);
            }
            Message::Select {
                max,
                in_flight,
                reply,
            } => {
                let _ = reply.send(pool.select_after(max, &in_flight));
            }
            Message::Proposed {
                parent_height,
                candidates,
                excluded,
                failed,
            } => {
                pool.evict_excluded(parent_height, &candidates, &excluded);
                for t in &failed {
                    pool.evict_failed(t);
                }
            }
            Message::Finalized { nonces } => {
                for (sender, next) in nonces {
                    pool.prune_sender(&sender, next);
                }
            }
            Message::NextNonce {
                sender,
                account_nonce,
                reply,
            } => {
                let _ = reply.send(pool.next_nonce(&sender, account_nonce));
            }
            Message::Get { hash, reply } => {
                let _ = reply.send(pool.get(&hash).cloned());
            }
            Message::Figures { reply } => {
                let _ = reply.send(MempoolFigures {
                    len: pool.len(),
                    bytes: pool.bytes(),
                    stats: pool.stats(),
                });
            }
        }
    }
}

fn stopped() -> TxError {
    TxError::Malformed("the mempool stopped".into())
}

impl MempoolMailbox {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Message) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tx.clone().send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    async fn tell(&self, m: Message) {
        // A stopped owner has nothing left to update.
        let _ = self.tx.clone().send(m).await;
    }

    /// Which of `hashes` are pending.
    pub async fn pending(&self, hashes: Vec<Digest>) -> HashSet<Digest> {
        self.ask(|reply| Message::Pending { hashes, reply })
            .await
            .unwrap_or_default()
    }

    /// Admits each transaction against its sender's finalized `Account` at finalized
    /// `height` ([`Mempool::insert`]), in order; one result per transaction.
    pub async fn insert(
        &self,
        txs: Vec<(SignedTx, Account)>,
        height: u64,
    ) -> Vec<Result<(), TxError>> {
        let n = txs.len();
        self.ask(|reply| Message::Insert { txs, height, reply })
            .await
            .unwrap_or_else(|| (0..n).map(|_| Err(stopped())).collect())
    }

    /// Up to `max` transactions for a block on top of unfinalized blocks whose senders'
    /// next nonces are `in_flight` ([`Mempool::select_after`]).
    pub async fn select_after(
        &self,
        max: usize,
        in_flight: HashMap<Address, u64>,
    ) -> Vec<SignedTx> {
        self.ask(|reply| Message::Select {
            max,
            in_flight,
            reply,
        })
        .await
        .unwrap_or_default()
    }

    /// After a proposal on a block at `parent_height`: drops what it left out for good
    /// ([`Mempool::evict_excluded`]) and what failed execution ([`Mempool::evict_failed`]).
    pub async fn proposed(
        &self,
        parent_height: u64,
        candidates: Vec<SignedTx>,
        excluded: Vec<(usize, TxError)>,
        failed: Vec<SignedTx>,
    ) {
        self.tell(Message::Proposed {
            parent_height,
            candidates,
            excluded,
            failed,
        })
        .await
    }

    /// After a finalized block: each sender's next nonce, below which its transactions are
    /// stale ([`Mempool::prune_sender`]).
    pub async fn finalized(&self, nonces: Vec<(Address, u64)>) {
        self.tell(Message::Finalized { nonces }).await
    }

    /// The sender's next nonce counting its pending run ([`Mempool::next_nonce`]).
    pub async fn next_nonce(&self, sender: Address, account_nonce: u64) -> u64 {
        self.ask(|reply| Message::NextNonce {
            sender,
            account_nonce,
            reply,
        })
        .await
        .unwrap_or(account_nonce)
    }

    /// A pending transaction by hash.
    pub async fn get(&self, hash: Digest) -> Option<SignedTx> {
        self.ask(|reply| Message::Get { hash, reply })
            .await
            .flatten()
    }

    /// Size and counters.
    pub async fn figures(&self) -> MempoolFigures {
        self.ask(|reply| Message::Figures { reply })
            .await
            .unwrap_or_default()
    }
}
