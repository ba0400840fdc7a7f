//! Block execution: the ledger rules.

use crate::{Receipt, TxStatus};
use commonware_codec::{DecodeExt, Encode};
use std::collections::{BTreeMap, BTreeSet};
use unet_types::{
    keys::{account_key, supply_key, Account, Supply},
    Address, Digest, Params, Payload, SignedTx, TxError,
};

/// Values of the keys a block touches, as they were before the block (`None` = absent).
pub type PreState = BTreeMap<Digest, Option<Vec<u8>>>;

/// What execution may know about the block besides its transactions.
#[derive(Clone, Debug)]
pub struct BlockEnv<'a> {
    pub chain_id: u64,
    pub params: &'a Params,
    /// Receives the non-burned part of every fee.
    pub proposer: Address,
    pub height: u64,
    pub timestamp_ms: u64,
    /// The block's random beacon (unused by the ledger; later modules draw challenges from it).
    pub beacon: Digest,
}

/// How to treat a transaction that cannot be applied at all (bad nonce, cannot pay its fee).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Building a block: leave such transactions out.
    Propose,
    /// Checking a peer's block: such a transaction makes the whole block invalid.
    Verify,
}

/// Why a block is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("transaction {index} invalid: {error}")]
    Tx { index: usize, error: TxError },
    #[error("pre-state entry {0} is missing (caller did not load a touched key)")]
    MissingKey(String),
    #[error("stored entry {0} is corrupt")]
    Corrupt(String),
}

/// Result of executing a block.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// New values of every changed key.
    pub writes: BTreeMap<Digest, Vec<u8>>,
    /// One receipt per included transaction, in order.
    pub receipts: Vec<Receipt>,
    /// Indices (into the input) of the transactions included; all of them in `Verify` mode.
    pub included: Vec<usize>,
    /// Transactions left out in `Propose` mode, with the reason.
    pub excluded: Vec<(usize, TxError)>,
    /// Supply counters after the block.
    pub supply: Supply,
}

/// Every key execution may read or write for these transactions.
pub fn touched_keys(txs: &[SignedTx], proposer: &Address) -> BTreeSet<Digest> {
    let mut keys = BTreeSet::new();
    keys.insert(supply_key());
    keys.insert(account_key(proposer));
    for stx in txs {
        keys.insert(account_key(&stx.tx.sender));
        match &stx.tx.payload {
            Payload::Transfer { to, .. } => {
                keys.insert(account_key(to));
            }
        }
    }
    keys
}

/// Working set over the pre-state.
struct Working<'a> {
    pre: &'a PreState,
    accounts: BTreeMap<Digest, Account>,
    /// Keys written (only these become writes: rewriting an unchanged entry would still
    /// change the authenticated store's root).
    dirty: BTreeSet<Digest>,
}

impl Working<'_> {
    fn account(&mut self, address: &Address) -> Result<Account, BlockError> {
        let key = account_key(address);
        if let Some(a) = self.accounts.get(&key) {
            return Ok(*a);
        }
        let account = match self.pre.get(&key) {
            None => return Err(BlockError::MissingKey(hex(&key))),
            Some(None) => Account::default(),
            Some(Some(bytes)) => {
                Account::decode(bytes.clone()).map_err(|_| BlockError::Corrupt(hex(&key)))?
            }
        };
        self.accounts.insert(key, account);
        Ok(account)
    }

    fn set(&mut self, address: &Address, account: Account) {
        let key = account_key(address);
        self.accounts.insert(key, account);
        self.dirty.insert(key);
    }
}

fn hex(d: &Digest) -> String {
    unet_types::tx::hash_hex(d)
}

/// Applies `txs` to the pre-state under the ledger rules.
///
/// Per transaction: the nonce must equal the sender's nonce and the sender must be able to pay
/// the fee (else the transaction is excluded when proposing, or the block is invalid when
/// verifying); the fee is charged and the nonce consumed; `fee * fee_burn_bps / 10_000` is
/// burned and the rest credited to the proposer; then the payload runs, and if it cannot (a
/// transfer above the balance) the receipt says `Failed` and nothing else changes.
///
/// Stateless checks (signature, chain id, fee floor) are the caller's job: see
/// [`crate::check_stateless_batch`].
pub fn execute(
    env: &BlockEnv<'_>,
    pre: &PreState,
    txs: &[SignedTx],
    mode: Mode,
) -> Result<Outcome, BlockError> {
    let supply_bytes = pre
        .get(&supply_key())
        .ok_or_else(|| BlockError::MissingKey("supply".into()))?;
    let mut supply = match supply_bytes {
        Some(bytes) => {
            Supply::decode(bytes.clone()).map_err(|_| BlockError::Corrupt("supply".into()))?
        }
        None => return Err(BlockError::Corrupt("supply entry absent".into())),
    };
    let mut work = Working {
        pre,
        accounts: BTreeMap::new(),
        dirty: BTreeSet::new(),
    };
    let mut out = Outcome::default();

    for (index, stx) in txs.iter().enumerate() {
        let tx = &stx.tx;
        let mut sender = work.account(&tx.sender)?;
        let admission = if tx.nonce < sender.nonce {
            Err(TxError::NonceTooLow {
                expected: sender.nonce,
                got: tx.nonce,
            })
        } else if tx.nonce > sender.nonce {
            Err(TxError::NonceGap {
                expected: sender.nonce,
                got: tx.nonce,
            })
        } else if sender.balance < tx.fee {
            Err(TxError::CannotPayFee {
                balance: sender.balance,
                fee: tx.fee,
            })
        } else {
            Ok(())
        };
        if let Err(error) = admission {
            match mode {
                Mode::Propose => {
                    out.excluded.push((index, error));
                    continue;
                }
                Mode::Verify => return Err(BlockError::Tx { index, error }),
            }
        }

        // Charge the fee and consume the nonce.
        sender.balance -= tx.fee;
        sender.nonce += 1;
        work.set(&tx.sender, sender);
        let fee_burned = tx.fee * u128::from(env.params.fee_burn_bps) / 10_000;
        let fee_to_proposer = tx.fee - fee_burned;
        supply.burned += fee_burned;
        let mut proposer = work.account(&env.proposer)?;
        proposer.balance += fee_to_proposer;
        work.set(&env.proposer, proposer);

        let status = match &tx.payload {
            Payload::Transfer { to, amount } => {
                let mut sender = work.account(&tx.sender)?;
                if sender.balance < *amount {
                    let e = TxError::InsufficientBalance {
                        balance: sender.balance,
                        needed: *amount,
                    };
                    TxStatus::Failed {
                        code: e.code().into(),
                        reason: e.to_string(),
                    }
                } else {
                    sender.balance -= amount;
                    work.set(&tx.sender, sender);
                    let mut recipient = work.account(to)?;
                    recipient.balance += amount;
                    work.set(to, recipient);
                    TxStatus::Ok
                }
            }
        };
        out.receipts.push(Receipt {
            tx_hash: stx.hash(),
            index: out.included.len() as u32,
            status,
            fee_burned,
            fee_to_proposer,
        });
        out.included.push(index);
    }

    for key in &work.dirty {
        out.writes.insert(*key, work.accounts[key].encode().to_vec());
    }
    out.writes.insert(supply_key(), supply.encode().to_vec());
    out.supply = supply;
    Ok(out)
}
