//! Online proofs: challenges, responses, per-chip liveness records and the network's online
//! compute counters.
//!
//! ```text
//! LivenessResponse := chip_id [32] | challenge_height u64 | proof bytes (<= 24 KiB)
//! ChipLiveness     := compute u64 | online_since u64 | cur (epoch u64, weight u128)
//!                   | prev (epoch u64, weight u128) | settled u64 | misses (epoch u64, count u32)
//!                   | prev_misses (epoch u64, count u32)
//!                   | pending option<(height u64, beacon [32])> | last_challenge u64
//!                   | last_response u64 | recent_rewards 4 x (epoch u64, amount u128)
//!                   | total_rewards u128
//! NetworkCompute   := online_chips u64 | online_compute u128 | models vec<(name str, chips u64,
//!                     compute u128)>
//! ComputeFloor     := epoch u64 | min u128
//! ```
//!
//! A chip answers the challenge issued at height `h` by signing, with its hardware DeviceID
//! key, [`response_digest`]`(chain_id, h, beacon_h, chip_id)`, where `beacon_h` is the beacon of
//! block `h`. The answer must land in a block `h + 1 ..= h + response_window`. Chips whose
//! DeviceID key cannot sign arbitrary data (NVIDIA) answer with a fresh attestation report
//! whose requester nonce is that digest.

use crate::{chip::ChipId, Address, Amount, Digest};
use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_cryptography::{Hasher, Sha256};

/// Domain of the digest a chip signs to answer a challenge.
pub const RESPONSE_DOMAIN: &[u8] = b"UNET_LIVENESS_V1";
/// Largest proof a chip may send: an ECDSA signature (64-104 bytes) or, for chips that answer
/// with a fresh attestation, a whole evidence container.
pub const MAX_RESPONSE_PROOF: usize = crate::chip::MAX_EVIDENCE;
/// Most responses in one transaction (one miner answers for many chips at once).
pub const MAX_RESPONSES_PER_TX: usize = 128;

/// The 32-byte digest a chip signs to answer the challenge issued at `height`.
pub fn response_digest(chain_id: u64, height: u64, beacon: &Digest, chip_id: &ChipId) -> [u8; 32] {
    crate::chip::digest32(Sha256::hash(&[
        RESPONSE_DOMAIN,
        &chain_id.to_be_bytes(),
        &height.to_be_bytes(),
        beacon.as_ref(),
        chip_id,
    ]))
}

/// Which registry positions the beacon of a block challenges.
///
/// Challenge `j` of the block falls on chip index `H("UNET_CHALLENGE" || beacon || j) mod
/// chip_count`. The number of challenges of the block at position `i` of its epoch is
/// `floor(c * n * (i + 1) / L) - floor(c * n * i / L)`, so an epoch issues exactly
/// `c * n` challenges (n = registry size at each block) and each chip is challenged `c` times
/// per epoch on average. Cost follows the number selected, never the number of chips.
pub fn challenge_positions(
    beacon: &Digest,
    height: u64,
    chip_count: u64,
    challenges_per_epoch: u32,
    epoch_length: u64,
) -> Vec<u64> {
    if chip_count == 0 || challenges_per_epoch == 0 {
        return Vec::new();
    }
    let l = u128::from(epoch_length.max(1));
    let i = u128::from(height % epoch_length.max(1));
    let total = u128::from(challenges_per_epoch) * u128::from(chip_count);
    let count = (total * (i + 1) / l - total * i / l) as u64;
    (0..count)
        .map(|j| {
            let h = Sha256::hash(&[b"UNET_CHALLENGE", beacon.as_ref(), &j.to_be_bytes()]);
            let mut b = [0u8; 8];
            b.copy_from_slice(&h.as_ref()[..8]);
            u64::from_be_bytes(b) % chip_count
        })
        .collect()
}

/// Key of the list of chips whose challenge expires at the start of block `height`.
pub fn challenge_due_key(height: u64) -> Digest {
    Sha256::hash(&[b"unet/due", &height.to_be_bytes()])
}

/// Key of the network-wide online compute counters.
pub fn network_compute_key() -> Digest {
    Sha256::hash(&[b"unet/network_compute"])
}

/// Key of an account's online attested compute (u128 milli-TOPS).
pub fn owner_compute_key(owner: &Address) -> Digest {
    Sha256::hash(&[b"unet/owner_compute", owner.as_ref()])
}

/// Key of the lowest value an account's online compute took in its last changed epoch
/// ([`ComputeFloor`]).
pub fn owner_compute_floor_key(owner: &Address) -> Digest {
    Sha256::hash(&[b"unet/owner_compute_floor", owner.as_ref()])
}

/// Both keys a change of an account's online compute reads and writes.
pub fn owner_compute_keys(owner: &Address) -> [Digest; 2] {
    owner_compute_keys_raw(owner.as_ref())
}

/// [`owner_compute_keys`] from the owner key's bytes.
pub fn owner_compute_keys_raw(owner: &[u8]) -> [Digest; 2] {
    [
        Sha256::hash(&[b"unet/owner_compute", owner]),
        Sha256::hash(&[b"unet/owner_compute_floor", owner]),
    ]
}

/// The lowest value an account's online compute took during `epoch`, counting its value when
/// the epoch began and after every change in it (also between two changes of one block).
///
/// Written whenever the account's compute changes; absent, or recorded for an earlier epoch,
/// means the compute has not changed since, so its floor over any later epoch is its current
/// value. Validator weight is read through [`compute_floor`], so compute that was lent to an
/// account for a few blocks does not count, and the floors of all accounts over one epoch sum
/// to at most the network's online compute at any block of it (a chip counts once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ComputeFloor {
    /// The epoch the floor is for.
    pub epoch: u64,
    /// Lowest online compute (milli-TOPS) the account had during `epoch` so far.
    pub min: u128,
}

impl ComputeFloor {
    /// The record after the account's compute changes from `before` to `after` in `epoch`.
    pub fn after_change(record: Option<Self>, epoch: u64, before: u128, after: u128) -> Self {
        let mut floor = match record {
            Some(r) if r.epoch == epoch => r,
            // First change of the epoch: the compute was `before` since the epoch began.
            _ => Self { epoch, min: before },
        };
        floor.min = floor.min.min(before).min(after);
        floor
    }
}

/// An account's online compute floor over `epoch`, from its record and its current compute
/// `now`. For the epoch in progress this is the floor so far.
///
/// A record newer than `epoch` means the compute changed after it, which loses the floor of
/// `epoch`: that reads as 0 (the state transition only asks about the current epoch and, at
/// an epoch's first block before anything changes, the one that just ended).
pub fn compute_floor(record: Option<ComputeFloor>, epoch: u64, now: u128) -> u128 {
    match record {
        Some(r) if r.epoch == epoch => r.min.min(now),
        Some(r) if r.epoch > epoch => 0,
        _ => now,
    }
}

/// One chip's answer to its pending challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivenessResponse {
    /// The answering chip.
    pub chip_id: ChipId,
    /// Height of the challenge answered (the block that drew it).
    pub challenge_height: u64,
    /// Raw `r || s` ECDSA signature by the chip's DeviceID key over [`response_digest`], or a
    /// fresh attestation container with that digest as its nonce (NVIDIA).
    pub proof: Vec<u8>,
}

impl Write for LivenessResponse {
    fn write(&self, buf: &mut impl BufMut) {
        self.chip_id.write(buf);
        self.challenge_height.write(buf);
        self.proof.write(buf);
    }
}

impl EncodeSize for LivenessResponse {
    fn encode_size(&self) -> usize {
        self.chip_id.encode_size() + self.challenge_height.encode_size() + self.proof.encode_size()
    }
}

impl Read for LivenessResponse {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            chip_id: <[u8; 32]>::read(buf)?,
            challenge_height: u64::read(buf)?,
            proof: Vec::<u8>::read_cfg(buf, &(RangeCfg::from(..=MAX_RESPONSE_PROOF), ()))?,
        })
    }
}

/// A challenge waiting for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Height of the block that drew the challenge.
    pub height: u64,
    /// That block's beacon, which the answer signs ([`response_digest`]).
    pub beacon: Digest,
}

/// Online weight (rated compute x blocks) a chip accrued in one epoch from intervals that have
/// closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpochBlocks {
    /// The epoch the weight accrued in.
    pub epoch: u64,
    /// Rated compute (milli-TOPS) x online blocks, summed over closed intervals.
    pub weight: u128,
}

/// Liveness and reward bookkeeping of one chip (kept inside its [`crate::chip::Chip`] record).
///
/// A chip counts as online for block `b` when it is Online at the end of `b`. While Online,
/// the open interval `[online_since, now]` is not yet in `cur`/`prev`; it is split over epochs
/// when it closes or when the chip's epoch is settled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChipLiveness {
    /// Rated compute (milli-TOPS) counted for this chip while it is online (the model's rating
    /// when the chip last came online).
    pub compute: u64,
    /// Height from which the chip has been Online without a break (the open interval's start).
    pub online_since: u64,
    /// Weight accrued in the chip's latest epoch from closed intervals.
    pub cur: EpochBlocks,
    /// Weight accrued in the epoch before `cur`, kept until that epoch is paid.
    pub prev: EpochBlocks,
    /// Epochs `< settled` are paid (0 = none yet).
    pub settled: u64,
    /// Misses of the latest epoch in which the chip missed a challenge.
    pub misses: EpochMisses,
    /// Misses of the epoch before that, kept while that epoch is not paid yet (the cursor
    /// pays epoch `e` during `e + 1`, after the chip may already have missed in `e + 1`).
    pub prev_misses: EpochMisses,
    /// The challenge the chip has not answered yet, if any.
    pub pending: Option<Pending>,
    /// Height of the last challenge issued to the chip (0 = never).
    pub last_challenge: u64,
    /// Height of the last accepted answer (0 = never).
    pub last_response: u64,
    /// Rewards of the last [`RECENT_REWARDS`] paid epochs, newest first (older ones are only
    /// in `total_rewards` and the owner's per-epoch tallies).
    pub recent_rewards: [EpochReward; RECENT_REWARDS],
    /// Everything the chip has earned, base units.
    pub total_rewards: Amount,
}

/// Paid epochs a chip record remembers individually.
pub const RECENT_REWARDS: usize = 4;

/// Misses counted in one epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpochMisses {
    /// The epoch counted.
    pub epoch: u64,
    /// Challenges the chip missed in that epoch.
    pub count: u32,
}

/// A reward paid for one epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpochReward {
    /// The epoch paid.
    pub epoch: u64,
    /// Base units paid to the chip's owner for it.
    pub amount: Amount,
}

impl ChipLiveness {
    /// Adds `weight` (compute x online blocks) of `epoch` from a closed interval. Epochs older than the
    /// previous slot are already settled (the settlement cursor pays an epoch during the next
    /// one), so they are dropped.
    pub fn accrue(&mut self, epoch: u64, weight: u128) {
        if weight == 0 || epoch < self.settled {
            return;
        }
        if epoch == self.cur.epoch {
            self.cur.weight = self.cur.weight.saturating_add(weight);
        } else if epoch > self.cur.epoch {
            if self.cur.weight > 0 && self.cur.epoch >= self.settled {
                self.prev = self.cur;
            }
            self.cur = EpochBlocks { epoch, weight };
        } else if epoch == self.prev.epoch {
            self.prev.weight = self.prev.weight.saturating_add(weight);
        } else {
            self.prev = EpochBlocks { epoch, weight };
        }
    }

    /// Closed-interval weight recorded for `epoch`.
    pub fn closed_weight(&self, epoch: u64) -> u128 {
        if self.cur.epoch == epoch {
            self.cur.weight
        } else if self.prev.epoch == epoch {
            self.prev.weight
        } else {
            0
        }
    }

    /// Records a paid reward.
    pub fn record_reward(&mut self, epoch: u64, amount: Amount) {
        self.recent_rewards.rotate_right(1);
        self.recent_rewards[0] = EpochReward { epoch, amount };
        self.total_rewards += amount;
    }

    /// The reward paid for `epoch`, if it is among the recent ones.
    pub fn reward_of(&self, epoch: u64) -> Option<Amount> {
        self.recent_rewards
            .iter()
            .find(|r| r.amount > 0 && r.epoch == epoch)
            .map(|r| r.amount)
    }

    /// Misses in `epoch` (for the two latest epochs with misses).
    pub fn misses_in(&self, epoch: u64) -> u32 {
        if self.misses.epoch == epoch {
            self.misses.count
        } else if self.prev_misses.epoch == epoch {
            self.prev_misses.count
        } else {
            0
        }
    }

    /// Counts a miss in `epoch` (epochs only move forward). The misses of an earlier epoch
    /// move to `prev_misses` while that epoch is unpaid (`>= settled`), so the penalty of an
    /// epoch still applies when the chip misses again in the next one before it is paid.
    /// Only epochs `settled - 1`.. and later can be unpaid at once (the cursor finishes an
    /// epoch by the end of the next), so two slots are enough.
    pub fn record_miss(&mut self, epoch: u64) {
        if self.misses.count > 0 && self.misses.epoch == epoch {
            self.misses.count = self.misses.count.saturating_add(1);
            return;
        }
        if self.prev_misses.count > 0 && self.prev_misses.epoch == epoch {
            self.prev_misses.count = self.prev_misses.count.saturating_add(1);
            return;
        }
        self.prev_misses = if self.misses.count > 0 && self.misses.epoch >= self.settled {
            self.misses
        } else {
            EpochMisses::default()
        };
        self.misses = EpochMisses { epoch, count: 1 };
    }
}

impl Write for EpochBlocks {
    fn write(&self, buf: &mut impl BufMut) {
        self.epoch.write(buf);
        self.weight.write(buf);
    }
}

impl Read for EpochBlocks {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            epoch: u64::read(buf)?,
            weight: u128::read(buf)?,
        })
    }
}

impl Write for ChipLiveness {
    fn write(&self, buf: &mut impl BufMut) {
        self.compute.write(buf);
        self.online_since.write(buf);
        self.cur.write(buf);
        self.prev.write(buf);
        self.settled.write(buf);
        self.misses.epoch.write(buf);
        self.misses.count.write(buf);
        self.prev_misses.epoch.write(buf);
        self.prev_misses.count.write(buf);
        match &self.pending {
            None => 0u8.write(buf),
            Some(p) => {
                1u8.write(buf);
                p.height.write(buf);
                p.beacon.write(buf);
            }
        }
        self.last_challenge.write(buf);
        self.last_response.write(buf);
        for r in &self.recent_rewards {
            r.epoch.write(buf);
            r.amount.write(buf);
        }
        self.total_rewards.write(buf);
    }
}

impl EncodeSize for ChipLiveness {
    fn encode_size(&self) -> usize {
        8 * 9
            + 16 * 2
            + 4 * 2
            + 24 * RECENT_REWARDS
            + 16
            + 1
            + if self.pending.is_some() { 8 + 32 } else { 0 }
    }
}

impl Read for ChipLiveness {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            compute: u64::read(buf)?,
            online_since: u64::read(buf)?,
            cur: EpochBlocks::read(buf)?,
            prev: EpochBlocks::read(buf)?,
            settled: u64::read(buf)?,
            misses: EpochMisses {
                epoch: u64::read(buf)?,
                count: u32::read(buf)?,
            },
            prev_misses: EpochMisses {
                epoch: u64::read(buf)?,
                count: u32::read(buf)?,
            },
            pending: match u8::read(buf)? {
                0 => None,
                1 => Some(Pending {
                    height: u64::read(buf)?,
                    beacon: Digest::read(buf)?,
                }),
                t => return Err(CodecError::InvalidEnum(t)),
            },
            last_challenge: u64::read(buf)?,
            last_response: u64::read(buf)?,
            recent_rewards: {
                let mut recent = [EpochReward::default(); RECENT_REWARDS];
                for r in &mut recent {
                    r.epoch = u64::read(buf)?;
                    r.amount = u128::read(buf)?;
                }
                recent
            },
            total_rewards: u128::read(buf)?,
        })
    }
}

impl Write for ComputeFloor {
    fn write(&self, buf: &mut impl BufMut) {
        self.epoch.write(buf);
        self.min.write(buf);
    }
}

impl EncodeSize for ComputeFloor {
    fn encode_size(&self) -> usize {
        8 + 16
    }
}

impl Read for ComputeFloor {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            epoch: u64::read(buf)?,
            min: u128::read(buf)?,
        })
    }
}

/// Online chips and compute of one model.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelCompute {
    /// The model's name.
    pub model: String,
    /// Online chips of this model.
    pub online_chips: u64,
    /// Sum of their rated compute, milli-TOPS.
    #[serde(with = "crate::amount::base_units")]
    pub online_compute: u128,
}

/// Network-wide online compute (updated on every status change).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkCompute {
    /// Chips Online now.
    pub online_chips: u64,
    /// Sum of the rated compute (milli-TOPS) of Online chips.
    #[serde(with = "crate::amount::base_units")]
    pub online_compute: u128,
    /// Per model, sorted by name.
    pub models: Vec<ModelCompute>,
}

impl NetworkCompute {
    /// Counts a chip of `model` with `compute` coming online (`sign = 1`) or going offline.
    pub fn adjust(&mut self, model: &str, compute: u64, online: bool) {
        let c = u128::from(compute);
        let i = match self
            .models
            .binary_search_by(|m| m.model.as_str().cmp(model))
        {
            Ok(i) => i,
            Err(i) => {
                self.models.insert(
                    i,
                    ModelCompute {
                        model: model.to_string(),
                        ..Default::default()
                    },
                );
                i
            }
        };
        let m = &mut self.models[i];
        if online {
            self.online_chips += 1;
            self.online_compute += c;
            m.online_chips += 1;
            m.online_compute += c;
        } else {
            self.online_chips = self.online_chips.saturating_sub(1);
            self.online_compute = self.online_compute.saturating_sub(c);
            m.online_chips = m.online_chips.saturating_sub(1);
            m.online_compute = m.online_compute.saturating_sub(c);
            if m.online_chips == 0 {
                self.models.remove(i);
            }
        }
    }
}

impl Write for NetworkCompute {
    fn write(&self, buf: &mut impl BufMut) {
        self.online_chips.write(buf);
        self.online_compute.write(buf);
        (self.models.len() as u32).write(buf);
        for m in &self.models {
            m.model.as_bytes().write(buf);
            m.online_chips.write(buf);
            m.online_compute.write(buf);
        }
    }
}

impl EncodeSize for NetworkCompute {
    fn encode_size(&self) -> usize {
        8 + 16
            + 4
            + self
                .models
                .iter()
                .map(|m| m.model.as_bytes().encode_size() + 8 + 16)
                .sum::<usize>()
    }
}

impl Read for NetworkCompute {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        let online_chips = u64::read(buf)?;
        let online_compute = u128::read(buf)?;
        let n = u32::read(buf)? as usize;
        if n > crate::chip::MAX_MODELS {
            return Err(CodecError::Invalid("NetworkCompute", "too many models"));
        }
        let mut models = Vec::with_capacity(n);
        for _ in 0..n {
            let name = Vec::<u8>::read_cfg(buf, &(RangeCfg::new(0..=crate::chip::MAX_NAME), ()))?;
            models.push(ModelCompute {
                model: String::from_utf8(name)
                    .map_err(|_| CodecError::Invalid("NetworkCompute", "model not utf-8"))?,
                online_chips: u64::read(buf)?,
                online_compute: u128::read(buf)?,
            });
        }
        Ok(Self {
            online_chips,
            online_compute,
            models,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    #[test]
    fn an_epoch_issues_exactly_c_times_n_challenges() {
        let beacon = Sha256::hash(&[b"b"]);
        for (n, c, l) in [(1u64, 2u32, 10u64), (7, 3, 100), (1000, 2, 600), (5, 1, 7)] {
            let total: usize = (0..l)
                .map(|h| challenge_positions(&beacon, 3 * l + h, n, c, l).len())
                .sum();
            assert_eq!(total as u64, u64::from(c) * n, "n={n} c={c} l={l}");
        }
        assert!(challenge_positions(&beacon, 5, 0, 2, 10).is_empty());
        assert!(challenge_positions(&beacon, 5, 100, 2, 10)
            .iter()
            .all(|p| *p < 100));
    }

    #[test]
    fn liveness_record_roundtrips() {
        let mut l = ChipLiveness {
            compute: 5,
            online_since: 9,
            pending: Some(Pending {
                height: 3,
                beacon: Sha256::hash(&[b"x"]),
            }),
            total_rewards: 77,
            ..Default::default()
        };
        l.accrue(1, 10);
        l.accrue(2, 4);
        assert_eq!(l.closed_weight(1), 10);
        assert_eq!(l.closed_weight(2), 4);
        let back = ChipLiveness::decode(l.encode()).unwrap();
        assert_eq!(back, l);
        assert_eq!(l.encode().len(), l.encode_size());
        let mut nc = NetworkCompute::default();
        nc.adjust("a", 10, true);
        nc.adjust("b", 5, true);
        nc.adjust("a", 10, false);
        assert_eq!(nc.online_compute, 5);
        assert_eq!(nc.models.len(), 1);
        assert_eq!(NetworkCompute::decode(nc.encode()).unwrap(), nc);
    }

    #[test]
    fn misses_of_an_unpaid_epoch_survive_a_miss_in_the_next() {
        let mut l = ChipLiveness {
            settled: 3,
            ..Default::default()
        };
        l.record_miss(3);
        l.record_miss(3);
        l.record_miss(4);
        assert_eq!((l.misses_in(3), l.misses_in(4)), (2, 1));
        l.record_miss(4);
        assert_eq!((l.misses_in(3), l.misses_in(4)), (2, 2));
        // Epoch 3 paid: its misses may go.
        l.settled = 4;
        l.record_miss(5);
        assert_eq!((l.misses_in(3), l.misses_in(4), l.misses_in(5)), (0, 2, 1));
        l.settled = 6;
        l.record_miss(7);
        assert_eq!((l.misses_in(5), l.misses_in(7)), (0, 1));
        let back = ChipLiveness::decode(l.encode()).unwrap();
        assert_eq!(back, l);
        assert_eq!(l.encode().len(), l.encode_size());
    }

    #[test]
    fn compute_floor_is_the_lowest_value_of_the_epoch() {
        // No record: unchanged forever.
        assert_eq!(compute_floor(None, 9, 50), 50);
        // 0 -> 100 in epoch 2 (borrowed), back to 0, then 30.
        let f = ComputeFloor::after_change(None, 2, 0, 100);
        assert_eq!(f, ComputeFloor { epoch: 2, min: 0 });
        assert_eq!(compute_floor(Some(f), 2, 100), 0);
        // Unchanged through epoch 3: the floor of 3 is the value.
        assert_eq!(compute_floor(Some(f), 3, 100), 100);
        // 100 -> 40 -> 70 in epoch 3: 40.
        let g = ComputeFloor::after_change(Some(f), 3, 100, 40);
        let g = ComputeFloor::after_change(Some(g), 3, 40, 70);
        assert_eq!(compute_floor(Some(g), 3, 70), 40);
        // Asking about an epoch before the record: unknown, counted as nothing.
        assert_eq!(compute_floor(Some(g), 2, 70), 0);
        assert_eq!(ComputeFloor::decode(g.encode()).unwrap(), g);
    }
}
