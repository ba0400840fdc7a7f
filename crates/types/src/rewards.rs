//! Emission schedule and reward bookkeeping.
//!
//! Maximum supply is 10,000,000,000 UNC. At most 3% is allocated at genesis; the other 97%
//! ([`MINED_CAP`]) is mined. Emission is fixed per epoch and halves every era
//! (`halving_blocks / epoch_length` epochs, two years of blocks by default):
//!
//! ```text
//! emission(epoch) = floor( floor(MINED_CAP / 2^(era + 1)) / epochs_per_era ),  era = epoch / epochs_per_era
//! ```
//!
//! Era `k` mints at most `MINED_CAP / 2^(k+1)`, so the whole schedule mints at most
//! `MINED_CAP * (1 - 2^-K) < MINED_CAP` (checked exactly over every era in the tests).
//!
//! ```text
//! EpochState   := epoch u64 | weight u128 | settling option<Settlement>
//! Settlement   := epoch u64 | emission u128 | total_weight u128 | paid u128 | forfeited u128
//!               | cursor u64 | end u64 | chips_paid u64
//! EpochRewards := Settlement (final, once the cursor reached `end`) | to_treasury u128
//! ```

use crate::{amount::MAX_SUPPLY, Address, Amount, Digest};
use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, Read, ReadExt, Write};
use commonware_cryptography::{Hasher, Sha256};

/// The mined part of the supply: 97% of the maximum.
pub const MINED_CAP: Amount = MAX_SUPPLY / 100 * 97;

/// Epochs per halving era for these parameters (at least 1).
pub fn epochs_per_era(halving_blocks: u64, epoch_length: u64) -> u64 {
    (halving_blocks / epoch_length.max(1)).max(1)
}

/// Miners' emission of `epoch`.
pub fn epoch_emission(epoch: u64, epochs_per_era: u64) -> Amount {
    let era = epoch / epochs_per_era.max(1);
    if era >= 127 {
        return 0;
    }
    (MINED_CAP >> (era + 1)) / Amount::from(epochs_per_era.max(1))
}

/// `floor(a * b / c)` without overflow for `b <= c` (as reward shares are: weight <= total).
pub fn mul_div_floor(a: u128, b: u128, c: u128) -> u128 {
    if c == 0 {
        return 0;
    }
    let q = a / c;
    let r = a % c;
    // q * b <= a (b <= c), r * b < c * c; both fit when c < 2^64, which totals always are in
    // practice (chips * compute * blocks); fall back to saturating math otherwise.
    q.saturating_mul(b)
        .saturating_add(r.checked_mul(b).map(|x| x / c).unwrap_or_else(|| {
            // c >= 2^64: scale down both factors (loses precision only in the sub-unit part).
            let shift = 128 - c.leading_zeros() - 63;
            (r >> shift).saturating_mul(b) / (c >> shift).max(1)
        }))
}

/// Key of the epoch accounting entry.
pub fn epoch_state_key() -> Digest {
    Sha256::hash(&[b"unet/epoch_state"])
}

/// Key of the final reward summary of `epoch`.
pub fn epoch_rewards_key(epoch: u64) -> Digest {
    Sha256::hash(&[b"unet/epoch_rewards", &epoch.to_be_bytes()])
}

/// Key of what `owner` earned in `epoch` (u128).
pub fn owner_rewards_key(owner: &Address, epoch: u64) -> Digest {
    owner_rewards_key_raw(owner.as_ref(), epoch)
}

/// [`owner_rewards_key`] from the owner key's bytes.
pub fn owner_rewards_key_raw(owner: &[u8], epoch: u64) -> Digest {
    Sha256::hash(&[b"unet/owner_rewards", owner, &epoch.to_be_bytes()])
}

/// An epoch whose rewards are being paid, chip by chip, during the next epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settlement {
    /// The epoch being paid.
    pub epoch: u64,
    /// Base units the epoch emits in total (shared by online weight).
    #[serde(with = "crate::amount::base_units")]
    pub emission: Amount,
    /// Sum over the epoch's blocks of the online compute at the end of each block.
    #[serde(with = "crate::amount::base_units")]
    pub total_weight: u128,
    /// Base units paid to chip owners so far.
    #[serde(with = "crate::amount::base_units")]
    pub paid: Amount,
    /// Shares of chips that were revoked or missed too often.
    #[serde(with = "crate::amount::base_units")]
    pub forfeited: Amount,
    /// Next chip index to settle.
    pub cursor: u64,
    /// Chip count when the epoch ended (indices `cursor..end` remain).
    pub end: u64,
    /// Chips paid so far.
    pub chips_paid: u64,
}

/// Epoch accounting: the epoch being accrued and the one being paid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpochState {
    /// The epoch now accruing weight.
    pub epoch: u64,
    /// Sum of online compute over this epoch's blocks so far.
    pub weight: u128,
    /// The previous epoch, while its chips are being paid; None once all are paid.
    pub settling: Option<Settlement>,
}

/// Final rewards of an epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EpochRewards {
    /// The epoch's settlement when its last chip was paid.
    #[serde(flatten)]
    pub settlement: Settlement,
    /// Rounding dust plus forfeited shares, paid to the treasury (0 without a treasury).
    #[serde(with = "crate::amount::base_units")]
    pub to_treasury: Amount,
}

impl Write for Settlement {
    fn write(&self, buf: &mut impl BufMut) {
        self.epoch.write(buf);
        self.emission.write(buf);
        self.total_weight.write(buf);
        self.paid.write(buf);
        self.forfeited.write(buf);
        self.cursor.write(buf);
        self.end.write(buf);
        self.chips_paid.write(buf);
    }
}

impl EncodeSize for Settlement {
    fn encode_size(&self) -> usize {
        8 + 16 * 4 + 8 * 3
    }
}

impl Read for Settlement {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            epoch: u64::read(buf)?,
            emission: u128::read(buf)?,
            total_weight: u128::read(buf)?,
            paid: u128::read(buf)?,
            forfeited: u128::read(buf)?,
            cursor: u64::read(buf)?,
            end: u64::read(buf)?,
            chips_paid: u64::read(buf)?,
        })
    }
}

impl Write for EpochState {
    fn write(&self, buf: &mut impl BufMut) {
        self.epoch.write(buf);
        self.weight.write(buf);
        self.settling.write(buf);
    }
}

impl EncodeSize for EpochState {
    fn encode_size(&self) -> usize {
        8 + 16 + self.settling.encode_size()
    }
}

impl Read for EpochState {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            epoch: u64::read(buf)?,
            weight: u128::read(buf)?,
            settling: Option::<Settlement>::read(buf)?,
        })
    }
}

impl Write for EpochRewards {
    fn write(&self, buf: &mut impl BufMut) {
        self.settlement.write(buf);
        self.to_treasury.write(buf);
    }
}

impl EncodeSize for EpochRewards {
    fn encode_size(&self) -> usize {
        self.settlement.encode_size() + 16
    }
}

impl Read for EpochRewards {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            settlement: Settlement::read(buf)?,
            to_treasury: u128::read(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole schedule, era by era, for the default parameters and some extreme ones:
    /// the mined total never exceeds 97% of the cap, and emission reaches zero.
    #[test]
    fn whole_schedule_stays_under_the_mined_cap() {
        for (halving_blocks, epoch_length) in [
            (630_720_000u64, 600u64),
            (630_720_000, 1),
            (1, 1),
            (1_000, 7),
            (u64::MAX, 1),
        ] {
            let per_era = epochs_per_era(halving_blocks, epoch_length);
            let mut total: u128 = 0;
            let mut era = 0u64;
            // Eras beyond u64 epochs never happen.
            while let Some(first) = era.checked_mul(per_era) {
                let e = epoch_emission(first, per_era);
                // Every epoch of an era emits the same amount.
                assert_eq!(
                    e,
                    epoch_emission(first.saturating_add(per_era - 1), per_era)
                );
                total += e * u128::from(per_era);
                assert!(total <= MINED_CAP, "era {era}: {total} > {MINED_CAP}");
                if e == 0 {
                    break;
                }
                era += 1;
            }
            assert!(era < 128);
        }
        // First era at defaults: 4.85e9 UNC over 1,051,200 epochs.
        let per_era = epochs_per_era(630_720_000, 600);
        assert_eq!(per_era, 1_051_200);
        assert_eq!(epoch_emission(0, per_era), MINED_CAP / 2 / 1_051_200);
        assert_eq!(epoch_emission(per_era, per_era), MINED_CAP / 4 / 1_051_200);
    }

    #[test]
    fn mul_div_is_exact() {
        assert_eq!(mul_div_floor(10, 3, 4), 7);
        let e = MINED_CAP / 2;
        assert_eq!(mul_div_floor(e, 1, 3), e / 3);
        assert_eq!(mul_div_floor(e, 5, 5), e);
        assert_eq!(mul_div_floor(7, 0, 0), 0);
        // Large emission x large weights: exact against a 256-bit reference.
        let total: u128 = 1_000_000 * 1_000_000 * 36_000;
        let w: u128 = 987_654_321_987;
        let expect = {
            // (e * w) / total with e = q * total + r
            let q = e / total;
            let r = e % total;
            q * w + r * w / total
        };
        assert_eq!(mul_div_floor(e, w, total), expect);
    }
}
