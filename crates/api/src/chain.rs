//! Results about the chain: status, blocks, transactions, receipts, accounts, proofs, supply.

use crate::{error::TxRefusal, hex, market::TermsView};
use serde::{Deserialize, Serialize};
use unet_types::{amount::base_units, hexser, Address, Amount, Digest, Params};

/// Whether the node keeps up with the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Finalized height within 10 blocks of the head.
    Synced,
    /// Further behind.
    CatchingUp,
}

/// What the answering node is on the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// It runs consensus.
    #[default]
    Validator,
    /// A full node: it follows and verifies finalized blocks, serves the API and forwards
    /// transactions to validators.
    Full,
}

/// `unet_status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// The chain's id (signed into every transaction).
    pub chain_id: u64,
    /// The chain's name.
    pub chain_name: String,
    /// Hash of the genesis (hex; a string so that callers can keep it as they store it).
    pub genesis_hash: String,
    /// Highest block proposed or verified (not yet final).
    pub head_height: u64,
    /// Its hash.
    #[serde(with = "hex::opt_digest")]
    pub head_hash: Option<Digest>,
    /// Highest finalized block.
    pub finalized_height: u64,
    /// Its hash.
    #[serde(with = "hexser")]
    pub finalized_hash: Digest,
    /// The state root after it.
    #[serde(with = "hexser")]
    pub finalized_state_root: Digest,
    /// Its timestamp (ms since the Unix epoch).
    pub finalized_timestamp_ms: u64,
    /// The epoch of the finalized height.
    pub epoch: u64,
    /// Other validators in the peer set.
    pub peers: u64,
    /// Genesis validators.
    pub validators: u64,
    /// Pending transactions.
    pub mempool: u64,
    /// Whether the node keeps up.
    pub sync: SyncState,
    /// What the node is (`validator` or `full`).
    #[serde(default)]
    pub role: NodeRole,
    /// The chain's parameters.
    pub params: Params,
}

/// An account entry as `unet_getProof` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    /// The account.
    #[serde(with = "hexser")]
    pub address: Address,
    /// Balance in base units.
    #[serde(with = "base_units")]
    pub balance: Amount,
    /// The same in UNC.
    pub balance_unc: String,
    /// Transactions applied from this account.
    pub nonce: u64,
}

/// `unet_getAccount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The account.
    #[serde(with = "hexser")]
    pub address: Address,
    /// Balance in base units.
    #[serde(with = "base_units")]
    pub balance: Amount,
    /// The same in UNC.
    pub balance_unc: String,
    /// Transactions applied from this account.
    pub nonce: u64,
    /// The finalized height that answered.
    pub height: u64,
    /// The nonce the account's next transaction should use (after its pending ones).
    pub pending_nonce: u64,
}

/// `unet_getProof`: a finalized account entry with its proof against the state root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofView {
    /// The account.
    #[serde(with = "hexser")]
    pub address: Address,
    /// Its state key.
    #[serde(with = "hexser")]
    pub key: Digest,
    /// The finalized height proven.
    pub height: u64,
    /// That block's hash.
    #[serde(with = "hexser")]
    pub block: Digest,
    /// The state root the proof is against.
    #[serde(with = "hexser")]
    pub state_root: Digest,
    /// The encoded account (null: proven absent).
    #[serde(with = "hex::opt_bytes")]
    pub value: Option<Vec<u8>>,
    /// The account decoded (null: absent).
    pub account: Option<AccountEntry>,
    /// The encoded proof.
    #[serde(with = "hex::bytes")]
    pub proof: Vec<u8>,
}

/// Most headers one `unet_getFinalizedHeader` answer carries (the asked height, then its
/// descendants up to the first height whose finalization certificate the node holds).
pub const MAX_HEADER_CHAIN: usize = 64;

/// `unet_getFinalizedHeader`: the header of a finalized block and a finalization certificate
/// that covers it, for a light client.
///
/// Marshal keeps a certificate for most heights but not all (a block finalized through a
/// descendant's certificate has none of its own), so the answer is a short chain: `headers[0]`
/// is the block at `height`, each next header is its child, and `finalization` certifies the
/// last one. A light client trusts none of the plain fields below: it decodes the headers,
/// recomputes their digests, checks the parent links and verifies the certificate with the
/// chain's group key (see `unet_client::light`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedHeaderView {
    /// The height asked for.
    pub height: u64,
    /// Its block hash (for reading; recomputed by verifiers).
    #[serde(with = "hexser")]
    pub block: Digest,
    /// Its state root (for reading; taken from the header by verifiers).
    #[serde(with = "hexser")]
    pub state_root: Digest,
    /// Height of the block the certificate finalizes (`height` or a little above).
    pub certified_height: u64,
    /// Encoded block headers (`unet_types::BlockHeader`), `height` first, at most
    /// [`MAX_HEADER_CHAIN`].
    #[serde(with = "hex::byte_lists")]
    pub headers: Vec<Vec<u8>>,
    /// Encoded simplex finalization certificate of the last header's block (threshold BLS).
    #[serde(with = "hex::bytes")]
    pub finalization: Vec<u8>,
}

/// `unet_supply`: every amount in base units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyView {
    /// The finalized height that answered.
    pub height: u64,
    /// Most that can ever exist.
    #[serde(with = "base_units")]
    pub max_supply: Amount,
    /// Allocated at genesis.
    #[serde(with = "base_units")]
    pub genesis: Amount,
    /// Minted as rewards since.
    #[serde(with = "base_units")]
    pub minted: Amount,
    /// Burned as fees since.
    #[serde(with = "base_units")]
    pub burned: Amount,
    /// genesis + minted - burned.
    #[serde(with = "base_units")]
    pub total: Amount,
    /// Total minus escrow.
    #[serde(with = "base_units")]
    pub circulating: Amount,
    /// Held in lease deposits.
    #[serde(with = "base_units")]
    pub escrowed: Amount,
}

/// `unet_sendTransaction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// The transaction's hash.
    #[serde(with = "hexser")]
    pub hash: Digest,
}

/// One entry of `unet_sendTransactions`: the hash (absent if the bytes did not decode) and,
/// when refused, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOutcome {
    /// The transaction's hash.
    #[serde(
        default,
        with = "hex::opt_digest",
        skip_serializing_if = "Option::is_none"
    )]
    pub hash: Option<Digest>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TxRefusal>,
}

/// A transaction as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxView {
    /// Its hash.
    #[serde(with = "hexser")]
    pub hash: Digest,
    /// The chain it is for.
    pub chain_id: u64,
    /// Who signed it.
    #[serde(with = "hexser")]
    pub sender: Address,
    /// The sender's nonce it uses.
    pub nonce: u64,
    /// Fee offered, base units.
    #[serde(with = "base_units")]
    pub fee: Amount,
    /// What it does (`kind` on the wire).
    #[serde(flatten)]
    pub body: TxBody,
}

/// One answer of a liveness transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerView {
    /// The chip answering.
    #[serde(with = "hex::id")]
    pub chip_id: [u8; 32],
    /// The challenge answered.
    pub challenge_height: u64,
    /// Size of the signature.
    pub proof_bytes: u64,
}

/// What a transaction does, by `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TxBody {
    /// Moves UNC.
    Transfer {
        /// Recipient.
        #[serde(with = "hexser")]
        to: Address,
        /// Base units.
        #[serde(with = "base_units")]
        amount: Amount,
    },
    /// Registers a chip with attestation evidence.
    RegisterChip {
        /// The block the registration nonce is anchored at.
        anchor_height: u64,
        /// Size of the evidence.
        evidence_bytes: u64,
        /// The chip the evidence claims (absent if unreadable).
        #[serde(default, with = "hex::opt_id", skip_serializing_if = "Option::is_none")]
        chip_id: Option<[u8; 32]>,
    },
    /// Gives a chip to another owner.
    TransferChip {
        /// The chip.
        #[serde(with = "hex::id")]
        chip_id: [u8; 32],
        /// New owner.
        #[serde(with = "hexser")]
        to: Address,
    },
    /// Removes a chip.
    DeregisterChip {
        /// The chip.
        #[serde(with = "hex::id")]
        chip_id: [u8; 32],
    },
    /// A governance action.
    Govern {
        /// The action's name (`set_model`, `revoke_chip`, ...).
        action: String,
        /// Governor signatures attached.
        approvals: u64,
    },
    /// Chips answering challenges.
    Liveness {
        /// The answers.
        responses: Vec<AnswerView>,
    },
    /// Registers a validator.
    RegisterValidator {
        /// The node's identity key.
        #[serde(with = "hexser")]
        node_key: Address,
        /// Its p2p endpoint.
        p2p_address: String,
    },
    /// Withdraws a validator registration.
    DeregisterValidator {},
    /// Offers chips for rent.
    CreateOffer {
        /// The terms.
        terms: TermsView,
    },
    /// Changes an offer.
    UpdateOffer {
        /// The offer.
        offer_id: u64,
        /// The new terms.
        terms: TermsView,
    },
    /// Withdraws an offer.
    WithdrawOffer {
        /// The offer.
        offer_id: u64,
    },
    /// Rents chips of an offer.
    OpenLease {
        /// The offer.
        offer_id: u64,
        /// The chips rented.
        #[serde(with = "hex::ids")]
        chips: Vec<[u8; 32]>,
        /// Escrowed deposit, base units.
        #[serde(with = "base_units")]
        deposit: Amount,
    },
    /// Adds to a lease's deposit.
    TopUp {
        /// The lease.
        lease_id: u64,
        /// Base units.
        #[serde(with = "base_units")]
        amount: Amount,
    },
    /// Ends a lease.
    CloseLease {
        /// The lease.
        lease_id: u64,
    },
}

/// Outcome of an included transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Applied.
    Ok,
    /// Charged its fee but had no effect.
    Failed {
        /// The failed check.
        code: String,
        /// Why, in words.
        reason: String,
    },
}

/// A liveness answer that did not apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedAnswerView {
    /// Position of the answer in the transaction.
    pub index: u32,
    /// The chip.
    #[serde(with = "hex::id")]
    pub chip_id: [u8; 32],
    /// Why (`liveness_already_answered`, ...).
    pub code: String,
    /// Why, in words.
    pub reason: String,
}

/// Receipt of one transaction in a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptView {
    /// The transaction.
    #[serde(with = "hexser")]
    pub tx_hash: Digest,
    /// Its position in the block.
    pub index: u32,
    /// Applied or failed (`status` on the wire).
    #[serde(flatten)]
    pub status: ReceiptStatus,
    /// Fee burned, base units.
    #[serde(with = "base_units")]
    pub fee_burned: Amount,
    /// Fee paid to the proposer, base units.
    #[serde(with = "base_units")]
    pub fee_to_proposer: Amount,
    /// Answers of a liveness transaction that did not apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedAnswerView>,
}

/// The transactions of a block: whole, or their hashes (`full: false`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockTxs {
    /// Whole transactions.
    Full(Vec<TxView>),
    /// Hashes only.
    Hashes(#[serde(with = "digests")] Vec<Digest>),
}

mod digests {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
    use unet_types::{hexser, Digest};

    pub fn serialize<S: Serializer>(v: &[Digest], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hexser::to_hex))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Digest>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| hexser::from_hex(s).map_err(D::Error::custom))
            .collect()
    }
}

/// `unet_getBlock`: a finalized block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// Height.
    pub height: u64,
    /// Hash.
    #[serde(with = "hexser")]
    pub hash: Digest,
    /// Parent's hash.
    #[serde(with = "hexser")]
    pub parent: Digest,
    /// Proposer's timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Who proposed it.
    #[serde(with = "hexser")]
    pub proposer: Address,
    /// Consensus view.
    pub view: u64,
    /// Consensus epoch.
    pub epoch: u64,
    /// State root after it.
    #[serde(with = "hexser")]
    pub state_root: Digest,
    /// Root of its transactions.
    #[serde(with = "hexser")]
    pub tx_root: Digest,
    /// Its randomness beacon.
    #[serde(with = "hexser")]
    pub beacon: Digest,
    /// Number of transactions.
    pub tx_count: u64,
    /// The transactions.
    pub transactions: BlockTxs,
    /// Their receipts (full blocks the node still holds them for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<Vec<ReceiptView>>,
}

/// Where a transaction is, by `status`.
// A reply value, built once and serialized: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxState {
    /// In a finalized block.
    Finalized {
        /// The block's height.
        height: u64,
        /// The block's hash.
        #[serde(with = "hexser")]
        block: Digest,
        /// What happened.
        receipt: ReceiptView,
    },
    /// In this node's mempool.
    Pending {
        /// The transaction.
        transaction: TxView,
    },
    /// Refused by this node recently.
    Rejected {
        /// The failed check.
        check: String,
        /// Why, in words.
        reason: String,
    },
}

/// `unet_getTransaction`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLookup {
    /// The transaction's hash.
    #[serde(with = "hexser")]
    pub hash: Digest,
    /// Where it is.
    #[serde(flatten)]
    pub state: TxState,
}

impl TxLookup {
    /// Whether it is in a finalized block.
    pub fn is_finalized(&self) -> bool {
        matches!(self.state, TxState::Finalized { .. })
    }

    /// Its receipt, once finalized.
    pub fn receipt(&self) -> Option<&ReceiptView> {
        match &self.state {
            TxState::Finalized { receipt, .. } => Some(receipt),
            _ => None,
        }
    }

    /// Whether the transaction's fate is settled (finalized or refused).
    pub fn is_final(&self) -> bool {
        !matches!(self.state, TxState::Pending { .. })
    }
}
