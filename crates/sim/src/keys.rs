//! The simulated chips' device keys.

use anyhow::{anyhow, Result};

/// A chip's P-256 device key. It stands in for a secure element: same curve, same answers.
pub(crate) struct ChipKey {
    pair: ring::signature::EcdsaKeyPair,
    /// SEC1 uncompressed public key, as registered on the chip.
    pub(crate) public: Vec<u8>,
    rng: ring::rand::SystemRandom,
}

impl ChipKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Result<Self> {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow!("cannot generate a P-256 key"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow!("cannot load a P-256 key"))?;
        let public = pair.public_key().as_ref().to_vec();
        Ok(Self { pair, public, rng })
    }

    /// The answer proof: ECDSA P-256 over the digest, raw r||s, low-S (as the chain requires).
    pub(crate) fn sign(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        let sig = self
            .pair
            .sign(&self.rng, digest)
            .map_err(|_| anyhow!("signing failed"))?;
        let sig = p256::ecdsa::Signature::from_slice(sig.as_ref())
            .map_err(|_| anyhow!("ring produced a malformed signature"))?;
        Ok(sig.normalize_s().to_bytes().to_vec())
    }
}
