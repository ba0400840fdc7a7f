//! Blocks: an ordered batch of transactions plus the commitments every validator checks.
//!
//! Wire format (canonical):
//!
//! ```text
//! Block := context | parent [32] | height varint | timestamp_ms varint
//!        | seed option<[48]> | reshare option<Payload> | state_root [32] | tx_root [32]
//!        | txs vec<SignedTx>
//! ```
//!
//! `context` is the simplex consensus context the block was proposed in (round, leader,
//! parent view and digest); embedding it lets any node verify a block it did not see proposed.
//! `seed` is the threshold-BLS VRF signature over the *parent's* consensus round (absent when
//! the parent is genesis); its SHA-256 is the block's random [`Block::beacon`]. `reshare` is
//! the threshold-key reshare artifact a block may carry (commonware-glue's `dkg` payload): a
//! dealer log from an epoch's midpoint on, the next epoch's [`EpochInfo`] in an epoch's final
//! block, and epoch zero's [`EpochInfo`] in the genesis block. `state_root` is
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
use commonware_glue::dkg::{network::Addresses, types, ReshareBlock};
use commonware_storage::bmt;
use std::num::NonZeroU32;

/// Transport directory carried in epoch artifacts: each participant's p2p address.
pub type Directory = Addresses<PublicKey>;

/// A reshare artifact carried by a block (dealer log or epoch info).
pub type ResharePayload = types::Payload<MinSig, PublicKey, Directory>;

/// The public description of one epoch: threshold output, players, next players, directory.
pub type EpochInfo = types::EpochInfo<MinSig, PublicKey, Directory>;

/// Most members of any participant set a reshare payload may name (the committee bound).
pub const MAX_PARTICIPANTS: NonZeroU32 = match NonZeroU32::new(crate::epoch::MAX_COMMITTEE as u32) {
    Some(n) => n,
    None => panic!("MAX_COMMITTEE must be non-zero"),
};

/// Highest threshold sharing mode version accepted in payloads.
pub fn max_sharing_mode() -> commonware_cryptography::bls12381::primitives::sharing::ModeVersion {
    commonware_cryptography::bls12381::primitives::sharing::ModeVersion::v0()
}

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
#[derive(Clone, PartialEq, Eq)]
pub struct Block {
    /// The simplex consensus context the block was proposed in (round, leader, parent view
    /// and digest).
    pub context: Context,
    /// Digest of the parent block.
    pub parent: Digest,
    /// Height in the chain (the genesis block is height 0).
    pub height: Height,
    /// Proposer's clock in milliseconds since the Unix epoch; never below the parent's.
    pub timestamp: u64,
    /// Threshold-BLS VRF signature over the parent's consensus round (None when the parent is
    /// genesis); its SHA-256 is the block's [`Block::beacon`].
    pub seed: Option<SeedSignature>,
    /// Reshare artifact (dealer log or epoch info), if any.
    pub reshare: Option<ResharePayload>,
    /// Root of the authenticated state after executing this block.
    pub state_root: Digest,
    /// Binary Merkle root over the transaction hashes, in order.
    pub tx_root: Digest,
    /// The signed transactions, at most [`BlockCfg::max_txs`], executed in order.
    pub txs: Vec<SignedTx>,
    digest: Digest,
}

impl Block {
    /// Builds a block without a reshare payload, computing its transaction root and digest.
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
        Self::with_reshare(
            context, parent, height, timestamp, seed, None, state_root, txs,
        )
    }

    /// Builds a block carrying `reshare`, computing its transaction root and digest.
    #[allow(clippy::too_many_arguments)]
    pub fn with_reshare(
        context: Context,
        parent: Digest,
        height: Height,
        timestamp: u64,
        seed: Option<SeedSignature>,
        reshare: Option<ResharePayload>,
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
            &reshare,
            &state_root,
            &tx_root,
        );
        Self {
            context,
            parent,
            height,
            timestamp,
            seed,
            reshare,
            state_root,
            tx_root,
            txs,
            digest,
        }
    }

    /// The genesis block: height 0, committing to the genesis state root, the genesis
    /// document's hash (as its parent) and epoch zero's [`EpochInfo`] (threshold output and
    /// committee the chain starts with).
    pub fn genesis(
        genesis_hash: Digest,
        state_root: Digest,
        timestamp: u64,
        epoch_zero: EpochInfo,
    ) -> Self {
        let context = Context {
            round: Round::new(Epoch::zero(), View::zero()),
            leader: crate::PrivateKey::from_seed(0).public_key(),
            parent: (View::zero(), Digest::EMPTY),
        };
        Self::with_reshare(
            context,
            genesis_hash,
            Height::zero(),
            timestamp,
            None,
            Some(ResharePayload::EpochInfo(epoch_zero)),
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

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reshare = match &self.reshare {
            None => "none",
            Some(types::Payload::DealerLog(_)) => "dealer_log",
            Some(types::Payload::EpochInfo(_)) => "epoch_info",
        };
        f.debug_struct("Block")
            .field("context", &self.context)
            .field("parent", &self.parent)
            .field("height", &self.height)
            .field("timestamp", &self.timestamp)
            .field("seed", &self.seed)
            .field("reshare", &reshare)
            .field("state_root", &self.state_root)
            .field("tx_root", &self.tx_root)
            .field("txs", &self.txs.len())
            .field("digest", &self.digest)
            .finish()
    }
}

/// A block without its transactions: every field its digest covers (`tx_root` commits to the
/// transactions). What a light client receives to check a finalization certificate against a
/// state root: the certificate signs [`BlockHeader::digest`], which equals the block's digest.
///
/// Wire format: the block's, up to and including `tx_root` (no `txs`).
#[derive(Clone, PartialEq, Eq)]
pub struct BlockHeader {
    /// The consensus context the block was proposed in.
    pub context: Context,
    /// Digest of the parent block.
    pub parent: Digest,
    /// Height in the chain.
    pub height: Height,
    /// Proposer's clock, ms since the Unix epoch.
    pub timestamp: u64,
    /// Threshold VRF signature over the parent's round, if any.
    pub seed: Option<SeedSignature>,
    /// Reshare artifact, if any.
    pub reshare: Option<ResharePayload>,
    /// Root of the authenticated state after the block.
    pub state_root: Digest,
    /// Binary Merkle root over the block's transaction hashes.
    pub tx_root: Digest,
}

impl BlockHeader {
    /// The digest of the block this header belongs to (recomputed from the fields, never
    /// taken from the sender).
    pub fn digest(&self) -> Digest {
        header_digest(
            &self.context,
            &self.parent,
            self.height,
            self.timestamp,
            &self.seed,
            &self.reshare,
            &self.state_root,
            &self.tx_root,
        )
    }
}

impl std::fmt::Debug for BlockHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockHeader")
            .field("height", &self.height)
            .field("parent", &self.parent)
            .field("timestamp", &self.timestamp)
            .field("state_root", &self.state_root)
            .field("tx_root", &self.tx_root)
            .field("reshare", &self.reshare.is_some())
            .finish_non_exhaustive()
    }
}

impl Block {
    /// This block's header.
    pub fn header(&self) -> BlockHeader {
        BlockHeader {
            context: self.context.clone(),
            parent: self.parent,
            height: self.height,
            timestamp: self.timestamp,
            seed: self.seed,
            reshare: self.reshare.clone(),
            state_root: self.state_root,
            tx_root: self.tx_root,
        }
    }
}

impl Write for BlockHeader {
    fn write(&self, buf: &mut impl BufMut) {
        self.context.write(buf);
        self.parent.write(buf);
        self.height.write(buf);
        UInt(self.timestamp).write(buf);
        self.seed.write(buf);
        self.reshare.write(buf);
        self.state_root.write(buf);
        self.tx_root.write(buf);
    }
}

impl EncodeSize for BlockHeader {
    fn encode_size(&self) -> usize {
        self.context.encode_size()
            + self.parent.encode_size()
            + self.height.encode_size()
            + UInt(self.timestamp).encode_size()
            + self.seed.encode_size()
            + self.reshare.encode_size()
            + self.state_root.encode_size()
            + self.tx_root.encode_size()
    }
}

impl Read for BlockHeader {
    type Cfg = ();

    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            context: Context::read(buf)?,
            parent: Digest::read(buf)?,
            height: Height::read(buf)?,
            timestamp: UInt::read(buf)?.0,
            seed: Option::<SeedSignature>::read(buf)?,
            reshare: Option::<ResharePayload>::read_cfg(
                buf,
                &(MAX_PARTICIPANTS, max_sharing_mode()),
            )?,
            state_root: Digest::read(buf)?,
            tx_root: Digest::read(buf)?,
        })
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

#[allow(clippy::too_many_arguments)]
fn header_digest(
    context: &Context,
    parent: &Digest,
    height: Height,
    timestamp: u64,
    seed: &Option<SeedSignature>,
    reshare: &Option<ResharePayload>,
    state_root: &Digest,
    tx_root: &Digest,
) -> Digest {
    let mut hasher = Sha256::default();
    hasher.update(&context.encode());
    hasher.update(parent);
    hasher.update(&height.get().to_be_bytes());
    hasher.update(&timestamp.to_be_bytes());
    hasher.update(&seed.encode());
    hasher.update(&reshare.encode());
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
        self.reshare.write(buf);
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
            + self.reshare.encode_size()
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
        let reshare =
            Option::<ResharePayload>::read_cfg(buf, &(MAX_PARTICIPANTS, max_sharing_mode()))?;
        let state_root = Digest::read(buf)?;
        let claimed_tx_root = Digest::read(buf)?;
        let txs = Vec::<SignedTx>::read_cfg(buf, &(RangeCfg::from(..=cfg.max_txs), ()))?;
        let block = Self::with_reshare(
            context, parent, height, timestamp, seed, reshare, state_root, txs,
        );
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

impl ReshareBlock for Block {
    type Variant = MinSig;
    type PublicKey = PublicKey;
    type Directory = Directory;

    fn payload(&self) -> Option<ResharePayload> {
        self.reshare.clone()
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
        let genesis = Block::new(
            Context {
                round: Round::new(Epoch::zero(), View::zero()),
                leader: key.public_key(),
                parent: (View::zero(), Digest::EMPTY),
            },
            Sha256::hash(&[b"g"]),
            Height::zero(),
            0,
            None,
            Sha256::hash(&[b"s"]),
            Vec::new(),
        );
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

    /// A header carries the block's digest: recomputed from its fields, equal to the block's,
    /// and changed by any field (a light client relies on this to bind a certificate to a
    /// state root).
    #[test]
    fn header_digest_is_the_block_digest_and_binds_every_field() {
        let block = sample(3);
        let header = block.header();
        assert_eq!(header.digest(), block.digest());
        let back =
            <BlockHeader as commonware_codec::DecodeExt<()>>::decode(header.encode()).unwrap();
        assert_eq!(back, header);
        assert_eq!(back.digest(), block.digest());
        let mut other = header.clone();
        other.state_root = Digest::EMPTY;
        assert_ne!(other.digest(), block.digest());
        let mut other = header.clone();
        other.tx_root = Digest::EMPTY;
        assert_ne!(other.digest(), block.digest());
        let mut other = header;
        other.height = Height::new(2);
        assert_ne!(other.digest(), block.digest());
    }

    #[test]
    fn digest_commits_to_transactions_and_header() {
        let a = sample(2);
        let b = sample(3);
        assert_ne!(a.tx_root, b.tx_root);
        assert_ne!(a.digest(), b.digest());
        let mut c = a.clone();
        c.parent = Digest::EMPTY;
        assert_ne!(a.beacon(), c.beacon());
    }

    #[test]
    fn reshare_payload_round_trips_and_is_committed() {
        use commonware_cryptography::bls12381::{
            dkg::feldman_desmedt::deal, primitives::sharing::Mode,
        };
        use commonware_glue::dkg::types::EpochOutcome;
        use commonware_utils::{ordered::Set, N3f1};
        let keys = Set::from_iter_dedup((0..4).map(|i| PrivateKey::from_seed(i).public_key()));
        let rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        let (output, _) = deal::<MinSig, _, N3f1>(rng, Mode::NonZeroCounter, keys.clone()).unwrap();
        let directory: Directory = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let addr = format!("127.0.0.1:{}", 3000 + i).parse().unwrap();
                (k.clone(), commonware_p2p::Address::Symmetric(addr))
            })
            .collect();
        let info = EpochInfo {
            outcome: EpochOutcome::Success,
            epoch: Epoch::zero(),
            output,
            players: keys.clone(),
            next_players: keys,
            directory,
        };
        let g = Block::genesis(Digest::EMPTY, Digest::EMPTY, 0, info);
        let bytes = g.encode();
        let back = Block::decode_cfg(bytes.clone(), &BlockCfg { max_txs: 0 }).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.encode(), bytes);
        assert!(matches!(back.payload(), Some(types::Payload::EpochInfo(_))));
        // The digest commits to the payload.
        let mut bare = g.clone();
        bare.reshare = None;
        let rebuilt = Block::with_reshare(
            bare.context.clone(),
            bare.parent,
            bare.height,
            bare.timestamp,
            None,
            None,
            bare.state_root,
            Vec::new(),
        );
        assert_ne!(rebuilt.digest(), g.digest());
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
