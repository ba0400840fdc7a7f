//! Meaning of the signed NVIDIA fields: opaque-data TLVs, the TCG DICE extension of the leaf
//! certificate, and the model name.

use der::asn1::AnyRef;
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use serde::{Deserialize, Serialize};

use super::arch::{Architecture, FwidForm, VbiosEncoding};
use super::spdm::OpaqueField;
use crate::error::VerifyError;

/// Opaque TLV type: driver version (NUL-terminated ASCII).
pub const OPAQUE_DRIVER_VERSION: u16 = 3;
/// Opaque TLV type: VBIOS version (8 bytes).
pub const OPAQUE_VBIOS_VERSION: u16 = 6;
/// Opaque TLV type: chip SKU (NUL-padded ASCII).
pub const OPAQUE_CHIP_SKU: u16 = 15;
/// Opaque TLV type: board project (NUL-padded ASCII).
pub const OPAQUE_PROJECT: u16 = 17;
/// Opaque TLV type: board project SKU (NUL-padded ASCII).
pub const OPAQUE_PROJECT_SKU: u16 = 18;
/// Opaque TLV type: firmware id (SHA-384 digest of the measured firmware).
pub const OPAQUE_FWID: u16 = 20;

/// The opaque fields with a known meaning, decoded; every TLV is kept raw in `raw` too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpaqueData {
    /// DRIVER_VERSION (3), e.g. "550.90.07"
    pub driver_version: Option<String>,
    /// VBIOS_VERSION (6) in NVIDIA's notation, e.g. "96.00.9F.00.01"
    pub vbios_version: Option<String>,
    /// CHIP_SKU (15), e.g. "882"
    pub chip_sku: Option<String>,
    /// PROJECT (17), e.g. "1010"
    pub project: Option<String>,
    /// PROJECT_SKU (18), e.g. "0200"
    pub project_sku: Option<String>,
    /// FWID (20)
    pub fwid: Option<Vec<u8>>,
    /// every TLV, in report order
    pub raw: Vec<OpaqueField>,
}

impl OpaqueData {
    /// Decode the known TLVs under `arch`'s layout. A known TLV that occurs twice is an error (it
    /// would be ambiguous), and so is a field the architecture requires that is missing.
    pub fn from_fields(fields: &[OpaqueField], arch: &Architecture) -> Result<Self, VerifyError> {
        let mut out = OpaqueData {
            raw: fields.to_vec(),
            ..Default::default()
        };
        for f in fields {
            let vbios_text = match arch.vbios {
                VbiosEncoding::Binary => vbios(&f.value),
                VbiosEncoding::Ascii => text(&f.value),
            };
            let slot_taken = match f.tag {
                OPAQUE_DRIVER_VERSION => set(&mut out.driver_version, text(&f.value)),
                OPAQUE_VBIOS_VERSION => set(&mut out.vbios_version, vbios_text),
                OPAQUE_CHIP_SKU => set(&mut out.chip_sku, text(&f.value)),
                OPAQUE_PROJECT => set(&mut out.project, text(&f.value)),
                OPAQUE_PROJECT_SKU => set(&mut out.project_sku, text(&f.value)),
                OPAQUE_FWID => set(&mut out.fwid, f.value.clone()),
                _ => false,
            };
            if slot_taken {
                return Err(VerifyError::MalformedReport {
                    offset: 0,
                    reason: "duplicate opaque field",
                });
            }
        }
        for &tag in arch.required_opaque {
            if !fields.iter().any(|f| f.tag == tag) {
                return Err(VerifyError::MissingOpaqueField(tag));
            }
        }
        Ok(out)
    }
}

/// Store `value` unless the slot is already set; returns whether it was already set.
fn set<T>(slot: &mut Option<T>, value: T) -> bool {
    if slot.is_some() {
        return true;
    }
    *slot = Some(value);
    false
}

/// NUL-terminated/padded ASCII; anything not printable ASCII is shown as hex so the output is
/// deterministic and unambiguous.
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let s = &bytes[..end];
    if s.iter().all(|b| b.is_ascii_graphic() || *b == b' ') && bytes[end..].iter().all(|&b| b == 0)
    {
        String::from_utf8_lossy(s).into_owned()
    } else {
        format!("0x{}", hex::encode(bytes))
    }
}

/// VBIOS version as NVIDIA prints it: bytes 3,2,1,0 then 4, upper-case hex, dot-separated
/// (`00 9f 00 96 01 00 00 00` -> "96.00.9F.00.01").
fn vbios(bytes: &[u8]) -> String {
    if bytes.len() < 5 {
        return format!("0x{}", hex::encode(bytes));
    }
    format!(
        "{:02X}.{:02X}.{:02X}.{:02X}.{:02X}",
        bytes[3], bytes[2], bytes[1], bytes[0], bytes[4]
    )
}

/// What the leaf certificate's FWID extension says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiceInfo {
    /// The firmware id the certificate was issued for (hash algorithm OID, digest).
    pub fwid: (String, Vec<u8>),
    /// DER SubjectPublicKeyInfo of the identity key, when the extension names one
    /// ([`FwidForm::CompositeIdentifier`]).
    pub identity_spki: Option<Vec<u8>>,
}

/// Parse the FWID extension value in the architecture's `form`:
///
/// - [`FwidForm::CompositeIdentifier`] (Hopper): `SEQUENCE { version INTEGER, identity
///   SubjectPublicKeyInfo, fwid SEQUENCE { hashAlg OID, digest OCTET STRING } }`;
/// - [`FwidForm::TcbInfoFirstFwid`] (Blackwell): TCG `DiceTcbInfo`, a `SEQUENCE` of
///   context-tagged fields of which `fwids [6]` (exactly once) holds `SEQUENCE OF FWID`; the
///   first FWID is the firmware id.
pub fn parse_dice(value: &[u8], form: FwidForm) -> Result<DiceInfo, VerifyError> {
    let bad = |_| VerifyError::DiceExtension("malformed");
    let outer = AnyRef::from_der(value).map_err(bad)?;
    if outer.tag() != Tag::Sequence {
        return Err(VerifyError::DiceExtension("not a SEQUENCE"));
    }
    let elems = children(outer.value()).map_err(bad)?;
    match form {
        FwidForm::CompositeIdentifier => {
            let [version, identity, fwid] = elems.as_slice() else {
                return Err(VerifyError::DiceExtension(
                    "composite identifier needs 3 fields",
                ));
            };
            if version.tag() != Tag::Integer {
                return Err(VerifyError::DiceExtension("version is not an INTEGER"));
            }
            if identity.tag() != Tag::Sequence {
                return Err(VerifyError::DiceExtension("identity is not a SEQUENCE"));
            }
            Ok(DiceInfo {
                fwid: parse_fwid(fwid)?,
                identity_spki: Some(der::Encode::to_der(identity).map_err(bad)?),
            })
        }
        FwidForm::TcbInfoFirstFwid => {
            if elems
                .iter()
                .any(|e| !matches!(e.tag(), Tag::ContextSpecific { .. }))
            {
                return Err(VerifyError::DiceExtension(
                    "TcbInfo field is not context-tagged",
                ));
            }
            let fwid_tag = Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(6),
            };
            let mut lists = elems.iter().filter(|e| e.tag() == fwid_tag);
            let (Some(list), None) = (lists.next(), lists.next()) else {
                return Err(VerifyError::DiceExtension("TcbInfo needs one fwids list"));
            };
            let fwids = children(list.value()).map_err(bad)?;
            let first = fwids.first().ok_or(VerifyError::DiceExtension("no FWID"))?;
            // Every entry must be well formed, even those that are not compared.
            for f in &fwids[1..] {
                parse_fwid(f)?;
            }
            Ok(DiceInfo {
                fwid: parse_fwid(first)?,
                identity_spki: None,
            })
        }
    }
}

fn parse_fwid(fwid: &AnyRef<'_>) -> Result<(String, Vec<u8>), VerifyError> {
    let bad = |_| VerifyError::DiceExtension("malformed FWID");
    if fwid.tag() != Tag::Sequence {
        return Err(VerifyError::DiceExtension("FWID is not a SEQUENCE"));
    }
    let parts = children(fwid.value()).map_err(bad)?;
    let [alg, digest] = parts.as_slice() else {
        return Err(VerifyError::DiceExtension("FWID needs 2 fields"));
    };
    let oid: der::asn1::ObjectIdentifier = alg.decode_as().map_err(bad)?;
    let digest: &der::asn1::OctetStringRef = digest.decode_as().map_err(bad)?;
    Ok((oid.to_string(), digest.as_bytes().to_vec()))
}

/// Decode the TLVs inside a constructed value.
fn children(content: &[u8]) -> der::Result<Vec<AnyRef<'_>>> {
    let mut reader = SliceReader::new(content)?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(reader.decode::<AnyRef<'_>>()?);
    }
    Ok(out)
}
