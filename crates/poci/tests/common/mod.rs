//! Shared helpers for the integration tests (included with `mod common;`).
#![allow(dead_code)]

use unet_poci::{EvidenceKind, NvidiaEvidence, TrustStore};

pub const REPORT: &str = include_str!("../vectors/hopperAttestationReport.txt");
pub const REPORT_BAD_SIG: &str =
    include_str!("../vectors/hopperAttestationReportInvalidSignature.txt");
pub const CHAIN: &str = include_str!("../vectors/hopperCertChain.txt");
pub const CHAIN_EXPIRED: &str = include_str!("../vectors/hopperCertChainExpired.txt");
pub const ROOT: &str = include_str!("../vectors/verifier_device_root.pem");

/// The requester nonce of the shared H100 report.
pub const NONCE_HEX: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

/// 2026-11-22T00:00:00Z. The latest notBefore in the chain is 2022-03-01 (ICA) and every
/// notAfter is 9999-12-31, so any time in [1646092800, 253402300799] is inside every window.
pub const NOW: u64 = 1_795_305_600;
/// 2022-03-01T00:00:00Z, the latest notBefore in the chain (NVIDIA GH100 Provisioner ICA 1).
pub const LATEST_NOT_BEFORE: u64 = 1_646_092_800;

pub fn nonce() -> [u8; 32] {
    hex::decode(NONCE_HEX).unwrap().try_into().unwrap()
}

pub fn evidence() -> NvidiaEvidence {
    NvidiaEvidence::from_hex_and_pem(REPORT, CHAIN).unwrap()
}

pub fn nvidia_trust() -> TrustStore {
    let mut t = TrustStore::new();
    t.add_root_pem(EvidenceKind::NvidiaSpdm, ROOT, false)
        .unwrap();
    t
}
