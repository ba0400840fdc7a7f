//! The one error type of this crate: a distinct variant for every check, so callers (and tests) can
//! tell exactly which defence rejected a piece of evidence.

use thiserror::Error;

/// Why a piece of evidence, a certificate chain or a liveness signature was rejected.
///
/// `index` fields count certificates from the leaf (0) towards the root.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    // ---- evidence container ----
    /// The evidence bytes are not a well-formed evidence container.
    #[error("malformed evidence container: {0}")]
    MalformedEvidence(&'static str),
    /// The evidence's kind tag is unknown, or a verifier for one kind got another kind.
    #[error("unsupported evidence kind {0}")]
    UnsupportedEvidenceKind(u8),
    /// A size limit was exceeded (defends against resource exhaustion).
    #[error("evidence exceeds a size limit: {0}")]
    TooLarge(&'static str),
    /// A PEM certificate chain could not be decoded.
    #[error("malformed PEM: {0}")]
    MalformedPem(String),

    // ---- certificates and chain ----
    /// The certificate chain is empty.
    #[error("empty certificate chain")]
    EmptyChain,
    /// A certificate is not valid DER X.509.
    #[error("certificate {index} is malformed: {reason}")]
    MalformedCertificate {
        /// position in the chain, leaf = 0
        index: usize,
        /// decoder message
        reason: String,
    },
    /// A certificate uses a key or signature algorithm this crate does not accept.
    #[error("certificate {index} uses an unsupported algorithm")]
    UnsupportedAlgorithm {
        /// position in the chain, leaf = 0
        index: usize,
    },
    /// A certificate is not valid yet at the given time.
    #[error("certificate {index} is not valid before {not_before} (now {now})")]
    CertificateNotYetValid {
        /// position in the chain, leaf = 0
        index: usize,
        /// unix seconds
        not_before: u64,
        /// unix seconds
        now: u64,
    },
    /// A certificate has expired at the given time.
    #[error("certificate {index} expired at {not_after} (now {now})")]
    CertificateExpired {
        /// position in the chain, leaf = 0
        index: usize,
        /// unix seconds
        not_after: u64,
        /// unix seconds
        now: u64,
    },
    /// A certificate's issuer name differs from the next certificate's subject name.
    #[error("certificate {index}: issuer name does not match the subject of its issuer")]
    IssuerMismatch {
        /// position in the chain, leaf = 0
        index: usize,
    },
    /// A certificate's signature does not verify under its issuer's key.
    #[error("certificate {index}: signature does not verify under the issuer key")]
    CertificateSignatureInvalid {
        /// position in the chain, leaf = 0
        index: usize,
    },
    /// A certificate that signs another one is not a CA (basicConstraints), or its path length is exceeded.
    #[error("certificate {index} may not issue certificates")]
    NotACa {
        /// position in the chain, leaf = 0
        index: usize,
    },
    /// A certificate's keyUsage forbids what it is used for.
    #[error("certificate {index}: key usage forbids this use")]
    KeyUsageViolation {
        /// position in the chain, leaf = 0
        index: usize,
    },
    /// A certificate carries a critical extension this verifier does not understand.
    #[error("certificate {index}: unsupported critical extension {oid}")]
    UnsupportedCriticalExtension {
        /// position in the chain, leaf = 0
        index: usize,
        /// dotted OID
        oid: String,
    },
    /// The chain ends neither in a pinned root nor in a certificate issued by one (of this evidence kind).
    #[error("the chain does not lead to a pinned root of this evidence kind")]
    UnknownRoot,
    /// The chain leads to a root that is pinned as devnet-only while the trust store is production.
    #[error("the chain leads to a devnet-only root, which this trust store does not allow")]
    DevnetRootNotAllowed,
    /// A certificate in the chain has been revoked (by [`crate::certificate_id`]).
    #[error("certificate {index} is revoked (certificate id {fingerprint})")]
    CertificateRevoked {
        /// position in the chain, leaf = 0
        index: usize,
        /// hex [`crate::certificate_id`] of the certificate
        fingerprint: String,
    },
    /// The chip has been revoked.
    #[error("chip {0} is revoked")]
    ChipRevoked(String),
    /// The device certificate lacks a field the evidence kind requires (model, serial, DeviceID cert).
    #[error("missing required field: {0}")]
    MissingField(&'static str),

    // ---- NVIDIA SPDM ----
    /// The SPDM report could not be parsed.
    #[error("malformed SPDM report at byte {offset}: {reason}")]
    MalformedReport {
        /// byte offset of the failing field (within the section being parsed)
        offset: usize,
        /// what was wrong
        reason: &'static str,
    },
    /// The report's ECDSA signature does not verify under the leaf certificate's key.
    #[error("attestation report signature does not verify")]
    ReportSignatureInvalid,
    /// The leaf certificate's FWID extension (the architecture's TCG DICE OID:
    /// 2.23.133.5.4.1 on Hopper, 2.23.133.5.4.1.1 on Blackwell) is missing or malformed.
    #[error("DICE FWID extension of the architecture: {0}")]
    DiceExtension(&'static str),
    /// The leaf certificate names a device architecture the verifier has no entry for
    /// (`nvidia::arch::ARCHITECTURES`), or is not an NVIDIA device certificate name.
    #[error("unknown NVIDIA device architecture (leaf certificate {0:?})")]
    UnknownArchitecture(String),
    /// A chain certificate's name does not belong to the leaf's architecture (e.g. a Blackwell
    /// leaf under a Hopper provisioner CA, or a BROM of another chip or revision).
    #[error("certificate {index}: name does not fit the leaf's architecture")]
    ArchitectureMismatch {
        /// position in the chain (0 = leaf)
        index: usize,
    },
    /// The report lacks an opaque field that its architecture requires (type number).
    #[error("report lacks opaque field {0}")]
    MissingOpaqueField(u16),
    /// The report's FWID differs from the FWID in the leaf's DICE extension (or is missing).
    #[error("FWID in the report does not match the leaf certificate's DICE FWID")]
    FwidMismatch,
    /// The DICE extension names an identity key other than the DeviceID (BROM) certificate's key.
    #[error("DICE identity key does not match the DeviceID certificate key")]
    DiceIdentityMismatch,
    /// The report's signed DRIVER_VERSION or VBIOS_VERSION is below the governance minimum for
    /// its architecture ([`crate::nvidia::FirmwarePolicy`]).
    #[error("{field} version {have} is below the minimum {min} this chain accepts")]
    FirmwareBelowMinimum {
        /// "driver" or "vbios"
        field: &'static str,
        /// the version the report carries
        have: String,
        /// the policy's minimum
        min: String,
    },
    /// A minimum applies but the report's version field is missing or not a dotted version.
    #[error("{0} version is missing or unreadable, and this chain sets a minimum for it")]
    FirmwareVersionUnreadable(&'static str),
    /// The firmware policy lists reference values for a measurement index the report lacks.
    #[error("the report has no measurement block {index}, which the firmware policy checks")]
    MeasurementMissing {
        /// measurement block index
        index: u8,
    },
    /// A measurement block is none of the firmware policy's reference values for its index.
    #[error("measurement block {index} matches none of the reference values")]
    MeasurementNotAllowed {
        /// measurement block index
        index: u8,
    },

    // ---- freshness and signatures over challenges ----
    /// The requester nonce in the evidence is not the expected challenge.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The device's signature over the registration challenge does not verify.
    #[error("registration signature does not verify under the device key")]
    EvidenceSignatureInvalid,
    /// A liveness signature does not verify under the chip's key.
    #[error("liveness signature does not verify")]
    LivenessSignatureInvalid,
    /// A signature is not of the expected size or encoding, or is not low-S normalised.
    #[error("malformed or non-canonical signature")]
    MalformedSignature,
    /// A public key is not a valid point of a supported curve.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A fresh attestation came from a different chip than the one being checked.
    #[error("evidence belongs to another chip")]
    ChipMismatch,
}

impl VerifyError {
    /// Stable snake-case name of the failed check (`NonceMismatch` -> `nonce_mismatch`), used
    /// in receipts, JSON verdicts and the API.
    pub fn code(&self) -> String {
        let debug = format!("{self:?}");
        let mut out = String::new();
        for (i, c) in debug
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .enumerate()
        {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}
