//! Emission and its payment to chip owners.
//!
//! Every block adds the network's online compute to the epoch's total weight. At the first
//! block of epoch `X` the total of epoch `X - 1` is frozen with that epoch's emission into a
//! [`Settlement`], and a cursor pays every chip of the registry, `ceil(n / (L/2))` chips per
//! block, so an epoch is fully paid within the first half of the next one. A chip's share is
//! `floor(emission * chip_weight / total_weight)`; chips that were revoked, or that missed
//! `max_misses_per_epoch` challenges in the epoch, forfeit theirs. When the cursor reaches the
//! end, the rounding dust plus forfeits go to the treasury (or stay unminted without one).
//! Nothing here scans every chip in one block.

use crate::{
    events::Event, liveness::epoch_weight, readset::ReadSet, registry::is_revoked,
    tally::BlockTally, working::Working, BlockEnv, BlockError,
};
use unet_types::{
    chip::{Chip, ChipStatus},
    keys::{chip_index_key, chip_key, Supply},
    rewards::{
        epoch_emission, epoch_rewards_key, epoch_state_key, epochs_per_era, mul_div_floor,
        owner_rewards_key, EpochRewards, EpochState, Settlement,
    },
    Address, Params,
};

/// Reward reads: the epoch state, the treasury's account, and the chips the settlement
/// cursor pays in this block (their registry slots; each settled chip brings its owner's
/// account and reward tally of the settled epoch, see [`ReadSet::settled_chip`]).
/// `chip_count` is `None` without a registry.
pub(crate) fn reads(rs: &mut ReadSet<'_>, env: &BlockEnv<'_>, chip_count: Option<u64>) {
    if let Some(t) = &env.treasury {
        rs.account(t);
    }
    let state: Option<EpochState> = rs.read(epoch_state_key());
    let (Some(state), Some(count)) = (state, chip_count) else {
        return;
    };
    for (epoch, from, to) in cursor_ranges(&state, env.params, env.height, count) {
        for pos in from..to {
            if let Some(id) = rs.chip_at(pos) {
                rs.settled_chip(id, epoch);
            }
        }
    }
}

/// Chips the cursor settles per block for a settlement over `end` chips.
pub fn settle_batch(end: u64, epoch_length: u64) -> u64 {
    let half = (epoch_length / 2).max(1);
    end.div_ceil(half)
}

/// What the cursor will do in this block: (settlement epoch, first index, end index), for
/// the settlement finished at the epoch boundary (if any) and the one stepped.
pub fn cursor_ranges(
    state: &EpochState,
    params: &Params,
    height: u64,
    chip_count: u64,
) -> Vec<(u64, u64, u64)> {
    let mut ranges = Vec::new();
    let l = params.epoch_length.max(1);
    let mut settling = state.settling;
    if height > 0 && height.is_multiple_of(l) {
        if let Some(s) = settling {
            if s.cursor < s.end {
                ranges.push((s.epoch, s.cursor, s.end));
            }
        }
        settling = Some(Settlement {
            epoch: height / l - 1,
            end: chip_count,
            ..Default::default()
        });
    }
    if let Some(s) = settling {
        if s.cursor < s.end {
            let to = s.end.min(s.cursor + settle_batch(s.end, l));
            ranges.push((s.epoch, s.cursor, to));
        }
    }
    ranges
}

/// Start of a block that opens a new epoch: finish the previous settlement and freeze the
/// epoch that just ended.
pub(crate) fn roll_epoch(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    env: &BlockEnv<'_>,
    state: &mut EpochState,
    supply: &mut Supply,
    treasury: Option<&Address>,
    chip_count: u64,
) -> Result<(), BlockError> {
    let l = env.params.epoch_length.max(1);
    if env.height == 0 || !env.height.is_multiple_of(l) {
        return Ok(());
    }
    if let Some(mut s) = state.settling.take() {
        let end = s.end;
        settle_range(w, tally, env, &mut s, end, supply)?;
        finish(w, tally, &mut s, supply, treasury)?;
    }
    let ended = env.height / l - 1;
    let per_era = epochs_per_era(env.params.halving_blocks, l);
    let remaining = unet_types::rewards::MINED_CAP.saturating_sub(supply.minted);
    let emission = if state.weight == 0 {
        0
    } else {
        epoch_emission(ended, per_era).min(remaining)
    };
    state.settling = Some(Settlement {
        epoch: ended,
        emission,
        total_weight: state.weight,
        end: chip_count,
        ..Default::default()
    });
    state.epoch = tally.epoch;
    state.weight = 0;
    Ok(())
}

/// One cursor step (after the block's transactions).
pub(crate) fn step(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    env: &BlockEnv<'_>,
    state: &mut EpochState,
    supply: &mut Supply,
    treasury: Option<&Address>,
) -> Result<(), BlockError> {
    let Some(mut s) = state.settling else {
        return Ok(());
    };
    if s.cursor < s.end {
        let to = s
            .end
            .min(s.cursor + settle_batch(s.end, env.params.epoch_length));
        settle_range(w, tally, env, &mut s, to, supply)?;
        if s.cursor >= s.end {
            finish(w, tally, &mut s, supply, treasury)?;
            state.settling = None;
            return Ok(());
        }
        state.settling = Some(s);
    }
    Ok(())
}

fn settle_range(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    env: &BlockEnv<'_>,
    s: &mut Settlement,
    to: u64,
    supply: &mut Supply,
) -> Result<(), BlockError> {
    let l = env.params.epoch_length.max(1);
    while s.cursor < to {
        let index = s.cursor;
        s.cursor += 1;
        let Some(id) = w.get::<[u8; 32]>(&chip_index_key(index))? else {
            continue;
        };
        let key = chip_key(&id);
        let Some(mut chip) = w.get::<Chip>(&key)? else {
            continue;
        };
        if chip.live.settled > s.epoch {
            continue;
        }
        let weight = epoch_weight(&chip, s.epoch, l).min(s.total_weight);
        chip.live.settled = s.epoch + 1;
        // Shares never add up past the emission (they cannot with consistent weights: this
        // only bounds what a corrupt record could mint).
        let unpaid = s
            .emission
            .saturating_sub(s.paid.saturating_add(s.forfeited));
        let share = mul_div_floor(s.emission, weight, s.total_weight).min(unpaid);
        let forfeit = chip.status == ChipStatus::Revoked
            || is_revoked(w, &chip)?
            || chip.live.misses_in(s.epoch) >= env.params.max_misses_per_epoch;
        if share > 0 && forfeit {
            s.forfeited = s.forfeited.saturating_add(share);
        } else if share > 0 {
            pay(w, &chip.owner, share, supply)?;
            let key = owner_rewards_key(&chip.owner, s.epoch);
            let before: u128 = w.get(&key)?.unwrap_or(0);
            w.put(key, &before.saturating_add(share));
            s.paid = s.paid.saturating_add(share);
            s.chips_paid += 1;
            chip.live.record_reward(s.epoch, share);
            tally.events.push(Event::Reward {
                chip_id: id,
                owner: chip.owner.clone(),
                epoch: s.epoch,
                amount: share,
            });
        }
        w.put(key, &chip);
    }
    Ok(())
}

fn pay(
    w: &mut Working<'_>,
    to: &Address,
    amount: u128,
    supply: &mut Supply,
) -> Result<(), BlockError> {
    let mut account = w.account(to)?;
    account.balance += amount;
    w.set_account(to, account);
    supply.minted += amount;
    Ok(())
}

fn finish(
    w: &mut Working<'_>,
    tally: &mut BlockTally,
    s: &mut Settlement,
    supply: &mut Supply,
    treasury: Option<&Address>,
) -> Result<(), BlockError> {
    let rest = s.emission.checked_sub(s.paid).ok_or_else(|| {
        BlockError::Corrupt(format!(
            "settlement of epoch {} paid {} of an emission of {}",
            s.epoch, s.paid, s.emission
        ))
    })?;
    let to_treasury = match treasury {
        Some(t) if rest > 0 => {
            pay(w, t, rest, supply)?;
            rest
        }
        _ => 0,
    };
    w.put(
        epoch_rewards_key(s.epoch),
        &EpochRewards {
            settlement: *s,
            to_treasury,
        },
    );
    tally.events.push(Event::EpochSettled {
        epoch: s.epoch,
        emission: s.emission,
        paid: s.paid,
        to_treasury,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::working::PreState;
    use unet_types::rewards::Settlement;

    /// A settlement that paid more than its emission is a corrupt state: finishing it is an
    /// explicit error, never an underflow.
    #[test]
    fn finishing_an_overpaid_settlement_is_an_error() {
        let pre = PreState::default();
        let mut w = Working::new(&pre);
        let mut tally = BlockTally::new(10, 5, Default::default());
        let mut supply = Supply::default();
        let mut s = Settlement {
            epoch: 1,
            emission: 5,
            paid: 6,
            ..Default::default()
        };
        let r = finish(&mut w, &mut tally, &mut s, &mut supply, None);
        assert!(matches!(r, Err(BlockError::Corrupt(m)) if m.contains("paid 6")));
        s.paid = 5;
        assert!(finish(&mut w, &mut tally, &mut s, &mut supply, None).is_ok());
    }
}
