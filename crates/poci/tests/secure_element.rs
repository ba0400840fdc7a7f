//! The software secure element: sealing, opening, signing.

use unet_poci::secure_element::{SeError, SealedKey, SoftSecureElement};
use unet_poci::{verify_liveness, Curve};

const SECRET: [u8; 16] = *b"0123456789abcdef";

#[test]
fn sealed_key_survives_storage_and_signs() {
    for curve in [Curve::P256, Curve::P384] {
        let se = SoftSecureElement::provision(SECRET, b"seed", curve).unwrap();
        let blob = se.sealed_key().to_bytes();
        assert_eq!(
            blob.len(),
            2 + curve.point_len() + 12 + curve.signature_len() / 2 + 16
        );
        let reopened =
            SoftSecureElement::open(SECRET, SealedKey::from_bytes(&blob).unwrap()).unwrap();
        assert_eq!(reopened.public_key(), se.public_key());
        assert_eq!(
            reopened.chip_id(),
            se.public_key().chip_id(unet_poci::EvidenceKind::VendorX509)
        );
        let digest = [0xAB; 32];
        let sig = reopened.sign_digest(&digest).unwrap();
        verify_liveness(&se.public_key(), &digest, &sig).unwrap();
        // RFC 6979: deterministic.
        assert_eq!(sig, se.sign_digest(&digest).unwrap());
    }
}

#[test]
fn another_device_secret_cannot_open_the_key() {
    let se = SoftSecureElement::provision(SECRET, b"seed", Curve::P256).unwrap();
    let mut other = SECRET;
    other[15] ^= 1;
    assert_eq!(
        SoftSecureElement::open(other, se.sealed_key().clone()).unwrap_err(),
        SeError::UnsealFailed
    );
}

#[test]
fn tampered_blob_never_opens() {
    let se = SoftSecureElement::provision(SECRET, b"seed", Curve::P384).unwrap();
    let blob = se.sealed_key().to_bytes();
    for i in 0..blob.len() {
        for mask in [0x01u8, 0x80] {
            let mut b = blob.clone();
            b[i] ^= mask;
            let opened = SealedKey::from_bytes(&b).and_then(|k| SoftSecureElement::open(SECRET, k));
            assert!(
                matches!(opened, Err(SeError::MalformedBlob | SeError::UnsealFailed)),
                "byte {i}"
            );
        }
    }
    for len in 0..blob.len() {
        assert_eq!(
            SealedKey::from_bytes(&blob[..len]).unwrap_err(),
            SeError::MalformedBlob
        );
    }
    // Relabel the blob with another public key: the AAD binds it, so it does not open.
    let other = SoftSecureElement::provision(SECRET, b"other", Curve::P384).unwrap();
    let mut b = blob.clone();
    let pk = other.public_key().sec1;
    b[2..2 + pk.len()].copy_from_slice(&pk);
    assert_eq!(
        SoftSecureElement::open(SECRET, SealedKey::from_bytes(&b).unwrap()).unwrap_err(),
        SeError::UnsealFailed
    );
}

#[test]
fn private_key_never_appears_in_outputs() {
    let se = SoftSecureElement::provision(SECRET, b"seed", Curve::P256).unwrap();
    let debug = format!("{se:?}");
    assert!(!debug.contains(&hex::encode(SECRET)));
    assert!(debug.contains("<sealed>"));
    // The blob is not the plaintext scalar: the ciphertext part differs from what a second device
    // secret seals for the same key.
    let other = SoftSecureElement::provision([1; 16], b"seed", Curve::P256).unwrap();
    assert_eq!(other.public_key(), se.public_key());
    assert_ne!(other.sealed_key().to_bytes(), se.sealed_key().to_bytes());
}

#[test]
fn signatures_are_low_s_and_distinct_per_digest() {
    let se = SoftSecureElement::provision(SECRET, b"seed", Curve::P256).unwrap();
    let half_n: [u8; 32] = [
        0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xDE, 0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31,
        0x92, 0xA8,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..64u8 {
        let sig = se.sign_digest(&[i; 32]).unwrap();
        assert!(sig[32..] <= half_n[..], "high S for digest {i}");
        assert!(seen.insert(sig));
    }
}
