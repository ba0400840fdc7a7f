//! Proofs that a key currently has a value (or has none) under a state root.
//!
//! A [`StateProof`] is self-contained: it carries the claimed value, so a light client that knows
//! only a trusted root (from a block header) can call [`verify_proof`] without any database.

use crate::{Error, Key, MAX_VALUE_SIZE};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, RangeCfg, Read, ReadExt as _, Write};
use commonware_cryptography::{sha256::Digest, Sha256};
use commonware_storage::{
    mmr,
    qmdb::{
        any::value::VariableEncoding,
        current::ordered::proof::constant::{ExclusionProof, KeyValueProof},
    },
};

/// Merkle family of the state tree.
pub(crate) type Family = mmr::Family;

/// Size in bytes of a qmdb activity-bitmap chunk (one digest: the optimum for proof size).
pub(crate) const CHUNK_SIZE: usize = 32;

/// How values are encoded in qmdb operations.
pub(crate) type ValueEncoding = VariableEncoding<Vec<u8>>;

/// Maximum number of digests accepted in the Merkle path of a decoded proof. This is qmdb's worst
/// case for a single element (an MMR with 62 peaks), so every honest proof fits.
pub const MAX_PROOF_DIGESTS: usize = mmr::MAX_PROOF_DIGESTS_PER_ELEMENT;

/// qmdb proof that a key is active with a given value (the operation, its next-key link, and
/// its activity bit, all authenticated under the canonical root).
pub type InclusionProof = KeyValueProof<Family, Key, Digest, CHUNK_SIZE>;

/// qmdb proof that a key has no value (the active span that covers it, or an empty database).
pub type AbsenceProof = ExclusionProof<Family, Key, ValueEncoding, Digest, CHUNK_SIZE>;

const PRESENT_TAG: u8 = 0;
const ABSENT_TAG: u8 = 1;

/// Proof of the current value of one key, produced by [`crate::StateDb::prove`].
///
/// Encodes with commonware-codec; decoding needs no configuration (`Cfg = ()`) and is bounded:
/// values are limited to [`MAX_VALUE_SIZE`] bytes and Merkle paths to [`MAX_PROOF_DIGESTS`]
/// digests. Nothing in a proof is trusted until [`verify_proof`] accepts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateProof {
    /// The key currently has `value`.
    Present {
        /// The claimed current value of the key.
        value: Vec<u8>,
        /// qmdb inclusion proof for the key's active update operation.
        proof: InclusionProof,
    },
    /// The key currently has no value.
    Absent(AbsenceProof),
}

impl StateProof {
    /// The value this proof claims (`None` for an absence proof). Unverified: use
    /// [`verify_proof`] before trusting it.
    pub fn claimed_value(&self) -> Option<&[u8]> {
        match self {
            Self::Present { value, .. } => Some(value),
            Self::Absent(_) => None,
        }
    }

    /// Decode a proof from bytes, rejecting trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        use commonware_codec::DecodeExt as _;
        Self::decode(commonware_codec::Copying(bytes)).map_err(Error::MalformedProof)
    }

    /// Encode the proof to bytes (the inverse of [`Self::from_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        use commonware_codec::Encode as _;
        self.encode().to_vec()
    }

    /// Same as [`verify_proof`]`(root, key, self)`.
    pub fn verify(&self, root: &Digest, key: &Key) -> Result<Option<Vec<u8>>, Error> {
        verify_proof(root, key, self)
    }
}

/// Codec configuration for a bounded value.
fn value_cfg() -> (RangeCfg<usize>, ()) {
    ((..=MAX_VALUE_SIZE).into(), ())
}

impl Write for StateProof {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Present { value, proof } => {
                PRESENT_TAG.write(buf);
                value.write(buf);
                proof.write(buf);
            }
            Self::Absent(proof) => {
                ABSENT_TAG.write(buf);
                proof.write(buf);
            }
        }
    }
}

impl EncodeSize for StateProof {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Present { value, proof } => value.encode_size() + proof.encode_size(),
            Self::Absent(proof) => proof.encode_size(),
        }
    }
}

impl Read for StateProof {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, commonware_codec::Error> {
        match u8::read(buf)? {
            PRESENT_TAG => {
                let value = Vec::<u8>::read_cfg(buf, &value_cfg())?;
                let proof = InclusionProof::read_cfg(buf, &(MAX_PROOF_DIGESTS, ()))?;
                Ok(Self::Present { value, proof })
            }
            ABSENT_TAG => {
                let cfg = (MAX_PROOF_DIGESTS, ((), value_cfg()), value_cfg());
                Ok(Self::Absent(AbsenceProof::read_cfg(buf, &cfg)?))
            }
            tag => Err(commonware_codec::Error::InvalidEnum(tag)),
        }
    }
}

/// Verify `proof` for `key` against a trusted state `root`. Pure: needs no database.
///
/// Returns `Ok(Some(value))` if the proof shows `key` currently has `value`, `Ok(None)` if it
/// shows `key` has no value, and [`Error::InvalidProof`] otherwise (wrong root, wrong key, a
/// stale/tampered proof).
pub fn verify_proof(
    root: &Digest,
    key: &Key,
    proof: &StateProof,
) -> Result<Option<Vec<u8>>, Error> {
    match proof {
        StateProof::Present { value, proof } => {
            if value.len() > MAX_VALUE_SIZE {
                return Err(Error::InvalidProof);
            }
            if proof.verify::<Sha256, ValueEncoding>(*key, value.clone(), root) {
                Ok(Some(value.clone()))
            } else {
                Err(Error::InvalidProof)
            }
        }
        StateProof::Absent(proof) => {
            if proof.verify::<Sha256>(key, root) {
                Ok(None)
            } else {
                Err(Error::InvalidProof)
            }
        }
    }
}
