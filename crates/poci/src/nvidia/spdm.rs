//! Parser for NVIDIA's SPDM 1.1 GET_MEASUREMENTS request || MEASUREMENTS response ("attestation
//! report"). The parser is strict: every length must add up exactly and nothing may trail the
//! 96-byte signature. It never panics on any input.

use serde::{Deserialize, Serialize};

use crate::error::VerifyError;

/// Length of the GET_MEASUREMENTS request that starts a report (SPDM 1.1, signature requested).
pub const REQUEST_LEN: usize = 37;
/// Raw ECDSA P-384 r||s signature length at the end of the report.
pub const SIGNATURE_LEN: usize = 96;
/// SPDM version byte this parser accepts (1.1). SPDM 1.2+ signs a different message.
pub const SPDM_VERSION_1_1: u8 = 0x11;
/// GET_MEASUREMENTS request code.
pub const GET_MEASUREMENTS: u8 = 0xE0;
/// MEASUREMENTS response code.
pub const MEASUREMENTS: u8 = 0x60;

/// One measurement block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasurementBlock {
    /// measurement index (1-based on NVIDIA GPUs)
    pub index: u8,
    /// MeasurementSpecification bit mask (bit 0 = DMTF)
    pub spec: u8,
    /// DMTF value type (bit 7 = raw bit stream, bits 0-6 kind); `None` if not a DMTF block
    pub dmtf_type: Option<u8>,
    /// the measurement value (a SHA-384 digest on NVIDIA GPUs)
    pub value: Vec<u8>,
}

/// One opaque-data TLV (type u16, length u16, value), little-endian.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpaqueField {
    /// TLV type
    pub tag: u16,
    /// TLV value
    pub value: Vec<u8>,
}

/// A parsed report. Nothing in it is trusted until the signature has been verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpdmReport {
    /// SPDM version (0x11)
    pub version: u8,
    /// request Param1 (bit 0: signature requested)
    pub request_param1: u8,
    /// request Param2 (measurement operation: 0xFF = all blocks)
    pub request_param2: u8,
    /// the requester's nonce: the challenge the verifier chose
    pub requester_nonce: [u8; 32],
    /// certificate slot the responder signed with
    pub slot_id: u8,
    /// response Param1
    pub response_param1: u8,
    /// response Param2 (bits 0-3 slot id)
    pub response_param2: u8,
    /// measurement blocks in order
    pub measurements: Vec<MeasurementBlock>,
    /// the responder's nonce
    pub responder_nonce: [u8; 32],
    /// opaque-data TLVs in order
    pub opaque: Vec<OpaqueField>,
    /// raw r||s signature
    pub signature: Vec<u8>,
    /// number of leading bytes the signature covers (everything but the signature)
    pub signed_len: usize,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], VerifyError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(VerifyError::MalformedReport {
                offset: self.pos,
                reason: what,
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, VerifyError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, VerifyError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn fail(&self, reason: &'static str) -> VerifyError {
        VerifyError::MalformedReport {
            offset: self.pos,
            reason,
        }
    }
}

/// Parse a binary report (request || response).
pub fn parse_report(report: &[u8]) -> Result<SpdmReport, VerifyError> {
    if report.len() > crate::evidence::MAX_REPORT_LEN {
        return Err(VerifyError::TooLarge("report"));
    }
    let mut c = Cursor {
        bytes: report,
        pos: 0,
    };
    // ---- request ----
    let version = c.u8("request version")?;
    if version != SPDM_VERSION_1_1 {
        return Err(c.fail("unsupported SPDM version (only 1.1)"));
    }
    if c.u8("request code")? != GET_MEASUREMENTS {
        return Err(c.fail("request is not GET_MEASUREMENTS"));
    }
    let request_param1 = c.u8("request param1")?;
    if request_param1 & 1 == 0 {
        return Err(c.fail("request did not ask for a signature"));
    }
    let request_param2 = c.u8("request param2")?;
    let requester_nonce: [u8; 32] = c.take(32, "requester nonce")?.try_into().unwrap_or([0; 32]);
    let slot_id = c.u8("slot id")?;
    if slot_id > 7 {
        return Err(c.fail("slot id out of range"));
    }
    debug_assert_eq!(c.pos, REQUEST_LEN);

    // ---- response header ----
    if c.u8("response version")? != version {
        return Err(c.fail("response version differs from request"));
    }
    if c.u8("response code")? != MEASUREMENTS {
        return Err(c.fail("response is not MEASUREMENTS"));
    }
    let response_param1 = c.u8("response param1")?;
    let response_param2 = c.u8("response param2")?;
    if response_param2 & 0x0F != slot_id {
        return Err(c.fail("response slot id differs from request"));
    }
    let block_count = usize::from(c.u8("number of blocks")?);
    let rec = c.take(3, "measurement record length")?;
    let record_len = usize::from(rec[0]) | usize::from(rec[1]) << 8 | usize::from(rec[2]) << 16;

    // ---- measurement record ----
    let record_start = c.pos;
    let record = c.take(record_len, "measurement record")?;
    let mut r = Cursor {
        bytes: record,
        pos: 0,
    };
    let mut measurements = Vec::with_capacity(block_count);
    for _ in 0..block_count {
        let index = r.u8("block index")?;
        let spec = r.u8("block spec")?;
        let size = usize::from(r.u16("block size")?);
        let body = r.take(size, "block body")?;
        if measurements
            .iter()
            .any(|m: &MeasurementBlock| m.index == index)
        {
            return Err(VerifyError::MalformedReport {
                offset: record_start + r.pos,
                reason: "duplicate measurement index",
            });
        }
        let (dmtf_type, value) = if spec & 1 == 1 {
            let mut b = Cursor {
                bytes: body,
                pos: 0,
            };
            let t = b.u8("DMTF value type")?;
            let vlen = usize::from(b.u16("DMTF value size")?);
            let value = b.take(vlen, "DMTF value")?;
            if b.pos != body.len() {
                return Err(VerifyError::MalformedReport {
                    offset: record_start + r.pos,
                    reason: "DMTF value size disagrees with block size",
                });
            }
            (Some(t), value.to_vec())
        } else {
            (None, body.to_vec())
        };
        measurements.push(MeasurementBlock {
            index,
            spec,
            dmtf_type,
            value,
        });
    }
    if r.pos != record.len() {
        return Err(VerifyError::MalformedReport {
            offset: record_start + r.pos,
            reason: "measurement record longer than its blocks",
        });
    }

    // ---- nonce, opaque data, signature ----
    let responder_nonce: [u8; 32] = c.take(32, "responder nonce")?.try_into().unwrap_or([0; 32]);
    let opaque_len = usize::from(c.u16("opaque length")?);
    let opaque_start = c.pos;
    let opaque_bytes = c.take(opaque_len, "opaque data")?;
    let mut o = Cursor {
        bytes: opaque_bytes,
        pos: 0,
    };
    let mut opaque = Vec::new();
    while o.pos < opaque_bytes.len() {
        let tag = o.u16("opaque tag")?;
        let len = usize::from(o.u16("opaque field length")?);
        let value =
            o.take(len, "opaque field value")
                .map_err(|_| VerifyError::MalformedReport {
                    offset: opaque_start + o.pos,
                    reason: "opaque field overruns opaque data",
                })?;
        opaque.push(OpaqueField {
            tag,
            value: value.to_vec(),
        });
    }
    let signed_len = c.pos;
    let signature = c.take(SIGNATURE_LEN, "signature")?.to_vec();
    if c.pos != report.len() {
        return Err(c.fail("trailing bytes after the signature"));
    }
    Ok(SpdmReport {
        version,
        request_param1,
        request_param2,
        requester_nonce,
        slot_id,
        response_param1,
        response_param2,
        measurements,
        responder_nonce,
        opaque,
        signature,
        signed_len,
    })
}
