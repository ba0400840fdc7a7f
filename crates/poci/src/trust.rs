//! The pinned trust anchors and revocations that verification runs against.
//!
//! On chain, this is built from genesis and governance: vendor roots (per evidence kind), revoked
//! chips and revoked vendor intermediates. It is plain data; verification never reaches a network.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::chain::ParsedCert;
use crate::crypto::sha256;
use crate::error::VerifyError;
use crate::types::EvidenceKind;

/// Text that marks a root certificate as a devnet CA in its subject. A root whose subject contains it is
/// always treated as devnet-only, whatever flag it was added with, so the devnet CA can never be
/// trusted by a production trust store by mistake.
pub const DEVNET_MARKER: &str = "UtilityNet Devnet";

/// One pinned root certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedRoot {
    /// Evidence kind this root may anchor.
    pub kind: EvidenceKind,
    /// DER of the self-signed root certificate.
    pub der: Vec<u8>,
    /// Only trusted while [`TrustStore::allow_devnet_roots`] is set.
    pub devnet_only: bool,
    /// SHA-256 of `der`.
    pub fingerprint: [u8; 32],
}

/// Pinned roots plus revocations. Verification functions take it by reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustStore {
    roots: Vec<TrustedRoot>,
    revoked_chips: BTreeSet<[u8; 32]>,
    revoked_certs: BTreeSet<[u8; 32]>,
    /// Firmware requirements by architecture name (governance's stand-in for NVIDIA's RIM
    /// comparison and version policy; see [`crate::nvidia::policy`]).
    firmware: Vec<crate::nvidia::FirmwarePolicy>,
    /// When false (production), chains that lead to a devnet-only root are rejected with
    /// [`VerifyError::DevnetRootNotAllowed`].
    pub allow_devnet_roots: bool,
}

impl TrustStore {
    /// An empty production trust store (devnet roots not allowed).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty trust store that accepts devnet-only roots (devnets and tests).
    pub fn devnet() -> Self {
        Self {
            allow_devnet_roots: true,
            ..Self::default()
        }
    }

    /// A production trust store with NVIDIA's "NVIDIA Device Identity CA" pinned for
    /// [`EvidenceKind::NvidiaSpdm`].
    pub fn with_nvidia_root() -> Self {
        let mut store = Self::new();
        store
            .add_root_pem(
                EvidenceKind::NvidiaSpdm,
                crate::nvidia::NVIDIA_DEVICE_IDENTITY_CA_PEM,
                false,
            )
            .expect("the bundled NVIDIA root parses");
        store
    }

    /// Pin a root certificate (DER). It must parse, carry a P-256/P-384 key and verify its own
    /// signature. A root whose subject contains [`DEVNET_MARKER`] is always devnet-only.
    /// Returns the root's SHA-256 fingerprint. Adding the same root twice is a no-op.
    pub fn add_root(
        &mut self,
        kind: EvidenceKind,
        der: &[u8],
        devnet_only: bool,
    ) -> Result<[u8; 32], VerifyError> {
        let parsed = ParsedCert::parse(0, der)?;
        if !parsed.is_self_signed() {
            return Err(VerifyError::CertificateSignatureInvalid { index: 0 });
        }
        let marked = parsed.subject().to_string().contains(DEVNET_MARKER);
        let fingerprint = sha256(der);
        if let Some(existing) = self
            .roots
            .iter_mut()
            .find(|r| r.fingerprint == fingerprint && r.kind == kind)
        {
            existing.devnet_only |= devnet_only || marked;
            return Ok(fingerprint);
        }
        self.roots.push(TrustedRoot {
            kind,
            der: der.to_vec(),
            devnet_only: devnet_only || marked,
            fingerprint,
        });
        Ok(fingerprint)
    }

    /// Pin a root given as PEM (one certificate).
    pub fn add_root_pem(
        &mut self,
        kind: EvidenceKind,
        pem: &str,
        devnet_only: bool,
    ) -> Result<[u8; 32], VerifyError> {
        let ders = crate::evidence::pem_chain_to_der(pem)?;
        match ders.as_slice() {
            [one] => self.add_root(kind, one, devnet_only),
            _ => Err(VerifyError::MalformedPem(
                "expected exactly one certificate".into(),
            )),
        }
    }

    /// Remove a pinned root by fingerprint; returns whether one was removed.
    pub fn remove_root(&mut self, fingerprint: &[u8; 32]) -> bool {
        let before = self.roots.len();
        self.roots.retain(|r| &r.fingerprint != fingerprint);
        before != self.roots.len()
    }

    /// The pinned roots.
    pub fn roots(&self) -> &[TrustedRoot] {
        &self.roots
    }

    /// Pinned roots for one evidence kind.
    pub fn roots_for(&self, kind: EvidenceKind) -> impl Iterator<Item = &TrustedRoot> {
        self.roots.iter().filter(move |r| r.kind == kind)
    }

    /// Revoke a chip by `chip_id`.
    pub fn revoke_chip(&mut self, chip_id: [u8; 32]) {
        self.revoked_chips.insert(chip_id);
    }

    /// Whether a chip is revoked.
    pub fn is_chip_revoked(&self, chip_id: &[u8; 32]) -> bool {
        self.revoked_chips.contains(chip_id)
    }

    /// Sets the firmware policy of `policy.architecture`, replacing any earlier one.
    pub fn set_firmware_policy(&mut self, policy: crate::nvidia::FirmwarePolicy) {
        self.firmware
            .retain(|p| p.architecture != policy.architecture);
        self.firmware.push(policy);
    }

    /// The firmware policy for an architecture ([`crate::nvidia::Architecture::name`]), if any.
    pub fn firmware_policy(&self, architecture: &str) -> Option<&crate::nvidia::FirmwarePolicy> {
        self.firmware
            .iter()
            .find(|p| p.architecture == architecture)
    }

    /// Revoke a certificate (typically a vendor intermediate) by its
    /// [`certificate_id`](crate::certificate_id), which names its subject key: any chain that
    /// contains a certificate for that key, however it is encoded, re-issued or cross-signed, is
    /// rejected.
    pub fn revoke_certificate(&mut self, id: [u8; 32]) {
        self.revoked_certs.insert(id);
    }

    /// Revoke a certificate given its DER; returns its id. Fails if the DER does not parse as a
    /// certificate this crate accepts.
    pub fn revoke_certificate_der(&mut self, der: &[u8]) -> Result<[u8; 32], VerifyError> {
        let id = crate::chain::certificate_id(der)?;
        self.revoke_certificate(id);
        Ok(id)
    }

    /// Whether a certificate id is revoked.
    pub fn is_certificate_revoked(&self, id: &[u8; 32]) -> bool {
        self.revoked_certs.contains(id)
    }
}
