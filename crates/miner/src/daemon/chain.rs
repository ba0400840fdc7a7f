//! The chain as the daemon sees it: the [`MinerChain`] trait and the typed facts it returns.
//!
//! Everything the daemon reads from or sends to a node goes through this trait, so the
//! daemon's rules (exactly-once answers, resends, reconciliation) can be tested against an
//! in-memory chain, and the node API behind it can change in one place
//! ([`super::rpc::RpcChain`] is the only implementation over the network).
//!
//! It follows the job server's [`crate::jobs::server::ChainView`]: object-safe, boxed
//! futures, `Send + Sync`. The two read different slices of the same node (the job server
//! only leases and the chain id) and are kept apart so that neither carries the other's
//! methods.

use anyhow::Result;
use futures::{future::BoxFuture, stream::BoxStream};
use unet_types::{
    chip::{ChipId, ChipStatus},
    Address, Digest, SignedTx,
};

/// Chain facts read at the start of a session (`unet_status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainStatus {
    /// The chain id transactions must be signed for.
    pub chain_id: u64,
    /// Hex hash of the genesis block (a state file of another chain is refused).
    pub genesis_hash: String,
    /// Height of the node's last finalized block.
    pub finalized_height: u64,
    /// Blocks a challenge stays open.
    pub response_window: u64,
    /// Chip registrations one block may carry.
    pub max_registrations_per_block: u32,
    /// The smallest fee the chain accepts.
    pub min_fee: u128,
}

/// The owner account as of the last finalized block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// Nonce of the account's next transaction.
    pub nonce: u64,
    /// Balance in base units.
    pub balance: u128,
}

/// An open liveness challenge of a chip, as the chain holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingChallenge {
    /// The block that drew it.
    pub height: u64,
    /// That block's beacon, which the answer signs.
    pub beacon: Digest,
}

/// A registered chip, as the chain holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChipOnChain {
    /// Owner address, hex.
    pub owner: String,
    /// Online, Unresponsive or Revoked.
    pub status: ChipStatus,
    /// Rewards paid to date, base units, when the node reports them.
    pub rewards_total: Option<u128>,
    /// The chip's open challenge, if any.
    pub pending_challenge: Option<PendingChallenge>,
}

/// One chip read from the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChipReading {
    /// The chip is registered.
    Found(ChipOnChain),
    /// The chip is not registered.
    NotFound,
    /// The node could not say (an error for this chip only; the message says why).
    Error(String),
}

/// A final transaction's receipt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction applied (`status: ok`); for liveness answers, see `skipped`.
    pub ok: bool,
    /// Failure code (`insufficient_fee`, `evidence_...`), empty when `ok`.
    pub code: String,
    /// Failure reason, for logs.
    pub reason: String,
    /// Answers of a liveness transaction that did not apply: (index in the payload, code).
    pub skipped: Vec<(usize, String)>,
}

/// What the node knows of one of our transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxLookup {
    /// In a finalized block, with its receipt.
    Finalized(Receipt),
    /// In the node's mempool.
    Pending,
    /// The node does not know it (lost, never arrived, or the node restarted).
    Unknown,
}

/// The node's answer to one submitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Admitted to the mempool.
    Accepted,
    /// Refused by an admission check (`duplicate`, `nonce_too_low`, `insufficient_fee`, ...).
    Refused {
        /// The check that refused it.
        check: String,
        /// The node's message.
        message: String,
    },
    /// The node answered for this transaction with something that is neither.
    Error(String),
}

/// A challenge event: a chip was challenged in block `height`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeEvent {
    /// The challenged chip.
    pub chip_id: ChipId,
    /// The block that drew the challenge.
    pub height: u64,
    /// That block's beacon, which the answer signs.
    pub beacon: Digest,
    /// Last block the answer may land in, when the node says.
    pub deadline: Option<u64>,
}

/// A chip changed status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChipStatusEvent {
    /// The chip.
    pub chip_id: ChipId,
    /// Its new status.
    pub to: ChipStatus,
    /// Why, in words.
    pub reason: String,
}

/// A chip's owner was paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardEvent {
    /// The chip whose owner was paid.
    pub chip_id: ChipId,
    /// Owner address, hex.
    pub owner: String,
    /// Base units paid.
    pub amount: u128,
    /// The epoch paid for, when the node says.
    pub epoch: Option<u64>,
}

/// One notification of a subscription. Within a block, events come before the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// Chips challenged in a finalized block.
    Challenges(Vec<ChallengeEvent>),
    /// Chips whose status changed in a finalized block.
    ChipStatus(Vec<ChipStatusEvent>),
    /// Rewards paid in a finalized block.
    Rewards(Vec<RewardEvent>),
    /// A finalized block and the hashes (hex) of its transactions.
    Block {
        /// The block's height.
        height: u64,
        /// Hashes (hex) of its transactions.
        txs: Vec<String>,
    },
}

/// A registration anchor as the node hands it out (`unet_registrationNonce`). The nonce the
/// chip signs is derived from it locally ([`crate::register::NodeAnchor::for_owner`]).
pub use crate::register::NodeAnchor;

/// The notifications of one subscription; it ends (or yields an error) when the socket does.
pub type Notifications = BoxStream<'static, Result<Notification>>;

/// Everything the daemon asks of a node. Errors are transport failures or answers that make
/// no sense: the session ends and the daemon reconnects.
pub trait MinerChain: Send + Sync {
    /// Where this chain is reached, for logs.
    fn name(&self) -> String;
    /// Chain id, genesis and parameters.
    fn status(&self) -> BoxFuture<'_, Result<ChainStatus>>;
    /// The account of `owner`.
    fn account<'a>(&'a self, owner: &'a Address) -> BoxFuture<'a, Result<AccountState>>;
    /// Reads `ids`, one reading each, in order.
    fn chips<'a>(&'a self, ids: &'a [ChipId]) -> BoxFuture<'a, Result<Vec<ChipReading>>>;
    /// Looks up transactions by hash (hex), one answer each, in order.
    fn transactions<'a>(&'a self, hashes: &'a [String]) -> BoxFuture<'a, Result<Vec<TxLookup>>>;
    /// Submits signed transactions; one outcome each, in order. An error means it is not
    /// known whether the node took them.
    fn send<'a>(&'a self, txs: &'a [SignedTx]) -> BoxFuture<'a, Result<Vec<SendOutcome>>>;
    /// A recent block to anchor chip registrations of `owner` to.
    fn registration_anchor<'a>(&'a self, owner: &'a Address) -> BoxFuture<'a, Result<NodeAnchor>>;
    /// Subscribes to challenge, chip status and reward events and to finalized blocks, so
    /// that when block `h` arrives every event of `h` has been delivered.
    fn subscribe(&self) -> BoxFuture<'_, Result<Notifications>>;
}
