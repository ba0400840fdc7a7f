//! What evidence *claims* about itself, read without verifying anything.

use crate::{chain::ParsedCert, Evidence, VerifyError};

/// The identity a piece of evidence claims, before any signature or chain check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedIdentity {
    /// `chip_id` the evidence would register ([`crate::chip_id`] of the DeviceID key for the
    /// evidence's kind).
    pub chip_id: [u8; 32],
    /// [`crate::certificate_id`] of every certificate in the evidence's chain that parses, leaf
    /// first.
    pub chain_fingerprints: Vec<[u8; 32]>,
}

/// Reads the chip id and certificate ids that `evidence` claims, by DER parsing only
/// (no signature, nonce, time or trust check: cheap, and nothing here is trusted).
///
/// A chain uses it to know which state entries a registration will touch before running the
/// full verification; after verification the verified identity equals this claim (its chain ids
/// are a subset of these), because both read the same certificates.
pub fn claimed_identity(evidence: &[u8]) -> Result<ClaimedIdentity, VerifyError> {
    let evidence = Evidence::decode(evidence)?;
    let (chain, device_index) = match &evidence {
        Evidence::VendorX509(e) => (&e.chain, 0),
        Evidence::NvidiaSpdm(e) => (&e.chain, 1),
    };
    let der = chain
        .get(device_index)
        .ok_or(VerifyError::MissingField("device certificate"))?;
    let cert = ParsedCert::parse(device_index, der)?;
    Ok(ClaimedIdentity {
        chip_id: cert.key.to_device_key().chip_id(evidence.kind()),
        // A certificate that does not parse fails verification before any revocation lookup.
        chain_fingerprints: chain
            .iter()
            .enumerate()
            .filter_map(|(i, d)| ParsedCert::parse(i, d).ok().map(|c| c.id))
            .collect(),
    })
}
