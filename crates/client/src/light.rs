//! A light client: checks what a node says about the state without trusting the node.
//!
//! The only thing trusted is the chain's threshold group key (the constant term of the genesis
//! `consensus_polynomial`; resharing keeps it across every epoch). From there:
//!
//! 1. the finalization certificate of `unet_getFinalizedHeader` must verify under the group
//!    key (threshold BLS over the finalized proposal);
//! 2. the digest it finalizes must be the digest *recomputed* from the last returned header,
//!    and each header must be the parent of the next, back to the header at the asked height;
//! 3. the `unet_getProof` answer must name that height's block, its state root must be the
//!    certified header's, and its merkle proof must verify against that root (the root from
//!    the header, never the one the proof carries).
//!
//! Only then is the account (or chip, `unet_getChipProof`) reported, with what was verified
//! ([`VerifiedAccount`], [`VerifiedChip`]).

use crate::{Client, ClientError};
use commonware_codec::{Copying, Decode, DecodeExt, Encode};
use commonware_consensus::simplex::{scheme::bls12381_threshold::vrf, types::Finalization};
use commonware_cryptography::bls12381::primitives::{
    sharing::{ModeVersion, Sharing},
    variant::{MinSig, Variant},
};
use commonware_parallel::Sequential;
use std::num::NonZeroU32;
use unet_api::{
    chain::{CertifiedHeaderView, ProofView, MAX_HEADER_CHAIN},
    chips::ChipProofView,
};
use unet_types::{
    chip::{Chip, ChipId},
    keys::Account,
    Address, BlockHeader, Digest, Genesis, PublicKey,
};

/// The consensus certificate scheme (threshold BLS12-381, MinSig, with a VRF seed).
pub type Scheme = vrf::Scheme<PublicKey, MinSig>;

/// The chain's threshold group public key.
pub type GroupKey = <MinSig as Variant>::Public;

/// Largest validator set a genesis polynomial may describe (decoding bound).
const MAX_VALIDATORS: u32 = 1024;

/// Why an answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum LightError {
    /// The group key could not be read.
    #[error("group key: {0}")]
    GroupKey(String),
    /// Asking the node failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The certificate is not a finalization certificate.
    #[error("finalization certificate does not decode: {0}")]
    CertificateEncoding(String),
    /// The certificate's signature does not verify under the group key.
    #[error("finalization certificate does not verify under the chain's group key")]
    BadCertificate,
    /// No header, or more than [`MAX_HEADER_CHAIN`].
    #[error("expected 1 to {MAX_HEADER_CHAIN} headers, got {0}")]
    HeaderCount(usize),
    /// A header does not decode.
    #[error("header {0} does not decode: {1}")]
    HeaderEncoding(usize, String),
    /// The first header is not at the asked height.
    #[error("first header is for height {got}, asked for {want}")]
    WrongHeight {
        /// The height asked for.
        want: u64,
        /// The header's height.
        got: u64,
    },
    /// A header is not the child of the one before.
    #[error("header at height {0} is not the child of the header before it")]
    BrokenChain(u64),
    /// The certificate finalizes another block than the last header's.
    #[error("certificate finalizes block {certified}, the last header's digest is {header}")]
    CertificateForAnotherBlock {
        /// The digest the certificate signs.
        certified: String,
        /// The digest recomputed from the header.
        header: String,
    },
    /// The proof names another block than the certified one at its height.
    #[error("proof is for block {proof}, the certified block at height {height} is {header}")]
    ProofForAnotherBlock {
        /// The proof's height.
        height: u64,
        /// The block the proof names.
        proof: String,
        /// The certified block.
        header: String,
    },
    /// The proof's root is not the certified header's state root.
    #[error("proof's state root {proof} is not the certified state root {header}")]
    RootMismatch {
        /// The root the proof carries.
        proof: String,
        /// The certified header's state root.
        header: String,
    },
    /// The proof is for another key than the address's.
    #[error("proof key is not the state key of this address")]
    WrongKey,
    /// The answer proves another account than the one asked about.
    #[error("asked about account {asked}, the answer proves account {answered}")]
    AnotherAccount {
        /// The address asked about.
        asked: String,
        /// The address the proof is for.
        answered: String,
    },
    /// The answer proves another chip than the one asked about.
    #[error("asked about chip {asked}, the answer proves chip {answered}")]
    AnotherChip {
        /// The chip asked about.
        asked: String,
        /// The chip the proof is for.
        answered: String,
    },
    /// The merkle proof does not verify against the certified root.
    #[error("merkle proof does not verify against the certified state root: {0}")]
    BadProof(String),
    /// The proven value is not an account.
    #[error("proven value is not an account: {0}")]
    BadValue(String),
}

/// A header whose finalization was verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedHeader {
    /// The header at the asked height.
    pub header: BlockHeader,
    /// Its digest (recomputed).
    pub block: Digest,
    /// Height of the block the certificate finalizes (the asked one or a descendant).
    pub certified_height: u64,
    /// Epoch and view of the certificate's round.
    pub round: (u64, u64),
}

/// An account verified against a certified state root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAccount {
    /// The account's address.
    pub address: Address,
    /// The account (`None`: proven absent, i.e. zero balance and nonce).
    pub account: Option<Account>,
    /// The certified header whose state root the proof verified against.
    pub certified: CertifiedHeader,
}

/// A chip verified against a certified state root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedChip {
    /// The chip.
    pub chip_id: ChipId,
    /// Its registry entry (`None`: proven not registered).
    pub chip: Option<Chip>,
    /// The certified header whose state root the proof verified against.
    pub certified: CertifiedHeader,
}

/// Verifies certificates and proofs with only the chain's group key.
#[derive(Clone, Debug)]
pub struct LightVerifier {
    identity: GroupKey,
    scheme: Scheme,
}

impl LightVerifier {
    /// A verifier trusting `identity`.
    pub fn new(identity: GroupKey) -> Self {
        Self {
            identity,
            scheme: Scheme::certificate_verifier(unet_types::CONSENSUS_NAMESPACE, identity),
        }
    }

    /// A verifier trusting the group key of a genesis document (the constant term of its
    /// `consensus_polynomial`).
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, LightError> {
        let bytes = hex::decode(genesis.consensus_polynomial.trim())
            .map_err(|e| LightError::GroupKey(format!("consensus_polynomial is not hex: {e}")))?;
        let max = NonZeroU32::new(MAX_VALIDATORS).expect("non-zero");
        let sharing = Sharing::<MinSig>::decode_cfg(Copying(&bytes), &(max, ModeVersion::v0()))
            .map_err(|e| LightError::GroupKey(format!("invalid consensus_polynomial: {e}")))?;
        Ok(Self::new(*sharing.public()))
    }

    /// A verifier trusting a group key given in hex (see [`LightVerifier::group_key_hex`]).
    pub fn from_hex(text: &str) -> Result<Self, LightError> {
        let bytes = hex::decode(text.trim().trim_start_matches("0x"))
            .map_err(|e| LightError::GroupKey(format!("not hex: {e}")))?;
        let key = GroupKey::decode(Copying(&bytes))
            .map_err(|e| LightError::GroupKey(format!("not a BLS12-381 public key: {e}")))?;
        Ok(Self::new(key))
    }

    /// The trusted group key, hex.
    pub fn group_key_hex(&self) -> String {
        hex::encode(self.identity.encode())
    }

    /// Checks an `unet_getFinalizedHeader` answer for `height`: the certificate verifies under
    /// the group key, it finalizes the digest recomputed from the last header, and the headers
    /// link back to the one at `height`.
    pub fn verify_header(
        &self,
        view: &CertifiedHeaderView,
        height: u64,
    ) -> Result<CertifiedHeader, LightError> {
        let finalization = Finalization::<Scheme, Digest>::decode(Copying(&view.finalization))
            .map_err(|e| LightError::CertificateEncoding(e.to_string()))?;
        let mut rng = rand::rng();
        if !finalization.verify(&mut rng, &self.scheme, &Sequential) {
            return Err(LightError::BadCertificate);
        }
        if view.headers.is_empty() || view.headers.len() > MAX_HEADER_CHAIN {
            return Err(LightError::HeaderCount(view.headers.len()));
        }
        let mut headers = Vec::with_capacity(view.headers.len());
        for (i, bytes) in view.headers.iter().enumerate() {
            let header = BlockHeader::decode(Copying(bytes))
                .map_err(|e| LightError::HeaderEncoding(i, e.to_string()))?;
            headers.push(header);
        }
        let first = &headers[0];
        if first.height.get() != height {
            return Err(LightError::WrongHeight {
                want: height,
                got: first.height.get(),
            });
        }
        for pair in headers.windows(2) {
            if pair[1].parent != pair[0].digest()
                || pair[1].height.get() != pair[0].height.get() + 1
            {
                return Err(LightError::BrokenChain(pair[1].height.get()));
            }
        }
        let last = headers.last().expect("not empty");
        let last_digest = last.digest();
        if finalization.proposal.payload != last_digest {
            return Err(LightError::CertificateForAnotherBlock {
                certified: hex::encode(finalization.proposal.payload),
                header: hex::encode(last_digest),
            });
        }
        let round = finalization.round();
        Ok(CertifiedHeader {
            block: first.digest(),
            certified_height: last.height.get(),
            header: headers.swap_remove(0),
            round: (round.epoch().get(), round.view().get()),
        })
    }

    /// Checks an `unet_getProof` answer for `address` against the certified header of its
    /// height: the answer is about `address` (a node could otherwise answer with another
    /// account's valid proof), the header checks out ([`LightVerifier::verify_header`]), the
    /// proof names that block and its state root, and the merkle proof of the address's key
    /// verifies against the certified root.
    pub fn verify_account(
        &self,
        address: &Address,
        header: &CertifiedHeaderView,
        proof: &ProofView,
    ) -> Result<VerifiedAccount, LightError> {
        if proof.address != *address {
            return Err(LightError::AnotherAccount {
                asked: unet_types::hexser::to_hex(address),
                answered: unet_types::hexser::to_hex(&proof.address),
            });
        }
        let key = unet_types::keys::account_key(address);
        if proof.key != key {
            return Err(LightError::WrongKey);
        }
        let (certified, value) = self.verify_entry(
            header,
            Claim {
                height: proof.height,
                block: proof.block,
                state_root: proof.state_root,
                key,
                proof: &proof.proof,
            },
        )?;
        let account = value
            .map(|v| Account::decode(Copying(&v)).map_err(|e| LightError::BadValue(e.to_string())))
            .transpose()?;
        Ok(VerifiedAccount {
            address: address.clone(),
            account,
            certified,
        })
    }

    /// Checks an `unet_getChipProof` answer for `chip_id` the same way as
    /// [`LightVerifier::verify_account`].
    pub fn verify_chip(
        &self,
        chip_id: &ChipId,
        header: &CertifiedHeaderView,
        proof: &ChipProofView,
    ) -> Result<VerifiedChip, LightError> {
        if proof.chip_id != *chip_id {
            return Err(LightError::AnotherChip {
                asked: hex::encode(chip_id),
                answered: hex::encode(proof.chip_id),
            });
        }
        let key = unet_types::keys::chip_key(chip_id);
        if proof.key != key {
            return Err(LightError::WrongKey);
        }
        let (certified, value) = self.verify_entry(
            header,
            Claim {
                height: proof.height,
                block: proof.block,
                state_root: proof.state_root,
                key,
                proof: &proof.proof,
            },
        )?;
        let chip = value
            .map(|v| Chip::decode(Copying(&v)).map_err(|e| LightError::BadValue(e.to_string())))
            .transpose()?;
        Ok(VerifiedChip {
            chip_id: *chip_id,
            chip,
            certified,
        })
    }

    /// The header of the claim's height checks out, the claim names that block and its state
    /// root, and the merkle proof of `key` verifies against the certified root; returns the
    /// proven value.
    fn verify_entry(
        &self,
        header: &CertifiedHeaderView,
        claim: Claim<'_>,
    ) -> Result<(CertifiedHeader, Option<Vec<u8>>), LightError> {
        let certified = self.verify_header(header, claim.height)?;
        if claim.block != certified.block {
            return Err(LightError::ProofForAnotherBlock {
                height: claim.height,
                proof: hex::encode(claim.block),
                header: hex::encode(certified.block),
            });
        }
        let root = certified.header.state_root;
        if claim.state_root != root {
            return Err(LightError::RootMismatch {
                proof: hex::encode(claim.state_root),
                header: hex::encode(root),
            });
        }
        let decoded = unet_store::StateProof::from_bytes(claim.proof)
            .map_err(|e| LightError::BadProof(e.to_string()))?;
        let value = unet_store::verify_proof(&root, &claim.key, &decoded)
            .map_err(|e| LightError::BadProof(e.to_string()))?;
        Ok((certified, value))
    }

    /// Asks `client` for the proof of `address` and the certified header of its height, and
    /// verifies both ([`LightVerifier::verify_account`]).
    pub async fn account(
        &self,
        client: &Client,
        address: &Address,
    ) -> Result<VerifiedAccount, LightError> {
        let proof = client.proof(address).await?;
        let header = client.finalized_header(proof.height).await?;
        self.verify_account(address, &header, &proof)
    }

    /// Asks `client` for the proof of chip `chip_id` and the certified header of its height,
    /// and verifies both ([`LightVerifier::verify_chip`]).
    pub async fn chip(
        &self,
        client: &Client,
        chip_id: &ChipId,
    ) -> Result<VerifiedChip, LightError> {
        let proof = client.chip_proof(chip_id).await?;
        let header = client.finalized_header(proof.height).await?;
        self.verify_chip(chip_id, &header, &proof)
    }
}

/// What an answer claims about one state entry.
struct Claim<'a> {
    height: u64,
    block: Digest,
    state_root: Digest,
    key: Digest,
    proof: &'a [u8],
}
