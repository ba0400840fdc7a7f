//! The registration evidence container: one deterministic byte encoding for every evidence kind, so
//! evidence can travel in a transaction and be verified by [`crate::PociVerifier`].
//!
//! Layout (lengths big-endian, no trailing bytes allowed):
//!
//! ```text
//! vendor-x509 : 0x01 | nonce (32) | n:u8 | n × (len:u16 | cert DER) | sig_len:u8 | signature (raw r||s)
//! nvidia-spdm : 0x02 | len:u32 | SPDM report (binary request || response) | n:u8 | n × (len:u16 | cert DER)
//! ```
//!
//! Certificate chains are leaf first.

use crate::chain::{MAX_CERT_LEN, MAX_CHAIN_LEN};
use crate::error::VerifyError;
use crate::types::EvidenceKind;

/// Largest SPDM report accepted, in bytes.
pub const MAX_REPORT_LEN: usize = 64 * 1024;

/// vendor-x509 registration evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorX509Evidence {
    /// The registration challenge the device signed (must equal the expected nonce).
    pub nonce: [u8; 32],
    /// Device certificate first, then intermediates; the root may be included or left out.
    pub chain: Vec<Vec<u8>>,
    /// Raw r||s signature by the device key over [`crate::x509::registration_digest`] of the nonce.
    pub signature: Vec<u8>,
}

/// nvidia-spdm registration evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvidiaEvidence {
    /// Binary SPDM GET_MEASUREMENTS request (37 bytes) || MEASUREMENTS response (with signature).
    pub report: Vec<u8>,
    /// Certificate chain, leaf (GSP FMC alias) first, DER each.
    pub chain: Vec<Vec<u8>>,
}

impl NvidiaEvidence {
    /// Build from NVIDIA's own formats: the hex report text and the PEM chain (leaf first).
    pub fn from_hex_and_pem(report_hex: &str, chain_pem: &str) -> Result<Self, VerifyError> {
        let report = hex::decode(report_hex.trim())
            .map_err(|_| VerifyError::MalformedEvidence("report is not hex"))?;
        let chain = pem_chain_to_der(chain_pem)?;
        Ok(Self { report, chain })
    }
}

/// Registration evidence of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// see [`VendorX509Evidence`]
    VendorX509(VendorX509Evidence),
    /// see [`NvidiaEvidence`]
    NvidiaSpdm(NvidiaEvidence),
}

impl Evidence {
    /// The evidence kind.
    pub fn kind(&self) -> EvidenceKind {
        match self {
            Evidence::VendorX509(_) => EvidenceKind::VendorX509,
            Evidence::NvidiaSpdm(_) => EvidenceKind::NvidiaSpdm,
        }
    }

    /// Encode in the container layout. Fails only if a size limit is exceeded.
    pub fn encode(&self) -> Result<Vec<u8>, VerifyError> {
        let mut out = vec![self.kind().tag()];
        match self {
            Evidence::VendorX509(e) => {
                out.extend_from_slice(&e.nonce);
                put_chain(&mut out, &e.chain)?;
                let len = u8::try_from(e.signature.len())
                    .map_err(|_| VerifyError::TooLarge("signature"))?;
                out.push(len);
                out.extend_from_slice(&e.signature);
            }
            Evidence::NvidiaSpdm(e) => {
                if e.report.len() > MAX_REPORT_LEN {
                    return Err(VerifyError::TooLarge("report"));
                }
                out.extend_from_slice(&(e.report.len() as u32).to_be_bytes());
                out.extend_from_slice(&e.report);
                put_chain(&mut out, &e.chain)?;
            }
        }
        Ok(out)
    }

    /// Decode the container layout (strict: no trailing bytes, limits enforced).
    pub fn decode(bytes: &[u8]) -> Result<Self, VerifyError> {
        let mut cur = Cursor { bytes, pos: 0 };
        let kind = EvidenceKind::from_tag(cur.u8()?)?;
        let evidence = match kind {
            EvidenceKind::VendorX509 => {
                let nonce = cur.array()?;
                let chain = cur.chain()?;
                let len = usize::from(cur.u8()?);
                let signature = cur.take(len)?.to_vec();
                Evidence::VendorX509(VendorX509Evidence {
                    nonce,
                    chain,
                    signature,
                })
            }
            EvidenceKind::NvidiaSpdm => {
                let len = u32::from_be_bytes(cur.array()?) as usize;
                if len > MAX_REPORT_LEN {
                    return Err(VerifyError::TooLarge("report"));
                }
                let report = cur.take(len)?.to_vec();
                let chain = cur.chain()?;
                Evidence::NvidiaSpdm(NvidiaEvidence { report, chain })
            }
        };
        if cur.pos != bytes.len() {
            return Err(VerifyError::MalformedEvidence("trailing bytes"));
        }
        Ok(evidence)
    }
}

fn put_chain(out: &mut Vec<u8>, chain: &[Vec<u8>]) -> Result<(), VerifyError> {
    if chain.len() > MAX_CHAIN_LEN {
        return Err(VerifyError::TooLarge("certificate chain"));
    }
    out.push(chain.len() as u8);
    for cert in chain {
        if cert.len() > MAX_CERT_LEN {
            return Err(VerifyError::TooLarge("certificate"));
        }
        out.extend_from_slice(&(cert.len() as u16).to_be_bytes());
        out.extend_from_slice(cert);
    }
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], VerifyError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(VerifyError::MalformedEvidence("truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, VerifyError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], VerifyError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn chain(&mut self) -> Result<Vec<Vec<u8>>, VerifyError> {
        let n = usize::from(self.u8()?);
        if n > MAX_CHAIN_LEN {
            return Err(VerifyError::TooLarge("certificate chain"));
        }
        let mut chain = Vec::with_capacity(n);
        for _ in 0..n {
            let len = usize::from(u16::from_be_bytes(self.array()?));
            if len > MAX_CERT_LEN {
                return Err(VerifyError::TooLarge("certificate"));
            }
            chain.push(self.take(len)?.to_vec());
        }
        Ok(chain)
    }
}

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// Split a PEM text into the DER of each CERTIFICATE block, in order. Anything other than whitespace
/// outside the blocks is an error, as is a block that does not decode.
pub fn pem_chain_to_der(text: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        if !trimmed.starts_with(PEM_BEGIN) {
            return Err(VerifyError::MalformedPem(
                "text outside a certificate block".into(),
            ));
        }
        let end = trimmed
            .find(PEM_END)
            .ok_or_else(|| VerifyError::MalformedPem("unterminated certificate block".into()))?
            + PEM_END.len();
        let (label, der) = der::pem::decode_vec(&trimmed.as_bytes()[..end])
            .map_err(|e| VerifyError::MalformedPem(e.to_string()))?;
        if label != "CERTIFICATE" {
            return Err(VerifyError::MalformedPem(format!(
                "unexpected label {label}"
            )));
        }
        if out.len() == MAX_CHAIN_LEN {
            return Err(VerifyError::TooLarge("certificate chain"));
        }
        out.push(der);
        rest = &trimmed[end..];
    }
    if out.is_empty() {
        return Err(VerifyError::MalformedPem("no certificate".into()));
    }
    Ok(out)
}
