//! Registration evidence: the container, NVIDIA SPDM reports and X.509 chains (targets
//! `poci_evidence`, `nvidia_spdm`, `x509_chain`). The verifier must never panic, and whatever
//! verifies must be the identity the evidence claims.

use std::sync::OnceLock;
use unet_poci::{
    claimed_identity, nvidia, pem_chain_to_der, secure_element::DevnetVendorCa,
    verify_certificate_chain, x509, Curve, Evidence, EvidenceKind, EvidenceVerifier,
    NvidiaEvidence, PociVerifier, TrustStore, VendorX509Evidence,
};

const REPORT: &str = include_str!("../../poci/tests/vectors/hopperAttestationReport.txt");
const CHAIN: &str = include_str!("../../poci/tests/vectors/hopperCertChain.txt");
const ROOT: &str = include_str!("../../poci/tests/vectors/verifier_device_root.pem");
/// The requester nonce of NVIDIA's sample H100 report (also used for the devnet chip).
const NONCE_HEX: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
/// 2026-11-22T00:00:00Z: inside every validity window of the sample chain.
const NOW: u64 = 1_795_305_600;

struct Fixture {
    trust: TrustStore,
    nonce: [u8; 32],
    /// NVIDIA's sample H100 evidence (real report and chain).
    nvidia: NvidiaEvidence,
    nvidia_chip: [u8; 32],
    /// A devnet vendor-x509 chip's evidence for `nonce`.
    vendor: VendorX509Evidence,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let nonce: [u8; 32] = hex::decode(NONCE_HEX)
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let ca = DevnetVendorCa::from_seed(b"fuzz vendor").expect("devnet CA");
        let mut trust = ca.trust_store();
        trust
            .add_root_pem(EvidenceKind::NvidiaSpdm, ROOT, false)
            .expect("NVIDIA root");
        let nvidia = NvidiaEvidence::from_hex_and_pem(REPORT, CHAIN).expect("sample evidence");
        let nvidia_chip = nvidia::verify(&nvidia, &nonce, NOW, &trust)
            .expect("the sample verifies")
            .identity
            .chip_id;
        let (se, chain) = ca
            .provision_chip([7; 16], b"fuzz chip", Curve::P256, "FUZZ1", "SN-1")
            .expect("provision");
        let vendor = VendorX509Evidence {
            nonce,
            chain,
            signature: se.sign_registration(&nonce).expect("sign"),
        };
        Fixture {
            trust,
            nonce,
            nvidia,
            nvidia_chip,
            vendor,
        }
    })
}

/// Any byte string as a registration evidence container: no panic; a verified identity is the
/// claimed one; a container that decodes re-encodes to exactly the input.
pub fn poci_evidence(data: &[u8]) {
    let f = fixture();
    let verified = PociVerifier.verify_registration(data, &f.nonce, NOW, &f.trust);
    let claimed = claimed_identity(data);
    if let Ok(id) = &verified {
        let claimed = claimed.expect("verified evidence has a claimed identity");
        assert_eq!(
            id.chip_id, claimed.chip_id,
            "verified chip is not the claimed one"
        );
    }
    if let Ok(e) = Evidence::decode(data) {
        assert_eq!(
            e.encode().expect("decoded evidence encodes"),
            data,
            "non-canonical evidence container"
        );
    }
}

/// Any byte string as an NVIDIA SPDM report (with the real sample chain): parsing and
/// verification never panic, and only the sample chip can verify.
pub fn nvidia_spdm(data: &[u8]) {
    let f = fixture();
    let _ = nvidia::parse_report(data);
    for form in [
        nvidia::arch::FwidForm::CompositeIdentifier,
        nvidia::arch::FwidForm::TcbInfoFirstFwid,
    ] {
        let _ = nvidia::fields::parse_dice(data, form);
    }
    let e = NvidiaEvidence {
        report: data.to_vec(),
        chain: f.nvidia.chain.clone(),
    };
    if let Ok(a) = nvidia::verify(&e, &f.nonce, NOW, &f.trust) {
        assert_eq!(a.identity.chip_id, f.nvidia_chip);
    }
}

/// Splits `data` into certificates as the evidence container does: `len:u16 BE | DER`, repeated.
fn split_certs(data: &[u8]) -> Vec<Vec<u8>> {
    let mut certs = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && certs.len() < 8 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let n = n.min(rest.len());
        certs.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    certs
}

/// Any byte string as a certificate chain (`len:u16 | DER` each, leaf first): chain
/// verification for both kinds, root pinning and vendor-x509 verification (with the devnet
/// chip's valid signature) never panic; a verified chain reports one fingerprint per
/// certificate, and a vendor-x509 verification succeeds only for the devnet chip's key.
pub fn x509_chain(data: &[u8]) {
    let f = fixture();
    let certs = split_certs(data);
    for kind in [EvidenceKind::VendorX509, EvidenceKind::NvidiaSpdm] {
        if let Ok(info) = verify_certificate_chain(&certs, kind, NOW, &f.trust) {
            assert_eq!(info.fingerprints.len(), certs.len());
        }
        if let Some(first) = certs.first() {
            let _ = TrustStore::new().add_root(kind, first, false);
        }
    }
    let e = VendorX509Evidence {
        nonce: f.nonce,
        chain: certs,
        signature: f.vendor.signature.clone(),
    };
    if let Ok(id) = x509::verify(&e, &f.nonce, NOW, &f.trust) {
        let own = claimed_identity(&Evidence::VendorX509(f.vendor.clone()).encode().unwrap())
            .expect("own claim");
        assert_eq!(id.chip_id, own.chip_id);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pem_chain_to_der(text);
    }
}

/// Seed inputs: the real NVIDIA evidence and a devnet vendor-x509 evidence, per target.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let f = fixture();
    let nv = Evidence::NvidiaSpdm(f.nvidia.clone());
    let vx = Evidence::VendorX509(f.vendor.clone());
    let chain = |c: &[Vec<u8>]| {
        let mut out = Vec::new();
        for d in c {
            out.extend_from_slice(&(d.len() as u16).to_be_bytes());
            out.extend_from_slice(d);
        }
        out
    };
    match target {
        "poci_evidence" => vec![nv.encode().unwrap(), vx.encode().unwrap()],
        "nvidia_spdm" => vec![f.nvidia.report.clone()],
        "x509_chain" => vec![chain(&f.nvidia.chain), chain(&f.vendor.chain)],
        _ => Vec::new(),
    }
}
