//! # unet-poci: Proof of Computation Integrity evidence
//!
//! Verifies that a chip is genuine and of a given model (registration evidence) and that it is online
//! (liveness answers), deterministically and offline, as every validator must.
//!
//! - [`EvidenceVerifier`] / [`PociVerifier`]: registration evidence of every kind
//!   ([`EvidenceKind::VendorX509`], [`EvidenceKind::NvidiaSpdm`]) into a [`ChipIdentity`].
//! - [`verify_liveness`] / [`verify_liveness_attestation`]: challenge answers.
//! - [`TrustStore`]: pinned vendor roots per kind, revoked chips and certificates, devnet switch.
//! - [`nvidia`]: real NVIDIA SPDM 1.1 attestation reports of every architecture in
//!   [`nvidia::arch::ARCHITECTURES`] (Hopper H100/H200, Blackwell B100/B200/GB200, NVSwitch LS10),
//!   and [`nvidia::ChainCache`] for repeat reports.
//! - [`x509`]: vendor-certified device keys.
//! - [`secure_element`]: a software secure element and a devnet vendor CA for devnets and tests.
//!
//! `chip_id` is SHA-256 of a domain tag, the evidence kind and the chip's DeviceID public key in
//! uncompressed SEC1 form ([`chip_id`]). Certificates are named by their subject key
//! ([`certificate_id`]), never by the hash of their (malleable) DER.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod chain;
mod claim;
mod crypto;
pub mod error;
pub mod evidence;
pub mod nvidia;
pub mod secure_element;
pub mod trust;
pub mod types;
mod verifier;
pub mod x509;

pub use chain::{
    certificate_id, verify_certificate_chain, ChainInfo, CERT_ID_DOMAIN, MAX_CERT_LEN,
    MAX_CHAIN_LEN,
};
pub use claim::{claimed_identity, ClaimedIdentity};
pub use crypto::BACKEND as VERIFY_BACKEND;
pub use error::VerifyError;
pub use evidence::{pem_chain_to_der, Evidence, NvidiaEvidence, VendorX509Evidence};
pub use trust::{TrustStore, TrustedRoot, DEVNET_MARKER};
pub use types::{
    chip_id, ChipIdentity, Curve, DevicePublicKey, EvidenceKind, FirmwareInfo, LivenessMethod,
    CHIP_ID_DOMAIN,
};
pub use verifier::{
    verify_liveness, verify_liveness_attestation, verify_nvidia_container,
    verify_nvidia_container_cached, EvidenceVerifier, NvidiaSpdmVerifier, PociVerifier,
    VendorX509Verifier,
};
