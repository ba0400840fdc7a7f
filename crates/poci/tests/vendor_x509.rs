//! vendor-x509 evidence with the software secure element and the devnet vendor CA, and the attacks
//! it must stop.

use unet_poci::secure_element::ca::{DEVNET_NOT_AFTER, DEVNET_NOT_BEFORE};
use unet_poci::secure_element::{DevnetVendorCa, SoftSecureElement};
use unet_poci::x509::{self, registration_digest};
use unet_poci::{
    verify_liveness, Curve, DevicePublicKey, Evidence, EvidenceKind, EvidenceVerifier,
    LivenessMethod, NvidiaSpdmVerifier, PociVerifier, TrustStore, VendorX509Evidence,
    VendorX509Verifier, VerifyError,
};

const NOW: u64 = 1_795_305_600; // 2026-11-22
const NONCE: [u8; 32] = [0x42; 32];

fn ca() -> DevnetVendorCa {
    DevnetVendorCa::from_seed(b"unet devnet vendor").unwrap()
}

fn chip(ca: &DevnetVendorCa, curve: Curve) -> (SoftSecureElement, Vec<Vec<u8>>) {
    ca.provision_chip([7; 16], b"chip-0001", curve, "BM1684X", "SN-0001")
        .unwrap()
}

fn evidence(se: &SoftSecureElement, chain: Vec<Vec<u8>>, nonce: [u8; 32]) -> VendorX509Evidence {
    VendorX509Evidence {
        nonce,
        chain,
        signature: se.sign_registration(&nonce).unwrap(),
    }
}

fn verify(
    e: &VendorX509Evidence,
    trust: &TrustStore,
) -> Result<unet_poci::ChipIdentity, VerifyError> {
    x509::verify(e, &NONCE, NOW, trust)
}

#[test]
fn registration_verifies_for_both_curves() {
    let ca = ca();
    let trust = ca.trust_store();
    for curve in [Curve::P256, Curve::P384] {
        let (se, chain) = chip(&ca, curve);
        let id = verify(&evidence(&se, chain, NONCE), &trust).unwrap();
        assert_eq!(id.kind, EvidenceKind::VendorX509);
        assert_eq!(id.model, "BM1684X");
        assert_eq!(id.serial, "SN-0001");
        assert_eq!(id.chip_id, se.chip_id());
        assert_eq!(id.device_public_key, se.public_key());
        assert_eq!(id.device_public_key.curve, curve);
        assert_eq!(id.device_public_key.sec1.len(), curve.point_len());
        assert_eq!(id.liveness, LivenessMethod::DeviceKeySignature);
        assert_eq!(id.root_fingerprint, ca.root_fingerprint());
        assert_eq!(id.chain_fingerprints.len(), 1);
        assert!(id.devnet);
    }
}

#[test]
fn container_and_dispatch() {
    let ca = ca();
    let trust = ca.trust_store();
    let (se, chain) = chip(&ca, Curve::P256);
    let bytes = Evidence::VendorX509(evidence(&se, chain, NONCE))
        .encode()
        .unwrap();
    let a = PociVerifier
        .verify_registration(&bytes, &NONCE, NOW, &trust)
        .unwrap();
    let b = VendorX509Verifier
        .verify_registration(&bytes, &NONCE, NOW, &trust)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        NvidiaSpdmVerifier
            .verify_registration(&bytes, &NONCE, NOW, &trust)
            .unwrap_err(),
        VerifyError::UnsupportedEvidenceKind(1)
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        PociVerifier
            .verify_registration(&trailing, &NONCE, NOW, &trust)
            .unwrap_err(),
        VerifyError::MalformedEvidence("trailing bytes")
    );
}

#[test]
fn root_in_the_chain_is_accepted() {
    let ca = ca();
    let (se, mut chain) = chip(&ca, Curve::P256);
    chain.push(ca.root_der().to_vec());
    verify(&evidence(&se, chain, NONCE), &ca.trust_store()).unwrap();
}

#[test]
fn forged_registration_signature() {
    let ca = ca();
    let trust = ca.trust_store();
    let (se, chain) = chip(&ca, Curve::P256);
    // Signed by another chip's key.
    let thief = SoftSecureElement::provision([9; 16], b"thief", Curve::P256).unwrap();
    let mut e = evidence(&se, chain.clone(), NONCE);
    e.signature = thief.sign_registration(&NONCE).unwrap();
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::EvidenceSignatureInvalid
    );
    // Every single-byte change of the signature.
    let good = evidence(&se, chain.clone(), NONCE);
    for i in 0..good.signature.len() {
        let mut e = good.clone();
        e.signature[i] ^= 0x01;
        let err = verify(&e, &trust).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::EvidenceSignatureInvalid | VerifyError::MalformedSignature
            ),
            "{i}: {err:?}"
        );
    }
    // Wrong length, empty.
    let mut e = good.clone();
    e.signature.pop();
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::MalformedSignature
    );
    e.signature.clear();
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::MalformedSignature
    );
    // The high-S twin of a valid signature is refused (one encoding per signature).
    let mut e = good.clone();
    e.signature = high_s_twin_p256(&good.signature);
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::MalformedSignature
    );
    // The raw registration digest signed as a "liveness" answer is not a registration signature.
    let mut e = good.clone();
    e.signature = se.sign_digest(&NONCE).unwrap();
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::EvidenceSignatureInvalid
    );
}

/// (r, n - s) for a P-256 r||s signature.
fn high_s_twin_p256(sig: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63,
        0x25, 0x51,
    ];
    let s = &sig[32..];
    let mut out = sig[..32].to_vec();
    let mut neg = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = N[i] as i16 - s[i] as i16 - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        neg[i] = d as u8;
    }
    out.extend_from_slice(&neg);
    out
}

#[test]
fn forged_device_certificate() {
    let ca = ca();
    let trust = ca.trust_store();
    let (se, chain) = chip(&ca, Curve::P256);
    let good = evidence(&se, chain, NONCE);
    // Every single-byte change of the device certificate and of the intermediate.
    for c in 0..good.chain.len() {
        for i in 0..good.chain[c].len() {
            let mut e = good.clone();
            e.chain[c][i] ^= 0x01;
            assert!(verify(&e, &trust).is_err(), "cert {c} byte {i}");
        }
    }
    // Last byte of the device certificate is inside its signature.
    let mut e = good.clone();
    let last = e.chain[0].len() - 1;
    e.chain[0][last] ^= 0x01;
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::CertificateSignatureInvalid { index: 0 }
    );
    // A CA certificate cannot be a device certificate.
    let cert = ca
        .issue_under_root(&se.public_key(), "CN=BM1684X,serialNumber=SN-1", true)
        .unwrap();
    let e = evidence(&se, vec![cert], NONCE);
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::KeyUsageViolation { index: 0 }
    );
    // Model and serial are required.
    let cert = ca
        .issue_under_root(&se.public_key(), "CN=BM1684X", false)
        .unwrap();
    let e = evidence(&se, vec![cert], NONCE);
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::MissingField("serial (subject serialNumber)")
    );
    let cert = ca
        .issue_under_root(&se.public_key(), "serialNumber=SN-1", false)
        .unwrap();
    let e = evidence(&se, vec![cert], NONCE);
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::MissingField("model (subject CN)")
    );
    // Issued directly by the root (no intermediate) is a valid path.
    let cert = ca
        .issue_under_root(&se.public_key(), "CN=BM1684X,serialNumber=SN-1", false)
        .unwrap();
    verify(&evidence(&se, vec![cert], NONCE), &trust).unwrap();
}

#[test]
fn certificate_of_another_key() {
    // A genuine certificate for chip A, with a signature by chip B: B cannot borrow A's certificate.
    let ca = ca();
    let (_a, chain_a) = chip(&ca, Curve::P256);
    let b = SoftSecureElement::provision([1; 16], b"chip-b", Curve::P256).unwrap();
    let e = evidence(&b, chain_a, NONCE);
    assert_eq!(
        verify(&e, &ca.trust_store()).unwrap_err(),
        VerifyError::EvidenceSignatureInvalid
    );
}

#[test]
fn unknown_root() {
    let ca = ca();
    let other = DevnetVendorCa::from_seed(b"some other vendor").unwrap();
    let (se, chain) = chip(&other, Curve::P256);
    assert_eq!(
        verify(&evidence(&se, chain, NONCE), &ca.trust_store()).unwrap_err(),
        VerifyError::UnknownRoot
    );
    // Other CA's device certificate under the pinned CA's intermediate: names do not link.
    let (se, chain) = chip(&other, Curve::P256);
    let mixed = vec![chain[0].clone(), ca.intermediate_der().to_vec()];
    assert_eq!(
        verify(&evidence(&se, mixed, NONCE), &ca.trust_store()).unwrap_err(),
        VerifyError::IssuerMismatch { index: 0 }
    );
    // The right root pinned for the other kind does not count.
    let mut trust = TrustStore::devnet();
    trust
        .add_root(EvidenceKind::NvidiaSpdm, ca.root_der(), true)
        .unwrap();
    let (se, chain) = chip(&ca, Curve::P256);
    assert_eq!(
        verify(&evidence(&se, chain, NONCE), &trust).unwrap_err(),
        VerifyError::UnknownRoot
    );
}

#[test]
fn wrong_nonce() {
    let ca = ca();
    let trust = ca.trust_store();
    let (se, chain) = chip(&ca, Curve::P384);
    // Evidence made for another challenge (replay).
    let e = evidence(&se, chain.clone(), [0x43; 32]);
    assert_eq!(verify(&e, &trust).unwrap_err(), VerifyError::NonceMismatch);
    // Nonce field rewritten to the expected one, signature still over the old one.
    let mut e = evidence(&se, chain, [0x43; 32]);
    e.nonce = NONCE;
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::EvidenceSignatureInvalid
    );
}

#[test]
fn revoked_chip_and_intermediate() {
    let ca = ca();
    let (se, chain) = chip(&ca, Curve::P256);
    let e = evidence(&se, chain, NONCE);
    let mut trust = ca.trust_store();
    trust.revoke_chip(se.chip_id());
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::ChipRevoked(hex::encode(se.chip_id()))
    );
    let mut trust = ca.trust_store();
    trust.revoke_certificate_der(ca.intermediate_der()).unwrap();
    assert!(matches!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::CertificateRevoked { index: 1, .. }
    ));
    // Revoking the root itself also stops it.
    let mut trust = ca.trust_store();
    trust.revoke_certificate_der(ca.root_der()).unwrap();
    assert!(matches!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::CertificateRevoked { index: 2, .. }
    ));
    // Governance can also unpin the root.
    let mut trust = ca.trust_store();
    assert!(trust.remove_root(&ca.root_fingerprint()));
    assert_eq!(verify(&e, &trust).unwrap_err(), VerifyError::UnknownRoot);
}

#[test]
fn devnet_root_rejected_by_production_store() {
    let ca = ca();
    let (se, chain) = chip(&ca, Curve::P256);
    let e = evidence(&se, chain, NONCE);
    // Even pinned with devnet_only = false, the devnet marker in its subject makes it devnet-only.
    let mut trust = TrustStore::new();
    assert!(!trust.allow_devnet_roots);
    trust
        .add_root(EvidenceKind::VendorX509, ca.root_der(), false)
        .unwrap();
    assert!(trust.roots()[0].devnet_only);
    assert_eq!(
        verify(&e, &trust).unwrap_err(),
        VerifyError::DevnetRootNotAllowed
    );
    trust.allow_devnet_roots = true;
    assert!(verify(&e, &trust).unwrap().devnet);
}

#[test]
fn validity_window() {
    let ca = ca();
    let se = SoftSecureElement::provision([3; 16], b"short-lived", Curve::P256).unwrap();
    let (nb, na) = (1_700_000_000, 1_750_000_000);
    let cert = ca
        .issue_device_cert_with_validity(&se.public_key(), "BM1686", "SN-9", nb, na)
        .unwrap();
    let e = evidence(&se, ca.chain_for(cert), NONCE);
    let trust = ca.trust_store();
    x509::verify(&e, &NONCE, nb, &trust).unwrap();
    x509::verify(&e, &NONCE, na, &trust).unwrap();
    assert_eq!(
        x509::verify(&e, &NONCE, na + 1, &trust).unwrap_err(),
        VerifyError::CertificateExpired {
            index: 0,
            not_after: na,
            now: na + 1
        }
    );
    assert_eq!(
        x509::verify(&e, &NONCE, nb - 1, &trust).unwrap_err(),
        VerifyError::CertificateNotYetValid {
            index: 0,
            not_before: nb,
            now: nb - 1
        }
    );
    // The CA itself: expired after 2099.
    assert!(matches!(
        x509::verify(&e, &NONCE, DEVNET_NOT_AFTER + 1, &trust).unwrap_err(),
        VerifyError::CertificateExpired { .. }
    ));
    assert!(matches!(
        x509::verify(&e, &NONCE, DEVNET_NOT_BEFORE - 1, &trust).unwrap_err(),
        VerifyError::CertificateNotYetValid { .. }
    ));
}

#[test]
fn liveness() {
    let ca = ca();
    for curve in [Curve::P256, Curve::P384] {
        let (se, chain) = chip(&ca, curve);
        let id = verify(&evidence(&se, chain, NONCE), &ca.trust_store()).unwrap();
        let digest = [0x5A; 32];
        let sig = se.sign_digest(&digest).unwrap();
        assert_eq!(sig.len(), curve.signature_len());
        verify_liveness(&id.device_public_key, &digest, &sig).unwrap();
        assert_eq!(
            verify_liveness(&id.device_public_key, &[0x5B; 32], &sig).unwrap_err(),
            VerifyError::LivenessSignatureInvalid
        );
        let other = SoftSecureElement::provision([5; 16], b"other", curve).unwrap();
        assert_eq!(
            verify_liveness(&other.public_key(), &digest, &sig).unwrap_err(),
            VerifyError::LivenessSignatureInvalid
        );
        assert_eq!(
            verify_liveness(&id.device_public_key, &digest, &sig[1..]).unwrap_err(),
            VerifyError::MalformedSignature
        );
        assert_eq!(
            verify_liveness(&id.device_public_key, &digest, &vec![0; sig.len()]).unwrap_err(),
            VerifyError::MalformedSignature
        );
        // A registration signature is not a liveness answer for the same 32 bytes.
        let reg = se.sign_registration(&digest).unwrap();
        assert_eq!(
            verify_liveness(&id.device_public_key, &digest, &reg).unwrap_err(),
            VerifyError::LivenessSignatureInvalid
        );
        verify_liveness(&id.device_public_key, &registration_digest(&digest), &reg).unwrap();
    }
    let (se, _) = chip(&ca, Curve::P256);
    let sig = se.sign_digest(&[1; 32]).unwrap();
    assert_eq!(
        verify_liveness(&se.public_key(), &[1; 32], &high_s_twin_p256(&sig)).unwrap_err(),
        VerifyError::MalformedSignature
    );
    let bad_key = DevicePublicKey {
        curve: Curve::P256,
        sec1: vec![4; 65],
    };
    assert_eq!(
        verify_liveness(&bad_key, &[1; 32], &sig).unwrap_err(),
        VerifyError::InvalidPublicKey
    );
}

#[test]
fn deterministic_generation() {
    let a = ca();
    let b = ca();
    assert_eq!(a.root_der(), b.root_der());
    assert_eq!(a.intermediate_der(), b.intermediate_der());
    let (sa, ca_chain) = chip(&a, Curve::P384);
    let (sb, cb_chain) = chip(&b, Curve::P384);
    assert_eq!(ca_chain, cb_chain);
    assert_eq!(sa.public_key(), sb.public_key());
    assert_eq!(sa.sealed_key(), sb.sealed_key());
    assert_eq!(
        sa.sign_digest(&[9; 32]).unwrap(),
        sb.sign_digest(&[9; 32]).unwrap()
    );
    assert_ne!(
        ca().root_der(),
        DevnetVendorCa::from_seed(b"x").unwrap().root_der()
    );
}

#[test]
fn identity_serializes() {
    let ca = ca();
    let (se, chain) = chip(&ca, Curve::P256);
    let id = verify(&evidence(&se, chain, NONCE), &ca.trust_store()).unwrap();
    let json = serde_json::to_string(&id).unwrap();
    let back: unet_poci::ChipIdentity = serde_json::from_str(&json).unwrap();
    assert_eq!(back, id);
    let trust = ca.trust_store();
    let back: TrustStore = serde_json::from_str(&serde_json::to_string(&trust).unwrap()).unwrap();
    assert_eq!(back, trust);
}
