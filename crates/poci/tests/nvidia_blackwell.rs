//! NVIDIA's Blackwell (GB100) sample evidence, its multi-GPU Hopper sample and its NVSwitch
//! (LS10) sample: each verifies under its architecture's entry, and evidence of one architecture
//! or device never stands for another.

mod common;

use common::*;
use der::Decode as _;
use unet_poci::nvidia::arch::{self, FwidForm, OID_FWID_BLACKWELL, OID_FWID_HOPPER};
use unet_poci::nvidia::{self, fields::parse_dice, DeviceClass};
use unet_poci::EvidenceVerifier as _;
use unet_poci::{
    pem_chain_to_der, verify_liveness_attestation, Evidence, EvidenceKind, LivenessMethod,
    NvidiaEvidence, PociVerifier, VerifyError,
};

/// The value of the extension `oid` of a DER certificate.
fn extension(der: &[u8], oid: der::asn1::ObjectIdentifier) -> Option<Vec<u8>> {
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    cert.tbs_certificate()
        .extensions()?
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes().to_vec())
}

#[test]
fn blackwell_sample_verifies() {
    let att = nvidia::verify(&blackwell(), &nonce(), NOW, &nvidia_trust()).unwrap();
    let id = &att.identity;
    assert_eq!(att.architecture, "Blackwell");
    assert_eq!(att.chip_name, "GB100");
    assert_eq!(att.leaf_common_name, "GB100 A01 GSP FMC LF");
    assert_eq!(id.kind, EvidenceKind::NvidiaSpdm);
    assert_eq!(id.model, "B200");
    // The signed board fields, for a board-specific model table entry.
    assert_eq!(
        id.model_detail,
        "GB100 PROJECT=G525 PROJECT_SKU=0220 CHIP_SKU=886"
    );
    assert_eq!(id.serial, "41E6DE55C3BDC14277");
    assert_eq!(id.liveness, LivenessMethod::FreshAttestation);
    assert_eq!(id.firmware.driver_version.as_deref(), Some("575.32"));
    assert_eq!(id.firmware.vbios_version.as_deref(), Some("97.00.88.00.0F"));
    assert_eq!(
        hex::encode(id.firmware.fwid.as_ref().unwrap()),
        "d090cab1b6e6ffddca83d1781e25b3f040fa1f3c7608230cb5f41b1c1b99f5f748349e59d0ef8eb830c9bc79ccf77502"
    );
    assert_eq!(att.report.measurements.len(), 64);
    // Blackwell's opaque layout: OPAQUE_DATA_VERSION (34) and SYS_ENABLE_STATUS (33) appear,
    // PROTECTED_PCIE_STATUS (21) does not; unknown types are kept raw.
    let tags: Vec<u16> = att.report.opaque.iter().map(|f| f.tag).collect();
    assert!(tags.contains(&33) && tags.contains(&34) && !tags.contains(&21));
    // The chip is the BROM key; ids of BROM, provisioner ICA and GB100 Identity are recorded.
    assert_eq!(id.chain_fingerprints.len(), 3);
    assert_eq!(id.device_public_key.sec1.len(), 97);
    assert!(!id.devnet);
    // Not the H100 sample's chip.
    let hopper = nvidia::verify(&evidence(), &nonce(), NOW, &nvidia_trust()).unwrap();
    assert_ne!(hopper.identity.chip_id, id.chip_id);
    assert_eq!(hopper.architecture, "Hopper");
}

#[test]
fn fwid_extension_and_form_are_the_architectures() {
    let bw = pem_chain_to_der(BLACKWELL_CHAIN).unwrap();
    let hp = pem_chain_to_der(CHAIN).unwrap();
    // Blackwell's leaf has only 2.23.133.5.4.1.1 (which is why a Hopper-only verifier failed with
    // "dice_extension ... missing"), Hopper's only 2.23.133.5.4.1.
    assert!(extension(&bw[0], OID_FWID_HOPPER).is_none());
    assert!(extension(&hp[0], OID_FWID_BLACKWELL).is_none());
    let bw_ext = extension(&bw[0], OID_FWID_BLACKWELL).unwrap();
    let hp_ext = extension(&hp[0], OID_FWID_HOPPER).unwrap();
    let dice = parse_dice(&bw_ext, FwidForm::TcbInfoFirstFwid).unwrap();
    assert_eq!(dice.fwid.0, "2.16.840.1.101.3.4.2.2"); // SHA-384
    assert_eq!(
        dice.fwid.1,
        blackwell_fwid(),
        "the first FWID of the TcbInfo list is the report's"
    );
    assert!(dice.identity_spki.is_none());
    let dice = parse_dice(&hp_ext, FwidForm::CompositeIdentifier).unwrap();
    assert!(dice.identity_spki.is_some());
    // Each form refuses the other's extension: the table, not a guess, decides how to read it.
    assert!(matches!(
        parse_dice(&bw_ext, FwidForm::CompositeIdentifier),
        Err(VerifyError::DiceExtension(_))
    ));
    assert!(matches!(
        parse_dice(&hp_ext, FwidForm::TcbInfoFirstFwid),
        Err(VerifyError::DiceExtension(_))
    ));
    // The table holds exactly these facts.
    let (a, _) = arch::architecture_of_leaf("GB100 A01 GSP FMC LF").unwrap();
    assert_eq!(a.fwid_extension, OID_FWID_BLACKWELL);
    assert_eq!(a.fwid_form, FwidForm::TcbInfoFirstFwid);
    let (a, _) = arch::architecture_of_leaf("GH100 A01 GSP FMC LF").unwrap();
    assert_eq!(a.fwid_extension, OID_FWID_HOPPER);
    assert_eq!(a.fwid_form, FwidForm::CompositeIdentifier);
}

fn blackwell_fwid() -> Vec<u8> {
    hex::decode("d090cab1b6e6ffddca83d1781e25b3f040fa1f3c7608230cb5f41b1c1b99f5f748349e59d0ef8eb830c9bc79ccf77502").unwrap()
}

#[test]
fn blackwell_report_with_hopper_chain_and_the_reverse_are_rejected() {
    let trust = nvidia_trust();
    let (bw, hp) = (blackwell(), evidence());
    // Whole chains swapped: the other generation's leaf did not sign the report.
    for (report, chain) in [(&bw.report, &hp.chain), (&hp.report, &bw.chain)] {
        let e = NvidiaEvidence {
            report: report.clone(),
            chain: chain.clone(),
        };
        assert_eq!(
            nvidia::verify(&e, &nonce(), NOW, &trust).unwrap_err(),
            VerifyError::ReportSignatureInvalid
        );
    }
    // Mixed chains: a Blackwell leaf on the Hopper BROM and the reverse do not link.
    for (a, b) in [(&bw, &hp), (&hp, &bw)] {
        let mut e = a.clone();
        e.chain[1] = b.chain[1].clone();
        assert_eq!(
            nvidia::verify(&e, &nonce(), NOW, &trust).unwrap_err(),
            VerifyError::IssuerMismatch { index: 0 }
        );
        let mut e = a.clone();
        e.chain[2..].clone_from_slice(&b.chain[2..]);
        assert_eq!(
            nvidia::verify(&e, &nonce(), NOW, &trust).unwrap_err(),
            VerifyError::IssuerMismatch { index: 1 }
        );
    }
}

#[test]
fn blackwell_wrong_nonce_revocation_and_liveness() {
    let trust = nvidia_trust();
    let e = blackwell();
    for i in 0..32 {
        let mut n = nonce();
        n[i] ^= 0x20;
        assert_eq!(
            nvidia::verify(&e, &n, NOW, &trust).unwrap_err(),
            VerifyError::NonceMismatch
        );
    }
    for (i, cert) in e.chain.iter().enumerate() {
        let mut t = nvidia_trust();
        t.revoke_certificate_der(cert).unwrap();
        assert!(matches!(
            nvidia::verify(&e, &nonce(), NOW, &t).unwrap_err(),
            VerifyError::CertificateRevoked { index, .. } if index == i
        ));
    }
    let bytes = Evidence::NvidiaSpdm(e).encode().unwrap();
    let id = PociVerifier
        .verify_registration(&bytes, &nonce(), NOW, &trust)
        .unwrap();
    verify_liveness_attestation(&id, &bytes, &nonce(), NOW, &trust).unwrap();
    // The H100 sample, a genuine report answering the same nonce, cannot answer for it.
    let other = Evidence::NvidiaSpdm(evidence()).encode().unwrap();
    assert_eq!(
        verify_liveness_attestation(&id, &other, &nonce(), NOW, &trust).unwrap_err(),
        VerifyError::ChipMismatch
    );
    // Validity: the Blackwell chain's latest notBefore is 2023-06-20.
    assert!(matches!(
        nvidia::verify(&blackwell(), &nonce(), 1_687_219_199, &trust).unwrap_err(),
        VerifyError::CertificateNotYetValid { .. }
    ));
    nvidia::verify(&blackwell(), &nonce(), 1_687_219_200, &trust).unwrap();
}

#[test]
fn every_gpu_of_the_multi_gpu_sample_is_its_own_chip() {
    let trust = nvidia_trust();
    let gpus = multi_gpu_hopper();
    assert_eq!(gpus.len(), 4);
    let n = multi_gpu_nonce();
    let ids: Vec<_> = gpus
        .iter()
        .map(|g| nvidia::verify(g, &n, NOW, &trust).unwrap().identity)
        .collect();
    let mut distinct: Vec<_> = ids.iter().map(|i| i.chip_id).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "four GPUs, four identities");
    let serials: Vec<_> = ids.iter().map(|i| i.serial.as_str()).collect();
    assert_eq!(
        serials,
        [
            "412921CE551E4EEDA3",
            "419BDFFE09391C64D4",
            "418D8735CA47D6FC15",
            "41A6CBA1E9D9C7924E"
        ]
    );
    for id in &ids {
        assert_eq!(id.model, "H100");
        assert_eq!(
            id.model_detail,
            "GH100 PROJECT=G520 PROJECT_SKU=0200 CHIP_SKU=885"
        );
    }
    // A report from one GPU never stands for another: with another GPU's chain (whole, or just
    // its BROM), as another registered GPU's liveness answer, or as its own under a wrong nonce.
    for (a, ga) in gpus.iter().enumerate() {
        let bytes = Evidence::NvidiaSpdm(ga.clone()).encode().unwrap();
        for (b, gb) in gpus.iter().enumerate() {
            if a == b {
                verify_liveness_attestation(&ids[b], &bytes, &n, NOW, &trust).unwrap();
                continue;
            }
            let e = NvidiaEvidence {
                report: ga.report.clone(),
                chain: gb.chain.clone(),
            };
            assert_eq!(
                nvidia::verify(&e, &n, NOW, &trust).unwrap_err(),
                VerifyError::ReportSignatureInvalid,
                "report {a} with chain {b}"
            );
            let mut e = ga.clone();
            e.chain[1] = gb.chain[1].clone();
            assert_eq!(
                nvidia::verify(&e, &n, NOW, &trust).unwrap_err(),
                VerifyError::IssuerMismatch { index: 0 },
                "GPU {a} leaf on GPU {b} BROM"
            );
            assert_eq!(
                verify_liveness_attestation(&ids[b], &bytes, &n, NOW, &trust).unwrap_err(),
                VerifyError::ChipMismatch,
                "GPU {a} answering for GPU {b}"
            );
        }
    }
}

#[test]
fn nvswitch_sample_verifies_under_its_own_entry() {
    let att = nvidia::verify(&switch(), &nonce(), NOW, &nvidia_trust()).unwrap();
    assert_eq!(att.architecture, "Hopper NVSwitch");
    assert_eq!(att.chip_name, "LS_10");
    assert_eq!(att.leaf_common_name, "LS_10 A01 FSP FMC LF");
    assert_eq!(att.identity.serial, "50203EB31AD9ED0008");
    assert_eq!(att.identity.model, "NVSwitch LS10");
    // Its VBIOS version is ASCII, not the GPUs' 8 binary bytes; it carries no FWID field.
    assert_eq!(
        att.identity.firmware.vbios_version.as_deref(),
        Some("96.10.55.00.01")
    );
    assert!(att.identity.firmware.fwid.is_none());
    assert_eq!(att.report.measurements.len(), 31);
    let (a, _) = arch::architecture_of_leaf(&att.leaf_common_name).unwrap();
    assert_eq!(a.class, DeviceClass::NvSwitch);
    // A GPU's report never passes as the switch's, nor the reverse.
    let (sw, gpu) = (switch(), evidence());
    for (report, chain) in [(&sw.report, &gpu.chain), (&gpu.report, &sw.chain)] {
        let e = NvidiaEvidence {
            report: report.clone(),
            chain: chain.clone(),
        };
        assert_eq!(
            nvidia::verify(&e, &nonce(), NOW, &nvidia_trust()).unwrap_err(),
            VerifyError::ReportSignatureInvalid
        );
    }
}
