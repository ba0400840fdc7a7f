//! Fuzz-like robustness: no input makes the crate panic, and no mangled evidence verifies.
//! A small deterministic xorshift generator keeps the run reproducible (no OS randomness).

mod common;

use common::*;
use unet_poci::nvidia::fields::parse_dice;
use unet_poci::nvidia::{self, parse_report};
use unet_poci::secure_element::SealedKey;
use unet_poci::{
    pem_chain_to_der, verify_certificate_chain, verify_liveness, Curve, DevicePublicKey, Evidence,
    EvidenceKind, EvidenceVerifier, NvidiaEvidence, PociVerifier, TrustStore,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_bytes_everywhere() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let trust = nvidia_trust();
    for round in 0..3000 {
        let len = rng.below(600);
        let mut data = rng.bytes(len);
        if round % 3 == 0 && !data.is_empty() {
            data[0] = 1 + (round % 2) as u8; // a valid kind tag
        }
        assert!(PociVerifier
            .verify_registration(&data, &nonce(), NOW, &trust)
            .is_err());
        let _ = Evidence::decode(&data);
        assert!(parse_report(&data).is_err() || data.len() > 37 + 8 + 32 + 2 + 96);
        let _ = parse_dice(
            &data,
            unet_poci::nvidia::arch::FwidForm::CompositeIdentifier,
        );
        let _ = parse_dice(&data, unet_poci::nvidia::arch::FwidForm::TcbInfoFirstFwid);
        let _ = TrustStore::new().add_root(EvidenceKind::VendorX509, &data, false);
        let _ = verify_certificate_chain(&[data.clone()], EvidenceKind::NvidiaSpdm, NOW, &trust);
        let _ = verify_liveness(
            &DevicePublicKey {
                curve: Curve::P256,
                sec1: data.clone(),
            },
            &[0; 32],
            &data,
        );
        let _ = DevicePublicKey::from_sec1(Curve::P384, &data);
        let _ = SealedKey::from_bytes(&data);
    }
}

#[test]
fn mutated_reports_never_verify_or_panic() {
    let mut rng = Rng(12345);
    let base = evidence();
    let trust = nvidia_trust();
    for _ in 0..400 {
        let mut e = base.clone();
        let flips = 1 + rng.below(8);
        for _ in 0..flips {
            let i = rng.below(e.report.len());
            e.report[i] ^= 1 + rng.below(255) as u8;
        }
        // Random truncation or extension half of the time.
        match rng.below(4) {
            0 => e.report.truncate(rng.below(e.report.len())),
            1 => {
                let n = rng.below(50);
                e.report.extend(rng.bytes(n));
            }
            _ => {}
        }
        if e.report == base.report {
            continue;
        }
        let _ = parse_report(&e.report);
        assert!(nvidia::verify(&e, &nonce(), NOW, &trust).is_err());
    }
}

#[test]
fn header_length_fields_at_extremes() {
    let base = evidence().report;
    let trust = nvidia_trust();
    // NumberOfBlocks (byte 37+4), MeasurementRecordLength (37+5..37+8), OpaqueLength.
    for (offset, values) in [
        (41usize, vec![0u8, 1, 63, 65, 255]),
        (42, vec![0, 1, 0xFF]),
        (43, vec![0, 0x0E, 0xFF]),
        (44, vec![0, 1, 0xFF]),
    ] {
        for v in values {
            let mut r = base.clone();
            r[offset] = v;
            let e = NvidiaEvidence {
                report: r.clone(),
                chain: evidence().chain,
            };
            if r != base {
                assert!(nvidia::verify(&e, &nonce(), NOW, &trust).is_err());
            }
        }
    }
    let opaque_len_at = base.len() - 96 - 422 - 2;
    for v in [0u16, 1, 421, 423, 0xFFFF] {
        let mut r = base.clone();
        r[opaque_len_at..opaque_len_at + 2].copy_from_slice(&v.to_le_bytes());
        assert!(parse_report(&r).is_err());
    }
}

#[test]
fn garbage_pem() {
    let cases: Vec<String> = vec![
        String::new(),
        "   \n".into(),
        "hello".into(),
        "-----BEGIN CERTIFICATE-----\n".into(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".into(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
        format!("{CHAIN}trailing garbage"),
        format!("garbage{CHAIN}"),
        CHAIN.replace("MII", "MIJ"),
        CHAIN[..CHAIN.len() / 2].to_string(),
        CHAIN.repeat(3),
        "-----END CERTIFICATE-----".into(),
        "-----BEGIN CERTIFICATE----------END CERTIFICATE-----".into(),
        "\u{0}\u{1}\u{ffff}".into(),
    ];
    for (i, text) in cases.iter().enumerate() {
        let parsed = pem_chain_to_der(text);
        let ev = NvidiaEvidence::from_hex_and_pem(REPORT, text);
        if let Ok(ev) = ev {
            assert!(
                nvidia::verify(&ev, &nonce(), NOW, &nvidia_trust()).is_err(),
                "case {i} verified"
            );
        } else {
            assert!(parsed.is_err() || ev.is_err());
        }
        let _ = TrustStore::new().add_root_pem(EvidenceKind::NvidiaSpdm, text, false);
    }
    // Hex report garbage.
    for text in [
        "",
        "zz",
        "0",
        &REPORT[..REPORT.len() - 1],
        &REPORT.replace('a', "g"),
    ] {
        assert!(NvidiaEvidence::from_hex_and_pem(text, CHAIN)
            .map(|e| nvidia::verify(&e, &nonce(), NOW, &nvidia_trust()))
            .map_or(true, |r| r.is_err()));
    }
}

#[test]
fn mutated_containers() {
    let bytes = Evidence::NvidiaSpdm(evidence()).encode().unwrap();
    let mut rng = Rng(777);
    let trust = nvidia_trust();
    // Every length field and boundary byte of the container; then random spots.
    let mut positions: Vec<usize> = (0..8).collect();
    positions.extend((0..200).map(|_| rng.below(bytes.len())));
    for i in positions {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(
            PociVerifier
                .verify_registration(&b, &nonce(), NOW, &trust)
                .is_err(),
            "byte {i}"
        );
    }
    for len in (0..bytes.len()).step_by(37) {
        assert!(PociVerifier
            .verify_registration(&bytes[..len], &nonce(), NOW, &trust)
            .is_err());
    }
}
