//! `DevnetVendorCa`: a test vendor CA (root -> intermediate -> device certificates) generated
//! deterministically from a seed. Its root subject carries [`DEVNET_MARKER`], so every
//! [`TrustStore`] treats it as devnet-only: a production genesis can never trust it.
//!
//! Device certificate profile (what the vendor-x509 verifier reads):
//! - subject `CN = <model>`, `serialNumber = <serial>`, `O = <vendor>`;
//! - basicConstraints `cA = FALSE` and keyUsage `digitalSignature` (both critical);
//! - the subject key is the chip's DeviceID key (P-256 or P-384).

use std::str::FromStr;

use const_oid::ObjectIdentifier;
use der::asn1::{Any, SetOfVec, Utf8StringRef};
use der::{Decode, Encode};
use spki::{EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use super::{SeError, SoftSecureElement};
use crate::chain::{OID_CN, OID_SERIAL_NUMBER};
use crate::crypto::sha256;
use crate::trust::{TrustStore, DEVNET_MARKER};
use crate::types::{Curve, DevicePublicKey, EvidenceKind};

pub(super) const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");

/// Default validity start of devnet certificates: 2020-01-01T00:00:00Z.
pub const DEVNET_NOT_BEFORE: u64 = 1_577_836_800;
/// Default validity end of devnet certificates: 2099-12-31T23:59:59Z.
pub const DEVNET_NOT_AFTER: u64 = 4_102_444_799;

/// A deterministic test vendor CA.
pub struct DevnetVendorCa {
    root_key: p256::ecdsa::SigningKey,
    root_der: Vec<u8>,
    root_name: Name,
    intermediate_key: p256::ecdsa::SigningKey,
    intermediate_der: Vec<u8>,
    intermediate_name: Name,
}

impl std::fmt::Debug for DevnetVendorCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevnetVendorCa")
            .field("root_fingerprint", &hex::encode(self.root_fingerprint()))
            .finish()
    }
}

pub(super) struct Profile {
    pub(super) subject: Name,
    pub(super) issuer: Option<Name>,
    /// `Some(path_len)` for a CA certificate, `None` for a device certificate
    pub(super) ca: Option<Option<u8>>,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut exts = Vec::new();
        let (basic, usage) = match self.ca {
            Some(path_len) => (
                BasicConstraints {
                    ca: true,
                    path_len_constraint: path_len,
                },
                KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            ),
            None => (
                BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
                KeyUsage(KeyUsages::DigitalSignature.into()),
            ),
        };
        exts.push((&basic).to_extension(tbs.subject(), &exts)?);
        exts.push((&usage).to_extension(tbs.subject(), &exts)?);
        Ok(exts)
    }
}

pub(super) fn cert_err(e: impl std::fmt::Display) -> SeError {
    SeError::Certificate(e.to_string())
}

/// Build a Name from (attribute, UTF-8 value) pairs, one RDN each, in order.
pub(super) fn make_name(attrs: &[(ObjectIdentifier, &str)]) -> Result<Name, SeError> {
    let mut rdns = RdnSequence::default();
    for (oid, value) in attrs {
        let value =
            Any::encode_from(&Utf8StringRef::new(value).map_err(cert_err)?).map_err(cert_err)?;
        let atv = AttributeTypeAndValue { oid: *oid, value };
        let set = SetOfVec::try_from(vec![atv]).map_err(cert_err)?;
        rdns.push(RelativeDistinguishedName::try_from(set.into_vec()).map_err(cert_err)?);
    }
    Name::from_der(&rdns.to_der().map_err(cert_err)?).map_err(cert_err)
}

pub(super) fn validity(not_before: u64, not_after: u64) -> Result<Validity, SeError> {
    let t = |secs: u64| -> Result<Time, SeError> {
        let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
            .map_err(cert_err)?;
        Ok(Time::from(dt))
    };
    Ok(Validity::new(t(not_before)?, t(not_after)?))
}

pub(super) fn serial_for(data: &[u8]) -> Result<SerialNumber, SeError> {
    let mut bytes = sha256(data)[..16].to_vec();
    bytes[0] = (bytes[0] & 0x7F) | 0x40; // positive, no leading zero
    SerialNumber::new(&bytes).map_err(cert_err)
}

fn derive_p256(seed: &[u8], label: &str) -> p256::ecdsa::SigningKey {
    for counter in 0u32.. {
        let bytes = sha256(&[seed, label.as_bytes(), &counter.to_be_bytes()].concat());
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
            return key;
        }
    }
    unreachable!("a valid scalar is found with overwhelming probability")
}

fn sign_cert(
    profile: Profile,
    serial: SerialNumber,
    validity: Validity,
    spki: SubjectPublicKeyInfoOwned,
    signer: &p256::ecdsa::SigningKey,
) -> Result<Vec<u8>, SeError> {
    let builder = CertificateBuilder::new(profile, serial, validity, spki).map_err(cert_err)?;
    let cert = builder
        .build::<_, p256::ecdsa::DerSignature>(signer)
        .map_err(cert_err)?;
    cert.to_der().map_err(cert_err)
}

fn spki_of(key: &DevicePublicKey) -> Result<SubjectPublicKeyInfoOwned, SeError> {
    let der = match key.curve {
        Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.sec1)
            .map_err(cert_err)?
            .to_public_key_der(),
        Curve::P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(&key.sec1)
            .map_err(cert_err)?
            .to_public_key_der(),
    }
    .map_err(cert_err)?;
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(cert_err)
}

impl DevnetVendorCa {
    /// Generate the CA (root and intermediate, P-256) from a seed. Same seed, same certificates.
    pub fn from_seed(seed: &[u8]) -> Result<Self, SeError> {
        let tag = hex::encode(&sha256(seed)[..4]);
        let root_key = derive_p256(seed, "root");
        let intermediate_key = derive_p256(seed, "intermediate");
        let org = format!("{DEVNET_MARKER} (NOT FOR PRODUCTION)");
        let root_name = make_name(&[
            (OID_CN, &format!("UtilityNet Devnet Vendor Root {tag}")),
            (OID_O, &org),
        ])?;
        let intermediate_name = make_name(&[
            (
                OID_CN,
                &format!("UtilityNet Devnet Vendor Intermediate {tag}"),
            ),
            (OID_O, &org),
        ])?;
        let root_spki =
            SubjectPublicKeyInfoOwned::from_key(root_key.verifying_key()).map_err(cert_err)?;
        let root_der = sign_cert(
            Profile {
                subject: root_name.clone(),
                issuer: None,
                ca: Some(None),
            },
            serial_for(&[seed, b"root"].concat())?,
            validity(DEVNET_NOT_BEFORE, DEVNET_NOT_AFTER)?,
            root_spki,
            &root_key,
        )?;
        let inter_spki = SubjectPublicKeyInfoOwned::from_key(intermediate_key.verifying_key())
            .map_err(cert_err)?;
        let intermediate_der = sign_cert(
            Profile {
                subject: intermediate_name.clone(),
                issuer: Some(root_name.clone()),
                ca: Some(Some(0)),
            },
            serial_for(&[seed, b"intermediate"].concat())?,
            validity(DEVNET_NOT_BEFORE, DEVNET_NOT_AFTER)?,
            inter_spki,
            &root_key,
        )?;
        Ok(Self {
            root_key,
            root_der,
            root_name,
            intermediate_key,
            intermediate_der,
            intermediate_name,
        })
    }

    /// DER of the self-signed root.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// SHA-256 of the root DER.
    pub fn root_fingerprint(&self) -> [u8; 32] {
        sha256(&self.root_der)
    }

    /// DER of the intermediate (issues device certificates).
    pub fn intermediate_der(&self) -> &[u8] {
        &self.intermediate_der
    }

    /// Issue a device certificate valid for the default devnet window.
    pub fn issue_device_cert(
        &self,
        device_key: &DevicePublicKey,
        model: &str,
        serial: &str,
    ) -> Result<Vec<u8>, SeError> {
        self.issue_device_cert_with_validity(
            device_key,
            model,
            serial,
            DEVNET_NOT_BEFORE,
            DEVNET_NOT_AFTER,
        )
    }

    /// Issue a device certificate with an explicit validity window (unix seconds).
    pub fn issue_device_cert_with_validity(
        &self,
        device_key: &DevicePublicKey,
        model: &str,
        serial: &str,
        not_before: u64,
        not_after: u64,
    ) -> Result<Vec<u8>, SeError> {
        if model.is_empty() || model.len() > 64 || serial.is_empty() || serial.len() > 64 {
            return Err(SeError::Certificate(
                "model and serial must be 1..=64 bytes".into(),
            ));
        }
        let subject = make_name(&[
            (OID_CN, model),
            (OID_SERIAL_NUMBER, serial),
            (OID_O, "UtilityNet Devnet Vendor"),
        ])?;
        sign_cert(
            Profile {
                subject,
                issuer: Some(self.intermediate_name.clone()),
                ca: None,
            },
            serial_for(&device_key.sec1)?,
            validity(not_before, not_after)?,
            spki_of(device_key)?,
            &self.intermediate_key,
        )
    }

    /// Issue a certificate directly under the root (used by tests to build unusual chains).
    pub fn issue_under_root(
        &self,
        device_key: &DevicePublicKey,
        subject: &str,
        ca: bool,
    ) -> Result<Vec<u8>, SeError> {
        let subject = Name::from_str(subject).map_err(cert_err)?;
        sign_cert(
            Profile {
                subject,
                issuer: Some(self.root_name.clone()),
                ca: ca.then_some(None),
            },
            serial_for(&[device_key.sec1.as_slice(), b"under-root"].concat())?,
            validity(DEVNET_NOT_BEFORE, DEVNET_NOT_AFTER)?,
            spki_of(device_key)?,
            &self.root_key,
        )
    }

    /// The chain to put in evidence for a device certificate: device, intermediate (root left out).
    pub fn chain_for(&self, device_cert: Vec<u8>) -> Vec<Vec<u8>> {
        vec![device_cert, self.intermediate_der.clone()]
    }

    /// Pin this CA's root (devnet-only) for [`EvidenceKind::VendorX509`].
    pub fn pin_into(&self, trust: &mut TrustStore) {
        trust
            .add_root(EvidenceKind::VendorX509, &self.root_der, true)
            .expect("the devnet root is well formed");
    }

    /// A devnet trust store (devnet roots allowed) with this CA pinned.
    pub fn trust_store(&self) -> TrustStore {
        let mut trust = TrustStore::devnet();
        self.pin_into(&mut trust);
        trust
    }

    /// Manufacture a chip: provision a secure element and certify its key.
    /// Returns the element and its evidence chain (device, intermediate).
    pub fn provision_chip(
        &self,
        device_secret: [u8; 16],
        key_seed: &[u8],
        curve: Curve,
        model: &str,
        serial: &str,
    ) -> Result<(SoftSecureElement, Vec<Vec<u8>>), SeError> {
        let se = SoftSecureElement::provision(device_secret, key_seed, curve)?;
        let cert = self.issue_device_cert(&se.public_key(), model, serial)?;
        Ok((se, self.chain_for(cert)))
    }
}

/// The same certificate with its ECDSA signature (r, s) rewritten as (r, n − s), where n is the
/// order of `issuer_curve` (the curve of the key that signed it): a different DER that still
/// verifies under the same issuer, made without any secret. It is what an attacker does to a
/// revoked certificate to give it a new SHA-256; tests use it to show that certificates are
/// named by [`crate::certificate_id`], which the rewrite does not change.
pub fn signature_twin(der: &[u8], issuer_curve: Curve) -> Result<Vec<u8>, SeError> {
    let cert = x509_cert::Certificate::from_der(der).map_err(cert_err)?;
    let sig = cert
        .signature()
        .as_bytes()
        .ok_or_else(|| SeError::Certificate("signature BIT STRING has unused bits".into()))?;
    let twin = match issuer_curve {
        Curve::P256 => {
            let s = p256::ecdsa::Signature::from_der(sig).map_err(cert_err)?;
            let (r, s) = s.split_scalars();
            p256::ecdsa::Signature::from_scalars(r, -*s)
                .map_err(cert_err)?
                .to_der()
                .as_bytes()
                .to_vec()
        }
        Curve::P384 => {
            let s = p384::ecdsa::Signature::from_der(sig).map_err(cert_err)?;
            let (r, s) = s.split_scalars();
            p384::ecdsa::Signature::from_scalars(r, -*s)
                .map_err(cert_err)?
                .to_der()
                .as_bytes()
                .to_vec()
        }
    };
    // The raw TBS bytes (what the issuer signed), never a re-encoding.
    let tbs = der[crate::chain::raw_tbs_range(der).map_err(cert_err)?].to_vec();
    let alg = cert.signature_algorithm().to_der().map_err(cert_err)?;
    let bits = der::asn1::BitString::from_bytes(&twin)
        .and_then(|b| b.to_der())
        .map_err(cert_err)?;
    let body = [tbs, alg, bits].concat();
    let mut out = der::Header::new(
        der::Tag::Sequence,
        der::Length::try_from(body.len()).map_err(cert_err)?,
    )
    .to_der()
    .map_err(cert_err)?;
    out.extend_from_slice(&body);
    Ok(out)
}
