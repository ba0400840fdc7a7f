//! Signing job receipts with the leased chip's hardware key.
//!
//! The receipt format, its digest and its verification are the renter SDK's
//! ([`unet_renter::receipt`]); the miner signs the digest the way the chip answers a liveness
//! challenge ([`crate::ChipBackend::answer`]).

use crate::backend::{BackendError, ChipBackend};
pub use unet_renter::receipt::{receipt_digest, Receipt, RECEIPT_DOMAIN};
use unet_types::chip::ChipId;

/// Signs a receipt with `chip` of `backend` (may block: a hardware attestation).
pub fn sign(
    backend: &dyn ChipBackend,
    chip: &ChipId,
    chain_id: u64,
    lease_id: u64,
    job_hash: &[u8; 32],
    result_hash: &[u8; 32],
) -> Result<Receipt, BackendError> {
    let digest = receipt_digest(chain_id, lease_id, job_hash, result_hash);
    let signature = backend.answer(chip, &digest)?;
    Ok(Receipt {
        chain_id,
        lease_id,
        chip_id: hex::encode(chip),
        job_hash: hex::encode(job_hash),
        result_hash: hex::encode(result_hash),
        signature: hex::encode(signature),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soft::{ChipFile, SoftBackend};
    use unet_poci::{secure_element::DevnetVendorCa, Curve, TrustStore};

    fn chip_of(hex_id: &str) -> ChipId {
        hex::decode(hex_id).unwrap().try_into().unwrap()
    }

    #[test]
    fn receipt_signed_by_the_chip_verifies_and_any_change_fails() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevnetVendorCa::from_seed(b"receipt test").unwrap();
        let a = ChipFile::provision(&ca, "BM1684X", None, Curve::P256).unwrap();
        let b = ChipFile::provision(&ca, "BM1684X", None, Curve::P384).unwrap();
        a.save(&dir.path().join("a.json")).unwrap();
        b.save(&dir.path().join("b.json")).unwrap();
        let backend = SoftBackend::open(dir.path()).unwrap();
        let key_of = |f: &ChipFile| hex::encode(&f.open().unwrap().0.public_key().sec1);
        let trust = TrustStore::new();
        for f in [&a, &b] {
            let chip: ChipId = chip_of(&f.chip_id);
            let r = sign(&backend, &chip, 9, 4, &[1; 32], &[2; 32]).unwrap();
            assert_eq!(r.chip_id, f.chip_id);
            r.verify_signature("vendor-x509", &key_of(f), &trust, 0)
                .unwrap();
            for tamper in [
                Receipt {
                    lease_id: 5,
                    ..r.clone()
                },
                Receipt {
                    chain_id: 10,
                    ..r.clone()
                },
                Receipt {
                    result_hash: hex::encode([3u8; 32]),
                    ..r.clone()
                },
                Receipt {
                    job_hash: hex::encode([3u8; 32]),
                    ..r.clone()
                },
            ] {
                assert!(tamper
                    .verify_signature("vendor-x509", &key_of(f), &trust, 0)
                    .is_err());
            }
        }
        // Signed by chip a, checked against chip b's key: refused.
        let chip_a: ChipId = chip_of(&a.chip_id);
        let r = sign(&backend, &chip_a, 9, 4, &[1; 32], &[2; 32]).unwrap();
        let err = r
            .verify_signature("vendor-x509", &key_of(&b), &trust, 0)
            .unwrap_err();
        assert_eq!(err, "the device key is not the key of chip_id");
    }
}
