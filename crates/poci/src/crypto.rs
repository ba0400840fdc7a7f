//! ECDSA helpers shared by the verifiers: key parsing from SubjectPublicKeyInfo and signature checks.
//!
//! Keys are parsed and validated with RustCrypto (`p256`/`p384`); verification runs on `ring` when
//! the `ring` feature is on (the default: about 2x faster here, see the crate README) and on
//! RustCrypto otherwise. Signature *encodings* are always parsed by RustCrypto (strict DER, scalar
//! range, low-S checks) and handed to the backend as fixed r||s, so both backends accept exactly the
//! same inputs: standard ECDSA verification of a well-formed (r, s) is a mathematical function.

use const_oid::ObjectIdentifier;
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;

use crate::types::{Curve, DevicePublicKey};

/// id-ecPublicKey
pub(crate) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1
pub(crate) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1
pub(crate) const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// ecdsa-with-SHA256
pub(crate) const OID_ECDSA_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384
pub(crate) const OID_ECDSA_SHA384: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// Hash function of an ECDSA signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
}

/// A parsed, validated verifying key: curve plus uncompressed SEC1 point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VerifyingKey {
    curve: Curve,
    sec1: Vec<u8>,
}

/// Why a raw signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigFailure {
    /// wrong length, zero or out-of-range scalar, or high S where low S is required
    Malformed,
    /// well-formed but does not verify
    Invalid,
}

impl VerifyingKey {
    /// Validate a SEC1 point (compressed or not) on `curve` and keep it uncompressed.
    pub(crate) fn from_sec1(curve: Curve, bytes: &[u8]) -> Option<Self> {
        let sec1 = match curve {
            Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .ok()?
                .to_sec1_point(false)
                .as_bytes()
                .to_vec(),
            Curve::P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .ok()?
                .to_sec1_point(false)
                .as_bytes()
                .to_vec(),
        };
        Some(Self { curve, sec1 })
    }

    pub(crate) fn from_device_key(key: &DevicePublicKey) -> Option<Self> {
        Self::from_sec1(key.curve, &key.sec1)
    }

    /// Parse an EC SubjectPublicKeyInfo (P-256 or P-384 only).
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Option<Self> {
        if spki.algorithm.oid != OID_EC_PUBLIC_KEY {
            return None;
        }
        let curve: ObjectIdentifier = spki.algorithm.parameters.as_ref()?.decode_as().ok()?;
        let bits = spki.subject_public_key.as_bytes()?;
        if curve == OID_P256 {
            Self::from_sec1(Curve::P256, bits)
        } else if curve == OID_P384 {
            Self::from_sec1(Curve::P384, bits)
        } else {
            None
        }
    }

    pub(crate) fn curve(&self) -> Curve {
        self.curve
    }

    /// The uncompressed SEC1 point.
    pub(crate) fn sec1(&self) -> &[u8] {
        &self.sec1
    }

    /// The key as a [`DevicePublicKey`] (uncompressed SEC1).
    pub(crate) fn to_device_key(&self) -> DevicePublicKey {
        DevicePublicKey {
            curve: self.curve,
            sec1: self.sec1.clone(),
        }
    }

    /// Verify an X.509 signature: `alg` is the certificate's signatureAlgorithm OID, `signed` the raw
    /// TBS bytes, `der_sig` the DER `ECDSA-Sig-Value` from the BIT STRING.
    pub(crate) fn verify_x509(&self, alg: ObjectIdentifier, signed: &[u8], der_sig: &[u8]) -> bool {
        let hash = if alg == OID_ECDSA_SHA256 {
            Hash::Sha256
        } else if alg == OID_ECDSA_SHA384 {
            Hash::Sha384
        } else {
            return false;
        };
        let raw = match self.curve {
            Curve::P256 => p256::ecdsa::Signature::from_der(der_sig).map(|s| s.to_vec()),
            Curve::P384 => p384::ecdsa::Signature::from_der(der_sig).map(|s| s.to_vec()),
        };
        raw.is_ok_and(|raw| self.verify_fixed(hash, signed, &raw))
    }

    /// Verify a raw r||s ECDSA signature over `message` with the curve's standard hash (SHA-256 for
    /// P-256, SHA-384 for P-384). With `require_low_s`, a high-S signature is rejected so that each
    /// signature has exactly one accepted encoding.
    pub(crate) fn verify_raw(
        &self,
        message: &[u8],
        raw_sig: &[u8],
        require_low_s: bool,
    ) -> Result<(), SigFailure> {
        if raw_sig.len() != self.curve.signature_len() {
            return Err(SigFailure::Malformed);
        }
        let (well_formed, low_s) = match self.curve {
            Curve::P256 => match p256::ecdsa::Signature::from_slice(raw_sig) {
                Ok(s) => (true, s.normalize_s() == s),
                Err(_) => (false, false),
            },
            Curve::P384 => match p384::ecdsa::Signature::from_slice(raw_sig) {
                Ok(s) => (true, s.normalize_s() == s),
                Err(_) => (false, false),
            },
        };
        if !well_formed || (require_low_s && !low_s) {
            return Err(SigFailure::Malformed);
        }
        let hash = match self.curve {
            Curve::P256 => Hash::Sha256,
            Curve::P384 => Hash::Sha384,
        };
        if self.verify_fixed(hash, message, raw_sig) {
            Ok(())
        } else {
            Err(SigFailure::Invalid)
        }
    }

    /// Backend call: `raw` is a well-formed r||s (checked by the callers above).
    fn verify_fixed(&self, hash: Hash, message: &[u8], raw: &[u8]) -> bool {
        backend::verify(self.curve, &self.sec1, hash, message, raw)
    }
}

#[cfg(feature = "ring")]
mod backend {
    use super::{Curve, Hash};
    use ring::signature::{self, UnparsedPublicKey};

    pub(super) fn verify(
        curve: Curve,
        sec1: &[u8],
        hash: Hash,
        message: &[u8],
        raw: &[u8],
    ) -> bool {
        let alg = match (curve, hash) {
            (Curve::P256, Hash::Sha256) => &signature::ECDSA_P256_SHA256_FIXED,
            (Curve::P384, Hash::Sha384) => &signature::ECDSA_P384_SHA384_FIXED,
            // ring has no fixed-size form of the mixed pairs; they are rare (no NVIDIA or devnet
            // certificate uses them), so RustCrypto handles them.
            _ => return super::rustcrypto::verify(curve, sec1, hash, message, raw),
        };
        UnparsedPublicKey::new(alg, sec1)
            .verify(message, raw)
            .is_ok()
    }
}

#[cfg(not(feature = "ring"))]
mod backend {
    pub(super) use super::rustcrypto::verify;
}

#[cfg_attr(feature = "ring", allow(dead_code))]
mod rustcrypto {
    use super::{Curve, Hash};
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use sha2::{Digest, Sha256, Sha384};

    pub(super) fn verify(
        curve: Curve,
        sec1: &[u8],
        hash: Hash,
        message: &[u8],
        raw: &[u8],
    ) -> bool {
        let prehash = match hash {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
        };
        match curve {
            Curve::P256 => {
                let (Ok(k), Ok(s)) = (
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1),
                    p256::ecdsa::Signature::from_slice(raw),
                ) else {
                    return false;
                };
                k.verify_prehash(&prehash, &s).is_ok()
            }
            Curve::P384 => {
                let (Ok(k), Ok(s)) = (
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1),
                    p384::ecdsa::Signature::from_slice(raw),
                ) else {
                    return false;
                };
                k.verify_prehash(&prehash, &s).is_ok()
            }
        }
    }
}

/// Name of the verification backend compiled in ("ring" or "rustcrypto").
pub const BACKEND: &str = if cfg!(feature = "ring") {
    "ring"
} else {
    "rustcrypto"
};

/// SHA-256 helper.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(all(test, feature = "ring"))]
mod tests {
    //! ring and RustCrypto must agree on every input, or validators built differently would split.
    use super::*;
    use p256::ecdsa::signature::Signer;

    fn agree(curve: Curve, sec1: &[u8], hash: Hash, msg: &[u8], raw: &[u8]) -> bool {
        let a = backend::verify(curve, sec1, hash, msg, raw);
        let b = rustcrypto::verify(curve, sec1, hash, msg, raw);
        assert_eq!(a, b, "backends disagree");
        a
    }

    #[test]
    fn backends_agree_on_the_nvidia_report() {
        let report =
            hex::decode(include_str!("../tests/vectors/hopperAttestationReport.txt").trim())
                .unwrap();
        let chain =
            crate::pem_chain_to_der(include_str!("../tests/vectors/hopperCertChain.txt")).unwrap();
        let leaf = crate::chain::ParsedCert::parse(0, &chain[0]).unwrap();
        let (msg, sig) = report.split_at(report.len() - 96);
        assert!(agree(Curve::P384, &leaf.key.sec1, Hash::Sha384, msg, sig));
        for i in (0..report.len()).step_by(5) {
            let mut r = report.clone();
            r[i] ^= 0x01;
            let (msg, sig) = r.split_at(r.len() - 96);
            assert!(!agree(Curve::P384, &leaf.key.sec1, Hash::Sha384, msg, sig));
        }
        // Mixed pairs (handled by RustCrypto in both builds) and wrong hash.
        assert!(!agree(Curve::P384, &leaf.key.sec1, Hash::Sha256, msg, sig));
    }

    #[test]
    fn backends_agree_on_p256() {
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let sec1 = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        for i in 0..64u8 {
            let msg = [i; 32];
            let sig: p256::ecdsa::Signature = key.sign(&msg);
            let raw = sig.to_bytes().to_vec();
            assert!(agree(Curve::P256, &sec1, Hash::Sha256, &msg, &raw));
            // The high-S twin is mathematically valid for both (low-S is enforced above them).
            let (r, s) = sig.split_scalars();
            let twin = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
            assert!(agree(
                Curve::P256,
                &sec1,
                Hash::Sha256,
                &msg,
                &twin.to_bytes()
            ));
            let mut bad = raw.clone();
            bad[usize::from(i)] ^= 0x80;
            assert!(!agree(Curve::P256, &sec1, Hash::Sha256, &msg, &bad));
        }
    }
}
