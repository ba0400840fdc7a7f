//! A software secure element that behaves like UtilityNet's chip engine, for devnets and tests.
//!
//! - A 128-bit device secret (the eFuse) never leaves the element.
//! - The device private key exists outside the element only **sealed**: AES-256-GCM under a key
//!   derived from the secret with HKDF-SHA-256; the sealed blob can be stored on disk.
//! - Signing unseals the key inside [`SoftSecureElement::sign_digest`], signs (deterministic RFC 6979
//!   ECDSA, low-S), and drops the plaintext key. No API returns the private key.
//!
//! Everything is derived from seeds, so tests never touch OS randomness.

pub mod ca;
pub mod gpu;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use sha2::Sha256;
use thiserror::Error;

use crate::types::{Curve, DevicePublicKey, EvidenceKind};

pub use ca::{signature_twin, DevnetVendorCa};
pub use gpu::{DevnetNvidiaCa, EmulatedGpu};

const SEAL_SALT: &[u8] = b"UNET-POCI/soft-se/seal/v1";
const SEALED_VERSION: u8 = 1;

/// Errors of the software secure element.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SeError {
    /// The sealed blob is malformed.
    #[error("malformed sealed key blob")]
    MalformedBlob,
    /// The sealed blob does not open under this device secret (wrong chip, or tampered blob).
    #[error("sealed key does not open under this device secret")]
    UnsealFailed,
    /// Sealing failed.
    #[error("sealing failed")]
    SealFailed,
    /// ECDSA signing failed.
    #[error("signing failed")]
    SignFailed,
    /// Certificate building failed (devnet CA).
    #[error("certificate building failed: {0}")]
    Certificate(String),
}

/// The device private key, encrypted under the device secret. Safe to store anywhere.
///
/// Layout: `version:u8 | curve:u8 (1 = P-256, 2 = P-384) | public key (uncompressed SEC1) |
/// nonce (12) | AES-256-GCM ciphertext || tag`. The AAD is `version | curve | public key`, so the
/// blob cannot be re-labelled with another public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    curve: Curve,
    public_key: Vec<u8>,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl SealedKey {
    /// Serialize for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.aad();
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parse a stored blob (does not decrypt).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeError> {
        let (&version, rest) = bytes.split_first().ok_or(SeError::MalformedBlob)?;
        let (&curve, rest) = rest.split_first().ok_or(SeError::MalformedBlob)?;
        if version != SEALED_VERSION {
            return Err(SeError::MalformedBlob);
        }
        let curve = match curve {
            1 => Curve::P256,
            2 => Curve::P384,
            _ => return Err(SeError::MalformedBlob),
        };
        let scalar_len = curve.signature_len() / 2;
        if rest.len() != curve.point_len() + 12 + scalar_len + 16 {
            return Err(SeError::MalformedBlob);
        }
        let (public_key, rest) = rest.split_at(curve.point_len());
        let (nonce, ciphertext) = rest.split_at(12);
        Ok(Self {
            curve,
            public_key: public_key.to_vec(),
            nonce: nonce.try_into().map_err(|_| SeError::MalformedBlob)?,
            ciphertext: ciphertext.to_vec(),
        })
    }

    fn aad(&self) -> Vec<u8> {
        let curve = match self.curve {
            Curve::P256 => 1,
            Curve::P384 => 2,
        };
        let mut out = vec![SEALED_VERSION, curve];
        out.extend_from_slice(&self.public_key);
        out
    }
}

/// Private key material, only ever alive inside the element's methods.
enum SecretKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl SecretKey {
    /// Derive a key deterministically from a seed (HKDF, retrying on the negligible chance of an
    /// out-of-range scalar).
    fn from_seed(curve: Curve, seed: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"UNET-POCI/soft-se/keygen/v1"), seed);
        for counter in 0u32.. {
            let mut info = b"device-key".to_vec();
            info.extend_from_slice(&counter.to_be_bytes());
            let mut buf = [0u8; 48];
            let len = curve.signature_len() / 2;
            if hk.expand(&info, &mut buf[..len]).is_err() {
                continue;
            }
            let key = match curve {
                Curve::P256 => p256::ecdsa::SigningKey::from_slice(&buf[..len])
                    .map(Self::P256)
                    .ok(),
                Curve::P384 => p384::ecdsa::SigningKey::from_slice(&buf[..len])
                    .map(Self::P384)
                    .ok(),
            };
            if let Some(key) = key {
                return key;
            }
        }
        unreachable!("a valid scalar is found with overwhelming probability")
    }

    fn from_bytes(curve: Curve, bytes: &[u8]) -> Option<Self> {
        match curve {
            Curve::P256 => p256::ecdsa::SigningKey::from_slice(bytes)
                .ok()
                .map(Self::P256),
            Curve::P384 => p384::ecdsa::SigningKey::from_slice(bytes)
                .ok()
                .map(Self::P384),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::P256(k) => k.to_bytes().to_vec(),
            Self::P384(k) => k.to_bytes().to_vec(),
        }
    }

    fn public_key(&self) -> DevicePublicKey {
        let (curve, sec1) = match self {
            Self::P256(k) => (
                Curve::P256,
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
            Self::P384(k) => (
                Curve::P384,
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
        };
        DevicePublicKey { curve, sec1 }
    }

    /// Deterministic (RFC 6979), low-S, raw r||s ECDSA signature over `message` with the curve's
    /// standard hash (P-256/SHA-256, P-384/SHA-384).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SeError> {
        match self {
            Self::P256(k) => {
                let sig: p256::ecdsa::Signature =
                    k.try_sign(message).map_err(|_| SeError::SignFailed)?;
                Ok(sig.normalize_s().to_bytes().to_vec())
            }
            Self::P384(k) => {
                let sig: p384::ecdsa::Signature =
                    k.try_sign(message).map_err(|_| SeError::SignFailed)?;
                Ok(sig.normalize_s().to_bytes().to_vec())
            }
        }
    }
}

/// A chip's security engine in software: device secret plus sealed device key.
pub struct SoftSecureElement {
    device_secret: [u8; 16],
    sealed: SealedKey,
}

impl std::fmt::Debug for SoftSecureElement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftSecureElement")
            .field("device_secret", &"<sealed>")
            .field("public_key", &hex::encode(&self.sealed.public_key))
            .finish()
    }
}

impl SoftSecureElement {
    /// Manufacture: derive the device key from `key_seed` and seal it under `device_secret`.
    pub fn provision(
        device_secret: [u8; 16],
        key_seed: &[u8],
        curve: Curve,
    ) -> Result<Self, SeError> {
        let key = SecretKey::from_seed(curve, key_seed);
        let public_key = key.public_key().sec1;
        // Nonce derived from the public key: one device secret seals one key per public key, and the
        // same key always seals to the same blob, so a nonce never repeats with different plaintext.
        let nonce_full = crate::crypto::sha256(&[b"seal-nonce".as_slice(), &public_key].concat());
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&nonce_full[..12]);
        let mut sealed = SealedKey {
            curve,
            public_key,
            nonce,
            ciphertext: Vec::new(),
        };
        let cipher = seal_cipher(&device_secret);
        let aad = sealed.aad();
        let plaintext = key.to_bytes();
        sealed.ciphertext = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SeError::SealFailed)?;
        Ok(Self {
            device_secret,
            sealed,
        })
    }

    /// Boot: load a stored sealed key. Fails if it does not open under this device secret or does not
    /// belong to the public key it names.
    pub fn open(device_secret: [u8; 16], sealed: SealedKey) -> Result<Self, SeError> {
        let se = Self {
            device_secret,
            sealed,
        };
        let key = se.unseal()?;
        if key.public_key().sec1 != se.sealed.public_key {
            return Err(SeError::UnsealFailed);
        }
        Ok(se)
    }

    fn unseal(&self) -> Result<SecretKey, SeError> {
        let cipher = seal_cipher(&self.device_secret);
        let aad = self.sealed.aad();
        let plaintext = cipher
            .decrypt(
                &self.sealed.nonce.into(),
                Payload {
                    msg: &self.sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SeError::UnsealFailed)?;
        SecretKey::from_bytes(self.sealed.curve, &plaintext).ok_or(SeError::UnsealFailed)
    }

    /// The sealed key blob (what the chip stores in flash).
    pub fn sealed_key(&self) -> &SealedKey {
        &self.sealed
    }

    /// The device public key.
    pub fn public_key(&self) -> DevicePublicKey {
        DevicePublicKey {
            curve: self.sealed.curve,
            sec1: self.sealed.public_key.clone(),
        }
    }

    /// `chip_id` of this element (its key registers through [`EvidenceKind::VendorX509`]
    /// evidence).
    pub fn chip_id(&self) -> [u8; 32] {
        self.public_key().chip_id(EvidenceKind::VendorX509)
    }

    /// Sign a 32-byte digest (liveness challenges, receipts): raw low-S r||s ECDSA over the digest
    /// bytes as the message (P-256/SHA-256 or P-384/SHA-384), as [`crate::verify_liveness`] checks.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, SeError> {
        self.unseal()?.sign(digest)
    }

    /// Sign a registration challenge: signs [`crate::x509::registration_digest`] of `nonce`.
    pub fn sign_registration(&self, nonce: &[u8; 32]) -> Result<Vec<u8>, SeError> {
        self.sign_digest(&crate::x509::registration_digest(nonce))
    }
}

fn seal_cipher(device_secret: &[u8; 16]) -> Aes256Gcm {
    let hk = Hkdf::<Sha256>::new(Some(SEAL_SALT), device_secret);
    let mut key = [0u8; 32];
    hk.expand(b"device-key-seal", &mut key)
        .expect("32 bytes is a valid HKDF-SHA-256 output length");
    Aes256Gcm::new(&key.into())
}
