//! X.509 certificate-chain verification against the pinned roots of a [`TrustStore`].
//!
//! Rules (all deterministic, no network):
//! - every certificate is strict DER X.509 v3 with a P-256/P-384 key and an ecdsa-with-SHA256/384
//!   signature whose outer and inner algorithm identifiers agree;
//! - signatures are checked over the certificate's **raw** TBS bytes, never over a re-encoding;
//! - `notBefore <= now <= notAfter` for every certificate, including the pinned root;
//! - each certificate's issuer name equals (byte for byte) the next one's subject name;
//! - every issuer has basicConstraints `cA = TRUE`, respects `pathLenConstraint`, and if it has
//!   keyUsage, `keyCertSign`; the leaf, if it has keyUsage, has `digitalSignature`;
//! - unknown critical extensions are rejected;
//! - the chain's last certificate is byte-identical to a pinned root of the evidence kind, or is
//!   signed by one whose subject is its issuer;
//! - no certificate's [identity](certificate_id) (its subject key, not its encoding) is on the
//!   revocation list, nor the anchoring root's; devnet-only roots need `allow_devnet_roots`.
//!
//! ECDSA signatures in certificates are accepted with high or low S: vendor CAs (NVIDIA's
//! included) sign with ordinary ECDSA, which gives high S about half the time. A signature
//! therefore has two valid encodings, (r, s) and (r, n − s), and so does every certificate: the
//! SHA-256 of a certificate's DER is *not* an identity anyone can rely on. Everything that
//! names a certificate (revocation, a chip's recorded chain) uses [`certificate_id`] instead.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Reader, SliceReader, Tag, Tagged};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::name::Name;
use x509_cert::Certificate;

use crate::crypto::{sha256, VerifyingKey};
use crate::error::VerifyError;
use crate::trust::{TrustStore, TrustedRoot};
use crate::types::Curve;
use crate::types::EvidenceKind;

/// Longest chain accepted (leaf to root inclusive).
pub const MAX_CHAIN_LEN: usize = 8;
/// Largest certificate accepted, in bytes.
pub const MAX_CERT_LEN: usize = 16 * 1024;

const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// TCG DICE TcbInfo (NVIDIA puts its composite device identifier with the FWID here).
const OID_DICE_TCB_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
/// TCG DICE TcbInfo as Blackwell leaf certificates carry it.
const OID_DICE_TCB_INFO_BLACKWELL: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.23.133.5.4.1.1");
/// TCG DICE MultiTcbInfo.
const OID_DICE_MULTI_TCB_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.5");
/// commonName
pub(crate) const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// serialNumber (subject attribute)
pub(crate) const OID_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");

/// Critical extensions this module understands (the DICE ones are checked by the NVIDIA verifier).
const KNOWN_CRITICAL: [ObjectIdentifier; 6] = [
    OID_BASIC_CONSTRAINTS,
    OID_KEY_USAGE,
    OID_SUBJECT_ALT_NAME,
    OID_DICE_TCB_INFO,
    OID_DICE_TCB_INFO_BLACKWELL,
    OID_DICE_MULTI_TCB_INFO,
];

/// A decoded certificate with the facts verification needs.
#[derive(Debug, Clone)]
pub(crate) struct ParsedCert {
    pub(crate) der: Vec<u8>,
    pub(crate) cert: Certificate,
    tbs_raw: std::ops::Range<usize>,
    pub(crate) key: VerifyingKey,
    /// [`certificate_id`] of this certificate.
    pub(crate) id: [u8; 32],
    not_before: u64,
    not_after: u64,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    basic: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
}

impl ParsedCert {
    /// Decode one certificate; `index` is only used in errors.
    pub(crate) fn parse(index: usize, der: &[u8]) -> Result<Self, VerifyError> {
        let malformed = |reason: String| VerifyError::MalformedCertificate { index, reason };
        if der.len() > MAX_CERT_LEN {
            return Err(VerifyError::TooLarge("certificate"));
        }
        let cert = Certificate::from_der(der).map_err(|e| malformed(e.to_string()))?;
        let tbs_raw = raw_tbs_range(der).map_err(|e| malformed(e.to_string()))?;
        let tbs = cert.tbs_certificate();

        // Outer and inner signature algorithms must agree, and be ECDSA with SHA-256/384.
        let alg = cert.signature_algorithm();
        if alg != tbs.signature()
            || alg.parameters.is_some()
            || (alg.oid != crate::crypto::OID_ECDSA_SHA256
                && alg.oid != crate::crypto::OID_ECDSA_SHA384)
        {
            return Err(VerifyError::UnsupportedAlgorithm { index });
        }
        if cert.signature().as_bytes().is_none() {
            return Err(malformed("signature BIT STRING has unused bits".into()));
        }
        let key = VerifyingKey::from_spki(tbs.subject_public_key_info())
            .ok_or(VerifyError::UnsupportedAlgorithm { index })?;

        let validity = tbs.validity();
        let not_before = validity.not_before.to_unix_duration().as_secs();
        let not_after = validity.not_after.to_unix_duration().as_secs();

        let mut basic = None;
        let mut key_usage = None;
        let mut seen: Vec<ObjectIdentifier> = Vec::new();
        for ext in tbs.extensions().map(|e| e.as_slice()).unwrap_or(&[]) {
            if seen.contains(&ext.extn_id) {
                return Err(malformed(format!("duplicate extension {}", ext.extn_id)));
            }
            seen.push(ext.extn_id);
            let value = ext.extn_value.as_bytes();
            if ext.extn_id == OID_BASIC_CONSTRAINTS {
                basic =
                    Some(BasicConstraints::from_der(value).map_err(|e| malformed(e.to_string()))?);
            } else if ext.extn_id == OID_KEY_USAGE {
                key_usage = Some(KeyUsage::from_der(value).map_err(|e| malformed(e.to_string()))?);
            } else if ext.critical && !KNOWN_CRITICAL.contains(&ext.extn_id) {
                return Err(VerifyError::UnsupportedCriticalExtension {
                    index,
                    oid: ext.extn_id.to_string(),
                });
            }
        }

        let subject = tbs
            .subject()
            .to_der()
            .map_err(|e| malformed(e.to_string()))?;
        let issuer = tbs
            .issuer()
            .to_der()
            .map_err(|e| malformed(e.to_string()))?;
        Ok(Self {
            der: der.to_vec(),
            id: key_id(&key),
            cert,
            tbs_raw,
            key,
            not_before,
            not_after,
            subject,
            issuer,
            basic,
            key_usage,
        })
    }

    fn tbs_bytes(&self) -> &[u8] {
        &self.der[self.tbs_raw.clone()]
    }

    /// Whether `issuer`'s key signed this certificate.
    pub(crate) fn signed_by(&self, issuer: &VerifyingKey) -> bool {
        let sig = self.cert.signature().as_bytes().unwrap_or(&[]);
        issuer.verify_x509(self.cert.signature_algorithm().oid, self.tbs_bytes(), sig)
    }

    /// Whether basicConstraints says `cA = TRUE`.
    pub(crate) fn is_ca(&self) -> bool {
        self.basic.as_ref().is_some_and(|b| b.ca)
    }

    pub(crate) fn is_self_signed(&self) -> bool {
        self.subject == self.issuer && self.signed_by(&self.key)
    }

    pub(crate) fn subject(&self) -> &Name {
        self.cert.tbs_certificate().subject()
    }

    pub(crate) fn issuer_name(&self) -> &Name {
        self.cert.tbs_certificate().issuer()
    }

    /// The value of the only extension with `oid`, if any.
    pub(crate) fn extension(&self, oid: ObjectIdentifier) -> Option<&[u8]> {
        self.cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    fn check_time(&self, index: usize, now: u64) -> Result<(), VerifyError> {
        check_window(index, self.not_before, self.not_after, now)
    }
}

/// Byte range of the raw TBSCertificate inside a certificate's DER.
pub(crate) fn raw_tbs_range(der: &[u8]) -> der::Result<std::ops::Range<usize>> {
    let mut reader = SliceReader::new(der)?;
    let header = der::Header::decode(&mut reader)?;
    header.tag().assert_eq(Tag::Sequence)?;
    let start = usize::try_from(reader.position())?;
    let tbs = reader.tlv_bytes()?;
    Ok(start..start + tbs.len())
}

/// Domain tag of certificate identities ([`certificate_id`]).
pub const CERT_ID_DOMAIN: &[u8] = b"UNET-POCI/cert-id/v1";

/// A certificate's identity for revocation and for a chip's recorded chain:
/// `SHA-256(CERT_ID_DOMAIN || curve (1 = P-256, 2 = P-384) || subject public key as an
/// uncompressed SEC1 point)`.
///
/// Why the subject key, and not the SHA-256 of the DER, the TBSCertificate hash or
/// issuer + serial:
/// - the DER is malleable by anyone: the signature (r, s) can be rewritten as (r, n − s) and still
///   verifies, so a revoked certificate comes back with a new DER hash (issue 12, item 3);
/// - the TBS hash and issuer + serial resist that, but not the *issuer*: a vendor that renews or
///   re-issues a certificate for the same key (common for CA certificates: new validity, same key),
///   or cross-signs it from another root, produces a new TBS and a new serial;
/// - what makes a CA certificate dangerous is its key, which signs the certificates below it.
///   Any certificate that can stand in for a revoked one in a chain must carry the same key
///   (its children's signatures verify only with it), so a revoked key stays revoked under every
///   encoding, renewal and cross-signature. The key is normalised (uncompressed point, curve
///   tag), so it has exactly one encoding.
///
/// Revoking by key revokes every certificate for that key, which is the intended meaning: the
/// reasons to revoke a vendor intermediate (key compromise, a bad batch of devices under it)
/// are about what the key signed.
pub fn certificate_id(der: &[u8]) -> Result<[u8; 32], VerifyError> {
    Ok(ParsedCert::parse(0, der)?.id)
}

/// [`certificate_id`] of a parsed key.
fn key_id(key: &VerifyingKey) -> [u8; 32] {
    let curve: u8 = match key.curve() {
        Curve::P256 => 1,
        Curve::P384 => 2,
    };
    sha256(&[CERT_ID_DOMAIN, &[curve], key.sec1()].concat())
}

/// Read a subject attribute as a string (UTF8String, PrintableString or IA5String). Errors if it
/// occurs more than once; `Ok(None)` if absent.
pub(crate) fn name_attr(name: &Name, oid: ObjectIdentifier) -> Result<Option<String>, ()> {
    let mut found = None;
    for atv in name.iter().filter(|a| a.oid == oid) {
        if found.is_some() {
            return Err(());
        }
        let text = match atv.value.tag() {
            Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
                std::str::from_utf8(atv.value.value()).map_err(|_| ())?
            }
            _ => return Err(()),
        };
        found = Some(text.to_string());
    }
    Ok(found)
}

/// A chain that verified: its certificates (leaf first, as given) and the pinned root that anchors it.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedChain {
    pub(crate) certs: Vec<ParsedCert>,
    pub(crate) anchor: TrustedRoot,
    /// [`certificate_id`] of the anchoring root.
    pub(crate) anchor_id: [u8; 32],
    /// Validity window of the pinned root when it was not part of the given chain.
    appended_root: Option<(u64, u64)>,
}

/// What a verified chain's verdict depends on besides its own bytes and the pinned roots of its
/// kind: each certificate's id and validity (chain order), and the anchor. [`Self::recheck`]
/// repeats, in the same order, every check of [`verify_chain`] that time or the trust store's
/// revocations and devnet switch can change.
#[derive(Debug, Clone)]
pub(crate) struct ChainState {
    certs: Vec<([u8; 32], u64, u64)>,
    anchor_id: [u8; 32],
    anchor_devnet_only: bool,
    appended_root: Option<(u64, u64)>,
}

fn check_window(
    index: usize,
    not_before: u64,
    not_after: u64,
    now: u64,
) -> Result<(), VerifyError> {
    if now < not_before {
        return Err(VerifyError::CertificateNotYetValid {
            index,
            not_before,
            now,
        });
    }
    if now > not_after {
        return Err(VerifyError::CertificateExpired {
            index,
            not_after,
            now,
        });
    }
    Ok(())
}

impl ChainState {
    /// The verdict [`verify_chain`] would give now for the chain this state was taken from,
    /// given that the chain verified once under the same pinned roots of its kind.
    pub(crate) fn recheck(&self, now: u64, trust: &TrustStore) -> Result<(), VerifyError> {
        for (index, (id, not_before, not_after)) in self.certs.iter().enumerate() {
            if trust.is_certificate_revoked(id) {
                return Err(VerifyError::CertificateRevoked {
                    index,
                    fingerprint: hex::encode(id),
                });
            }
            check_window(index, *not_before, *not_after, now)?;
        }
        if self.anchor_devnet_only && !trust.allow_devnet_roots {
            return Err(VerifyError::DevnetRootNotAllowed);
        }
        if trust.is_certificate_revoked(&self.anchor_id) {
            return Err(VerifyError::CertificateRevoked {
                index: self.certs.len(),
                fingerprint: hex::encode(self.anchor_id),
            });
        }
        if let Some((not_before, not_after)) = self.appended_root {
            check_window(self.certs.len(), not_before, not_after, now)?;
        }
        Ok(())
    }
}

impl VerifiedChain {
    /// What [`ChainState::recheck`] needs.
    pub(crate) fn state(&self) -> ChainState {
        ChainState {
            certs: self
                .certs
                .iter()
                .map(|c| (c.id, c.not_before, c.not_after))
                .collect(),
            anchor_id: self.anchor_id,
            anchor_devnet_only: self.anchor.devnet_only,
            appended_root: self.appended_root,
        }
    }

    /// [`certificate_id`] of every given certificate except the leaf and a copy of the pinned
    /// root (any certificate for the root's key).
    pub(crate) fn intermediate_ids(&self) -> Vec<[u8; 32]> {
        self.certs
            .iter()
            .skip(1)
            .filter(|c| c.id != self.anchor_id)
            .map(|c| c.id)
            .collect()
    }
}

/// What a verified chain anchors to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// SHA-256 of the pinned root's DER.
    pub root_fingerprint: [u8; 32],
    /// Whether that root is devnet-only.
    pub devnet: bool,
    /// [`certificate_id`] of every given certificate, leaf first (what
    /// [`TrustStore::revoke_certificate`] and governance's `RevokeCertificate` take).
    pub fingerprints: Vec<[u8; 32]>,
}

/// Verify a certificate chain (leaf first, DER each) for `kind` at `now_unix` against `trust`,
/// with the rules in this module's documentation. Used by every evidence kind; public so that, for
/// example, governance can check a vendor intermediate before pinning or revoking it.
pub fn verify_certificate_chain(
    chain: &[Vec<u8>],
    kind: EvidenceKind,
    now_unix: u64,
    trust: &TrustStore,
) -> Result<ChainInfo, VerifyError> {
    let v = verify_chain(chain, kind, now_unix, trust)?;
    Ok(ChainInfo {
        root_fingerprint: v.anchor.fingerprint,
        devnet: v.anchor.devnet_only,
        fingerprints: v.certs.iter().map(|c| c.id).collect(),
    })
}

/// Verify a chain (leaf first, DER each) for `kind` at `now` (unix seconds).
pub(crate) fn verify_chain(
    ders: &[Vec<u8>],
    kind: EvidenceKind,
    now: u64,
    trust: &TrustStore,
) -> Result<VerifiedChain, VerifyError> {
    if ders.is_empty() {
        return Err(VerifyError::EmptyChain);
    }
    if ders.len() > MAX_CHAIN_LEN {
        return Err(VerifyError::TooLarge("certificate chain"));
    }
    let certs = ders
        .iter()
        .enumerate()
        .map(|(i, d)| ParsedCert::parse(i, d))
        .collect::<Result<Vec<_>, _>>()?;

    for (index, cert) in certs.iter().enumerate() {
        if trust.is_certificate_revoked(&cert.id) {
            return Err(VerifyError::CertificateRevoked {
                index,
                fingerprint: hex::encode(cert.id),
            });
        }
        cert.check_time(index, now)?;
    }

    // Anchor: the last certificate is a pinned root, or is issued by one.
    let last = certs.len() - 1;
    let mut anchor: Option<(&TrustedRoot, Option<ParsedCert>)> = trust
        .roots_for(kind)
        .find(|r| r.der == certs[last].der)
        .map(|r| (r, None));
    if anchor.is_none() {
        for root in trust.roots_for(kind) {
            let Ok(parsed) = ParsedCert::parse(certs.len(), &root.der) else {
                continue;
            };
            if parsed.subject == certs[last].issuer && certs[last].signed_by(&parsed.key) {
                anchor = Some((root, Some(parsed)));
                break;
            }
        }
    }
    let Some((root, appended)) = anchor else {
        return Err(VerifyError::UnknownRoot);
    };
    if root.devnet_only && !trust.allow_devnet_roots {
        return Err(VerifyError::DevnetRootNotAllowed);
    }
    let anchor_id = appended.as_ref().map_or(certs[last].id, |p| p.id);
    if trust.is_certificate_revoked(&anchor_id) {
        return Err(VerifyError::CertificateRevoked {
            index: certs.len(),
            fingerprint: hex::encode(anchor_id),
        });
    }

    // Full path: given certificates plus the pinned root when it was not included.
    let mut path: Vec<&ParsedCert> = certs.iter().collect();
    if let Some(p) = appended.as_ref() {
        p.check_time(certs.len(), now)?;
        path.push(p);
    }

    // Links, from the leaf up (a bad certificate fails as early as possible).
    for i in 0..path.len() - 1 {
        let (child, issuer) = (path[i], path[i + 1]);
        if child.issuer != issuer.subject {
            return Err(VerifyError::IssuerMismatch { index: i });
        }
        let basic = issuer.basic.as_ref().filter(|b| b.ca);
        let Some(basic) = basic else {
            return Err(VerifyError::NotACa { index: i + 1 });
        };
        // Intermediate CA certificates below the issuer: path[1..=i] (i of them, leaf excluded).
        if basic
            .path_len_constraint
            .is_some_and(|p| usize::from(p) < i)
        {
            return Err(VerifyError::NotACa { index: i + 1 });
        }
        if issuer.key_usage.is_some_and(|ku| !ku.key_cert_sign()) {
            return Err(VerifyError::KeyUsageViolation { index: i + 1 });
        }
        if !child.signed_by(&issuer.key) {
            return Err(VerifyError::CertificateSignatureInvalid { index: i });
        }
    }
    if certs[0].key_usage.is_some_and(|ku| !ku.digital_signature()) {
        return Err(VerifyError::KeyUsageViolation { index: 0 });
    }

    Ok(VerifiedChain {
        appended_root: appended.as_ref().map(|p| (p.not_before, p.not_after)),
        certs,
        anchor: root.clone(),
        anchor_id,
    })
}
