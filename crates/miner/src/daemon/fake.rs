//! An in-memory chain for the daemon's unit tests: one owner, chips registered to it,
//! challenges drawn on demand, blocks produced on demand, and the faults the daemon must
//! survive (a node that loses a transaction, forgets receipts, fails a chip read, answers a
//! send with an error after taking the transactions, or drops the socket).

use super::chain::{
    AccountState, ChainStatus, ChallengeEvent, ChipOnChain, ChipReading, MinerChain, NodeAnchor,
    Notification, Notifications, PendingChallenge, Receipt, SendOutcome, TxLookup,
};
use anyhow::{bail, Result};
use futures::{future::BoxFuture, StreamExt};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};
use tokio::sync::mpsc;
use unet_types::{
    chip::{ChipId, ChipStatus},
    hexser, Address, Digest, Payload, SignedTx,
};

pub const CHAIN_ID: u64 = 4242;
pub const WINDOW: u64 = 20;

/// A chip as the fake chain holds it.
#[derive(Clone, Debug)]
pub struct FakeChip {
    pub owner: String,
    pub status: ChipStatus,
    pub pending: Option<(u64, Digest)>,
    /// Highest challenge height whose answer applied.
    pub answered: Option<u64>,
}

/// The fake chain's state and fault switches.
#[derive(Default)]
pub struct World {
    pub genesis: String,
    pub height: u64,
    pub nonce: u64,
    pub chips: BTreeMap<ChipId, FakeChip>,
    pub mempool: Vec<SignedTx>,
    /// Receipts of final transactions this node remembers.
    pub receipts: HashMap<String, Receipt>,
    /// Every transaction the node was sent, in order (re-sends included).
    pub received: Vec<SignedTx>,
    /// Every answer that applied: (chip, challenge height).
    pub applied: Vec<(ChipId, u64)>,
    /// Challenges whose window closed unanswered.
    pub missed: Vec<(ChipId, u64)>,
    /// Challenges to draw in the next block.
    pub draw: Vec<ChipId>,
    /// Fault: the next this many transactions sent are acknowledged, then lost.
    pub lose_sends: usize,
    /// Fault: the next send call takes the transactions, then fails as if the connection broke.
    pub fail_next_send_call: bool,
    /// Fault: the next liveness transaction applied fails as a whole (nonce consumed).
    pub fail_next_liveness: bool,
    /// Fault: the next this many chip reads answer an error.
    pub chip_read_errors: usize,
    /// Fault: the node does not remember receipts (as after a restart).
    pub forget_receipts: bool,
    /// Fault: a block's notification is sent before its events.
    pub block_before_events: bool,
    socket: Option<mpsc::UnboundedSender<Result<Notification>>>,
}

/// A handle on the fake chain (clones share it).
#[derive(Clone, Default)]
pub struct FakeChain(pub Arc<Mutex<World>>);

impl FakeChain {
    /// A chain at height 1 where every chip in `chips` is registered to `owner`.
    pub fn new(owner: &Address, chips: &[ChipId]) -> Self {
        let mut w = World {
            genesis: "ab".repeat(32),
            height: 1,
            ..Default::default()
        };
        for id in chips {
            w.chips.insert(
                *id,
                FakeChip {
                    owner: hexser::to_hex(owner),
                    status: ChipStatus::Online,
                    pending: None,
                    answered: None,
                },
            );
        }
        Self(Arc::new(Mutex::new(w)))
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().expect("fake chain lock")
    }

    /// Closes the current subscription (the daemon sees the socket close).
    pub fn drop_socket(&self) {
        self.world().socket = None;
    }

    /// Whether a subscription is open.
    pub fn subscribed(&self) -> bool {
        self.world().socket.as_ref().is_some_and(|s| !s.is_closed())
    }

    /// Sends a notification on the current subscription, if any.
    pub fn notify(&self, n: Notification) {
        let w = self.world();
        if let Some(s) = &w.socket {
            let _ = s.send(Ok(n));
        }
    }

    /// Produces the next block: applies the mempool in nonce order, closes the windows that
    /// end at it, draws the queued challenges, then notifies (events first, block last).
    pub fn produce_block(&self) -> u64 {
        let mut w = self.world();
        w.height += 1;
        let height = w.height;
        let mut included = Vec::new();
        loop {
            let nonce = w.nonce;
            let Some(i) = w.mempool.iter().position(|t| t.tx.nonce == nonce) else {
                break;
            };
            let stx = w.mempool.remove(i);
            w.nonce += 1;
            let receipt = apply(&mut w, &stx, height);
            let hash = hex::encode(stx.hash());
            w.receipts.insert(hash.clone(), receipt);
            included.push(hash);
        }
        let nonce = w.nonce;
        w.mempool.retain(|t| t.tx.nonce >= nonce);
        let mut expired = Vec::new();
        for (id, c) in w.chips.iter_mut() {
            if let Some((h, _)) = c.pending {
                if h + WINDOW <= height {
                    c.pending = None;
                    c.status = ChipStatus::Unresponsive;
                    expired.push((*id, h));
                }
            }
        }
        w.missed.extend(expired);
        let mut events = Vec::new();
        for id in std::mem::take(&mut w.draw) {
            let beacon = Digest([height as u8; 32]);
            if let Some(c) = w.chips.get_mut(&id) {
                c.pending = Some((height, beacon));
                events.push(ChallengeEvent {
                    chip_id: id,
                    height,
                    beacon,
                    deadline: Some(height + WINDOW),
                });
            }
        }
        if let Some(s) = &w.socket {
            let mut notes = vec![Notification::Block {
                height,
                txs: included,
            }];
            if !events.is_empty() {
                notes.insert(0, Notification::Challenges(events));
            }
            if w.block_before_events {
                notes.reverse();
            }
            for n in notes {
                let _ = s.send(Ok(n));
            }
        }
        height
    }

    /// How many distinct transactions carried the answer to `chip`'s challenge at `height`.
    pub fn answer_txs(&self, chip: &ChipId, height: u64) -> usize {
        let w = self.world();
        let mut hashes: Vec<Digest> = w
            .received
            .iter()
            .filter(|t| match &t.tx.payload {
                Payload::Liveness { responses } => responses
                    .iter()
                    .any(|r| r.chip_id == *chip && r.challenge_height == height),
                _ => false,
            })
            .map(SignedTx::hash)
            .collect();
        hashes.sort();
        hashes.dedup();
        hashes.len()
    }

    /// How many times the answer to `chip`'s challenge at `height` applied.
    pub fn applied(&self, chip: &ChipId, height: u64) -> usize {
        self.world()
            .applied
            .iter()
            .filter(|a| **a == (*chip, height))
            .count()
    }
}

fn apply(w: &mut World, stx: &SignedTx, height: u64) -> Receipt {
    let Payload::Liveness { responses } = &stx.tx.payload else {
        return Receipt {
            code: "unsupported".into(),
            ..Default::default()
        };
    };
    if std::mem::take(&mut w.fail_next_liveness) {
        return Receipt {
            code: "insufficient_balance".into(),
            reason: "fault injected".into(),
            ..Default::default()
        };
    }
    let mut skipped = Vec::new();
    for (i, r) in responses.iter().enumerate() {
        let Some(c) = w.chips.get_mut(&r.chip_id) else {
            skipped.push((i, "unknown_chip".to_string()));
            continue;
        };
        match c.pending {
            Some((h, _)) if h == r.challenge_height && h + WINDOW >= height => {
                c.pending = None;
                c.status = ChipStatus::Online;
                c.answered = Some(h);
                w.applied.push((r.chip_id, h));
            }
            _ if c.answered >= Some(r.challenge_height) => {
                skipped.push((i, "liveness_already_answered".to_string()))
            }
            _ => skipped.push((i, "liveness_no_challenge".to_string())),
        }
    }
    Receipt {
        ok: true,
        skipped,
        ..Default::default()
    }
}

impl MinerChain for FakeChain {
    fn name(&self) -> String {
        "fake".into()
    }

    fn status(&self) -> BoxFuture<'_, Result<ChainStatus>> {
        let w = self.world();
        let s = ChainStatus {
            chain_id: CHAIN_ID,
            genesis_hash: w.genesis.clone(),
            finalized_height: w.height,
            response_window: WINDOW,
            max_registrations_per_block: 4,
            min_fee: 1,
        };
        Box::pin(async move { Ok(s) })
    }

    fn account<'a>(&'a self, _owner: &'a Address) -> BoxFuture<'a, Result<AccountState>> {
        let nonce = self.world().nonce;
        Box::pin(async move {
            Ok(AccountState {
                nonce,
                balance: u128::MAX,
            })
        })
    }

    fn chips<'a>(&'a self, ids: &'a [ChipId]) -> BoxFuture<'a, Result<Vec<ChipReading>>> {
        let mut w = self.world();
        let out = ids
            .iter()
            .map(|id| {
                if w.chip_read_errors > 0 {
                    w.chip_read_errors -= 1;
                    return ChipReading::Error("fault injected".into());
                }
                match w.chips.get(id) {
                    None => ChipReading::NotFound,
                    Some(c) => ChipReading::Found(ChipOnChain {
                        owner: c.owner.clone(),
                        status: c.status,
                        rewards_total: None,
                        pending_challenge: c
                            .pending
                            .map(|(height, beacon)| PendingChallenge { height, beacon }),
                    }),
                }
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn transactions<'a>(&'a self, hashes: &'a [String]) -> BoxFuture<'a, Result<Vec<TxLookup>>> {
        let w = self.world();
        let out = hashes
            .iter()
            .map(|h| match w.receipts.get(h) {
                Some(r) if !w.forget_receipts => TxLookup::Finalized(r.clone()),
                _ if w.mempool.iter().any(|t| hex::encode(t.hash()) == *h) => TxLookup::Pending,
                _ => TxLookup::Unknown,
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn send<'a>(&'a self, txs: &'a [SignedTx]) -> BoxFuture<'a, Result<Vec<SendOutcome>>> {
        let mut w = self.world();
        let mut out = Vec::new();
        for t in txs {
            w.received.push(t.clone());
            let hash = hex::encode(t.hash());
            out.push(if t.tx.nonce < w.nonce {
                SendOutcome::Refused {
                    check: "nonce_too_low".into(),
                    message: "nonce too low".into(),
                }
            } else if w.mempool.iter().any(|m| m.hash() == t.hash())
                || w.receipts.contains_key(&hash)
            {
                SendOutcome::Refused {
                    check: "duplicate".into(),
                    message: "known".into(),
                }
            } else {
                if w.lose_sends > 0 {
                    w.lose_sends -= 1;
                } else {
                    w.mempool.push(t.clone());
                }
                SendOutcome::Accepted
            });
        }
        let fail = std::mem::take(&mut w.fail_next_send_call);
        Box::pin(async move {
            if fail {
                bail!("connection reset while sending");
            }
            Ok(out)
        })
    }

    fn registration_anchor<'a>(&'a self, _owner: &'a Address) -> BoxFuture<'a, Result<NodeAnchor>> {
        Box::pin(async move { bail!("the fake chain registers no chips") })
    }

    fn subscribe(&self) -> BoxFuture<'_, Result<Notifications>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.world().socket = Some(tx);
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|n| (n, rx)) });
        Box::pin(async move { Ok(stream.boxed()) })
    }
}
