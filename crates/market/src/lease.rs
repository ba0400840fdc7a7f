//! Leases: a renter holding some of an offer's chips, paying per block from an escrowed
//! deposit. The settlement rules here are the whole payment logic; the state transition only
//! moves the amounts they return.

use crate::{
    codec::{read_str, str_size, write_str},
    Address, Amount, ChipId, MAX_ENDPOINT, MAX_LEASE_CHIPS,
};
use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use unet_address::read_address;

/// Why a lease closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The renter closed it (`CloseLease`).
    Renter = 0,
    /// The provider closed it (`CloseLease`).
    Provider = 1,
    /// At a scheduled settlement the deposit could not cover the next period.
    DepositExhausted = 2,
    /// A leased chip became Unresponsive (missed a challenge).
    ChipUnresponsive = 3,
    /// A leased chip was revoked.
    ChipRevoked = 4,
    /// A leased chip was deregistered or transferred to another owner.
    ChipRemoved = 5,
    /// The lease reached `start + max_blocks`.
    Expired = 6,
}

impl CloseReason {
    /// The wire name (`renter`, `deposit_exhausted`, ...), as in receipts and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Renter => "renter",
            Self::Provider => "provider",
            Self::DepositExhausted => "deposit_exhausted",
            Self::ChipUnresponsive => "chip_unresponsive",
            Self::ChipRevoked => "chip_revoked",
            Self::ChipRemoved => "chip_removed",
            Self::Expired => "expired",
        }
    }

    fn from_u8(v: u8) -> Result<Self, CodecError> {
        Ok(match v {
            0 => Self::Renter,
            1 => Self::Provider,
            2 => Self::DepositExhausted,
            3 => Self::ChipUnresponsive,
            4 => Self::ChipRevoked,
            5 => Self::ChipRemoved,
            6 => Self::Expired,
            t => return Err(CodecError::InvalidEnum(t)),
        })
    }

    /// Whether the renter is held to the minimum duration when the lease closes this way
    /// (the renter's own decision, or the renter's deposit running out). Closes caused by the
    /// provider or its chips charge only the blocks served.
    pub fn renter_commitment_applies(self) -> bool {
        matches!(self, Self::Renter | Self::DepositExhausted)
    }
}

/// Whether a lease is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Running: the provider serves it and settlements pay from the deposit.
    Open,
    /// Closed at the start of, or during, block `height` (which it did not serve).
    Closed {
        /// The block at which it closed.
        height: u64,
        /// Why it closed.
        reason: CloseReason,
    },
}

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Lease id, numbered from 0 in the order leases open.
    pub id: u64,
    /// The offer the lease was opened on.
    pub offer: u64,
    /// The account that opened the lease and pays from its deposit (refunds go back to it).
    pub renter: Address,
    /// The account that is paid: the offer's provider, owner of the chips.
    pub provider: Address,
    /// The leased chips: distinct chips of the offer, chosen by the renter in `OpenLease`.
    pub chips: Vec<ChipId>,
    /// Base units per block for all the leased chips together.
    pub price_per_block: Amount,
    /// The offer's endpoint when the lease opened (where the renter submits work).
    pub endpoint: String,
    /// Height of the `OpenLease` (the first block served).
    pub start: u64,
    /// `start + min_blocks`: a renter closing earlier still pays up to here.
    pub min_end: u64,
    /// `start + max_blocks`: the lease closes by itself at the start of this block.
    pub end: u64,
    /// First block not yet paid to the provider.
    pub paid_until: u64,
    /// Height of the next scheduled settlement (the due list it is in).
    pub next_settle: u64,
    /// Deposit left in escrow.
    pub deposit: Amount,
    /// Paid to the provider so far.
    pub total_paid: Amount,
    /// Open, or closed at a height for a reason.
    pub status: LeaseStatus,
}

/// What a settlement or a close moves out of escrow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    /// To the provider.
    pub paid: Amount,
    /// Back to the renter (only when the lease closes).
    pub refunded: Amount,
}

/// The height of the first scheduled settlement after `height` for a lease ending at `end`.
pub fn next_settlement(height: u64, end: u64, period: u64) -> u64 {
    height.saturating_add(period.max(1)).min(end)
}

/// Base units a lease priced `price` per block needs at least when it opens at `height`: the
/// minimum duration, and the whole first settlement period (up to the end), whichever is more.
pub fn required_deposit(
    price: Amount,
    height: u64,
    min_blocks: u64,
    end: u64,
    period: u64,
) -> Amount {
    let first = next_settlement(height, end, period) - height;
    price.saturating_mul(u128::from(first.max(min_blocks)))
}

impl Lease {
    /// Whether the lease is still [`LeaseStatus::Open`].
    pub fn is_open(&self) -> bool {
        self.status == LeaseStatus::Open
    }

    /// What the provider is owed for blocks served before `height` and not yet paid (at most
    /// the deposit).
    pub fn owed_at(&self, height: u64) -> Amount {
        if !self.is_open() {
            return 0;
        }
        let until = height.min(self.end).max(self.paid_until);
        self.price_per_block
            .saturating_mul(u128::from(until - self.paid_until))
            .min(self.deposit)
    }

    /// Pays the provider for the blocks `[paid_until, height)`.
    pub fn settle(&mut self, height: u64) -> Amount {
        let paid = self.owed_at(height);
        self.deposit -= paid;
        self.total_paid += paid;
        self.paid_until = height.min(self.end).max(self.paid_until);
        paid
    }

    /// Closes the lease in block `height`: the provider gets what it is owed (for a close the
    /// renter is responsible for, at least up to `min_end`), the rest of the deposit goes back
    /// to the renter.
    pub fn close(&mut self, height: u64, reason: CloseReason) -> Settlement {
        if !self.is_open() {
            return Settlement::default();
        }
        let charge_until = if reason.renter_commitment_applies() {
            height.max(self.min_end)
        } else {
            height
        };
        let paid = self.settle(charge_until);
        let refunded = self.deposit;
        self.deposit = 0;
        self.status = LeaseStatus::Closed { height, reason };
        Settlement { paid, refunded }
    }

    /// The scheduled settlement at the start of block `height` (the lease is in that block's due
    /// list): pays the provider, then closes the lease if it reached its end or if the deposit
    /// cannot cover the whole next period; otherwise returns the next settlement height.
    pub fn scheduled(&mut self, height: u64, period: u64) -> (Settlement, Option<u64>) {
        if height >= self.end {
            return (self.close(height, CloseReason::Expired), None);
        }
        let paid = self.settle(height);
        let next = next_settlement(height, self.end, period);
        let need = self
            .price_per_block
            .saturating_mul(u128::from(next - height));
        if self.deposit < need {
            let mut s = self.close(height, CloseReason::DepositExhausted);
            s.paid += paid;
            return (s, None);
        }
        self.next_settle = next;
        (Settlement { paid, refunded: 0 }, Some(next))
    }
}

impl Write for Lease {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        self.offer.write(buf);
        self.renter.write(buf);
        self.provider.write(buf);
        self.chips.write(buf);
        self.price_per_block.write(buf);
        write_str(&self.endpoint, buf);
        self.start.write(buf);
        self.min_end.write(buf);
        self.end.write(buf);
        self.paid_until.write(buf);
        self.next_settle.write(buf);
        self.deposit.write(buf);
        self.total_paid.write(buf);
        match self.status {
            LeaseStatus::Open => 0u8.write(buf),
            LeaseStatus::Closed { height, reason } => {
                1u8.write(buf);
                height.write(buf);
                (reason as u8).write(buf);
            }
        }
    }
}

impl EncodeSize for Lease {
    fn encode_size(&self) -> usize {
        8 + 8
            + self.renter.encode_size()
            + self.provider.encode_size()
            + self.chips.encode_size()
            + 16
            + str_size(&self.endpoint)
            + 8 * 5
            + 16
            + 16
            + match self.status {
                LeaseStatus::Open => 1,
                LeaseStatus::Closed { .. } => 1 + 8 + 1,
            }
    }
}

impl Read for Lease {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            id: u64::read(buf)?,
            offer: u64::read(buf)?,
            renter: read_address(buf)?,
            provider: read_address(buf)?,
            chips: Vec::<ChipId>::read_cfg(buf, &(RangeCfg::new(1..=MAX_LEASE_CHIPS), ()))?,
            price_per_block: u128::read(buf)?,
            endpoint: read_str(buf, MAX_ENDPOINT, "Lease.endpoint")?,
            start: u64::read(buf)?,
            min_end: u64::read(buf)?,
            end: u64::read(buf)?,
            paid_until: u64::read(buf)?,
            next_settle: u64::read(buf)?,
            deposit: u128::read(buf)?,
            total_paid: u128::read(buf)?,
            status: match u8::read(buf)? {
                0 => LeaseStatus::Open,
                1 => LeaseStatus::Closed {
                    height: u64::read(buf)?,
                    reason: CloseReason::from_u8(u8::read(buf)?)?,
                },
                t => return Err(CodecError::InvalidEnum(t)),
            },
        })
    }
}
