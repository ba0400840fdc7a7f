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

pub const BLACKWELL_REPORT: &str = include_str!("../vectors/nvidia/blackwellAttestationReport.txt");
pub const BLACKWELL_CHAIN: &str = include_str!("../vectors/nvidia/blackwellCertChain.txt");
pub const SWITCH_REPORT: &str = include_str!("../vectors/nvidia/switchAttestationReport.txt");
pub const SWITCH_CHAIN: &str = include_str!("../vectors/nvidia/switchCertChain.txt");
pub const MULTI_GPU_HOPPER: &str = include_str!("../vectors/nvidia/multi_gpu_hopper.json");

/// The requester nonce of NVIDIA's multi-GPU Hopper sample (all four GPUs answered it).
pub const MULTI_GPU_NONCE_HEX: &str =
    "e97b23a1718095a0e9e35edca810768c70a6a5a389b705e753b197912bc11576";

/// NVIDIA's Blackwell (GB100) sample; it answers the same nonce as the Hopper one.
pub fn blackwell() -> NvidiaEvidence {
    NvidiaEvidence::from_hex_and_pem(BLACKWELL_REPORT, BLACKWELL_CHAIN).unwrap()
}

/// NVIDIA's NVSwitch (LS10) sample; it answers the same nonce as the Hopper one.
pub fn switch() -> NvidiaEvidence {
    NvidiaEvidence::from_hex_and_pem(SWITCH_REPORT, SWITCH_CHAIN).unwrap()
}

/// The four GPUs of NVIDIA's multi-GPU Hopper sample (`arch`, `nonce`, base64 `evidence` and
/// base64 PEM `certificate` per GPU, as NVIDIA's SDK serializes evidence).
pub fn multi_gpu_hopper() -> Vec<NvidiaEvidence> {
    let v: serde_json::Value = serde_json::from_str(MULTI_GPU_HOPPER).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|gpu| {
            assert_eq!(gpu["arch"], "HOPPER");
            assert_eq!(gpu["nonce"], MULTI_GPU_NONCE_HEX);
            let report = base64_decode(gpu["evidence"].as_str().unwrap());
            let pem =
                String::from_utf8(base64_decode(gpu["certificate"].as_str().unwrap())).unwrap();
            NvidiaEvidence::from_hex_and_pem(&hex::encode(report), &pem).unwrap()
        })
        .collect()
}

pub fn multi_gpu_nonce() -> [u8; 32] {
    hex::decode(MULTI_GPU_NONCE_HEX)
        .unwrap()
        .try_into()
        .unwrap()
}

/// Standard base64 (RFC 4648, with padding), for NVIDIA's JSON evidence.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            other => panic!("not base64: {other:#x}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for quad in bytes.chunks(4) {
        let pad = quad.iter().filter(|&&c| c == b'=').count();
        let n = quad
            .iter()
            .map(|&c| if c == b'=' { 0 } else { value(c) })
            .fold(0u32, |acc, v| acc << 6 | v);
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&three[..3 - pad]);
    }
    out
}
