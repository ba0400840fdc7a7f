//! The mempool: admitted transactions waiting for a block.
//!
//! Admission checks everything that can be checked before execution (decoding, chain id,
//! size, fee floor and signature are the caller's; the sender's finalized nonce and balance
//! here), so a transaction that can never execute does not get in, and one that stops being
//! executable is dropped. The rules, each with a unit test below:
//!
//! - **Nonce window.** A nonce below the sender's finalized nonce is a replay
//!   (`nonce_too_low`); one `max_per_sender` or more above it is refused (`nonce_gap`). So one
//!   sender holds at most `max_per_sender` transactions.
//! - **Can pay.** The sender's finalized balance must cover the fee *and* what the transaction
//!   moves (transfer amount, lease deposit, top-up) *plus* the same for every transaction of
//!   the sender already pending (`cannot_pay_fee` / `insufficient_balance`). Filling the pool
//!   therefore takes funds that the fees of included transactions consume.
//! - **Bounded.** At most `max_txs` transactions and `max_bytes` encoded bytes. When full, a
//!   newcomer evicts strictly lower-ranked transactions instead of being refused; only a
//!   sender's *last* pending nonce is ever evicted, so a sender never loses an earlier nonce
//!   while keeping a later one. Rank, lowest first: a transaction stuck behind a nonce gap (it
//!   cannot execute, so it pays nothing), then ordinary transactions by fee per byte, then
//!   liveness answers by fee per byte; ties evict the newest.
//! - **Liveness first.** Chip liveness answers are a priority class rather than a separate
//!   reserved lane: ordinary transactions never evict an answer, an answer may evict any
//!   ordinary transaction, and blocks are filled with answers first. A reserved lane would
//!   have a fixed size that anyone can fill with answer-shaped transactions too; ranking needs
//!   no size to tune, and a funded attacker who sends fake answers to compete pays a fee for
//!   each one, since they are included first (a wrong proof is a failed, fee-paying receipt).
//! - **Evicted when it fails.** A transaction a proposer had to leave out for a reason that
//!   will not go away (the sender can no longer pay, anything but a nonce that is not yet
//!   current or a full block) is dropped with the sender's later nonces
//!   ([`Mempool::evict_excluded`]).
//! - **Expiry.** A transaction still pending `ttl_blocks` finalized blocks after admission is
//!   dropped.
//!
//! Selection ([`Mempool::select`]) takes only transactions that can execute (a run of
//! consecutive nonces from the sender's finalized nonce): answers first, then by fee per byte,
//! taking turns between senders of equal fee so one busy sender does not starve the rest.

pub mod actor;
pub use actor::{MempoolFigures, MempoolMailbox};

use commonware_codec::EncodeSize;
use serde::{Deserialize, Serialize};
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap, VecDeque},
};
use unet_types::{keys::Account, Address, Amount, Digest, Payload, SignedTx, TxError};

/// The hasher of the pool's hash maps: foldhash, seeded at random per map (keys are senders'
/// keys and transaction hashes, which anyone chooses; SipHash cost about 2% of a validator's
/// CPU under load).
type Hasher = foldhash::fast::RandomState;

/// Stale entries the expiry queue may hold beyond twice the pool before it is compacted.
const EXPIRY_SLACK: usize = 1024;

/// A sender as the pool's indexes hold it: its key's 32 bytes. The decoded key carries its
/// decompressed point (192 bytes), and every index entry and B-tree node moved it around.
type SenderId = [u8; 32];

fn sender_id(address: &Address) -> SenderId {
    let mut id = [0u8; 32];
    id.copy_from_slice(address.as_ref());
    id
}

/// Mempool bounds (the `[mempool]` table of a node's `config.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolLimits {
    /// Most pending transactions.
    pub max_txs: usize,
    /// Most encoded bytes of pending transactions.
    pub max_bytes: usize,
    /// Most pending transactions of one sender, and how far ahead of the sender's finalized
    /// nonce a nonce may be.
    pub max_per_sender: usize,
    /// Finalized blocks after which a pending transaction expires (0: never).
    pub ttl_blocks: u64,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        Self {
            max_txs: 200_000,
            max_bytes: 256 * 1024 * 1024,
            max_per_sender: 4_096,
            // 10 minutes of 100 ms blocks.
            ttl_blocks: 6_000,
        }
    }
}

/// Counters of what left the pool other than by inclusion (for metrics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MempoolStats {
    /// Evicted to make room for a higher-ranked transaction.
    pub evicted_full: u64,
    /// Dropped because a proposer could not include them.
    pub evicted_excluded: u64,
    /// Dropped after `ttl_blocks`.
    pub expired: u64,
}

/// Eviction rank of a transaction: class (0 behind a nonce gap, 1 ordinary, 2 liveness),
/// fee per KiB, then newest first.
type Rank = (u8, u128, Reverse<u64>);

struct Entry {
    /// Boxed: queues are B-trees, and their nodes move entries as they split.
    stx: Box<SignedTx>,
    bytes: usize,
    /// Fee plus what the transaction moves out of the sender's balance.
    debit: Amount,
    seq: u64,
    liveness: bool,
    /// Fee per KiB of encoding.
    rate: u128,
}

struct Queue {
    txs: BTreeMap<u64, Entry>,
    /// The sender's finalized nonce as last seen.
    base: u64,
    /// First nonce from `base` not pending: `base..ready_end` can execute in order.
    ready_end: u64,
    /// Sum of the debits of every pending transaction.
    committed: Amount,
    /// This sender's entry in the eviction index (its last nonce).
    rank: Option<Rank>,
}

impl Queue {
    fn new(base: u64) -> Self {
        Self {
            txs: BTreeMap::new(),
            base,
            ready_end: base,
            committed: 0,
            rank: None,
        }
    }

    fn advance(&mut self) {
        self.ready_end = self.ready_end.max(self.base);
        while self.txs.contains_key(&self.ready_end) {
            self.ready_end += 1;
        }
    }

    /// Eviction rank of the last pending nonce.
    fn tail_rank(&self) -> Option<Rank> {
        let (nonce, e) = self.txs.last_key_value()?;
        let class = if *nonce >= self.ready_end {
            0
        } else if e.liveness {
            2
        } else {
            1
        };
        Some((class, e.rate, Reverse(e.seq)))
    }
}

/// What a transaction moves out of its sender's balance at most: the fee plus the amount a
/// transfer sends, a lease's deposit or a top-up.
pub fn debit(stx: &SignedTx) -> Amount {
    let moved = match &stx.tx.payload {
        Payload::Transfer { amount, .. } | Payload::TopUp { amount, .. } => *amount,
        Payload::OpenLease { deposit, .. } => *deposit,
        _ => 0,
    };
    stx.tx.fee.saturating_add(moved)
}

/// Whether a proposer's reason for leaving a transaction out will not go away by itself.
/// A nonce that is not current yet (or was used by a block not final yet) and a full block
/// are temporary; every other reason (the sender cannot pay any more, an execution error)
/// is not.
pub fn is_permanent(error: &TxError) -> bool {
    !matches!(
        error,
        TxError::NonceTooLow { .. } | TxError::NonceGap { .. } | TxError::MempoolFull
    )
}

/// Pending transactions.
#[derive(Default)]
pub struct Mempool {
    limits: MempoolLimits,
    queues: HashMap<SenderId, Queue, Hasher>,
    by_hash: HashMap<Digest, (SenderId, u64), Hasher>,
    /// Every sender's last nonce, by eviction rank.
    evictable: BTreeMap<Rank, SenderId>,
    /// Admission height, sequence, sender and nonce of every transaction, oldest first
    /// (admission heights never decrease along it). Entries of transactions that left the
    /// pool stay until they reach the front or the queue is compacted: an entry is live while
    /// its sender's queue holds its nonce with its sequence.
    expiry: VecDeque<(u64, u64, SenderId, u64)>,
    bytes: usize,
    next_seq: u64,
    height: u64,
    stats: MempoolStats,
}

impl Mempool {
    /// An empty pool enforcing `limits`.
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            limits,
            ..Default::default()
        }
    }

    /// The bounds this pool enforces.
    pub fn limits(&self) -> MempoolLimits {
        self.limits
    }

    /// Transactions in the pool.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Encoded bytes of every pending transaction.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Eviction and expiry counters.
    pub fn stats(&self) -> MempoolStats {
        self.stats
    }

    /// Whether a transaction with this hash is pending (its signature was checked on entry).
    pub fn contains(&self, hash: &Digest) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Pending transaction by hash.
    pub fn get(&self, hash: &Digest) -> Option<&SignedTx> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        Some(&self.queues.get(sender)?.txs.get(nonce)?.stx)
    }

    /// Admits a transaction whose stateless checks passed, given its sender's finalized
    /// account and the finalized height (which also expires old transactions). A pending
    /// transaction with the same sender and nonce is replaced only by a higher fee.
    pub fn insert(&mut self, stx: SignedTx, account: &Account, height: u64) -> Result<(), TxError> {
        self.expire(height);
        // Admission heights never decrease along the expiry queue: one reported late (an
        // admission that read the height before another's) counts from the latest seen.
        let admitted = height.max(self.height);
        let hash = stx.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(TxError::Duplicate);
        }
        let sender = sender_id(&stx.tx.sender);
        if let Some(q) = self.queues.get(&sender) {
            if account.nonce > q.base {
                self.prune_id(&sender, account.nonce);
            }
        }
        let (base, ready_end, committed, existing) = match self.queues.get(&sender) {
            Some(q) => (
                q.base.max(account.nonce),
                q.ready_end,
                q.committed,
                q.txs
                    .get(&stx.tx.nonce)
                    .map(|e| (e.stx.tx.fee, e.debit, e.bytes)),
            ),
            None => (account.nonce, account.nonce, 0, None),
        };
        let nonce = stx.tx.nonce;
        if nonce < base {
            return Err(TxError::NonceTooLow {
                expected: base,
                got: nonce,
            });
        }
        if nonce - base >= self.limits.max_per_sender as u64 {
            return Err(TxError::NonceGap {
                expected: base,
                got: nonce,
            });
        }
        if existing.is_some_and(|(fee, _, _)| fee >= stx.tx.fee) {
            return Err(TxError::Duplicate);
        }
        // The sender must be able to pay for this one and everything it has pending.
        let (old_debit, old_bytes) = existing.map_or((0, 0), |(_, d, b)| (d, b));
        let available = account
            .balance
            .saturating_sub(committed.saturating_sub(old_debit));
        if stx.tx.fee > available {
            return Err(TxError::CannotPayFee {
                balance: available,
                fee: stx.tx.fee,
            });
        }
        let debit = debit(&stx);
        if debit > available {
            return Err(TxError::InsufficientBalance {
                balance: available,
                needed: debit,
            });
        }
        let bytes = stx.encode_size();
        if bytes > self.limits.max_bytes {
            return Err(TxError::MempoolFull);
        }
        let liveness = matches!(stx.tx.payload, Payload::Liveness { .. });
        let rate = stx.tx.fee.saturating_mul(1024) / bytes.max(1) as u128;
        let seq = self.next_seq;
        // Room: evict strictly lower-ranked transactions of other senders, or refuse.
        let count = self.len() + usize::from(existing.is_none());
        let size = self.bytes - old_bytes + bytes;
        if count > self.limits.max_txs || size > self.limits.max_bytes {
            let class = match (nonce <= ready_end, liveness) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => 2,
            };
            let rank = (class, rate, Reverse(seq));
            let over = (
                count.saturating_sub(self.limits.max_txs),
                size.saturating_sub(self.limits.max_bytes),
            );
            if !self.can_make_room(&sender, rank, over) {
                return Err(TxError::MempoolFull);
            }
            self.make_room(&sender, rank, over);
        }
        // Admit.
        self.next_seq += 1;
        if existing.is_some() {
            self.remove(&sender, nonce);
        }
        let q = self
            .queues
            .entry(sender)
            .or_insert_with(|| Queue::new(base));
        q.base = base;
        q.committed = q.committed.saturating_add(debit);
        q.txs.insert(
            nonce,
            Entry {
                stx: Box::new(stx),
                bytes,
                debit,
                seq,
                liveness,
                rate,
            },
        );
        q.advance();
        self.bytes += bytes;
        self.by_hash.insert(hash, (sender, nonce));
        if self.limits.ttl_blocks != 0 {
            self.expiry.push_back((admitted, seq, sender, nonce));
            self.compact_expiry();
        }
        self.rerank(&sender);
        Ok(())
    }

    /// Whether evicting last nonces ranked below `rank` (of senders other than `sender`) can
    /// free `over` (transactions, bytes). Counts each sender's current last nonce only: the
    /// eviction itself may also take the nonces this exposes, which only frees more.
    fn can_make_room(&self, sender: &SenderId, rank: Rank, over: (usize, usize)) -> bool {
        let (mut txs, mut bytes) = (0usize, 0usize);
        for (r, who) in self.evictable.range(..rank) {
            if txs >= over.0 && bytes >= over.1 {
                break;
            }
            if who == sender {
                continue;
            }
            let Some(e) = self.queues.get(who).and_then(|q| q.txs.last_key_value()) else {
                continue;
            };
            debug_assert_eq!(e.1.seq, r.2 .0);
            txs += 1;
            bytes += e.1.bytes;
        }
        txs >= over.0 && bytes >= over.1
    }

    fn make_room(&mut self, sender: &SenderId, rank: Rank, over: (usize, usize)) {
        let (mut txs, mut bytes) = (0usize, 0usize);
        while txs < over.0 || bytes < over.1 {
            let Some(victim) = self
                .evictable
                .range(..rank)
                .find(|(_, who)| *who != sender)
                .map(|(_, who)| *who)
            else {
                return;
            };
            let Some(last) = self
                .queues
                .get(&victim)
                .and_then(|q| q.txs.last_key_value().map(|(n, _)| *n))
            else {
                return;
            };
            if let Some(e) = self.remove(&victim, last) {
                txs += 1;
                bytes += e.bytes;
                self.stats.evicted_full += 1;
            }
        }
    }

    /// Removes one pending transaction from the queues, the hash index and the byte count;
    /// the caller reranks the sender (the expiry queue drops it lazily).
    fn take(&mut self, sender: &SenderId, nonce: u64) -> Option<Entry> {
        let q = self.queues.get_mut(sender)?;
        let e = q.txs.remove(&nonce)?;
        q.committed = q.committed.saturating_sub(e.debit);
        if nonce < q.ready_end {
            q.ready_end = nonce;
        }
        self.bytes -= e.bytes;
        self.by_hash.remove(&e.stx.hash());
        Some(e)
    }

    /// Removes one pending transaction and reranks its sender.
    fn remove(&mut self, sender: &SenderId, nonce: u64) -> Option<Entry> {
        let e = self.take(sender, nonce)?;
        self.rerank(sender);
        Some(e)
    }

    /// Whether an expiry entry still names a pending transaction.
    fn is_live(&self, sender: &SenderId, nonce: u64, seq: u64) -> bool {
        self.queues
            .get(sender)
            .and_then(|q| q.txs.get(&nonce))
            .is_some_and(|e| e.seq == seq)
    }

    /// Drops the expiry entries of transactions that left the pool: those at the front at
    /// once (transactions mostly leave in admission order, so this keeps the queue about the
    /// size of the pool, each entry checked once), and all of them once they outnumber the
    /// pool (plus [`EXPIRY_SLACK`]), so the queue stays within about twice the pool whatever
    /// the order.
    fn compact_expiry(&mut self) {
        while let Some(&(_, seq, sender, nonce)) = self.expiry.front() {
            if self.is_live(&sender, nonce, seq) {
                break;
            }
            self.expiry.pop_front();
        }
        if self.expiry.len() <= 2 * self.len() + EXPIRY_SLACK {
            return;
        }
        let mut expiry = std::mem::take(&mut self.expiry);
        expiry.retain(|(_, seq, sender, nonce)| self.is_live(sender, *nonce, *seq));
        self.expiry = expiry;
    }

    /// Puts the sender's last nonce back in the eviction index (or drops an empty queue).
    fn rerank(&mut self, sender: &SenderId) {
        let Some(q) = self.queues.get_mut(sender) else {
            return;
        };
        if let Some(old) = q.rank.take() {
            self.evictable.remove(&old);
        }
        match q.tail_rank() {
            Some(rank) => {
                q.rank = Some(rank);
                self.evictable.insert(rank, *sender);
            }
            None => {
                self.queues.remove(sender);
            }
        }
    }

    /// Removes `sender`'s transactions from `nonce` on (they cannot execute without it).
    fn remove_from(&mut self, sender: &SenderId, nonce: u64) -> usize {
        let Some(q) = self.queues.get(sender) else {
            return 0;
        };
        let doomed: Vec<u64> = q.txs.range(nonce..).map(|(n, _)| *n).rev().collect();
        doomed
            .into_iter()
            .filter(|n| self.remove(sender, *n).is_some())
            .count()
    }

    /// Up to `max` transactions that can execute in order: each sender's run of consecutive
    /// nonces from its finalized nonce, liveness answers first, then highest fee per byte,
    /// senders of equal fee taking turns.
    pub fn select(&self, max: usize) -> Vec<SignedTx> {
        self.select_after(max, &HashMap::new())
    }

    /// As [`Mempool::select`], on top of unfinalized blocks that already carry some pending
    /// transactions: `in_flight` gives each of their senders' next nonce after those blocks, and
    /// that sender's run starts there instead of at its finalized nonce.
    pub fn select_after(&self, max: usize, in_flight: &HashMap<Address, u64>) -> Vec<SignedTx> {
        let in_flight: HashMap<SenderId, u64, Hasher> =
            in_flight.iter().map(|(a, n)| (sender_id(a), *n)).collect();
        let mut heap: BinaryHeap<Pick<'_>> = self
            .queues
            .iter()
            .filter_map(|(s, q)| {
                let start = in_flight.get(s).map_or(q.base, |n| (*n).max(q.base));
                Pick::new(q, s, start, 0)
            })
            .collect();
        let mut out = Vec::with_capacity(max.min(self.len()));
        while out.len() < max {
            let Some(p) = heap.pop() else {
                break;
            };
            let q = &self.queues[p.sender];
            out.push(SignedTx::clone(&q.txs[&p.nonce].stx));
            if let Some(next) = Pick::new(q, p.sender, p.nonce + 1, p.taken.0 + 1) {
                heap.push(next);
            }
        }
        out
    }

    /// Drops every pending transaction of `sender` with a nonce below `next_nonce` (included
    /// in a finalized block, or made obsolete by one).
    pub fn prune_sender(&mut self, sender: &Address, next_nonce: u64) {
        self.prune_id(&sender_id(sender), next_nonce);
    }

    fn prune_id(&mut self, sender: &SenderId, next_nonce: u64) {
        let Some(q) = self.queues.get_mut(sender) else {
            return;
        };
        q.base = q.base.max(next_nonce);
        // Split the stale nonces off the queue at once, then drop them from the other
        // indexes; the sender is reranked once.
        let kept = q.txs.split_off(&next_nonce);
        let stale = std::mem::replace(&mut q.txs, kept);
        for e in stale.values() {
            q.committed = q.committed.saturating_sub(e.debit);
        }
        q.advance();
        for e in stale.into_values() {
            self.bytes -= e.bytes;
            self.by_hash.remove(&e.stx.hash());
        }
        self.rerank(sender);
    }

    /// Drops what a proposer at `height` had to leave out for a permanent reason (see
    /// [`is_permanent`]), with the same sender's later nonces, and expires old transactions.
    /// `excluded` indexes `candidates` (as `unet_state::Outcome::excluded` does). Returns how
    /// many transactions were dropped.
    pub fn evict_excluded(
        &mut self,
        height: u64,
        candidates: &[SignedTx],
        excluded: &[(usize, TxError)],
    ) -> usize {
        let mut dropped = self.expire(height);
        for (i, error) in excluded {
            if !is_permanent(error) {
                continue;
            }
            let Some(stx) = candidates.get(*i) else {
                continue;
            };
            if !self.by_hash.contains_key(&stx.hash()) {
                continue;
            }
            let n = self.remove_from(&sender_id(&stx.tx.sender), stx.tx.nonce);
            self.stats.evicted_excluded += n as u64;
            dropped += n;
        }
        dropped
    }

    /// Drops a transaction whose execution failed a proposer's whole block (see
    /// `Chain::build_on`), with the same sender's later nonces: every proposer would fail the
    /// same way, so it must never be offered again. Returns how many were dropped.
    pub fn evict_failed(&mut self, stx: &SignedTx) -> usize {
        if !self.by_hash.contains_key(&stx.hash()) {
            return 0;
        }
        let n = self.remove_from(&sender_id(&stx.tx.sender), stx.tx.nonce);
        self.stats.evicted_excluded += n as u64;
        n
    }

    /// Drops transactions admitted `ttl_blocks` or more before `height` (0: never). Returns
    /// how many.
    pub fn expire(&mut self, height: u64) -> usize {
        if height <= self.height || self.limits.ttl_blocks == 0 {
            return 0;
        }
        self.height = height;
        let mut dropped = 0;
        while let Some(&(admitted, seq, sender, nonce)) = self.expiry.front() {
            // Admitted at `admitted`: expires once `height >= admitted + ttl_blocks`.
            if admitted.saturating_add(self.limits.ttl_blocks) > height {
                break;
            }
            self.expiry.pop_front();
            if self.is_live(&sender, nonce, seq) && self.remove(&sender, nonce).is_some() {
                dropped += 1;
            }
        }
        self.stats.expired += dropped as u64;
        dropped
    }

    /// The nonce after the sender's pending transactions that follow `account_nonce` without a
    /// gap (what the sender's next transaction should use).
    pub fn next_nonce(&self, sender: &Address, account_nonce: u64) -> u64 {
        let mut next = account_nonce;
        if let Some(q) = self.queues.get(&sender_id(sender)) {
            for n in q.txs.range(account_nonce..).map(|(n, _)| *n) {
                if n != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }
}

/// A sender's next executable transaction in [`Mempool::select`], ordered by priority.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Pick<'a> {
    liveness: bool,
    rate: u128,
    /// Transactions already taken from this sender (fewer first: senders take turns).
    taken: Reverse<usize>,
    /// Oldest first.
    seq: Reverse<u64>,
    sender: &'a SenderId,
    nonce: u64,
}

impl<'a> Pick<'a> {
    fn new(q: &Queue, sender: &'a SenderId, nonce: u64, taken: usize) -> Option<Self> {
        if nonce >= q.ready_end {
            return None;
        }
        let e = q.txs.get(&nonce)?;
        Some(Self {
            liveness: e.liveness,
            rate: e.rate,
            taken: Reverse(taken),
            seq: Reverse(e.seq),
            sender,
            nonce,
        })
    }
}

#[cfg(test)]
mod tests;
