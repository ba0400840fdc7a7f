//! What a block has done so far, besides its writes: the block's place in the epoch, the
//! network's online compute, the escrow moved, the events emitted, and the chip status
//! changes that other domains must hear about.
//!
//! Every domain module takes the tally of the block it runs in; none of them owns it, so it
//! lives here rather than in any of them.

use crate::{events::Event, working::Working, BlockError};
use unet_types::{
    chip::{ChipId, ChipStatus},
    epoch::epoch_of,
    liveness::NetworkCompute,
    Amount,
};

/// The running tally of the block being executed.
pub(crate) struct BlockTally {
    /// Height of the block.
    pub height: u64,
    /// Its epoch.
    pub epoch: u64,
    /// Blocks per epoch (at least 1).
    pub epoch_length: u64,
    /// The network's online compute, per model, as of the work done so far.
    pub net: NetworkCompute,
    /// Events emitted so far, in order.
    pub events: Vec<Event>,
    /// Moved into market escrow during the block (folded into `Supply.escrowed` at its end).
    pub escrow_in: Amount,
    /// Moved out of market escrow during the block.
    pub escrow_out: Amount,
}

impl BlockTally {
    pub(crate) fn new(height: u64, epoch_length: u64, net: NetworkCompute) -> Self {
        Self {
            height,
            epoch: epoch_of(height, epoch_length),
            epoch_length,
            net,
            events: Vec::new(),
            escrow_in: 0,
            escrow_out: 0,
        }
    }
}

/// A chip's status change as the liveness and registry rules decide it (a miss, a recovering
/// answer, a revocation, a deregistration). The rule that decides it only returns it; the
/// block's router ([`RouteStatus`], supplied by `exec`) applies its consequences elsewhere
/// (the market closes the chip's lease) and records the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StatusChange {
    pub chip_id: ChipId,
    pub from: ChipStatus,
    pub to: ChipStatus,
    pub reason: String,
}

/// Applies a [`StatusChange`] where it belongs, right when it happens (so the order of
/// writes and events is the order of the rules that caused them).
pub(crate) type RouteStatus =
    fn(&mut Working<'_>, &mut BlockTally, StatusChange) -> Result<(), BlockError>;
