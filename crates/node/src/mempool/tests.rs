//! One test per admission, eviction and selection rule of the mempool. Each performs what the
//! rule stops and fails without it.

use super::*;
use commonware_cryptography::Signer;
use unet_types::{liveness::LivenessResponse, PrivateKey, Transaction};

fn key(seed: u64) -> PrivateKey {
    PrivateKey::from_seed(seed)
}

fn addr(seed: u64) -> Address {
    key(seed).public_key()
}

fn signed(seed: u64, nonce: u64, fee: u128, payload: Payload) -> SignedTx {
    let k = key(seed);
    Transaction {
        chain_id: 1,
        sender: k.public_key(),
        nonce,
        fee,
        payload,
    }
    .sign(&k)
}

fn transfer(seed: u64, nonce: u64, fee: u128, amount: u128) -> SignedTx {
    signed(
        seed,
        nonce,
        fee,
        Payload::Transfer {
            to: addr(99),
            amount,
        },
    )
}

fn tx(seed: u64, nonce: u64, fee: u128) -> SignedTx {
    transfer(seed, nonce, fee, 1)
}

/// A liveness answer about the size of a transfer (so fee per byte compares by fee).
fn answer(seed: u64, nonce: u64, fee: u128) -> SignedTx {
    signed(
        seed,
        nonce,
        fee,
        Payload::Liveness {
            responses: vec![LivenessResponse {
                chip_id: [seed as u8; 32],
                challenge_height: 7,
                proof: Vec::new(),
            }],
        },
    )
}

/// A funded account at `nonce`.
fn rich(nonce: u64) -> Account {
    Account {
        balance: 1 << 100,
        nonce,
    }
}

fn limits(max_txs: usize) -> MempoolLimits {
    MempoolLimits {
        max_txs,
        max_bytes: usize::MAX,
        max_per_sender: 16,
        ttl_blocks: 0,
    }
}

fn nonces_of(m: &Mempool, seed: u64) -> Vec<u64> {
    m.queues
        .get(&sender_id(&addr(seed)))
        .map(|q| q.txs.keys().copied().collect())
        .unwrap_or_default()
}

#[test]
fn nonce_window() {
    let mut m = Mempool::new(limits(100));
    m.insert(tx(1, 5, 10), &rich(5), 0).unwrap();
    assert_eq!(m.insert(tx(1, 5, 10), &rich(5), 0), Err(TxError::Duplicate));
    assert_eq!(
        m.insert(tx(1, 4, 10), &rich(5), 0),
        Err(TxError::NonceTooLow {
            expected: 5,
            got: 4
        })
    );
    // The last nonce of the window is admitted, the next one is not.
    m.insert(tx(1, 20, 10), &rich(5), 0).unwrap();
    assert_eq!(
        m.insert(tx(1, 21, 10), &rich(5), 0),
        Err(TxError::NonceGap {
            expected: 5,
            got: 21
        })
    );
    // Same nonce, higher fee replaces; not higher is a duplicate.
    m.insert(tx(1, 5, 11), &rich(5), 0).unwrap();
    assert_eq!(m.insert(tx(1, 5, 11), &rich(5), 0), Err(TxError::Duplicate));
    assert_eq!(m.len(), 2);
}

#[test]
fn unfunded_sender_is_refused() {
    let mut m = Mempool::new(limits(100));
    let broke = Account::default();
    assert_eq!(
        m.insert(tx(1, 0, 10), &broke, 0),
        Err(TxError::CannotPayFee {
            balance: 0,
            fee: 10
        })
    );
    // Fee covered, amount not.
    let some = Account {
        balance: 100,
        nonce: 0,
    };
    assert_eq!(
        m.insert(transfer(1, 0, 10, 91), &some, 0),
        Err(TxError::InsufficientBalance {
            balance: 100,
            needed: 101
        })
    );
    assert!(m.is_empty());
}

#[test]
fn pending_transactions_count_against_the_balance() {
    let mut m = Mempool::new(limits(100));
    let a = Account {
        balance: 100,
        nonce: 0,
    };
    // 40 + 40 pending: 20 left.
    m.insert(transfer(1, 0, 10, 30), &a, 0).unwrap();
    m.insert(transfer(1, 1, 10, 30), &a, 0).unwrap();
    assert_eq!(
        m.insert(transfer(1, 2, 10, 11), &a, 0),
        Err(TxError::InsufficientBalance {
            balance: 20,
            needed: 21
        })
    );
    assert_eq!(
        m.insert(tx(1, 2, 21), &a, 0),
        Err(TxError::CannotPayFee {
            balance: 20,
            fee: 21
        })
    );
    m.insert(transfer(1, 2, 10, 10), &a, 0).unwrap();
    // A replacement counts instead of what it replaces (40 freed, 45 taken: 5 short).
    assert_eq!(
        m.insert(transfer(1, 1, 15, 30), &a, 0),
        Err(TxError::InsufficientBalance {
            balance: 40,
            needed: 45
        })
    );
    m.insert(transfer(1, 1, 11, 29), &a, 0).unwrap();
    // Once included and finalized, the balance and the pending sum both drop.
    m.prune_sender(&addr(1), 2);
    let after = Account {
        balance: 100 - 40 - 40,
        nonce: 2,
    };
    assert_eq!(
        m.insert(tx(1, 3, 1), &after, 1),
        Err(TxError::CannotPayFee { balance: 0, fee: 1 })
    );
}

#[test]
fn full_pool_evicts_lower_fee_instead_of_refusing() {
    let mut m = Mempool::new(limits(3));
    m.insert(tx(1, 0, 30), &rich(0), 0).unwrap();
    m.insert(tx(2, 0, 10), &rich(0), 0).unwrap();
    m.insert(tx(3, 0, 20), &rich(0), 0).unwrap();
    // Not better than the lowest: refused.
    assert_eq!(
        m.insert(tx(4, 0, 10), &rich(0), 0),
        Err(TxError::MempoolFull)
    );
    // Better: the lowest fee per byte goes.
    m.insert(tx(4, 0, 15), &rich(0), 0).unwrap();
    assert_eq!(m.len(), 3);
    assert!(nonces_of(&m, 2).is_empty());
    assert_eq!(m.stats().evicted_full, 1);
    assert!(m.insert(tx(5, 0, 16), &rich(0), 0).is_ok());
    assert!(nonces_of(&m, 4).is_empty(), "15 was the lowest left");
}

#[test]
fn byte_bound_evicts_by_fee_per_byte() {
    let one = tx(1, 0, 10).encode_size();
    let mut m = Mempool::new(MempoolLimits {
        max_bytes: 3 * one,
        ..limits(1000)
    });
    for s in 1..=3 {
        m.insert(tx(s, 0, 10 * s as u128), &rich(0), 0).unwrap();
    }
    assert_eq!(m.bytes(), 3 * one);
    // A large answer-free transaction with a high fee but a low fee per byte is refused.
    let big = signed(
        9,
        0,
        25,
        Payload::RegisterChip {
            anchor_height: 0,
            evidence: vec![0; 2 * one],
        },
    );
    assert_eq!(m.insert(big, &rich(0), 0), Err(TxError::MempoolFull));
    m.insert(tx(4, 0, 25), &rich(0), 0).unwrap();
    assert!(m.bytes() <= 3 * one);
    assert!(nonces_of(&m, 1).is_empty());
}

#[test]
fn never_evicts_an_earlier_nonce_before_a_later_one() {
    let mut m = Mempool::new(limits(3));
    // Sender 1's nonce 0 pays least of all, but its nonce 1 pays most.
    m.insert(tx(1, 0, 5), &rich(0), 0).unwrap();
    m.insert(tx(1, 1, 50), &rich(0), 0).unwrap();
    m.insert(tx(2, 0, 20), &rich(0), 0).unwrap();
    // 10 beats nonce 0 but not the last nonces (50, 20): refused, nonce 0 stays.
    assert_eq!(
        m.insert(tx(3, 0, 10), &rich(0), 0),
        Err(TxError::MempoolFull)
    );
    assert_eq!(nonces_of(&m, 1), vec![0, 1]);
    // 60 beats 20 first (the lowest last nonce).
    m.insert(tx(3, 0, 60), &rich(0), 0).unwrap();
    assert_eq!(nonces_of(&m, 1), vec![0, 1]);
    assert!(nonces_of(&m, 2).is_empty());
    // 70 must evict sender 1's nonce 1 (50) before its nonce 0.
    m.insert(tx(4, 0, 70), &rich(0), 0).unwrap();
    assert_eq!(nonces_of(&m, 1), vec![0]);
}

#[test]
fn stuck_transactions_are_evicted_first() {
    let mut m = Mempool::new(limits(3));
    // Nonce 3 of an account at nonce 0: cannot execute, whatever its fee.
    m.insert(tx(1, 3, 1_000), &rich(0), 0).unwrap();
    m.insert(tx(2, 0, 10), &rich(0), 0).unwrap();
    m.insert(tx(3, 0, 10), &rich(0), 0).unwrap();
    m.insert(tx(4, 0, 10), &rich(0), 0).unwrap();
    assert!(nonces_of(&m, 1).is_empty());
    // Another stuck one cannot evict executable ones.
    assert_eq!(
        m.insert(tx(5, 2, 1_000), &rich(0), 0),
        Err(TxError::MempoolFull)
    );
}

#[test]
fn liveness_answers_outrank_ordinary_transactions() {
    let mut m = Mempool::new(limits(2));
    m.insert(tx(1, 0, 1_000), &rich(0), 0).unwrap();
    m.insert(tx(2, 0, 2_000), &rich(0), 0).unwrap();
    // A cheap answer still gets in, evicting the cheapest ordinary transaction.
    m.insert(answer(3, 0, 10), &rich(0), 0).unwrap();
    assert!(nonces_of(&m, 1).is_empty());
    m.insert(answer(4, 0, 10), &rich(0), 0).unwrap();
    assert!(nonces_of(&m, 2).is_empty());
    // No ordinary fee evicts an answer.
    assert_eq!(
        m.insert(tx(5, 0, 1 << 60), &rich(0), 0),
        Err(TxError::MempoolFull)
    );
    assert_eq!(m.len(), 2);
    // Answers go first in a block, whatever the fees.
    let mut m = Mempool::new(limits(10));
    m.insert(tx(1, 0, 1_000), &rich(0), 0).unwrap();
    m.insert(answer(2, 0, 10), &rich(0), 0).unwrap();
    let picked = m.select(1);
    assert_eq!(picked[0].tx.sender, addr(2));
}

#[test]
fn select_takes_executable_by_fee_and_takes_turns() {
    let mut m = Mempool::new(limits(100));
    for n in 0..3 {
        m.insert(tx(1, n, 10), &rich(0), 0).unwrap();
    }
    m.insert(tx(2, 0, 10), &rich(0), 0).unwrap();
    m.insert(tx(3, 0, 50), &rich(0), 0).unwrap();
    // Behind a gap: never selected.
    m.insert(tx(4, 1, 1_000), &rich(0), 0).unwrap();
    let picked: Vec<_> = m
        .select(10)
        .iter()
        .map(|t| (t.tx.fee, t.tx.nonce))
        .collect();
    assert_eq!(picked, vec![(50, 0), (10, 0), (10, 0), (10, 1), (10, 2)]);
    let first_two: Vec<_> = m.select(3)[1..]
        .iter()
        .map(|t| t.tx.sender.clone())
        .collect();
    assert!(first_two.contains(&addr(1)) && first_two.contains(&addr(2)));
    // The gap filled: the stuck one becomes executable.
    m.insert(tx(4, 0, 10), &rich(0), 0).unwrap();
    assert_eq!(m.select(1)[0].tx.fee, 50);
    assert!(m.select(100).iter().any(|t| t.tx.fee == 1_000));
}

/// A proposal on an unfinalized parent must not carry the parent's transactions again: they
/// stay pending until finalized, and picked twice they would only be excluded as stale nonces,
/// wasting the block (without `select_after`, every pending transaction is re-picked).
#[test]
fn select_after_skips_what_unfinalized_parents_carry() {
    let mut m = Mempool::new(limits(100));
    for n in 0..4 {
        m.insert(tx(1, n, 10), &rich(0), 0).unwrap();
    }
    m.insert(tx(2, 0, 10), &rich(0), 0).unwrap();
    // The parent carried sender 1's nonces 0 and 1; sender 2 is untouched.
    let in_flight = HashMap::from([(addr(1), 2)]);
    let picked: Vec<_> = m
        .select_after(10, &in_flight)
        .iter()
        .map(|t| (t.tx.sender.clone(), t.tx.nonce))
        .collect();
    assert_eq!(picked.len(), 3);
    assert!(picked.contains(&(addr(1), 2)) && picked.contains(&(addr(1), 3)));
    assert!(picked.contains(&(addr(2), 0)));
    assert!(!picked.iter().any(|(s, n)| *s == addr(1) && *n < 2));
    // Everything in flight: nothing of sender 1 left to pick.
    let all = HashMap::from([(addr(1), 4)]);
    assert_eq!(m.select_after(10, &all).len(), 1);
    // An in-flight nonce below the finalized one changes nothing.
    let stale = HashMap::from([(addr(1), 0)]);
    assert_eq!(m.select_after(10, &stale).len(), 5);
}

#[test]
fn excluded_for_a_permanent_reason_is_evicted_with_later_nonces() {
    let mut m = Mempool::new(limits(100));
    for n in 0..4 {
        m.insert(tx(1, n, 10), &rich(0), 0).unwrap();
    }
    m.insert(tx(2, 0, 10), &rich(0), 0).unwrap();
    m.insert(tx(3, 0, 10), &rich(0), 0).unwrap();
    let candidates = m.select(100);
    let at = |seed: u64, nonce: u64| {
        candidates
            .iter()
            .position(|t| t.tx.sender == addr(seed) && t.tx.nonce == nonce)
            .unwrap()
    };
    let excluded = vec![
        (
            at(1, 2),
            TxError::CannotPayFee {
                balance: 0,
                fee: 10,
            },
        ),
        // Temporary: kept.
        (
            at(2, 0),
            TxError::NonceTooLow {
                expected: 1,
                got: 0,
            },
        ),
        (at(3, 0), TxError::MempoolFull),
    ];
    assert_eq!(m.evict_excluded(1, &candidates, &excluded), 2);
    assert_eq!(nonces_of(&m, 1), vec![0, 1]);
    assert_eq!(nonces_of(&m, 2), vec![0]);
    assert_eq!(nonces_of(&m, 3), vec![0]);
    assert_eq!(m.stats().evicted_excluded, 2);
    // An execution error the proposer reports is permanent too.
    let candidates = m.select(100);
    let i = candidates
        .iter()
        .position(|t| t.tx.sender == addr(3))
        .unwrap();
    let excluded = vec![(i, TxError::Malformed("execution failed".into()))];
    assert_eq!(m.evict_excluded(1, &candidates, &excluded), 1);
    assert!(nonces_of(&m, 3).is_empty());
}

#[test]
fn old_transactions_expire() {
    let mut m = Mempool::new(MempoolLimits {
        ttl_blocks: 10,
        ..limits(100)
    });
    m.insert(tx(1, 0, 10), &rich(0), 100).unwrap();
    m.insert(tx(2, 5, 10), &rich(0), 105).unwrap();
    assert_eq!(m.expire(109), 0);
    assert_eq!(m.expire(110), 1);
    assert!(nonces_of(&m, 1).is_empty());
    // Admission moves the clock too.
    m.insert(tx(3, 0, 10), &rich(0), 115).unwrap();
    assert!(nonces_of(&m, 2).is_empty());
    assert_eq!(m.len(), 1);
    assert_eq!(m.stats().expired, 2);
    // A proposal moves it as well.
    assert_eq!(m.evict_excluded(125, &[], &[]), 1);
    assert!(m.is_empty());
}

/// Transactions that leave the pool by inclusion leave their expiry entries behind; the
/// queue is compacted so it stays within about twice the pool however many pass through,
/// even behind an old transaction that stays pending at its front, and what is still
/// pending expires exactly `ttl_blocks` after its admission.
#[test]
fn the_expiry_queue_stays_bounded_while_transactions_pass_through() {
    let mut m = Mempool::new(MempoolLimits {
        ttl_blocks: 1_000,
        ..limits(100)
    });
    let mut compacted = false;
    // Stays pending at the front of the queue: only a full compaction drops what is behind.
    m.insert(tx(2, 0, 10), &rich(0), 5).unwrap();
    for n in 0..10_000u64 {
        m.insert(tx(1, n, 10), &rich(0), 5).unwrap();
        let entries = m.expiry.len();
        assert!(
            entries <= 2 * m.len() + EXPIRY_SLACK,
            "{entries} entries at {n}"
        );
        // Without compaction the queue holds an entry for every admission so far.
        compacted |= entries <= n as usize + 1;
        // A block includes every transaction but the last few.
        m.prune_sender(&addr(1), n.saturating_sub(3));
    }
    assert!(compacted);
    assert_eq!(m.len(), 5);
    assert_eq!(m.expire(1_004), 0);
    assert_eq!(m.expire(1_005), 5);
    assert!(m.is_empty());
}

#[test]
fn prune_and_next_nonce() {
    let mut m = Mempool::new(MempoolLimits::default());
    for n in 0..3 {
        m.insert(tx(1, n, 10), &rich(0), 0).unwrap();
    }
    m.insert(tx(2, 0, 10), &rich(0), 0).unwrap();
    let one = addr(1);
    assert_eq!(m.next_nonce(&one, 0), 3);
    assert_eq!(m.next_nonce(&one, 1), 3);
    assert_eq!(m.next_nonce(&one, 5), 5);
    m.prune_sender(&one, 2);
    assert_eq!(m.len(), 2);
    m.prune_sender(&addr(2), 1);
    assert_eq!(m.len(), 1);
    assert_eq!(m.select(10)[0].tx.nonce, 2);
    assert_eq!(m.bytes(), tx(1, 2, 10).encode_size());
    // A newer finalized nonce seen at admission prunes too.
    m.insert(tx(1, 4, 10), &rich(3), 1).unwrap();
    assert_eq!(nonces_of(&m, 1), vec![4]);
}

/// Random operations keep every index consistent with the queues and within the bounds.
#[test]
fn indexes_stay_consistent() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut m = Mempool::new(MempoolLimits {
        max_txs: 40,
        max_bytes: 40 * 200,
        max_per_sender: 8,
        ttl_blocks: 30,
    });
    let mut height = 0;
    for step in 0..5_000u64 {
        let seed = rng.random_range(1..12u64);
        let nonce = rng.random_range(0..10u64);
        let fee = rng.random_range(1..100u128);
        match rng.random_range(0..10) {
            0 => m.prune_sender(&addr(seed), nonce),
            1 => {
                height += 1;
                let c = m.select(5);
                let ex: Vec<_> = (0..c.len())
                    .filter(|_| rng.random_bool(0.3))
                    .map(|i| (i, TxError::Malformed("x".into())))
                    .collect();
                m.evict_excluded(height, &c, &ex);
            }
            2 => {
                let _ = m.insert(answer(seed, nonce, fee), &rich(0), height);
            }
            _ => {
                let _ = m.insert(tx(seed, nonce, fee), &rich(0), height);
            }
        }
        assert!(m.len() <= 40 && m.bytes() <= 40 * 200, "step {step}");
        let total: usize = m.queues.values().map(|q| q.txs.len()).sum();
        assert_eq!(total, m.len());
        // Every pending transaction has exactly one live expiry entry, in admission order,
        // and stale entries stay bounded.
        let live: Vec<_> = m
            .expiry
            .iter()
            .filter(|(_, seq, sender, nonce)| m.is_live(sender, *nonce, *seq))
            .collect();
        assert_eq!(live.len(), m.len(), "step {step}");
        assert!(m.expiry.len() <= 2 * m.len() + EXPIRY_SLACK + 1);
        assert!(m
            .expiry
            .iter()
            .zip(m.expiry.iter().skip(1))
            .all(|(a, b)| a.0 <= b.0 && a.1 < b.1));
        assert_eq!(m.evictable.len(), m.queues.len());
        let bytes: usize = m
            .queues
            .values()
            .flat_map(|q| q.txs.values())
            .map(|e| e.bytes)
            .sum();
        assert_eq!(bytes, m.bytes());
        for q in m.queues.values() {
            assert!(!q.txs.is_empty());
            assert_eq!(q.rank, q.tail_rank());
            assert!(q.txs.keys().all(|n| *n >= q.base));
            let mut end = q.base;
            while q.txs.contains_key(&end) {
                end += 1;
            }
            assert_eq!(q.ready_end, end);
            let sum: u128 = q.txs.values().map(|e| e.debit).sum();
            assert_eq!(q.committed, sum);
        }
    }
}

/// The owner answers in the order it was asked: an eviction sent after a proposal is
/// applied before the next selection, finalized nonces prune, and a stopped owner admits
/// nothing (a clear error) instead of hanging.
#[test]
fn the_owner_applies_requests_in_order_and_refuses_once_stopped() {
    use commonware_runtime::{deterministic, Runner as _};
    deterministic::Runner::default().start(|ctx| async move {
        let (pool, handle) = actor::start(ctx, Mempool::new(limits(100)));
        let results = pool
            .insert(
                vec![
                    (tx(1, 0, 10), rich(0)),
                    (tx(1, 1, 10), rich(0)),
                    (tx(2, 20, 10), rich(0)),
                ],
                0,
            )
            .await;
        assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
        assert!(
            matches!(results[2], Err(TxError::NonceGap { .. })),
            "{results:?}"
        );
        assert_eq!(pool.figures().await.len, 2);
        assert_eq!(pool.next_nonce(addr(1), 0).await, 2);
        let picked = pool.select_after(10, HashMap::new()).await;
        assert_eq!(picked.len(), 2);
        // The proposer found the first one failing: it and the sender's later nonce go, and
        // the very next selection sees that.
        pool.proposed(0, picked.clone(), Vec::new(), vec![picked[0].clone()])
            .await;
        assert!(pool.select_after(10, HashMap::new()).await.is_empty());
        assert_eq!(pool.figures().await.stats.evicted_excluded, 2);
        // A finalized block moved sender 3 past nonce 0.
        pool.insert(vec![(tx(3, 0, 10), rich(0))], 0).await;
        let h = tx(3, 0, 10).hash();
        assert_eq!(pool.pending(vec![h]).await.len(), 1);
        pool.finalized(vec![(addr(3), 1)]).await;
        assert!(pool.get(h).await.is_none());
        handle.abort();
        let _ = handle.await;
        let refused = pool.insert(vec![(tx(4, 0, 10), rich(0))], 0).await;
        assert_eq!(
            refused,
            vec![Err(TxError::Malformed("the mempool stopped".into()))]
        );
        assert_eq!(pool.figures().await, MempoolFigures::default());
    });
}
