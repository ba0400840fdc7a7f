//! Block execution: the ledger rules and the dispatch of every payload.

use crate::{
    answers, liveness, market,
    readset::ReadSet,
    registry::{self, PociError},
    rewards,
    tally::{BlockTally, StatusChange},
    validators,
    working::{PreState, Working},
    Event, Receipt, SkippedAnswer, TxStatus,
};
use std::collections::BTreeMap;
use unet_types::{
    chip::{BlockHashEntry, Chip, ChipStatus, GovAction},
    keys::{block_hash_key, chip_key, registry_key, supply_key, Supply},
    liveness::{network_compute_key, NetworkCompute},
    rewards::{epoch_state_key, EpochState},
    Address, Digest, Params, Payload, SignedTx, TxError,
};

/// What execution may know about the block besides its transactions.
#[derive(Clone, Debug)]
pub struct BlockEnv<'a> {
    /// The chain the block belongs to (transactions are signed for it).
    pub chain_id: u64,
    /// The chain's parameters (from genesis).
    pub params: &'a Params,
    /// Receives the non-burned part of every fee.
    pub proposer: Address,
    /// Height of the block being executed.
    pub height: u64,
    /// Digest of the parent block (recorded as an anchor for registration nonces).
    pub parent: Digest,
    /// The block's timestamp, Unix ms, as agreed by consensus (registration evidence is checked
    /// against it); never the local clock.
    pub timestamp_ms: u64,
    /// The block's random beacon (challenges are drawn from it).
    pub beacon: Digest,
    /// Receives reward dust and forfeited rewards (from genesis).
    pub treasury: Option<Address>,
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
    /// A transaction that must not be in a block (see [`Mode::Verify`]).
    #[error("transaction {index} invalid: {error}")]
    Tx {
        /// Its position in the block.
        index: usize,
        /// Why it cannot be applied.
        error: TxError,
    },
    /// More chip registrations than the per-block maximum (the maximum).
    #[error("too many chip registrations (max {0} per block)")]
    TooManyRegistrations(u32),
    /// The caller did not load a key that execution touched (a bug of the caller, not of the
    /// block).
    #[error("pre-state entry {0} is missing (caller did not load a touched key)")]
    MissingKey(String),
    /// A stored entry does not decode: the store is damaged.
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
    /// Protocol events (status changes, challenges, rewards, committees).
    pub events: Vec<Event>,
}

/// The ledger's reads: the supply counters, the registry, the anchor ring slot this block
/// writes, and the accounts fees and transfers move (the proposer, every sender, every
/// transfer's recipient).
pub(crate) fn reads(rs: &mut ReadSet<'_>, env: &BlockEnv<'_>, txs: &[SignedTx]) {
    let window = env.params.registration_window.max(1);
    rs.touch(supply_key());
    rs.touch(registry_key());
    rs.touch(block_hash_key(env.height.saturating_sub(1) % window));
    rs.account(&env.proposer);
    for stx in txs {
        rs.account(&stx.tx.sender);
        if let Payload::Transfer { to, .. } = &stx.tx.payload {
            rs.account(to);
        }
    }
}

/// Routes a chip's status change: the market first (a chip that left Online loses its
/// lease), then the event. Every rule that changes a chip's status hands the change here.
fn route_status(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    change: StatusChange,
) -> Result<(), BlockError> {
    if change.to != ChipStatus::Online {
        market::chip_down(w, tally, &change.chip_id, change.to)?;
    }
    if change.from != change.to {
        tally.events.push(Event::ChipStatus {
            chip_id: change.chip_id,
            from: change.from,
            to: change.to,
            reason: change.reason,
        });
    }
    Ok(())
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
    execute_with(env, pre, txs, mode, &|_| false)
}

/// [`execute`], skipping the signature check of every liveness answer whose
/// [`crate::answer_key`] (derived from the pre-state and the answer's proof) is
/// `known_answers`: answers this node verified itself at admission ([`crate::admit_answer`]).
/// The result is the same as [`execute`]'s for any `known_answers` that only holds keys of
/// answers that verified; see `answers.rs` for why a leader cannot abuse it.
pub fn execute_with(
    env: &BlockEnv<'_>,
    pre: &PreState,
    txs: &[SignedTx],
    mode: Mode,
    known_answers: &(dyn Fn(&Digest) -> bool + Sync),
) -> Result<Outcome, BlockError> {
    let mut w = Working::new(pre);
    let mut supply: Supply = w
        .get(&supply_key())?
        .ok_or_else(|| BlockError::Corrupt("supply entry absent".into()))?;
    let mut registry = registry::load(&w)?;
    let registry_before = registry.clone();
    let chip_count = registry.chip_count;
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
    let net_before: NetworkCompute = w.get(&network_compute_key())?.unwrap_or_default();
    let epoch_state_before: EpochState = w.get(&epoch_state_key())?.unwrap_or_default();
    let mut epoch_state = epoch_state_before;
    let mut tally = BlockTally::new(
        env.height,
        env.params.epoch_length.max(1),
        net_before.clone(),
    );
    let treasury = env.treasury.as_ref();
    rewards::roll_epoch(
        &mut w,
        &mut tally,
        env,
        &mut epoch_state,
        &mut supply,
        treasury,
        chip_count,
    )?;
    validators::choose_committee(&mut w, env, &mut tally.events)?;
    let proofs = if txs
        .iter()
        .any(|t| matches!(t.tx.payload, Payload::Liveness { .. }))
    {
        let trust = trust.get_or_insert_with(|| registry::trust_store(&registry));
        answers::preverify(&mut w, env, trust, txs, known_answers)?
    } else {
        Default::default()
    };
    liveness::expire_challenges(&mut w, &mut tally, env, route_status)?;
    market::settle_due(&mut w, &mut tally)?;
    let mut out = Outcome {
        receipts: Vec::with_capacity(txs.len()),
        included: Vec::with_capacity(txs.len()),
        ..Outcome::default()
    };
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

        let mut skipped = Vec::new();
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
                let r = registry::register(
                    &mut w,
                    env,
                    &mut registry,
                    trust,
                    &tx.sender,
                    *anchor_height,
                    evidence,
                )?;
                if let Ok(id) = &r {
                    let mut chip = chip_at(&w, id)?;
                    chip.live.settled = tally.epoch;
                    liveness::count_online(&mut w, &mut tally, &registry, &mut chip)?;
                    w.put(chip_key(id), &chip);
                }
                poci_status(r.map(|_| ()))
            }
            Payload::TransferChip { chip_id, to } => {
                let before: Option<Chip> = w.get(&chip_key(chip_id))?;
                let r = registry::transfer(&mut w, &tx.sender, chip_id, to)?;
                if let (Ok(()), Some(chip)) = (&r, &before) {
                    if chip.owner != *to {
                        market::chip_removed(&mut w, &mut tally, chip_id)?;
                    }
                }
                if let (Ok(()), Some(chip)) = (&r, before) {
                    if chip.status == ChipStatus::Online && chip.owner != *to {
                        liveness::move_owner_compute(
                            &mut w,
                            &tally,
                            &chip.owner,
                            to,
                            chip.live.compute,
                        )?;
                    }
                }
                poci_status(r)
            }
            Payload::DeregisterChip { chip_id } => {
                let before: Option<Chip> = w.get(&chip_key(chip_id))?;
                let r = registry::deregister(&mut w, &tx.sender, chip_id)?;
                if r.is_ok() {
                    market::chip_removed(&mut w, &mut tally, chip_id)?;
                }
                if let (Ok(()), Some(mut chip)) = (&r, before) {
                    let change = liveness::set_offline(
                        &mut w,
                        &mut tally,
                        chip_id,
                        &mut chip,
                        ChipStatus::Unresponsive,
                        "deregistered",
                    )?;
                    route_status(&mut w, &mut tally, change)?;
                }
                poci_status(r)
            }
            Payload::Govern { action, approvals } => {
                let r = registry::govern(&mut w, env, &mut registry, action, approvals)?;
                if let (Ok(()), GovAction::RevokeChip { chip_id }) = (&r, action) {
                    if let Some(mut chip) = w.get::<Chip>(&chip_key(chip_id))? {
                        let change = liveness::set_offline(
                            &mut w,
                            &mut tally,
                            chip_id,
                            &mut chip,
                            ChipStatus::Revoked,
                            "revoked by governance",
                        )?;
                        route_status(&mut w, &mut tally, change)?;
                        w.put(chip_key(chip_id), &chip);
                    }
                }
                // Roots may have changed: rebuild the trust store when next needed.
                trust = None;
                poci_status(r)
            }
            Payload::Liveness { responses } => {
                let trust = trust.get_or_insert_with(|| registry::trust_store(&registry));
                let r = liveness::answer(
                    &mut w,
                    &mut tally,
                    env,
                    &registry,
                    trust,
                    responses,
                    &proofs,
                    index,
                    route_status,
                )?;
                let status = liveness_status(&r);
                skipped = r
                    .skipped
                    .iter()
                    .map(|e| SkippedAnswer {
                        index: e.index() as u32,
                        chip_id: responses.get(e.index()).map_or([0; 32], |r| r.chip_id),
                        code: e.code().into(),
                        reason: e.to_string(),
                    })
                    .collect();
                status
            }
            Payload::RegisterValidator {
                node_key,
                p2p_address,
            } => validator_status(validators::register(
                &mut w,
                env,
                &tx.sender,
                node_key,
                p2p_address,
            )?),
            Payload::DeregisterValidator => {
                validator_status(validators::deregister(&mut w, &tx.sender)?)
            }
            Payload::CreateOffer { .. }
            | Payload::UpdateOffer { .. }
            | Payload::WithdrawOffer { .. }
            | Payload::OpenLease { .. }
            | Payload::TopUp { .. }
            | Payload::CloseLease { .. } => {
                market_status(market::apply(&mut w, &mut tally, &tx.sender, &tx.payload)?)
            }
        };
        out.receipts.push(Receipt {
            tx_hash: stx.hash(),
            index: out.included.len() as u32,
            status,
            fee_burned,
            fee_to_proposer,
            skipped,
        });
        out.included.push(index);
    }

    liveness::issue_challenges(&mut w, &mut tally, env, chip_count, route_status)?;
    rewards::step(
        &mut w,
        &mut tally,
        env,
        &mut epoch_state,
        &mut supply,
        treasury,
    )?;
    epoch_state.weight += tally.net.online_compute;
    if epoch_state != epoch_state_before {
        w.put(epoch_state_key(), &epoch_state);
    }
    if tally.net != net_before {
        w.put(network_compute_key(), &tally.net);
    }
    if registry != registry_before {
        w.put(registry_key(), &registry);
    }
    supply.escrowed = supply
        .escrowed
        .checked_add(tally.escrow_in)
        .and_then(|e| e.checked_sub(tally.escrow_out))
        .ok_or_else(|| BlockError::Corrupt("market escrow below zero".into()))?;
    w.put(supply_key(), &supply);
    out.writes = w.into_writes();
    out.supply = supply;
    out.events = tally.events;
    Ok(out)
}

fn chip_at(w: &Working<'_>, id: &[u8; 32]) -> Result<Chip, BlockError> {
    w.get(&chip_key(id))?.ok_or_else(|| {
        BlockError::Corrupt(format!("chip {} just written is absent", hex::encode(id)))
    })
}

/// `ok` when at least one answer applied (skipped ones are listed in the receipt), else
/// `failed` with the first skipped answer's code.
fn liveness_status(r: &liveness::Answered) -> TxStatus {
    match r.skipped.first() {
        Some(e) if r.applied == 0 => TxStatus::Failed {
            code: e.code().into(),
            reason: format!("no answer applied; first: {e}"),
        },
        _ => TxStatus::Ok,
    }
}

fn validator_status(r: Result<(), validators::ValidatorError>) -> TxStatus {
    match r {
        Ok(()) => TxStatus::Ok,
        Err(e) => TxStatus::Failed {
            code: e.code().into(),
            reason: e.to_string(),
        },
    }
}

fn market_status(r: Result<(), unet_types::market::MarketError>) -> TxStatus {
    match r {
        Ok(()) => TxStatus::Ok,
        Err(e) => TxStatus::Failed {
            code: e.code().into(),
            reason: e.to_string(),
        },
    }
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
