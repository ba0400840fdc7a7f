//! Core UtilityNet types and their canonical binary encoding.
//!
//! Everything that crosses a process boundary or is hashed into a commitment lives here:
//! [`amount`] (UNC base units), [`tx`] (signed transactions), [`block`] (blocks and their
//! header commitments), [`genesis`] (the chain's birth certificate) and [`keys`] (how state
//! entries are addressed in the authenticated store). Encodings use `commonware-codec` and are
//! canonical: every accepted byte string re-encodes to itself, and decoders are bounded so a
//! peer cannot make us allocate more than a configured limit.
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

pub mod amount;
pub mod block;
pub mod chip;
pub mod epoch;
pub mod firmware;
pub mod genesis;
pub mod hexser;
pub mod keys;
pub mod liveness;
pub mod private_file;
/// The compute rental market's types and rules (re-exported from `unet-market`).
pub use unet_market as market;
pub mod rewards;
pub mod tx;

pub use amount::{Amount, UNC};
pub use block::{Block, BlockCfg, BlockHeader, Context};
pub use commonware_cryptography::{
    ed25519::{PrivateKey, PublicKey, Signature},
    sha256::Digest,
};
pub use genesis::{Genesis, Params};
pub use tx::{Payload, SignedTx, Transaction, TxError};

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    use commonware_cryptography::Hasher as _;
    chip::digest32(commonware_cryptography::Sha256::hash(parts))
}

pub use unet_address::{read_address, Address};

/// Namespace for every signature a user makes over a transaction.
pub const TX_NAMESPACE: &[u8] = b"UNET_TX";

/// Namespace for consensus messages (votes, certificates, seeds).
pub const CONSENSUS_NAMESPACE: &[u8] = b"UNET_CONSENSUS";

/// Namespace for the p2p handshake.
pub const P2P_NAMESPACE: &[u8] = b"UNET_P2P";

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_hashes_the_concatenation_of_its_parts() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            hex::encode(super::sha256(&[b"abc"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(super::sha256(&[b"a", b"", b"bc"]), super::sha256(&[b"abc"]));
    }
}
