//! Online proofs: issuing challenges from the beacon, expiring unanswered ones, accepting
//! answers, and the chip status changes they cause.
//!
//! A chip counts as online for block `b` when it is Online at the end of `b`. Every status
//! change keeps three counters exact: the network's online compute (per model), the owner's
//! online compute (validator weight), and the chip's accrued online weight per epoch.

use crate::{
    answers::{check_proof, Proofs},
    events::Event,
    readset::ReadSet,
    registry::is_revoked,
    tally::{BlockTally, RouteStatus, StatusChange},
    working::Working,
    BlockEnv, BlockError,
};
use std::collections::BTreeSet;
use unet_types::{
    chip::{Chip, ChipId, ChipList, ChipRefs, ChipStatus, GovAction, Registry},
    epoch::{epoch_of, last_height},
    keys::{chip_index_key, chip_key},
    liveness::{
        challenge_due_key, challenge_positions, network_compute_key, owner_compute_floor_key,
        owner_compute_key, response_digest, ComputeFloor, LivenessResponse, Pending,
    },
    Address, Payload, SignedTx,
};

/// Liveness reads: the network's compute counters, the chips challenged at this block's
/// beacon (their registry slots), the chips whose challenge expires now, and every chip an
/// answer names, each with its chain's revocation entries ([`ReadSet::chip_record`]).
///
/// A chip's owner's compute entries and chip list ([`ReadSet::chip`]) are read only where
/// the rule may change the chip's status:
/// - a challenge revokes a chip a certificate of whose chain is revoked: one revoked in the
///   loaded state (or whose revocation entries are not loaded yet), or any chip when the
///   block revokes a certificate (before the challenges, which come last);
/// - an expiry takes offline a chip whose expiring challenge is still pending in the
///   loaded state (nothing before `expire_challenges` changes it);
/// - an answer brings back a chip Unresponsive in the loaded state. Nothing in the block
///   makes a chip Unresponsive before its answers but an expiry, and an expired challenge
///   can no longer be answered (the window has closed).
///
/// A chip that changes hands in the block is read in full by the registry's rule, with the
/// new owner's entries. `chip_count` is `None` without a registry.
pub(crate) fn reads(
    rs: &mut ReadSet<'_>,
    env: &BlockEnv<'_>,
    txs: &[SignedTx],
    chip_count: Option<u64>,
) {
    rs.touch(network_compute_key());
    let revokes_certificates = txs.iter().any(|t| {
        matches!(
            t.tx.payload,
            Payload::Govern {
                action: GovAction::RevokeCertificate { .. },
                ..
            }
        )
    });
    if let Some(count) = chip_count {
        for pos in challenged_positions(env, count) {
            if let Some(id) = rs.chip_at(pos) {
                rs.chip_record(id);
                rs.affect(id);
                // Once its record is loaded (a record not loaded yet makes the round wait).
                let loaded = rs.chip_status(&id).is_some();
                if loaded && (revokes_certificates || rs.chain_revoked(&id) != Some(false)) {
                    rs.chip(id);
                }
            }
        }
    }
    if let Some(ChipList(due)) = rs.read(challenge_due_key(env.height)) {
        let issued = expiring_height(env);
        for id in due {
            rs.chip_record(id);
            if rs.pending_challenge(&id) == Some(Some(issued)) {
                rs.chip(id);
                rs.affect(id);
            }
        }
    }
    for stx in txs {
        if let Payload::Liveness { responses } = &stx.tx.payload {
            for r in responses {
                rs.chip_record(r.chip_id);
                if rs.chip_status(&r.chip_id) == Some(Some(ChipStatus::Unresponsive)) {
                    rs.chip(r.chip_id);
                }
            }
        }
    }
}

/// Why one answer of a liveness payload was skipped (listed in the receipt's `skipped`; when
/// no answer applies, the receipt says `failed` with the first one's code).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LivenessError {
    /// The answer names no registered chip.
    #[error("response {index}: no registered chip {chip}")]
    UnknownChip {
        /// Position of the answer in the transaction.
        index: usize,
        /// The chip, hex id.
        chip: String,
    },
    /// The chip has no challenge pending at the answered height.
    #[error("response {index}: chip {chip} has no pending challenge at height {height}")]
    NotChallenged {
        /// Position of the answer in the transaction.
        index: usize,
        /// The chip, hex id.
        chip: String,
        /// The challenge height the answer names.
        height: u64,
    },
    /// The answer came after the challenge's response window closed.
    #[error("response {index}: the challenge at height {height} closed at height {deadline}")]
    Late {
        /// Position of the answer in the transaction.
        index: usize,
        /// The challenge height the answer names.
        height: u64,
        /// The last block in which an answer counted.
        deadline: u64,
    },
    /// The chip's challenge at this height was already answered (earlier in the block or
    /// in an earlier block).
    #[error("response {index}: chip {chip}'s challenge at height {height} is already answered")]
    AlreadyAnswered {
        /// Position of the answer in the transaction.
        index: usize,
        /// The chip, hex id.
        chip: String,
        /// The challenge height.
        height: u64,
    },
    /// The chip answers twice in one transaction.
    #[error("response {index}: chip {chip} answered twice in one transaction")]
    Duplicate {
        /// Position of the second answer in the transaction.
        index: usize,
        /// The chip, hex id.
        chip: String,
    },
    /// The proof does not verify with the chip's registered key.
    #[error("response {index}: proof does not verify with chip {chip}'s key: {reason}")]
    BadProof {
        /// Position of the answer in the transaction.
        index: usize,
        /// The chip, hex id.
        chip: String,
        /// What the verifier refused.
        reason: String,
    },
    /// The chip is revoked: its answers no longer count.
    #[error("response {index}: chip {chip} is revoked")]
    Revoked {
        /// Position of the answer in the transaction.
        index: usize,
        /// The chip, hex id.
        chip: String,
    },
}

impl LivenessError {
    /// The receipt code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownChip { .. } => "liveness_unknown_chip",
            Self::NotChallenged { .. } => "liveness_not_challenged",
            Self::AlreadyAnswered { .. } => "liveness_already_answered",
            Self::Late { .. } => "liveness_late",
            Self::Duplicate { .. } => "liveness_duplicate",
            Self::BadProof { .. } => "liveness_bad_proof",
            Self::Revoked { .. } => "liveness_revoked",
        }
    }

    /// Position of the answer in its transaction.
    pub fn index(&self) -> usize {
        match self {
            Self::UnknownChip { index, .. }
            | Self::NotChallenged { index, .. }
            | Self::AlreadyAnswered { index, .. }
            | Self::Late { index, .. }
            | Self::Duplicate { index, .. }
            | Self::BadProof { index, .. }
            | Self::Revoked { index, .. } => *index,
        }
    }
}

fn hex(id: &[u8]) -> String {
    ::hex::encode(id)
}

/// Changes an account's online compute, keeping its floor over the epoch (validator weight,
/// see [`ComputeFloor`]) up to date.
fn adjust_owner(
    w: &mut Working<'_>,
    epoch: u64,
    owner: &Address,
    compute: u64,
    online: bool,
) -> Result<(), BlockError> {
    let key = owner_compute_key(owner);
    let cur: u128 = w.get(&key)?.unwrap_or(0);
    let next = if online {
        cur.saturating_add(u128::from(compute))
    } else {
        cur.saturating_sub(u128::from(compute))
    };
    if next == cur {
        return Ok(());
    }
    if next == 0 {
        w.delete(key);
    } else {
        w.put(key, &next);
    }
    let floor_key = owner_compute_floor_key(owner);
    let floor = ComputeFloor::after_change(w.get(&floor_key)?, epoch, cur, next);
    if floor.min == 0 && next == 0 {
        // Absent reads as "unchanged since": a floor of 0 at a compute of 0, the same thing.
        if w.raw(&floor_key)?.is_some() {
            w.delete(floor_key);
        }
    } else {
        w.put(floor_key, &floor);
    }
    Ok(())
}

/// Moves an Online chip's compute from one owner to another (chip transfer).
pub(crate) fn move_owner_compute(
    w: &mut Working<'_>,
    tally: &BlockTally,
    from: &Address,
    to: &Address,
    compute: u64,
) -> Result<(), BlockError> {
    adjust_owner(w, tally.epoch, from, compute, false)?;
    adjust_owner(w, tally.epoch, to, compute, true)
}

/// Counts a chip as Online from this block on (a new registration: no status change event).
pub(crate) fn count_online(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    registry: &Registry,
    chip: &mut Chip,
) -> Result<(), BlockError> {
    let compute = registry
        .model(&chip.model)
        .map_or(0, |m| m.compute_milli_tops);
    chip.status = ChipStatus::Online;
    chip.live.compute = compute;
    chip.live.online_since = tally.height;
    tally.net.adjust(&chip.model, compute, true);
    adjust_owner(w, tally.epoch, &chip.owner, compute, true)
}

/// Makes a chip Online from this block on (a recovering answer); the change, if any, is for
/// the caller to route.
fn set_online(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    registry: &Registry,
    chip_id: &ChipId,
    chip: &mut Chip,
    reason: &str,
) -> Result<Option<StatusChange>, BlockError> {
    if chip.status == ChipStatus::Online {
        return Ok(None);
    }
    let from = chip.status;
    count_online(w, tally, registry, chip)?;
    Ok(Some(StatusChange {
        chip_id: *chip_id,
        from,
        to: ChipStatus::Online,
        reason: reason.into(),
    }))
}

/// Takes a chip out of Online (a miss, a revocation, deregistration); its online interval
/// `[online_since, height - 1]` is credited to the epochs it spans. `to` is never Online.
///
/// The counters change here; the returned change is for the caller to route (the market
/// closes the chip's lease, the event is recorded), even when the status stays the same.
pub(crate) fn set_offline(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    chip_id: &ChipId,
    chip: &mut Chip,
    to: ChipStatus,
    reason: &str,
) -> Result<StatusChange, BlockError> {
    let from = chip.status;
    if from == ChipStatus::Online {
        close_interval(chip, tally.height, tally.epoch_length);
        tally.net.adjust(&chip.model, chip.live.compute, false);
        adjust_owner(w, tally.epoch, &chip.owner, chip.live.compute, false)?;
        chip.live.online_since = 0;
    }
    chip.status = to;
    Ok(StatusChange {
        chip_id: *chip_id,
        from,
        to,
        reason: reason.into(),
    })
}

/// Credits the open interval `[online_since, height - 1]` to the chip's unsettled epochs.
fn close_interval(chip: &mut Chip, height: u64, epoch_length: u64) {
    let since = chip.live.online_since;
    if height == 0 || since > height - 1 {
        return;
    }
    let last = height - 1;
    let compute = u128::from(chip.live.compute);
    let first_epoch = epoch_of(since, epoch_length).max(chip.live.settled);
    for e in first_epoch..=epoch_of(last, epoch_length) {
        let lo = since.max(e.saturating_mul(epoch_length));
        let hi = last.min(last_height(e, epoch_length));
        if lo <= hi {
            chip.live.accrue(e, compute * (u128::from(hi - lo) + 1));
        }
    }
}

/// Online weight of `chip` in `epoch` (closed intervals plus the open one, if any).
pub(crate) fn epoch_weight(chip: &Chip, epoch: u64, epoch_length: u64) -> u128 {
    let mut weight = chip.live.closed_weight(epoch);
    if chip.status == ChipStatus::Online {
        let lo = chip
            .live
            .online_since
            .max(epoch.saturating_mul(epoch_length));
        let hi = last_height(epoch, epoch_length);
        if lo <= hi {
            weight += u128::from(chip.live.compute) * (u128::from(hi - lo) + 1);
        }
    }
    weight
}

/// Chip ids challenged at this block's beacon (what [`issue_challenges`] will look at).
pub(crate) fn challenged_positions(env: &BlockEnv<'_>, chip_count: u64) -> Vec<u64> {
    challenge_positions(
        &env.beacon,
        env.height,
        chip_count,
        env.params.challenges_per_epoch,
        env.params.epoch_length,
    )
}

/// The height of the challenges this block expires: `response_window + 1` blocks ago.
fn expiring_height(env: &BlockEnv<'_>) -> u64 {
    env.height
        .saturating_sub(env.params.response_window.saturating_add(1))
}

/// Start of the block: every challenge issued `response_window + 1` blocks ago that is still
/// pending is a miss.
pub(crate) fn expire_challenges(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    env: &BlockEnv<'_>,
    route: RouteStatus,
) -> Result<(), BlockError> {
    let due_key = challenge_due_key(env.height);
    let Some(ChipList(ids)) = w.get(&due_key)? else {
        return Ok(());
    };
    let issued = expiring_height(env);
    for id in ids {
        let key = chip_key(&id);
        // Almost every due chip answered in time: read its pending challenge alone and decode
        // the whole record (its owner's key is the costly part) only for a chip that missed.
        // `ChipRefs` refuses what `Chip` refuses but an owner that is not a curve point, which
        // no block writes (every chip record written was encoded from a decoded `Chip`).
        let Some(refs) = w.get::<ChipRefs>(&key)? else {
            continue;
        };
        if refs.pending != Some(issued) {
            continue;
        }
        let Some(mut chip) = w.get::<Chip>(&key)? else {
            continue;
        };
        chip.live.pending = None;
        chip.live.record_miss(tally.epoch);
        if chip.status == ChipStatus::Online {
            let change = set_offline(
                w,
                tally,
                &id,
                &mut chip,
                ChipStatus::Unresponsive,
                &format!("missed the challenge of height {issued}"),
            )?;
            route(w, tally, change)?;
        }
        w.put(chip_key(&id), &chip);
    }
    w.delete(due_key);
    Ok(())
}

/// End of the block: challenge the chips the beacon selects (revoked ones and ones already
/// waiting on a challenge are skipped).
pub(crate) fn issue_challenges(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    env: &BlockEnv<'_>,
    chip_count: u64,
    route: RouteStatus,
) -> Result<(), BlockError> {
    // Saturating: with extreme parameters near the end of the height range a challenge simply
    // never expires (no block `u64::MAX + 1` exists).
    let deadline = env.height.saturating_add(env.params.response_window);
    let mut due = Vec::new();
    let mut seen = BTreeSet::new();
    for pos in challenged_positions(env, chip_count) {
        let Some(id) = w.get::<[u8; 32]>(&chip_index_key(pos))? else {
            continue;
        };
        if !seen.insert(id) {
            continue;
        }
        let Some(mut chip) = w.get::<Chip>(&chip_key(&id))? else {
            continue;
        };
        if chip.status == ChipStatus::Revoked || chip.live.pending.is_some() {
            continue;
        }
        if is_revoked(w, &chip)? {
            let change = set_offline(
                w,
                tally,
                &id,
                &mut chip,
                ChipStatus::Revoked,
                "a certificate in its chain was revoked",
            )?;
            route(w, tally, change)?;
            w.put(chip_key(&id), &chip);
            continue;
        }
        chip.live.pending = Some(Pending {
            height: env.height,
            beacon: env.beacon,
        });
        chip.live.last_challenge = env.height;
        w.put(chip_key(&id), &chip);
        due.push(id);
        tally.events.push(Event::Challenge {
            chip_id: id,
            height: env.height,
            beacon: env.beacon,
            deadline,
        });
    }
    if !due.is_empty() {
        if let Some(expiry) = deadline.checked_add(1) {
            w.put(challenge_due_key(expiry), &ChipList(due));
        }
    }
    Ok(())
}

/// What a `Liveness` payload did.
#[derive(Debug, Default)]
pub(crate) struct Answered {
    /// Answers applied.
    pub applied: usize,
    /// Answers skipped, by position in the payload, with why.
    pub skipped: Vec<LivenessError>,
}

/// A `Liveness` payload: each answer is judged on its own. A valid answer to a pending
/// challenge applies; any other is skipped with its reason, and the rest still apply.
///
/// Answers are not bound to the sender: an answer is the chip's own signature over the
/// challenge, so whoever relays it helps the chip. Judging them one by one means nobody can
/// void a miner's batch by landing a copy of one of its answers first (that answer is then
/// `liveness_already_answered` and the others apply).
#[allow(clippy::too_many_arguments)]
pub(crate) fn answer(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    env: &BlockEnv<'_>,
    registry: &Registry,
    trust: &unet_poci::TrustStore,
    responses: &[LivenessResponse],
    proofs: &Proofs,
    tx_index: usize,
    route: RouteStatus,
) -> Result<Answered, BlockError> {
    let mut seen = BTreeSet::new();
    let mut out = Answered::default();
    for (index, r) in responses.iter().enumerate() {
        if !seen.insert(r.chip_id) {
            out.skipped.push(LivenessError::Duplicate {
                index,
                chip: hex(&r.chip_id),
            });
            continue;
        }
        let chip = w.take_chip(&chip_key(&r.chip_id))?;
        match check_answer(w, env, trust, r, chip, index, proofs.get(tx_index, index))? {
            Ok(mut chip) => {
                chip.live.pending = None;
                chip.live.last_response = env.height;
                if chip.status == ChipStatus::Unresponsive {
                    let change = set_online(
                        w,
                        tally,
                        registry,
                        &r.chip_id,
                        &mut chip,
                        "answered a challenge",
                    )?;
                    if let Some(change) = change {
                        route(w, tally, change)?;
                    }
                }
                w.put(chip_key(&r.chip_id), &chip);
                out.applied += 1;
            }
            Err(e) => out.skipped.push(e),
        }
    }
    Ok(out)
}

/// Checks one answer against the current state: the chip it answers for, if it applies.
fn check_answer(
    w: &Working<'_>,
    env: &BlockEnv<'_>,
    trust: &unet_poci::TrustStore,
    r: &LivenessResponse,
    chip: Option<Chip>,
    index: usize,
    preverified: Option<&Result<(), String>>,
) -> Result<Result<Chip, LivenessError>, BlockError> {
    let window = env.params.response_window;
    let chip_hex = || hex(&r.chip_id);
    let Some(chip) = chip else {
        return Ok(Err(LivenessError::UnknownChip {
            index,
            chip: chip_hex(),
        }));
    };
    // `challenge_height` comes from the sender: a deadline past the height range is in the
    // future, never an overflow.
    if let Some(deadline) = r.challenge_height.checked_add(window) {
        if deadline < env.height {
            return Ok(Err(LivenessError::Late {
                index,
                height: r.challenge_height,
                deadline,
            }));
        }
    }
    let Some(pending) = chip.live.pending.filter(|p| p.height == r.challenge_height) else {
        // Answered already (in this block, by another transaction, or earlier): the chip's
        // last accepted answer lies in that challenge's window.
        let answered = chip.live.last_response > r.challenge_height
            && chip.live.last_response <= r.challenge_height.saturating_add(window)
            && chip.live.last_challenge >= r.challenge_height;
        return Ok(Err(if answered {
            LivenessError::AlreadyAnswered {
                index,
                chip: chip_hex(),
                height: r.challenge_height,
            }
        } else {
            LivenessError::NotChallenged {
                index,
                chip: chip_hex(),
                height: r.challenge_height,
            }
        }));
    };
    if is_revoked(w, &chip)? {
        return Ok(Err(LivenessError::Revoked {
            index,
            chip: chip_hex(),
        }));
    }
    let digest = response_digest(env.chain_id, pending.height, &pending.beacon, &r.chip_id);
    let verdict = match preverified {
        Some(v) => v.clone(),
        None => check_proof(env, &chip, &r.chip_id, &digest, &r.proof, trust),
    };
    if let Err(reason) = verdict {
        return Ok(Err(LivenessError::BadProof {
            index,
            chip: chip_hex(),
            reason,
        }));
    }
    Ok(Ok(chip))
}
