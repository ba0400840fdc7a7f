//! Issue 12, item 3: a revoked certificate cannot come back re-encoded.
//!
//! ECDSA certificate signatures are accepted with high or low S (NVIDIA's CA signs with both), so
//! anyone can rewrite a certificate's signature (r, s) as (r, n − s): a different DER, a different
//! SHA-256, still a valid certificate under the same issuer. Revocation and the chip's recorded
//! chain therefore name certificates by [`certificate_id`] (their subject key). Each test first
//! shows that the rewritten certificate is genuine (it verifies when nothing is revoked), then
//! revokes the original and presents the twin.

mod common;

use common::*;
use der::Decode;
use unet_poci::secure_element::{signature_twin, DevnetVendorCa};
use unet_poci::{
    certificate_id, nvidia, pem_chain_to_der, verify_certificate_chain, x509, Curve, Evidence,
    EvidenceKind, EvidenceVerifier, PociVerifier, VendorX509Evidence, VerifyError,
};

/// Whether the DER ECDSA-Sig-Value of a certificate has S in the upper half (P-384 issuer).
fn high_s_p384(der: &[u8]) -> bool {
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let sig = p384::ecdsa::Signature::from_der(cert.signature().as_bytes().unwrap()).unwrap();
    sig.normalize_s() != sig
}

#[test]
fn real_nvidia_chain_has_both_high_and_low_s_signatures() {
    // Why certificates cannot simply be required to have low S: NVIDIA's own chain has both, so
    // such a rule would refuse genuine GPUs. The twin of each has the other form.
    let chain = pem_chain_to_der(CHAIN).unwrap();
    let high: Vec<bool> = chain.iter().map(|c| high_s_p384(c)).collect();
    println!("high S per certificate (leaf first): {high:?}");
    assert!(high.contains(&true) && high.contains(&false), "{high:?}");
    for c in &chain {
        let twin = signature_twin(c, Curve::P384).unwrap();
        assert_ne!(high_s_p384(&twin), high_s_p384(c));
    }
}

#[test]
fn high_s_twin_of_a_revoked_nvidia_certificate_is_still_revoked() {
    let chain = pem_chain_to_der(CHAIN).unwrap();
    let original = nvidia::verify(&evidence(), &nonce(), NOW, &nvidia_trust())
        .unwrap()
        .identity;
    // Every certificate but the root copy at the end (leaf, BROM, provisioner ICA, identity).
    for (i, cert) in chain.iter().enumerate().take(chain.len() - 1) {
        let twin = signature_twin(cert, Curve::P384).unwrap();
        assert_ne!(&twin, cert);
        assert_eq!(
            certificate_id(&twin).unwrap(),
            certificate_id(cert).unwrap()
        );
        let mut e = evidence();
        e.chain[i] = twin;

        // The twin is genuine: with nothing revoked the evidence verifies, and registers the same
        // chip with the same recorded chain as the original.
        let id = nvidia::verify(&e, &nonce(), NOW, &nvidia_trust())
            .unwrap()
            .identity;
        assert_eq!(id, original, "{i}");

        // Revoke the original (as governance would, from the published certificate).
        let mut trust = nvidia_trust();
        trust.revoke_certificate_der(cert).unwrap();
        let err = nvidia::verify(&e, &nonce(), NOW, &trust).unwrap_err();
        assert!(
            matches!(err, VerifyError::CertificateRevoked { index, .. } if index == i),
            "{i}: {err:?}"
        );
        // The same through the container every validator decodes, and the bare chain check.
        let container = Evidence::NvidiaSpdm(e.clone()).encode().unwrap();
        assert!(matches!(
            PociVerifier.verify_registration(&container, &nonce(), NOW, &trust),
            Err(VerifyError::CertificateRevoked { .. })
        ));
        assert!(matches!(
            verify_certificate_chain(&e.chain, EvidenceKind::NvidiaSpdm, NOW, &trust),
            Err(VerifyError::CertificateRevoked { .. })
        ));
    }
}

#[test]
fn twin_of_the_pinned_root_cannot_dodge_its_revocation() {
    let chain = pem_chain_to_der(CHAIN).unwrap();
    let last = chain.len() - 1;
    let mut e = evidence();
    e.chain[last] = signature_twin(&chain[last], Curve::P384).unwrap();
    let mut trust = nvidia_trust();
    trust.revoke_certificate_der(&chain[last]).unwrap();
    let err = nvidia::verify(&e, &nonce(), NOW, &trust).unwrap_err();
    assert!(
        matches!(err, VerifyError::CertificateRevoked { .. }),
        "{err:?}"
    );
}

#[test]
fn high_s_twin_of_a_revoked_vendor_intermediate_is_still_revoked() {
    const NONCE: [u8; 32] = [0x42; 32];
    let ca = DevnetVendorCa::from_seed(b"unet devnet vendor").unwrap();
    let (se, chain) = ca
        .provision_chip([7; 16], b"chip-0001", Curve::P256, "BM1684X", "SN-0001")
        .unwrap();
    let twin = signature_twin(ca.intermediate_der(), Curve::P256).unwrap();
    assert_ne!(twin, ca.intermediate_der());
    let e = VendorX509Evidence {
        nonce: NONCE,
        chain: vec![chain[0].clone(), twin],
        signature: se.sign_registration(&NONCE).unwrap(),
    };
    let original = x509::verify(
        &VendorX509Evidence { chain, ..e.clone() },
        &NONCE,
        NOW,
        &ca.trust_store(),
    )
    .unwrap();
    assert_eq!(
        x509::verify(&e, &NONCE, NOW, &ca.trust_store()).unwrap(),
        original
    );
    let mut trust = ca.trust_store();
    trust.revoke_certificate_der(ca.intermediate_der()).unwrap();
    assert!(matches!(
        x509::verify(&e, &NONCE, NOW, &trust),
        Err(VerifyError::CertificateRevoked { index: 1, .. })
    ));
}

#[test]
fn certificate_id_is_the_documented_hash_of_the_subject_key() {
    use sha2::Digest as _;
    let chain = pem_chain_to_der(CHAIN).unwrap();
    let leaf = x509_cert::Certificate::from_der(&chain[0]).unwrap();
    let point = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .unwrap()
        .to_vec();
    assert_eq!(point.len(), 97, "P-384, uncompressed");
    let mut preimage = b"UNET-POCI/cert-id/v1\x02".to_vec();
    preimage.extend_from_slice(&point);
    let want: [u8; 32] = sha2::Sha256::digest(&preimage).into();
    assert_eq!(certificate_id(&chain[0]).unwrap(), want);
    // Distinct certificates of the chain have distinct ids; garbage is an error, not a panic.
    let ids: std::collections::BTreeSet<_> =
        chain.iter().map(|c| certificate_id(c).unwrap()).collect();
    assert_eq!(ids.len(), chain.len());
    assert!(certificate_id(b"not a certificate").is_err());
}

/// DER TLV with a minimal length (tests build hand-made encodings with it).
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match body.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

/// The (r, n − s) twin is the only other encoding of a certificate that verifies: padding a
/// signature integer with a zero or a non-minimal length is refused (strict DER), so no other
/// rewrite gives a revoked certificate a new form either.
#[test]
fn other_re_encodings_of_a_certificate_are_refused() {
    use der::Encode;
    let chain = pem_chain_to_der(CHAIN).unwrap();
    let i = 2; // NVIDIA GH100 Provisioner ICA 1
    let cert = x509_cert::Certificate::from_der(&chain[i]).unwrap();
    let tbs = cert.tbs_certificate().to_der().unwrap();
    let alg = cert.signature_algorithm().to_der().unwrap();
    let sig = cert.signature().as_bytes().unwrap();
    let with_signature_bits = |bits: Vec<u8>| tlv(0x30, &[tbs.clone(), alg.clone(), bits].concat());

    // r with a superfluous leading zero.
    let (r_len, body) = (usize::from(sig[3]), &sig[2..]);
    let mut padded = vec![0u8];
    padded.extend_from_slice(&body[2..2 + r_len]);
    let sig_padded = tlv(
        0x30,
        &[tlv(0x02, &padded), body[2 + r_len..].to_vec()].concat(),
    );
    let padded_cert = with_signature_bits(tlv(0x03, &[&[0u8][..], &sig_padded].concat()));
    // The signature BIT STRING with a long-form length where the short form fits.
    let content = [&[0u8][..], sig].concat();
    let mut long = vec![0x03, 0x82, 0, content.len() as u8];
    long.extend_from_slice(&content);
    let long_cert = with_signature_bits(long);
    // Sanity: the same construction with the original bits is the original certificate.
    assert_eq!(with_signature_bits(tlv(0x03, &content)), chain[i]);

    for (what, der) in [("padded r", padded_cert), ("long length", long_cert)] {
        let mut e = evidence();
        e.chain[i] = der;
        let err = nvidia::verify(&e, &nonce(), NOW, &nvidia_trust()).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::CertificateSignatureInvalid { index: 2 }
                    | VerifyError::MalformedCertificate { index: 2, .. }
            ),
            "{what}: {err:?}"
        );
    }
}
