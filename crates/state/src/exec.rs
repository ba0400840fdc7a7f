//! Block execution: the ledger rules and the dispatch of every payload.

use crate::{
    registry::{self, PociError},
    working::{PreState, Working},
    Receipt, TxStatus,
};
use std::collections::{BTreeMap, BTreeSet};
use unet_types::{
    chip::GovAction,
    chip::{BlockHashEntry, Registry},
    keys::{
        account_key, block_hash_key, chip_index_key, chip_key, owner_chips_key, registry_key,
        revoked_cert_key, revoked_chip_key, supply_key, Supply,
    },
    Address, Digest, Params, Payload, SignedTx, TxError,
};

/// What execution may know about the block besides its transactions.
#[derive(Clone, Debug)]
pub struct BlockEnv<'a> {
    pub chain_id: u64,
    pub params: &'a Params,
    /// Receives the non-burned part of every fee.
    pub proposer: Address,
    pub height: u64,
    /// Digest of the parent block (recorded as an anchor for registration nonces).
    pub parent: Digest,
    pub timestamp_ms: u64,
    /// The block's random beacon (challenges are drawn from it).
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
    #[error("too many chip registrations (max {0} per block)")]
    TooManyRegistrations(u32),
    #[error("pre-state entry {0} is missing (caller did not load a touched key)")]
    MissingKey(String),
    #[error("stored entry {0} is corrupt")]
    Corrupt(String),
}

/// Result of executing a block.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// New values of every changed key (`None` = deleted).
    pub writes: BTreeMap<Digest, Option<Vec<u8>>>,
    /// One receipt per included transaction, in order.
    pub receipts: Vec<Receipt>,
    /// Indices (into the input) of the transactions included; all of them in `Verify` mode.
    pub included: Vec<usize>,
    /// Transactions left out in `Propose` mode, with the reason.
    pub excluded: Vec<(usize, TxError)>,
    /// Supply counters after the block.
    pub supply: Supply,
}

/// Every key execution may read or write for these transactions, given the registry as it is
/// before the block (it says where new chips go in the chip index).
pub fn touched_keys(env: &BlockEnv<'_>, txs: &[SignedTx], registry: &Registry) -> BTreeSet<Digest> {
    let window = env.params.registration_window.max(1);
    let mut keys = BTreeSet::new();
    keys.insert(supply_key());
    keys.insert(registry_key());
    keys.insert(account_key(&env.proposer));
    keys.insert(block_hash_key(env.height.saturating_sub(1) % window));
    let mut registrations = 0u64;
    for stx in txs {
        let sender = &stx.tx.sender;
        keys.insert(account_key(sender));
        match &stx.tx.payload {
            Payload::Transfer { to, .. } => {
                keys.insert(account_key(to));
            }
            Payload::RegisterChip {
                anchor_height,
                evidence,
            } => {
                registry::registration_keys(&mut keys, sender, *anchor_height, window, evidence);
                keys.insert(chip_index_key(registry.chip_count + registrations));
                registrations += 1;
            }
            Payload::TransferChip { chip_id, to } => {
                keys.insert(chip_key(chip_id));
                keys.insert(owner_chips_key(sender));
                keys.insert(owner_chips_key(to));
            }
            Payload::DeregisterChip { chip_id } => {
                keys.insert(chip_key(chip_id));
                keys.insert(owner_chips_key(sender));
            }
            Payload::Govern { action, .. } => match action {
                GovAction::RevokeChip { chip_id } => {
                    keys.insert(chip_key(chip_id));
                    keys.insert(revoked_chip_key(chip_id));
                }
                GovAction::RevokeCertificate { fingerprint } => {
                    keys.insert(revoked_cert_key(fingerprint));
                }
                _ => {}
            },
        }
    }
    keys
}

/// Applies `txs` to the pre-state.
///
/// First the block records its parent's hash in the anchor ring. Then, per transaction: the
/// nonce must equal the sender's nonce and the sender must be able to pay the fee (else the
/// transaction is excluded when proposing, or the block is invalid when verifying); the fee
/// is charged and the nonce consumed; `fee * fee_burn_bps / 10_000` is burned and the rest
/// credited to the proposer; then the payload runs, and if it cannot, the receipt says
/// `failed` (with the check that failed) and nothing else changes.
///
/// Stateless checks (signature, chain id, fee floor) are the caller's job: see
/// [`crate::check_stateless_batch`].
pub fn execute(
    env: &BlockEnv<'_>,
    pre: &PreState,
    txs: &[SignedTx],
    mode: Mode,
) -> Result<Outcome, BlockError> {
    let mut w = Working::new(pre);
    let mut supply: Supply = w
        .get(&supply_key())?
        .ok_or_else(|| BlockError::Corrupt("supply entry absent".into()))?;
    let mut registry = registry::load(&w)?;
    let registry_before = registry.clone();
    let mut trust = None;
    let window = env.params.registration_window.max(1);
    if env.height > 0 {
        w.put(
            block_hash_key((env.height - 1) % window),
            &BlockHashEntry {
                height: env.height - 1,
                hash: env.parent,
            },
        );
    }
    let mut out = Outcome::default();
    let mut registrations = 0u32;

    for (index, stx) in txs.iter().enumerate() {
        let tx = &stx.tx;
        let mut sender = w.account(&tx.sender)?;
        let is_registration = matches!(tx.payload, Payload::RegisterChip { .. });
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
        if is_registration {
            if registrations >= env.params.max_registrations_per_block {
                match mode {
                    Mode::Propose => {
                        out.excluded.push((index, TxError::MempoolFull));
                        continue;
                    }
                    Mode::Verify => {
                        return Err(BlockError::TooManyRegistrations(
                            env.params.max_registrations_per_block,
                        ))
                    }
                }
            }
            registrations += 1;
        }

        // Charge the fee and consume the nonce.
        sender.balance -= tx.fee;
        sender.nonce += 1;
        w.set_account(&tx.sender, sender);
        let fee_burned = tx.fee * u128::from(env.params.fee_burn_bps) / 10_000;
        let fee_to_proposer = tx.fee - fee_burned;
        supply.burned += fee_burned;
        let mut proposer = w.account(&env.proposer)?;
        proposer.balance += fee_to_proposer;
        w.set_account(&env.proposer, proposer);

        let status = match &tx.payload {
            Payload::Transfer { to, amount } => {
                let mut sender = w.account(&tx.sender)?;
                if sender.balance < *amount {
                    failed_tx(TxError::InsufficientBalance {
                        balance: sender.balance,
                        needed: *amount,
                    })
                } else {
                    sender.balance -= amount;
                    w.set_account(&tx.sender, sender);
                    let mut recipient = w.account(to)?;
                    recipient.balance += amount;
                    w.set_account(to, recipient);
                    TxStatus::Ok
                }
            }
            Payload::RegisterChip {
                anchor_height,
                evidence,
            } => {
                let trust = trust.get_or_insert_with(|| registry::trust_store(&registry));
                poci_status(
                    registry::register(
                        &mut w,
                        env,
                        &mut registry,
                        trust,
                        &tx.sender,
                        *anchor_height,
                        evidence,
                    )?
                    .map(|_| ()),
                )
            }
            Payload::TransferChip { chip_id, to } => {
                poci_status(registry::transfer(&mut w, &tx.sender, chip_id, to)?)
            }
            Payload::DeregisterChip { chip_id } => {
                poci_status(registry::deregister(&mut w, &tx.sender, chip_id)?)
            }
            Payload::Govern { action, approvals } => {
                let r = registry::govern(&mut w, env, &mut registry, action, approvals)?;
                // Roots may have changed: rebuild the trust store when next needed.
                trust = None;
                poci_status(r)
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

    if registry != registry_before {
        w.put(registry_key(), &registry);
    }
    w.put(supply_key(), &supply);
    out.writes = w.into_writes();
    out.supply = supply;
    Ok(out)
}

fn failed_tx(e: TxError) -> TxStatus {
    TxStatus::Failed {
        code: e.code().into(),
        reason: e.to_string(),
    }
}

fn poci_status(r: Result<(), PociError>) -> TxStatus {
    match r {
        Ok(()) => TxStatus::Ok,
        Err(e) => TxStatus::Failed {
            code: e.code(),
            reason: e.to_string(),
        },
    }
}
