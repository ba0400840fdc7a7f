//! The daemon's view of its chips on chain, and reconciling it with the chain.
//!
//! The view is built from full chip reads (at every connection, every
//! `reconcile_every`, after a gap in the block stream and after a transaction failed) and
//! kept current between reads by the events of each block.

use super::{
    chain::{ChallengeEvent, ChipReading, ChipStatusEvent, MinerChain, RewardEvent},
    Miner,
};
use crate::state::InflightKind;
use anyhow::{anyhow, Result};
use tracing::{debug, info, warn};
use unet_types::{
    chip::{ChipId, ChipStatus},
    Digest,
};

/// A challenge of one of the miner's chips, open until its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Challenge {
    pub height: u64,
    pub beacon: Digest,
    /// Last block height the answer may land in.
    pub deadline: u64,
}

/// What the chain says about a chip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum OnChain {
    /// Not read yet.
    Unknown,
    /// Not registered.
    Missing,
    /// Registered to another owner.
    Foreign { owner: String },
    /// Registered to this miner's owner.
    Mine { status: ChipStatus },
}

impl Miner {
    /// Reads every chip from the chain; queues registrations and unanswered challenges.
    pub(super) async fn reconcile(&mut self, chain: &dyn MinerChain, initial: bool) -> Result<()> {
        let ids: Vec<ChipId> = self.chips.keys().copied().collect();
        let bar = self.bar(initial && ids.len() > 1, ids.len() as u64, "catching up");
        for chunk in ids.chunks(super::progress::BAR_STEP) {
            let readings = chain.chips(chunk).await?;
            for (id, reading) in chunk.iter().zip(readings) {
                self.apply_chip_view(id, reading)?;
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        self.update_gauges();
        if initial {
            let registered = self
                .view
                .values()
                .filter(|v| matches!(v, OnChain::Mine { .. }))
                .count();
            info!(
                chips = self.chips.len(),
                registered,
                to_register = self.to_register.len(),
                open_challenges = self.pending.len(),
                "caught up with the chain"
            );
        }
        Ok(())
    }

    /// Reads some chips (hex ids) again, after a failure.
    pub(super) async fn reread<'a>(
        &mut self,
        chain: &dyn MinerChain,
        chips: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let ids: Vec<ChipId> = chips.into_iter().filter_map(parse_hex_id).collect();
        let readings = chain.chips(&ids).await?;
        for (id, reading) in ids.iter().zip(readings) {
            self.apply_chip_view(id, reading)?;
        }
        Ok(())
    }

    /// Applies one chip read.
    pub(super) fn apply_chip_view(&mut self, id: &ChipId, reading: ChipReading) -> Result<()> {
        let window = self.chain()?.response_window;
        let idh = hex::encode(id);
        let c = match reading {
            ChipReading::Found(c) => c,
            ChipReading::NotFound => {
                if self
                    .view
                    .get(id)
                    .is_some_and(|v| matches!(v, OnChain::Mine { .. }))
                {
                    warn!(chip = %idh, "chip is no longer registered (deregistered); registering it again");
                }
                self.view.insert(*id, OnChain::Missing);
                self.pending.remove(id);
                if !self.register_in_flight(&idh) {
                    self.to_register.insert(*id);
                }
                return Ok(());
            }
            ChipReading::Error(e) => return Err(anyhow!("unet_getChip {idh}: {e}")),
        };
        self.to_register.remove(id);
        if c.owner != self.owner_hex {
            if self.reported.insert((*id, format!("foreign:{}", c.owner))) {
                warn!(chip = %idh, owner = %c.owner, "chip is registered to another owner (transferred?); not answering its challenges");
            }
            self.view.insert(*id, OnChain::Foreign { owner: c.owner });
            self.pending.remove(id);
            return Ok(());
        }
        let revoked = c.status == ChipStatus::Revoked;
        if revoked && self.reported.insert((*id, "revoked".into())) {
            warn!(chip = %idh, "chip is revoked by governance; it earns nothing and cannot be registered again");
        }
        if let Some(total) = c.rewards_total {
            self.rewards_base.insert(*id, total);
        }
        self.view.insert(*id, OnChain::Mine { status: c.status });
        if revoked {
            self.pending.remove(id);
            return Ok(());
        }
        if let Some(p) = c.pending_challenge {
            self.note_challenge(*id, p.height, p.beacon, p.height + window);
        }
        Ok(())
    }

    /// A challenge of one of our chips: remembered, and queued unless already answered.
    fn note_challenge(&mut self, id: ChipId, height: u64, beacon: Digest, deadline: u64) {
        let idh = hex::encode(id);
        self.state.last_challenge.insert(idh.clone(), height);
        if !self.state.is_answered(&idh, height) {
            self.pending.insert(
                id,
                Challenge {
                    height,
                    beacon,
                    deadline,
                },
            );
        }
    }

    fn register_in_flight(&self, idh: &str) -> bool {
        self.state
            .inflight
            .iter()
            .any(|t| matches!(&t.what, InflightKind::Register { chip_id } if chip_id == idh))
    }

    /// Registered to our owner and not revoked.
    pub(super) fn is_mine(&self, id: &ChipId) -> bool {
        matches!(self.view.get(id), Some(OnChain::Mine { status }) if *status != ChipStatus::Revoked)
    }

    pub(super) fn on_challenges(&mut self, events: &[ChallengeEvent]) {
        let Some(window) = self.chain.as_ref().map(|c| c.response_window) else {
            return;
        };
        for e in events {
            if !self.chips.contains_key(&e.chip_id) {
                continue;
            }
            let deadline = e.deadline.unwrap_or(e.height + window);
            debug!(chip = %hex::encode(e.chip_id), height = e.height, deadline, "challenged");
            self.note_challenge(e.chip_id, e.height, e.beacon, deadline);
        }
    }

    pub(super) fn on_chip_status(&mut self, events: &[ChipStatusEvent]) {
        for e in events {
            if !self.chips.contains_key(&e.chip_id) {
                continue;
            }
            let (idh, reason) = (hex::encode(e.chip_id), e.reason.as_str());
            match e.to {
                ChipStatus::Online => info!(chip = %idh, reason, "chip is Online again"),
                ChipStatus::Unresponsive => warn!(chip = %idh, reason, "chip became Unresponsive"),
                ChipStatus::Revoked => warn!(chip = %idh, reason, "chip was revoked"),
            }
            if let Some(OnChain::Mine { status }) = self.view.get_mut(&e.chip_id) {
                *status = e.to;
            }
        }
        self.update_gauges();
    }

    pub(super) fn on_rewards(&mut self, events: &[RewardEvent]) {
        for e in events {
            if !self.chips.contains_key(&e.chip_id) || e.owner != self.owner_hex {
                continue;
            }
            *self.rewards_base.entry(e.chip_id).or_default() += e.amount;
            debug!(chip = %hex::encode(e.chip_id), epoch = e.epoch, amount = %e.amount, "reward");
        }
        self.update_gauges();
    }

    /// Challenges whose last block has passed without our answer landing are misses.
    pub(super) fn expire(&mut self, height: u64) {
        let expired: Vec<(ChipId, Challenge)> = self
            .pending
            .iter()
            .filter(|(_, c)| c.deadline <= height)
            .map(|(id, c)| (*id, *c))
            .collect();
        for (id, c) in expired {
            self.pending.remove(&id);
            let idh = hex::encode(id);
            let in_flight = self.state.inflight.iter().any(|t| match &t.what {
                InflightKind::Liveness { responses } => {
                    responses.iter().any(|(ch, h)| *ch == idh && *h == c.height)
                }
                _ => false,
            });
            if in_flight {
                // Its answer may still have landed in time; the receipt decides.
                continue;
            }
            self.state.totals.missed += 1;
            self.metrics.challenges_missed.inc();
            warn!(chip = %idh, challenge = c.height, deadline = c.deadline, "challenge window closed without an answer");
        }
    }

    /// The challenge of `chip` at `height` is settled (its answer applied): no longer open.
    pub(super) fn close_challenge(&mut self, chip: &str, height: u64) {
        if let Some(id) = parse_hex_id(chip) {
            if self.pending.get(&id).is_some_and(|c| c.height == height) {
                self.pending.remove(&id);
            }
        }
    }
}

/// A chip id from its hex form (as kept in the state file).
pub(super) fn parse_hex_id(s: &str) -> Option<ChipId> {
    hex::decode(s).ok()?.try_into().ok()
}
