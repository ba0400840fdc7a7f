//! Ledger rules: exact balances, fees, nonces and the supply invariant.

use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{Hasher, Sha256, Signer};
use std::collections::BTreeMap;
use unet_state::{
    execute, testing::MemState, touched_keys, BlockEnv, BlockError, Mode, PreState, TxStatus,
};
use unet_types::{
    keys::{account_key, supply_key, Account, Supply},
    Address, Params, Payload, PrivateKey, SignedTx, Transaction, TxError, UNC,
};

const CHAIN: u64 = 9;

fn key(seed: u64) -> PrivateKey {
    PrivateKey::from_seed(seed)
}

fn transfer(from: &PrivateKey, nonce: u64, to: &Address, amount: u128, fee: u128) -> SignedTx {
    Transaction {
        chain_id: CHAIN,
        sender: from.public_key(),
        nonce,
        fee,
        payload: Payload::Transfer {
            to: to.clone(),
            amount,
        },
    }
    .sign(from)
}

/// A tiny in-memory store standing in for the authenticated one.
#[derive(Clone)]
struct Ledger {
    state: MemState,
    height: u64,
}

/// `l.entries` is the state's map.
impl std::ops::Deref for Ledger {
    type Target = MemState;
    fn deref(&self) -> &MemState {
        &self.state
    }
}

impl Ledger {
    fn new(balances: &[(&PrivateKey, u128)]) -> Self {
        let mut entries = BTreeMap::new();
        let mut total = 0;
        for (k, b) in balances {
            total += b;
            let a = Account {
                balance: *b,
                nonce: 0,
            };
            entries.insert(account_key(&k.public_key()), a.encode().to_vec());
        }
        let s = Supply {
            genesis: total,
            ..Default::default()
        };
        entries.insert(supply_key(), s.encode().to_vec());
        Self {
            state: MemState { entries },
            height: 0,
        }
    }

    fn run(
        &mut self,
        proposer: &Address,
        txs: &[SignedTx],
        mode: Mode,
    ) -> Result<unet_state::Outcome, BlockError> {
        let params = Params {
            min_fee: 10,
            fee_burn_bps: 2500,
            ..Params::default()
        };
        self.height += 1;
        let env = BlockEnv {
            chain_id: CHAIN,
            params: &params,
            proposer: proposer.clone(),
            height: self.height,
            parent: Sha256::hash(&[&self.height.to_be_bytes()]),
            timestamp_ms: 0,
            beacon: Sha256::hash(&[b"beacon"]),
            treasury: None,
        };
        let out = self.state.execute(&env, txs, mode)?;
        self.state.apply(&out.writes);
        Ok(out)
    }

    fn account(&self, k: &PrivateKey) -> Account {
        self.entries
            .get(&account_key(&k.public_key()))
            .map(|b| Account::decode(b.clone()).unwrap())
            .unwrap_or_default()
    }

    fn supply(&self) -> Supply {
        Supply::decode(self.entries[&supply_key()].clone()).unwrap()
    }

    /// genesis + minted - burned == sum(balances) + escrow
    fn assert_invariant(&self) {
        let s = self.supply();
        let sum: u128 = self
            .entries
            .values()
            .filter_map(|v| Account::decode(v.clone()).ok())
            .map(|a| a.balance)
            .sum();
        assert_eq!(s.genesis + s.minted - s.burned, sum + s.escrowed);
    }
}

#[test]
fn transfer_moves_exact_amounts_and_splits_fee() {
    let (alice, bob, prop) = (key(1), key(2), key(3));
    let mut l = Ledger::new(&[(&alice, 100 * UNC)]);
    let out = l
        .run(
            &prop.public_key(),
            &[transfer(&alice, 0, &bob.public_key(), 30 * UNC, 1000)],
            Mode::Verify,
        )
        .unwrap();
    assert_eq!(out.receipts.len(), 1);
    assert_eq!(out.receipts[0].status, TxStatus::Ok);
    assert_eq!(out.receipts[0].fee_burned, 250);
    assert_eq!(out.receipts[0].fee_to_proposer, 750);
    assert_eq!(
        l.account(&alice),
        Account {
            balance: 70 * UNC - 1000,
            nonce: 1
        }
    );
    assert_eq!(l.account(&bob).balance, 30 * UNC);
    assert_eq!(l.account(&prop).balance, 750);
    assert_eq!(l.supply().burned, 250);
    l.assert_invariant();
}

#[test]
fn replay_and_gaps_invalidate_a_block_but_are_dropped_when_proposing() {
    let (alice, bob, prop) = (key(1), key(2), key(3));
    let mut l = Ledger::new(&[(&alice, 100 * UNC)]);
    let t0 = transfer(&alice, 0, &bob.public_key(), UNC, 10);
    l.run(&prop.public_key(), std::slice::from_ref(&t0), Mode::Verify)
        .unwrap();
    // Replaying the same transaction: nonce too low.
    assert_eq!(
        l.run(&prop.public_key(), std::slice::from_ref(&t0), Mode::Verify)
            .unwrap_err(),
        BlockError::Tx {
            index: 0,
            error: TxError::NonceTooLow {
                expected: 1,
                got: 0
            }
        }
    );
    // A gap.
    let t5 = transfer(&alice, 5, &bob.public_key(), UNC, 10);
    assert!(matches!(
        l.run(&prop.public_key(), std::slice::from_ref(&t5), Mode::Verify),
        Err(BlockError::Tx {
            error: TxError::NonceGap { .. },
            ..
        })
    ));
    // Proposing drops both and keeps the good one; the same tx twice in one block is a replay.
    let t1 = transfer(&alice, 1, &bob.public_key(), UNC, 10);
    let out = l
        .run(&prop.public_key(), &[t0, t1.clone(), t1, t5], Mode::Propose)
        .unwrap();
    assert_eq!(out.included, vec![1]);
    assert_eq!(out.excluded.len(), 3);
    assert_eq!(l.account(&alice).nonce, 2);
    l.assert_invariant();
}

#[test]
fn overdraft_fails_but_charges_fee_and_cannot_pay_fee_is_invalid() {
    let (alice, bob, prop) = (key(1), key(2), key(3));
    let mut l = Ledger::new(&[(&alice, 1000), (&bob, 5)]);
    let out = l
        .run(
            &prop.public_key(),
            &[transfer(&alice, 0, &bob.public_key(), 5000, 100)],
            Mode::Verify,
        )
        .unwrap();
    assert!(matches!(
        &out.receipts[0].status,
        TxStatus::Failed { code, .. } if code == "insufficient_balance"
    ));
    assert_eq!(
        l.account(&alice),
        Account {
            balance: 900,
            nonce: 1
        }
    );
    assert_eq!(l.account(&bob).balance, 5);
    // Bob cannot pay a fee of 10.
    let err = l
        .run(
            &prop.public_key(),
            &[transfer(&bob, 0, &alice.public_key(), 1, 10)],
            Mode::Verify,
        )
        .unwrap_err();
    assert_eq!(
        err,
        BlockError::Tx {
            index: 0,
            error: TxError::CannotPayFee {
                balance: 5,
                fee: 10
            }
        }
    );
    l.assert_invariant();
}

#[test]
fn invariant_holds_over_many_random_blocks() {
    let keys: Vec<_> = (0..8).map(key).collect();
    let funded: Vec<_> = keys.iter().map(|k| (k, 1_000_000u128)).collect();
    let mut l = Ledger::new(&funded);
    let mut nonces = [0u64; 8];
    let mut x: u64 = 42;
    for block in 0..200 {
        let mut txs = Vec::new();
        for _ in 0..10 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let from = (x >> 33) as usize % 8;
            let to = (x >> 40) as usize % 8;
            let amount = (x >> 20) as u128 % 300_000 + 1;
            txs.push(transfer(
                &keys[from],
                nonces[from],
                &keys[to].public_key(),
                amount,
                10 + (x % 50) as u128,
            ));
            nonces[from] += 1;
        }
        let proposer = keys[block % 8].public_key();
        let out = l.run(&proposer, &txs, Mode::Propose).unwrap();
        assert_eq!(
            out.included.len(),
            10,
            "all nonces were sequential and fees payable"
        );
        l.assert_invariant();
    }
    assert!(l.supply().burned > 0);
}

#[test]
fn corrupt_or_missing_pre_state_is_an_error_not_a_panic() {
    let (alice, bob, prop) = (key(1), key(2), key(3));
    let params = Params::default();
    let env = BlockEnv {
        chain_id: CHAIN,
        params: &params,
        proposer: prop.public_key(),
        height: 1,
        parent: Sha256::hash(&[b"p"]),
        timestamp_ms: 0,
        beacon: Sha256::hash(&[b"b"]),
        treasury: None,
    };
    let txs = [transfer(&alice, 0, &bob.public_key(), 1, UNC)];
    let mut pre: PreState = touched_keys(&env, &txs, &Default::default())
        .into_iter()
        .map(|k| (k, None))
        .collect();
    assert!(matches!(
        execute(&env, &pre, &txs, Mode::Verify),
        Err(BlockError::Corrupt(_))
    ));
    pre.insert(supply_key(), Some(Supply::default().encode().to_vec()));
    pre.insert(account_key(&alice.public_key()), Some(vec![1, 2, 3]));
    assert!(matches!(
        execute(&env, &pre, &txs, Mode::Verify),
        Err(BlockError::Corrupt(_))
    ));
    pre.remove(&account_key(&alice.public_key()));
    assert!(matches!(
        execute(&env, &pre, &txs, Mode::Verify),
        Err(BlockError::MissingKey(_))
    ));
}

#[test]
fn excluded_transactions_leave_no_writes() {
    // A proposer that drops every candidate must produce exactly the writes of an empty block,
    // or its state root would differ from what verifiers compute for the block it publishes.
    let (alice, bob, prop) = (key(1), key(2), key(3));
    let mut l = Ledger::new(&[(&alice, 100 * UNC)]);
    let stale = transfer(&alice, 7, &bob.public_key(), UNC, 10);
    let mut alternative = l.clone();
    let proposed = l.run(&prop.public_key(), &[stale], Mode::Propose).unwrap();
    let empty = alternative
        .run(&prop.public_key(), &[], Mode::Verify)
        .unwrap();
    assert!(proposed.included.is_empty());
    assert_eq!(proposed.writes, empty.writes);
    assert_eq!(
        empty.writes.len(),
        2,
        "only the supply entry and the anchor ring slot"
    );
}
