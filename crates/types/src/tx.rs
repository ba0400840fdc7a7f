//! Transactions: what an account asks the chain to do, signed by the account's key.
//!
//! Wire format (canonical, `commonware-codec`):
//!
//! ```text
//! Transaction := chain_id u64 | sender [32] | nonce u64 | fee u128 | payload
//! Payload     := tag u8 | fields...
//!   0 Transfer       { to [32], amount u128 }
//!   1 RegisterChip   { anchor_height u64, evidence bytes (<= 24 KiB) }
//!   2 TransferChip   { chip_id [32], to [32] }
//!   3 DeregisterChip { chip_id [32] }
//!   4 Govern         { action GovAction, approvals vec<(governor [32], signature [64])> }
//!   5 Liveness       { responses vec<LivenessResponse> (1..=128) }
//!   6 RegisterValidator   { node_key [32], p2p_address str (<= 128) }
//!   7 DeregisterValidator {}
//!   8 CreateOffer    { terms OfferTerms }                       (market; see unet-market)
//!   9 UpdateOffer    { offer_id u64, terms OfferTerms }
//!  10 WithdrawOffer  { offer_id u64 }
//!  11 OpenLease      { offer_id u64, chips vec<[32]> (1..=64), deposit u128 }
//!  12 TopUp          { lease_id u64, amount u128 }
//!  13 CloseLease     { lease_id u64 }
//! SignedTx    := Transaction | signature [64]  (ed25519 over TX_NAMESPACE || Transaction)
//! ```
//!
//! The transaction hash is SHA-256 of the encoded `SignedTx`.

use crate::{
    chip::{Approval, ChipId, GovAction, MAX_EVIDENCE, MAX_GOVERNORS},
    epoch::MAX_ADDRESS,
    liveness::{LivenessResponse, MAX_RESPONSES_PER_TX},
    market::OfferTerms,
    Address, Amount, Digest, PrivateKey, Signature, TX_NAMESPACE,
};
use bytes::BufMut;
use commonware_codec::{Encode, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_cryptography::{Hasher, Sha256, Signer, Verifier};
use unet_address::read_address;

/// Largest encoded transaction accepted anywhere (mempool, blocks).
pub const MAX_TX_BYTES: usize = 32 * 1024;

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Move `amount` base units from the sender to `to`.
    Transfer {
        /// The receiving account.
        to: Address,
        /// Base units moved (above zero).
        amount: Amount,
    },
    /// Register a chip to the sender with attestation evidence whose nonce is
    /// `registration_nonce(chain_id, hash of block anchor_height, sender)`.
    RegisterChip {
        /// Height of the recent block whose hash the evidence nonce binds (within the registration
        /// window).
        anchor_height: u64,
        /// Encoded POCI evidence (at most [`MAX_EVIDENCE`] bytes).
        evidence: Vec<u8>,
    },
    /// Give one of the sender's chips to another owner.
    TransferChip {
        /// The chip to give.
        chip_id: ChipId,
        /// The new owner.
        to: Address,
    },
    /// Remove one of the sender's chips from the registry.
    DeregisterChip {
        /// The chip to remove.
        chip_id: ChipId,
    },
    /// A governance action approved by a threshold of governors.
    Govern {
        /// The action.
        action: GovAction,
        /// Governor signatures over the action's approval message, at most [`MAX_GOVERNORS`].
        approvals: Vec<Approval>,
    },
    /// Answers to pending challenges, each signed by the challenged chip's hardware key. Any
    /// account may carry them (usually the miner running the chips); all must be valid.
    Liveness {
        /// The answers, one per chip.
        responses: Vec<LivenessResponse>,
    },
    /// Offer the sender's online attested compute as validator weight, run by the node with
    /// identity `node_key` reachable at `p2p_address`.
    RegisterValidator {
        /// The node's ed25519 identity (p2p and consensus key).
        node_key: Address,
        /// Where the node's p2p endpoint listens (`host:port`).
        p2p_address: String,
    },
    /// Stop being considered for committees.
    DeregisterValidator,
    /// Offer chips the sender owns (all Online) for rent.
    CreateOffer {
        /// Chips, price, durations, endpoint and capabilities.
        terms: OfferTerms,
    },
    /// Replace the terms of one of the sender's offers (open leases keep their price).
    UpdateOffer {
        /// The offer to change.
        offer_id: u64,
        /// Its new terms.
        terms: OfferTerms,
    },
    /// Stop offering (open leases run on until closed).
    WithdrawOffer {
        /// The offer to withdraw.
        offer_id: u64,
    },
    /// Rent `chips` of an offer, moving `deposit` from the sender into escrow.
    OpenLease {
        /// The offer rented from.
        offer_id: u64,
        /// The chips rented (distinct, all listed by the offer).
        chips: Vec<ChipId>,
        /// Base units moved into escrow: at least the price of the minimum duration or of the
        /// first settlement period, whichever is more.
        deposit: Amount,
    },
    /// Add `amount` to the escrowed deposit of the sender's lease.
    TopUp {
        /// The lease topped up.
        lease_id: u64,
        /// Base units added (above zero).
        amount: Amount,
    },
    /// Close a lease (its renter or its provider).
    CloseLease {
        /// The lease to close.
        lease_id: u64,
    },
}

impl Payload {
    /// Short name of the payload kind, used in receipts, events and the API.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Transfer { .. } => "transfer",
            Payload::RegisterChip { .. } => "register_chip",
            Payload::TransferChip { .. } => "transfer_chip",
            Payload::DeregisterChip { .. } => "deregister_chip",
            Payload::Govern { .. } => "govern",
            Payload::Liveness { .. } => "liveness",
            Payload::RegisterValidator { .. } => "register_validator",
            Payload::DeregisterValidator => "deregister_validator",
            Payload::CreateOffer { .. } => "create_offer",
            Payload::UpdateOffer { .. } => "update_offer",
            Payload::WithdrawOffer { .. } => "withdraw_offer",
            Payload::OpenLease { .. } => "open_lease",
            Payload::TopUp { .. } => "top_up",
            Payload::CloseLease { .. } => "close_lease",
        }
    }
}

impl Write for Payload {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Payload::Transfer { to, amount } => {
                0u8.write(buf);
                to.write(buf);
                amount.write(buf);
            }
            Payload::RegisterChip {
                anchor_height,
                evidence,
            } => {
                1u8.write(buf);
                anchor_height.write(buf);
                evidence.write(buf);
            }
            Payload::TransferChip { chip_id, to } => {
                2u8.write(buf);
                chip_id.write(buf);
                to.write(buf);
            }
            Payload::DeregisterChip { chip_id } => {
                3u8.write(buf);
                chip_id.write(buf);
            }
            Payload::Govern { action, approvals } => {
                4u8.write(buf);
                action.write(buf);
                approvals.write(buf);
            }
            Payload::Liveness { responses } => {
                5u8.write(buf);
                responses.write(buf);
            }
            Payload::RegisterValidator {
                node_key,
                p2p_address,
            } => {
                6u8.write(buf);
                node_key.write(buf);
                p2p_address.as_bytes().write(buf);
            }
            Payload::DeregisterValidator => 7u8.write(buf),
            Payload::CreateOffer { terms } => {
                8u8.write(buf);
                terms.write(buf);
            }
            Payload::UpdateOffer { offer_id, terms } => {
                9u8.write(buf);
                offer_id.write(buf);
                terms.write(buf);
            }
            Payload::WithdrawOffer { offer_id } => {
                10u8.write(buf);
                offer_id.write(buf);
            }
            Payload::OpenLease {
                offer_id,
                chips,
                deposit,
            } => {
                11u8.write(buf);
                offer_id.write(buf);
                chips.write(buf);
                deposit.write(buf);
            }
            Payload::TopUp { lease_id, amount } => {
                12u8.write(buf);
                lease_id.write(buf);
                amount.write(buf);
            }
            Payload::CloseLease { lease_id } => {
                13u8.write(buf);
                lease_id.write(buf);
            }
        }
    }
}

impl EncodeSize for Payload {
    fn encode_size(&self) -> usize {
        match self {
            Payload::Transfer { to, amount } => 1 + to.encode_size() + amount.encode_size(),
            Payload::RegisterChip {
                anchor_height,
                evidence,
            } => 1 + anchor_height.encode_size() + evidence.encode_size(),
            Payload::TransferChip { chip_id, to } => 1 + chip_id.encode_size() + to.encode_size(),
            Payload::DeregisterChip { chip_id } => 1 + chip_id.encode_size(),
            Payload::Govern { action, approvals } => {
                1 + action.encode_size() + approvals.encode_size()
            }
            Payload::Liveness { responses } => 1 + responses.encode_size(),
            Payload::RegisterValidator {
                node_key,
                p2p_address,
            } => 1 + node_key.encode_size() + p2p_address.as_bytes().encode_size(),
            Payload::DeregisterValidator => 1,
            Payload::CreateOffer { terms } => 1 + terms.encode_size(),
            Payload::UpdateOffer { terms, .. } => 1 + 8 + terms.encode_size(),
            Payload::WithdrawOffer { .. } | Payload::CloseLease { .. } => 1 + 8,
            Payload::OpenLease { chips, .. } => 1 + 8 + chips.encode_size() + 16,
            Payload::TopUp { .. } => 1 + 8 + 16,
        }
    }
}

impl Read for Payload {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(Payload::Transfer {
                to: read_address(buf)?,
                amount: u128::read(buf)?,
            }),
            1 => Ok(Payload::RegisterChip {
                anchor_height: u64::read(buf)?,
                evidence: Vec::<u8>::read_cfg(buf, &(RangeCfg::from(..=MAX_EVIDENCE), ()))?,
            }),
            2 => Ok(Payload::TransferChip {
                chip_id: <[u8; 32]>::read(buf)?,
                to: read_address(buf)?,
            }),
            3 => Ok(Payload::DeregisterChip {
                chip_id: <[u8; 32]>::read(buf)?,
            }),
            4 => Ok(Payload::Govern {
                action: GovAction::read(buf)?,
                approvals: Vec::<Approval>::read_cfg(buf, &(RangeCfg::from(..=MAX_GOVERNORS), ()))?,
            }),
            5 => Ok(Payload::Liveness {
                responses: Vec::<LivenessResponse>::read_cfg(
                    buf,
                    &(RangeCfg::new(1..=MAX_RESPONSES_PER_TX), ()),
                )?,
            }),
            6 => Ok(Payload::RegisterValidator {
                node_key: read_address(buf)?,
                p2p_address: {
                    let b = Vec::<u8>::read_cfg(buf, &(RangeCfg::new(1..=MAX_ADDRESS), ()))?;
                    String::from_utf8(b).map_err(|_| {
                        CodecError::Invalid("RegisterValidator", "address not utf-8")
                    })?
                },
            }),
            7 => Ok(Payload::DeregisterValidator),
            8 => Ok(Payload::CreateOffer {
                terms: OfferTerms::read(buf)?,
            }),
            9 => Ok(Payload::UpdateOffer {
                offer_id: u64::read(buf)?,
                terms: OfferTerms::read(buf)?,
            }),
            10 => Ok(Payload::WithdrawOffer {
                offer_id: u64::read(buf)?,
            }),
            11 => Ok(Payload::OpenLease {
                offer_id: u64::read(buf)?,
                chips: Vec::<ChipId>::read_cfg(
                    buf,
                    &(RangeCfg::new(1..=unet_market::MAX_LEASE_CHIPS), ()),
                )?,
                deposit: u128::read(buf)?,
            }),
            12 => Ok(Payload::TopUp {
                lease_id: u64::read(buf)?,
                amount: u128::read(buf)?,
            }),
            13 => Ok(Payload::CloseLease {
                lease_id: u64::read(buf)?,
            }),
            tag => Err(CodecError::InvalidEnum(tag)),
        }
    }
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// Chain the transaction is valid on (from genesis); stops cross-chain replay.
    pub chain_id: u64,
    /// Account that pays the fee and whose nonce is consumed.
    pub sender: Address,
    /// Must equal the sender's next nonce; stops replay on the same chain.
    pub nonce: u64,
    /// Fee offered, in base units; at least the genesis `min_fee`.
    pub fee: Amount,
    /// What to do.
    pub payload: Payload,
}

impl Write for Transaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.chain_id.write(buf);
        self.sender.write(buf);
        self.nonce.write(buf);
        self.fee.write(buf);
        self.payload.write(buf);
    }
}

impl EncodeSize for Transaction {
    fn encode_size(&self) -> usize {
        self.chain_id.encode_size()
            + self.sender.encode_size()
            + self.nonce.encode_size()
            + self.fee.encode_size()
            + self.payload.encode_size()
    }
}

impl Read for Transaction {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            chain_id: u64::read(buf)?,
            sender: read_address(buf)?,
            nonce: u64::read(buf)?,
            fee: u128::read(buf)?,
            payload: Payload::read(buf)?,
        })
    }
}

impl Transaction {
    /// Signs the transaction with the sender's key.
    ///
    /// The caller must pass the key whose public key is `self.sender`; a mismatch produces a
    /// transaction every node rejects with [`TxError::BadSignature`].
    pub fn sign(self, key: &PrivateKey) -> SignedTx {
        let signature = key.sign(TX_NAMESPACE, &self.encode());
        SignedTx::new(self, signature)
    }
}

/// A transaction with the sender's signature; its hash is cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    /// The transaction: chain id, sender, nonce, fee and payload.
    pub tx: Transaction,
    /// The sender's ed25519 signature over the encoded transaction, under the transaction
    /// namespace.
    pub signature: Signature,
    hash: Digest,
}

impl SignedTx {
    /// Wraps a transaction and signature (not checked here: see [`SignedTx::check_signature`]).
    pub fn new(tx: Transaction, signature: Signature) -> Self {
        let mut hasher = Sha256::default();
        hasher.update(&tx.encode());
        hasher.update(&signature);
        let (_, hash) = hasher.finalize();
        Self {
            tx,
            signature,
            hash,
        }
    }

    /// SHA-256 of the encoded signed transaction.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// Verifies the ed25519 signature of the sender.
    pub fn check_signature(&self) -> Result<(), TxError> {
        if self
            .tx
            .sender
            .verify(TX_NAMESPACE, &self.tx.encode(), &self.signature)
        {
            Ok(())
        } else {
            Err(TxError::BadSignature)
        }
    }

    /// Checks that need no state: chain id, fee floor, size, self-consistency, signature.
    pub fn check_stateless(&self, chain_id: u64, min_fee: Amount) -> Result<(), TxError> {
        if self.tx.chain_id != chain_id {
            return Err(TxError::WrongChain {
                expected: chain_id,
                got: self.tx.chain_id,
            });
        }
        if self.encode_size() > MAX_TX_BYTES {
            return Err(TxError::TooLarge(self.encode_size()));
        }
        if self.tx.fee < min_fee {
            return Err(TxError::FeeTooLow {
                min: min_fee,
                got: self.tx.fee,
            });
        }
        if let Payload::Transfer { amount: 0, .. } = &self.tx.payload {
            return Err(TxError::ZeroAmount);
        }
        self.check_signature()
    }

    /// Decodes a signed transaction from untrusted bytes (bounded by [`MAX_TX_BYTES`]).
    pub fn decode_untrusted(bytes: &[u8]) -> Result<Self, TxError> {
        use commonware_codec::DecodeExt;
        if bytes.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge(bytes.len()));
        }
        Self::decode(bytes.to_vec()).map_err(|e| TxError::Malformed(e.to_string()))
    }
}

impl Write for SignedTx {
    fn write(&self, buf: &mut impl BufMut) {
        self.tx.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedTx {
    fn encode_size(&self) -> usize {
        self.tx.encode_size() + self.signature.encode_size()
    }
}

impl Read for SignedTx {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        let tx = Transaction::read(buf)?;
        let signature = Signature::read(buf)?;
        Ok(Self::new(tx, signature))
    }
}

/// Why a transaction was refused. Each variant names the check that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The bytes do not decode as a canonical transaction (the decoder's message).
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// The encoding is longer than [`MAX_TX_BYTES`] (its length).
    #[error("transaction too large: {0} bytes (max {MAX_TX_BYTES})")]
    TooLarge(usize),
    /// The transaction is signed for another chain.
    #[error("wrong chain id: expected {expected}, got {got}")]
    WrongChain {
        /// This chain's id.
        expected: u64,
        /// The transaction's chain id.
        got: u64,
    },
    /// The signature is not the sender's over the transaction.
    #[error("bad signature: not signed by the sender's key")]
    BadSignature,
    /// The fee is below the chain's minimum.
    #[error("fee too low: minimum {min}, got {got}")]
    FeeTooLow {
        /// Minimum fee, base units.
        min: Amount,
        /// The transaction's fee, base units.
        got: Amount,
    },
    /// A transfer of zero base units.
    #[error("transfer of zero")]
    ZeroAmount,
    /// The nonce was already used (a replay, or a transaction already applied).
    #[error("nonce too low: account nonce is {expected}, got {got} (already used: replay?)")]
    NonceTooLow {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The nonce is ahead of the account's: an earlier transaction is missing.
    #[error("nonce gap: account nonce is {expected}, got {got}")]
    NonceGap {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender's balance cannot pay the fee.
    #[error("insufficient balance for fee: balance {balance}, fee {fee}")]
    CannotPayFee {
        /// The sender's balance, base units.
        balance: Amount,
        /// The transaction's fee, base units.
        fee: Amount,
    },
    /// The sender's balance cannot cover what the transaction moves (in a block: after its
    /// fee; in the mempool: the fee and the amount together).
    #[error("insufficient balance: balance {balance}, needed {needed}")]
    InsufficientBalance {
        /// The sender's balance, base units.
        balance: Amount,
        /// What it needs, base units.
        needed: Amount,
    },
    /// The mempool holds its maximum of transactions.
    #[error("mempool full")]
    MempoolFull,
    /// The mempool already holds this transaction, or one with the same sender and nonce and
    /// at least its fee.
    #[error("already known")]
    Duplicate,
}

impl TxError {
    /// Stable machine-readable code for the failed check (used by the API and receipts).
    pub fn code(&self) -> &'static str {
        match self {
            TxError::Malformed(_) => "malformed",
            TxError::TooLarge(_) => "too_large",
            TxError::WrongChain { .. } => "wrong_chain",
            TxError::BadSignature => "bad_signature",
            TxError::FeeTooLow { .. } => "fee_too_low",
            TxError::ZeroAmount => "zero_amount",
            TxError::NonceTooLow { .. } => "nonce_too_low",
            TxError::NonceGap { .. } => "nonce_gap",
            TxError::CannotPayFee { .. } => "cannot_pay_fee",
            TxError::InsufficientBalance { .. } => "insufficient_balance",
            TxError::MempoolFull => "mempool_full",
            TxError::Duplicate => "duplicate",
        }
    }
}

/// Hash of a transaction as a hex string (how the API names transactions).
pub fn hash_hex(hash: &Digest) -> String {
    hex::encode(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UNC;
    use commonware_codec::DecodeExt;

    fn transfer(nonce: u64) -> (PrivateKey, SignedTx) {
        let key = PrivateKey::from_seed(1);
        let to = PrivateKey::from_seed(2).public_key();
        let tx = Transaction {
            chain_id: 7,
            sender: key.public_key(),
            nonce,
            fee: 1000,
            payload: Payload::Transfer { to, amount: UNC },
        };
        (key.clone(), tx.sign(&key))
    }

    #[test]
    fn round_trip_and_hash_is_stable() {
        let (_, stx) = transfer(3);
        let bytes = stx.encode();
        let back = SignedTx::decode(bytes.clone()).unwrap();
        assert_eq!(back, stx);
        assert_eq!(back.hash(), stx.hash());
        assert_eq!(back.encode(), bytes);
        assert!(stx.check_stateless(7, 1000).is_ok());
    }

    #[test]
    fn stateless_checks_name_the_failure() {
        let (_, stx) = transfer(0);
        assert_eq!(
            stx.check_stateless(8, 0),
            Err(TxError::WrongChain {
                expected: 8,
                got: 7
            })
        );
        assert_eq!(
            stx.check_stateless(7, 1001),
            Err(TxError::FeeTooLow {
                min: 1001,
                got: 1000
            })
        );
        // Signed by the wrong key.
        let other = PrivateKey::from_seed(9);
        let forged = stx.tx.clone().sign(&other);
        assert_eq!(forged.check_stateless(7, 0), Err(TxError::BadSignature));
        // Tampered after signing.
        let mut tampered = stx.clone();
        tampered.tx.nonce += 1;
        let tampered = SignedTx::new(tampered.tx, tampered.signature);
        assert_eq!(tampered.check_stateless(7, 0), Err(TxError::BadSignature));
    }

    #[test]
    fn decoder_rejects_garbage_without_panicking() {
        let (_, stx) = transfer(1);
        let bytes = stx.encode().to_vec();
        for len in 0..bytes.len() {
            assert!(SignedTx::decode_untrusted(&bytes[..len]).is_err());
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(SignedTx::decode_untrusted(&extra).is_err());
        let mut bad_tag = bytes.clone();
        bad_tag[8 + 32 + 8 + 16] = 99; // payload tag
        assert!(matches!(
            SignedTx::decode_untrusted(&bad_tag),
            Err(TxError::Malformed(_))
        ));
        assert!(matches!(
            SignedTx::decode_untrusted(&vec![0u8; MAX_TX_BYTES + 1]),
            Err(TxError::TooLarge(_))
        ));
    }
}
