//! NVIDIA H100 attestation vectors (real hardware evidence).

mod common;

use common::*;
use sha2::Digest as _;
use unet_poci::nvidia::{self, NVIDIA_DEVICE_IDENTITY_CA_PEM};
use unet_poci::{
    pem_chain_to_der, verify_certificate_chain, Evidence, EvidenceKind, EvidenceVerifier,
    LivenessMethod, NvidiaEvidence, NvidiaSpdmVerifier, PociVerifier, TrustStore, VerifyError,
};

#[test]
fn valid_report_verifies() {
    let att = nvidia::verify(&evidence(), &nonce(), NOW, &nvidia_trust()).unwrap();
    let id = &att.identity;
    assert_eq!(id.kind, EvidenceKind::NvidiaSpdm);
    assert_eq!(id.model, "H100");
    assert_eq!(
        id.model_detail,
        "GH100 PROJECT=1010 PROJECT_SKU=0200 CHIP_SKU=882"
    );
    assert_eq!(id.serial, "41431D480FE5E87274");
    assert_eq!(att.brom_serial, "41431D480FE5E87274");
    assert_eq!(att.chip_name, "GH100");
    assert_eq!(att.leaf_common_name, "GH100 A01 GSP FMC LF");
    assert_eq!(id.liveness, LivenessMethod::FreshAttestation);
    assert_eq!(id.firmware.driver_version.as_deref(), Some("550.90.07"));
    assert_eq!(id.firmware.vbios_version.as_deref(), Some("96.00.9F.00.01"));
    assert_eq!(
        hex::encode(id.firmware.fwid.as_ref().unwrap()),
        "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d"
    );
    assert_eq!(att.report.measurements.len(), 64);
    assert!(att
        .report
        .measurements
        .iter()
        .all(|m| m.value.len() == 48 && m.dmtf_type == Some(1)));
    assert_eq!(att.report.measurements[0].index, 1);
    assert_eq!(att.report.opaque.len(), 14);
    assert_eq!(att.opaque.project.as_deref(), Some("1010"));
    assert_eq!(att.opaque.project_sku.as_deref(), Some("0200"));
    assert_eq!(att.opaque.chip_sku.as_deref(), Some("882"));
    // chip_id = SHA-256(domain || kind || BROM key as an uncompressed SEC1 point, 97 bytes).
    let chain = pem_chain_to_der(CHAIN).unwrap();
    assert_eq!(id.device_public_key.sec1.len(), 97);
    assert_eq!(
        id.chip_id,
        id.device_public_key.chip_id(EvidenceKind::NvidiaSpdm)
    );
    let mut preimage = b"UNET-POCI/chip-id/v1\x02".to_vec();
    preimage.extend_from_slice(&id.device_public_key.sec1);
    assert_eq!(
        id.chip_id,
        <[u8; 32]>::from(sha2::Sha256::digest(&preimage))
    );
    assert_eq!(
        &id.device_public_key.sec1[1..9],
        &hex::decode("4f50da6e047a7981").unwrap()[..]
    );
    // Intermediates recorded for revocation: BROM, ICA, Identity (not the leaf, not the root).
    assert_eq!(id.chain_fingerprints.len(), 3);
    assert!(!id.devnet);
    assert_eq!(chain.len(), 5);
    println!("chip_id = {}", id.chip_id_hex());
}

#[test]
fn verifies_at_the_edges_of_the_validity_windows() {
    let e = evidence();
    nvidia::verify(&e, &nonce(), LATEST_NOT_BEFORE, &nvidia_trust()).unwrap();
    nvidia::verify(&e, &nonce(), 253_402_300_799, &nvidia_trust()).unwrap();
    assert!(matches!(
        nvidia::verify(&e, &nonce(), LATEST_NOT_BEFORE - 1, &nvidia_trust()),
        Err(VerifyError::CertificateNotYetValid { index: 2, .. })
    ));
    assert!(matches!(
        nvidia::verify(&e, &nonce(), 253_402_300_800, &nvidia_trust()),
        Err(VerifyError::CertificateExpired { index: 0, .. })
    ));
}

#[test]
fn bundled_root_and_container_roundtrip() {
    let trust = TrustStore::with_nvidia_root();
    assert_eq!(NVIDIA_DEVICE_IDENTITY_CA_PEM, ROOT);
    let bytes = Evidence::NvidiaSpdm(evidence()).encode().unwrap();
    let id = PociVerifier
        .verify_registration(&bytes, &nonce(), NOW, &trust)
        .unwrap();
    let id2 = NvidiaSpdmVerifier
        .verify_registration(&bytes, &nonce(), NOW, &trust)
        .unwrap();
    assert_eq!(id, id2);
    assert_eq!(
        Evidence::decode(&bytes).unwrap(),
        Evidence::NvidiaSpdm(evidence())
    );
}

#[test]
fn invalid_signature_report_is_rejected() {
    let e = NvidiaEvidence::from_hex_and_pem(REPORT_BAD_SIG, CHAIN).unwrap();
    assert_eq!(
        nvidia::verify(&e, &nonce(), NOW, &nvidia_trust()).unwrap_err(),
        VerifyError::ReportSignatureInvalid
    );
    // Upstream pairs it with the "expired" chain; it does not verify there either.
    let e = NvidiaEvidence::from_hex_and_pem(REPORT_BAD_SIG, CHAIN_EXPIRED).unwrap();
    assert_eq!(
        nvidia::verify(&e, &nonce(), NOW, &nvidia_trust()).unwrap_err(),
        VerifyError::ReportSignatureInvalid
    );
}

/// `hopperCertChainExpired.txt` has no certificate past its notAfter: every notAfter is
/// 9999-12-31 and the chain verifies by signature to the NVIDIA root (upstream, "expired" names an
/// expired driver RIM in the scenario that uses it, not an X.509 expiry). So at 2026-11-22 the chain
/// itself is valid, and with the valid report it is rejected because its leaf (another GPU) did not
/// sign that report. X.509 expiry is covered by `verifies_at_the_edges_of_the_validity_windows`, by
/// the far-future check below and by the vendor-x509 tests.
#[test]
fn expired_chain_vector() {
    let chain = pem_chain_to_der(CHAIN_EXPIRED).unwrap();
    let info = verify_certificate_chain(&chain, EvidenceKind::NvidiaSpdm, NOW, &nvidia_trust())
        .expect("the 'expired' chain is date-valid at 2026-11-22");
    assert!(!info.devnet);
    assert_eq!(info.fingerprints.len(), 5);
    let e = NvidiaEvidence::from_hex_and_pem(REPORT, CHAIN_EXPIRED).unwrap();
    assert_eq!(
        nvidia::verify(&e, &nonce(), NOW, &nvidia_trust()).unwrap_err(),
        VerifyError::ReportSignatureInvalid
    );
    assert!(matches!(
        verify_certificate_chain(
            &chain,
            EvidenceKind::NvidiaSpdm,
            253_402_300_800,
            &nvidia_trust()
        ),
        Err(VerifyError::CertificateExpired { index: 0, .. })
    ));
}

#[test]
fn wrong_nonce_is_rejected() {
    let mut n = nonce();
    n[31] ^= 1;
    assert_eq!(
        nvidia::verify(&evidence(), &n, NOW, &nvidia_trust()).unwrap_err(),
        VerifyError::NonceMismatch
    );
    for i in 0..32 {
        for bit in [0x01u8, 0x80] {
            let mut n = nonce();
            n[i] ^= bit;
            assert_eq!(
                nvidia::verify(&evidence(), &n, NOW, &nvidia_trust()).unwrap_err(),
                VerifyError::NonceMismatch
            );
        }
    }
}

#[test]
fn other_root_is_unknown() {
    let ca = unet_poci::secure_element::DevnetVendorCa::from_seed(b"other").unwrap();
    let mut trust = TrustStore::devnet();
    trust
        .add_root(EvidenceKind::NvidiaSpdm, ca.root_der(), true)
        .unwrap();
    assert_eq!(
        nvidia::verify(&evidence(), &nonce(), NOW, &trust).unwrap_err(),
        VerifyError::UnknownRoot
    );
    // The NVIDIA root pinned for another kind does not count either.
    let mut trust = TrustStore::new();
    trust
        .add_root_pem(EvidenceKind::VendorX509, ROOT, false)
        .unwrap();
    assert_eq!(
        nvidia::verify(&evidence(), &nonce(), NOW, &trust).unwrap_err(),
        VerifyError::UnknownRoot
    );
    assert_eq!(
        nvidia::verify(&evidence(), &nonce(), NOW, &TrustStore::new()).unwrap_err(),
        VerifyError::UnknownRoot
    );
}

#[test]
fn root_may_be_left_out_of_the_chain() {
    let mut e = evidence();
    e.chain.pop();
    let att = nvidia::verify(&e, &nonce(), NOW, &nvidia_trust()).unwrap();
    assert_eq!(att.identity.chain_fingerprints.len(), 3);
}

#[test]
fn revoked_intermediate_and_chip() {
    let chain = pem_chain_to_der(CHAIN).unwrap();
    for (i, cert) in chain.iter().enumerate() {
        let mut trust = nvidia_trust();
        trust.revoke_certificate_der(cert).unwrap();
        let err = nvidia::verify(&evidence(), &nonce(), NOW, &trust).unwrap_err();
        assert!(
            matches!(err, VerifyError::CertificateRevoked { index, .. } if index == i),
            "{i}: {err:?}"
        );
    }
    let id = nvidia::verify(&evidence(), &nonce(), NOW, &nvidia_trust())
        .unwrap()
        .identity;
    let mut trust = nvidia_trust();
    trust.revoke_chip(id.chip_id);
    assert!(matches!(
        nvidia::verify(&evidence(), &nonce(), NOW, &trust),
        Err(VerifyError::ChipRevoked(_))
    ));
}

#[test]
fn chain_order_and_substitution_attacks() {
    let chain = pem_chain_to_der(CHAIN).unwrap();
    let expired = pem_chain_to_der(CHAIN_EXPIRED).unwrap();
    let trust = nvidia_trust();
    // Reversed chain.
    let mut e = evidence();
    e.chain.reverse();
    assert!(nvidia::verify(&e, &nonce(), NOW, &trust).is_err());
    // Leaf only.
    let mut e = evidence();
    e.chain.truncate(1);
    assert!(nvidia::verify(&e, &nonce(), NOW, &trust).is_err());
    // BROM missing (leaf directly on the ICA).
    let mut e = evidence();
    e.chain.remove(1);
    assert_eq!(
        nvidia::verify(&e, &nonce(), NOW, &trust).unwrap_err(),
        VerifyError::IssuerMismatch { index: 0 }
    );
    // Another chip's BROM under this chip's leaf.
    let mut e = evidence();
    e.chain[1] = expired[1].clone();
    assert_eq!(
        nvidia::verify(&e, &nonce(), NOW, &trust).unwrap_err(),
        VerifyError::IssuerMismatch { index: 0 }
    );
    // Another chip's leaf with this chip's BROM: the report is not its signature, and the chain
    // does not link either.
    let mut e = evidence();
    e.chain[0] = expired[0].clone();
    assert_eq!(
        nvidia::verify(&e, &nonce(), NOW, &trust).unwrap_err(),
        VerifyError::ReportSignatureInvalid
    );
    let mut mixed = chain.clone();
    mixed[0] = expired[0].clone();
    assert_eq!(
        verify_certificate_chain(&mixed, EvidenceKind::NvidiaSpdm, NOW, &trust).unwrap_err(),
        VerifyError::IssuerMismatch { index: 0 }
    );
    assert_eq!(chain.len(), 5);
}

#[test]
fn container_of_the_other_kind_is_refused() {
    let bytes = Evidence::NvidiaSpdm(evidence()).encode().unwrap();
    assert_eq!(
        unet_poci::VendorX509Verifier
            .verify_registration(&bytes, &nonce(), NOW, &nvidia_trust())
            .unwrap_err(),
        VerifyError::UnsupportedEvidenceKind(2)
    );
}

#[test]
fn liveness_by_fresh_attestation() {
    let trust = nvidia_trust();
    let bytes = Evidence::NvidiaSpdm(evidence()).encode().unwrap();
    let id = PociVerifier
        .verify_registration(&bytes, &nonce(), NOW, &trust)
        .unwrap();
    // The sample report answers the challenge equal to its nonce...
    unet_poci::verify_liveness_attestation(&id, &bytes, &nonce(), NOW, &trust).unwrap();
    // ...and no other challenge.
    assert_eq!(
        unet_poci::verify_liveness_attestation(&id, &bytes, &[7; 32], NOW, &trust).unwrap_err(),
        VerifyError::NonceMismatch
    );
    // A registered identity of another chip does not accept it.
    let mut other = id.clone();
    other.chip_id[0] ^= 1;
    assert_eq!(
        unet_poci::verify_liveness_attestation(&other, &bytes, &nonce(), NOW, &trust).unwrap_err(),
        VerifyError::ChipMismatch
    );
}
