//! Blocks: an ordered batch of transactions plus the commitments every validator checks.
//!
//! Wire format (canonical):
//!
//! ```text
//! Block := context | parent [32] | height varint | timestamp_ms varint
//!        | seed option<[48]> | state_root [32] | tx_root [32] | txs vec<SignedTx>
//! ```
//!
//! `context` is the simplex consensus context the block was proposed in (round, leader,
//! parent view and digest); embedding it lets any node verify a block it did not see proposed.
//! `seed` is the threshold-BLS VRF signature over the *parent's* consensus round (absent when
//! the parent is genesis); its SHA-256 is the block's random [`Block::beacon`]. `state_root` is
//! the root of the authenticated state *after* executing this block; `tx_root` is the binary
//! Merkle root over the transaction hashes. The block digest is SHA-256 over the header (every
//! field but `txs`, which `tx_root` commits to).

use crate::{Digest, PublicKey, SignedTx};
use bytes::BufMut;
use commonware_codec::{
    varint::UInt, Encode, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write,
};
use commonware_consensus::{
    simplex::types::Context as SimplexContext,
    types::{Epoch, Height, Round, View},
    CertifiableBlock, Heightable,
};
use commonware_cryptography::{
    bls12381::primitives::variant::{MinSig, Variant},
    Digest as _, Digestible, Hasher, Sha256, Signer,
};
use commonware_storage::bmt;

/// Consensus context a block was proposed in.
pub type Context = SimplexContext<Digest, PublicKey>;

/// Threshold-BLS signature type of the round seed (VRF output).
pub type SeedSignature = <MinSig as Variant>::Signature;

/// Decoding limits for blocks from untrusted sources.
#[derive(Clone, Copy, Debug)]
pub struct BlockCfg {
    /// Most transactions a block may carry.
    pub max_txs: usize,
}

/// A block of the UtilityNet chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub context: Context,
    pub parent: Digest,
    pub height: Height,
    /// Proposer's clock in milliseconds since the Unix epoch; never below the parent's.
    pub timestamp: u64,
    pub seed: Option<SeedSignature>,
    pub state_root: Digest,
    pub tx_root: Digest,
    pub txs: Vec<SignedTx>,
    digest: Digest,
}

impl Block {
    /// Builds a block, computing its transaction root and digest.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        context: Context,
        parent: Digest,
        height: Height,
        timestamp: u64,
        seed: Option<SeedSignature>,
        state_root: Digest,
        txs: Vec<SignedTx>,
    ) -> Self {
        let tx_root = tx_root(&txs);
        let digest = header_digest(
            &context,
            &parent,
            height,
            timestamp,
            &seed,
            &state_root,
            &tx_root,
        );
        Self {
            context,
            parent,
            height,
            timestamp,
            seed,
            state_root,
            tx_root,
            txs,
            digest,
        }
    }

    /// The genesis block: height 0, committing to the genesis state root and the genesis
    /// document's hash (as its parent).
    pub fn genesis(genesis_hash: Digest, state_root: Digest, timestamp: u64) -> Self {
        let context = Context {
            round: Round::new(Epoch::zero(), View::zero()),
            leader: crate::PrivateKey::from_seed(0).public_key(),
            parent: (View::zero(), Digest::EMPTY),
        };
        Self::new(
            context,
            genesis_hash,
            Height::zero(),
            timestamp,
            None,
            state_root,
            Vec::new(),
        )
    }

    /// The proposer of this block (the consensus leader of its round).
    pub fn proposer(&self) -> &PublicKey {
        &self.context.leader
    }

    /// The block's random beacon: SHA-256 of the parent round's threshold VRF signature, or of
    /// the genesis hash domain for the first block.
    pub fn beacon(&self) -> Digest {
        match &self.seed {
            Some(sig) => Sha256::hash(&[b"UNET_BEACON", &sig.encode()]),
            None => Sha256::hash(&[b"UNET_BEACON_GENESIS", self.parent.as_ref()]),
        }
    }
}

/// Binary Merkle root over the transaction hashes, in block order.
pub fn tx_root(txs: &[SignedTx]) -> Digest {
    let mut builder = bmt::Builder::<Sha256>::new(txs.len());
    for tx in txs {
        builder.add(&tx.hash());
    }
    builder.build().root()
}

fn header_digest(
    context: &Context,
    parent: &Digest,
    height: Height,
    timestamp: u64,
    seed: &Option<SeedSignature>,
    state_root: &Digest,
    tx_root: &Digest,
) -> Digest {
    let mut hasher = Sha256::default();
    hasher.update(&context.encode());
    hasher.update(parent);
    hasher.update(&height.get().to_be_bytes());
    hasher.update(&timestamp.to_be_bytes());
    hasher.update(&seed.encode());
    hasher.update(state_root);
    hasher.update(tx_root);
    hasher.finalize().1
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.context.write(buf);
        self.parent.write(buf);
        self.height.write(buf);
        UInt(self.timestamp).write(buf);
        self.seed.write(buf);
        self.state_root.write(buf);
        self.tx_root.write(buf);
        self.txs.write(buf);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        self.context.encode_size()
            + self.parent.encode_size()
            + self.height.encode_size()
            + UInt(self.timestamp).encode_size()
            + self.seed.encode_size()
            + self.state_root.encode_size()
            + self.tx_root.encode_size()
            + self.txs.encode_size()
    }
}

impl Read for Block {
    type Cfg = BlockCfg;

    fn read_cfg(buf: &mut impl commonware_codec::Buf, cfg: &BlockCfg) -> Result<Self, CodecError> {
        let context = Context::read(buf)?;
        let parent = Digest::read(buf)?;
        let height = Height::read(buf)?;
        let timestamp = UInt::read(buf)?.0;
        let seed = Option::<SeedSignature>::read(buf)?;
        let state_root = Digest::read(buf)?;
        let claimed_tx_root = Digest::read(buf)?;
        let txs = Vec::<SignedTx>::read_cfg(buf, &(RangeCfg::from(..=cfg.max_txs), ()))?;
        let block = Self::new(context, parent, height, timestamp, seed, state_root, txs);
        if block.tx_root != claimed_tx_root {
            return Err(CodecError::Invalid(
                "Block",
                "tx_root does not match transactions",
            ));
        }
        Ok(block)
    }
}

impl Digestible for Block {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        self.digest
    }
}

impl Heightable for Block {
    fn height(&self) -> Height {
        self.height
    }
}

impl commonware_consensus::Block for Block {
    fn parent(&self) -> Digest {
        self.parent
    }
}

impl CertifiableBlock for Block {
    type Context = Context;

    fn context(&self) -> Context {
        self.context.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Payload, PrivateKey, Transaction};
    use commonware_codec::Decode;

    fn sample(n: usize) -> Block {
        let key = PrivateKey::from_seed(1);
        let txs = (0..n as u64)
            .map(|nonce| {
                Transaction {
                    chain_id: 1,
                    sender: key.public_key(),
                    nonce,
                    fee: 1,
                    payload: Payload::Transfer {
                        to: PrivateKey::from_seed(2).public_key(),
                        amount: 5,
                    },
                }
                .sign(&key)
            })
            .collect();
        let genesis = Block::genesis(Sha256::hash(&[b"g"]), Sha256::hash(&[b"s"]), 0);
        let context = Context {
            round: Round::new(Epoch::zero(), View::new(1)),
            leader: key.public_key(),
            parent: (View::zero(), genesis.digest()),
        };
        Block::new(
            context,
            genesis.digest(),
            Height::new(1),
            10,
            None,
            Sha256::hash(&[b"r"]),
            txs,
        )
    }

    #[test]
    fn round_trip_is_canonical() {
        let block = sample(3);
        let bytes = block.encode();
        let back = Block::decode_cfg(bytes.clone(), &BlockCfg { max_txs: 10 }).unwrap();
        assert_eq!(back, block);
        assert_eq!(back.digest(), block.digest());
        assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn digest_commits_to_transactions_and_header() {
        let a = sample(2);
        let b = sample(3);
        assert_ne!(a.tx_root, b.tx_root);
        assert_ne!(a.digest(), b.digest());
        assert_ne!(
            a.beacon(),
            Block::genesis(Digest::EMPTY, Digest::EMPTY, 0).beacon()
        );
    }

    #[test]
    fn decoder_enforces_limits_and_tx_root() {
        let block = sample(3);
        let bytes = block.encode().to_vec();
        assert!(Block::decode_cfg(bytes.clone(), &BlockCfg { max_txs: 2 }).is_err());
        // Corrupt the claimed tx root (it sits right before the tx vector).
        let tx_bytes = block.txs.encode_size();
        let mut bad = bytes.clone();
        let at = bad.len() - tx_bytes - 1;
        bad[at] ^= 1;
        assert!(Block::decode_cfg(bad, &BlockCfg { max_txs: 10 }).is_err());
        for len in 0..bytes.len() {
            assert!(Block::decode_cfg(bytes[..len].to_vec(), &BlockCfg { max_txs: 10 }).is_err());
        }
    }
}
