//! The mempool: admitted transactions waiting for a block.
//!
//! Admission checks everything that can be checked before execution (decoding, chain id,
//! size, fee floor, signature — by the caller — plus the sender's finalized nonce here), so a
//! proposer rarely has to drop anything. Bounds: a total count and a per-sender count, so one
//! account cannot fill the pool. Selection is round-robin over senders in nonce order, which
//! keeps one busy sender from starving the rest.

use std::collections::{BTreeMap, HashMap, VecDeque};
use unet_types::{Address, Digest, SignedTx, TxError};

/// Mempool bounds.
#[derive(Clone, Copy, Debug)]
pub struct MempoolLimits {
    pub max_txs: usize,
    pub max_per_sender: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        Self {
            max_txs: 200_000,
            max_per_sender: 4_096,
        }
    }
}

/// Pending transactions.
#[derive(Default)]
pub struct Mempool {
    limits: MempoolLimits,
    by_sender: HashMap<Address, BTreeMap<u64, SignedTx>>,
    by_hash: HashMap<Digest, (Address, u64)>,
    /// Senders in arrival order of their first pending transaction.
    senders: VecDeque<Address>,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            limits,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Whether a transaction with this hash is pending (its signature was checked on entry).
    pub fn contains(&self, hash: &Digest) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Admits a transaction whose stateless checks passed, given the sender's finalized nonce.
    /// A pending transaction with the same sender and nonce is replaced only by a higher fee.
    pub fn insert(&mut self, stx: SignedTx, account_nonce: u64) -> Result<(), TxError> {
        let hash = stx.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(TxError::Duplicate);
        }
        let nonce = stx.tx.nonce;
        if nonce < account_nonce {
            return Err(TxError::NonceTooLow {
                expected: account_nonce,
                got: nonce,
            });
        }
        if nonce >= account_nonce + self.limits.max_per_sender as u64 {
            return Err(TxError::NonceGap {
                expected: account_nonce,
                got: nonce,
            });
        }
        let sender = stx.tx.sender.clone();
        let queue = self.by_sender.get(&sender);
        if let Some(existing) = queue.and_then(|q| q.get(&nonce)) {
            if existing.tx.fee >= stx.tx.fee {
                return Err(TxError::Duplicate);
            }
        } else if self.by_hash.len() >= self.limits.max_txs {
            return Err(TxError::MempoolFull);
        }
        let queue = self.by_sender.entry(sender.clone()).or_default();
        if queue.is_empty() {
            self.senders.push_back(sender.clone());
        }
        if let Some(old) = queue.insert(nonce, stx) {
            self.by_hash.remove(&old.hash());
        }
        self.by_hash.insert(hash, (sender, nonce));
        Ok(())
    }

    /// Up to `max` transactions, round-robin over senders, each sender's in nonce order.
    pub fn select(&self, max: usize) -> Vec<SignedTx> {
        let mut iters: Vec<_> = self
            .senders
            .iter()
            .filter_map(|s| self.by_sender.get(s).map(|q| q.values()))
            .collect();
        let mut out = Vec::with_capacity(max.min(self.len()));
        while out.len() < max && !iters.is_empty() {
            iters.retain_mut(|it| match it.next() {
                Some(tx) if out.len() < max => {
                    out.push(tx.clone());
                    true
                }
                _ => false,
            });
        }
        out
    }

    /// Drops every pending transaction of `sender` with a nonce below `next_nonce` (included
    /// in a finalized block, or made obsolete by one).
    pub fn prune_sender(&mut self, sender: &Address, next_nonce: u64) {
        let Some(queue) = self.by_sender.get_mut(sender) else {
            return;
        };
        let keep = queue.split_off(&next_nonce);
        for (_, tx) in std::mem::replace(queue, keep) {
            self.by_hash.remove(&tx.hash());
        }
        if queue.is_empty() {
            self.by_sender.remove(sender);
            self.senders.retain(|s| s != sender);
        }
    }

    /// The nonce after the sender's pending transactions that follow `account_nonce` without a
    /// gap (what the sender's next transaction should use).
    pub fn next_nonce(&self, sender: &Address, account_nonce: u64) -> u64 {
        let mut next = account_nonce;
        if let Some(queue) = self.by_sender.get(sender) {
            for n in queue.range(account_nonce..).map(|(n, _)| *n) {
                if n != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }

    /// Removes one pending transaction (a proposer found it fails block execution). The
    /// sender's later transactions stay; they wait for the nonce to be filled again.
    pub fn remove(&mut self, hash: &Digest) -> Option<SignedTx> {
        let (sender, nonce) = self.by_hash.remove(hash)?;
        let queue = self.by_sender.get_mut(&sender)?;
        let tx = queue.remove(&nonce);
        if queue.is_empty() {
            self.by_sender.remove(&sender);
            self.senders.retain(|s| *s != sender);
        }
        tx
    }

    /// Pending transaction by hash.
    pub fn get(&self, hash: &Digest) -> Option<&SignedTx> {
        let (sender, nonce) = self.by_hash.get(hash)?;
        self.by_sender.get(sender)?.get(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer;
    use unet_types::{Payload, PrivateKey, Transaction};

    fn tx(seed: u64, nonce: u64, fee: u128) -> SignedTx {
        let k = PrivateKey::from_seed(seed);
        Transaction {
            chain_id: 1,
            sender: k.public_key(),
            nonce,
            fee,
            payload: Payload::Transfer {
                to: PrivateKey::from_seed(99).public_key(),
                amount: 1,
            },
        }
        .sign(&k)
    }

    #[test]
    fn admission_rules() {
        let mut m = Mempool::new(MempoolLimits {
            max_txs: 3,
            max_per_sender: 2,
        });
        m.insert(tx(1, 5, 10), 5).unwrap();
        assert_eq!(m.insert(tx(1, 5, 10), 5), Err(TxError::Duplicate));
        assert_eq!(
            m.insert(tx(1, 4, 10), 5),
            Err(TxError::NonceTooLow {
                expected: 5,
                got: 4
            })
        );
        assert_eq!(
            m.insert(tx(1, 7, 10), 5),
            Err(TxError::NonceGap {
                expected: 5,
                got: 7
            })
        );
        // Same nonce, higher fee replaces.
        m.insert(tx(1, 5, 11), 5).unwrap();
        assert_eq!(m.len(), 1);
        m.insert(tx(2, 0, 10), 0).unwrap();
        m.insert(tx(3, 0, 10), 0).unwrap();
        assert_eq!(m.insert(tx(4, 0, 10), 0), Err(TxError::MempoolFull));
    }

    #[test]
    fn select_round_robin_and_prune() {
        let mut m = Mempool::new(MempoolLimits::default());
        for n in 0..3 {
            m.insert(tx(1, n, 10), 0).unwrap();
        }
        m.insert(tx(2, 0, 10), 0).unwrap();
        let picked: Vec<_> = m.select(3).iter().map(|t| t.tx.nonce).collect();
        assert_eq!(picked, vec![0, 0, 1]);
        let one = PrivateKey::from_seed(1).public_key();
        assert_eq!(m.next_nonce(&one, 0), 3);
        assert_eq!(m.next_nonce(&one, 1), 3);
        assert_eq!(m.next_nonce(&one, 5), 5);
        m.prune_sender(&PrivateKey::from_seed(1).public_key(), 2);
        assert_eq!(m.len(), 2);
        m.prune_sender(&PrivateKey::from_seed(2).public_key(), 1);
        assert_eq!(m.len(), 1);
        assert_eq!(m.select(10)[0].tx.nonce, 2);
    }
}
