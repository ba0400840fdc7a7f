//! Everything that differs between NVIDIA device generations, in one table keyed by
//! architecture: certificate names, the FWID extension and its form, the opaque-field layout,
//! and the default model. The next generation is one [`Architecture`] entry in
//! [`ARCHITECTURES`] plus its sample evidence and tests; the verifier has no other
//! architecture-specific code.
//!
//! The architecture is read from the **leaf certificate's common name** (`"GB100 A01 GSP FMC
//! LF"` -> chip `GB100`, engine `GSP`). The leaf is signed by the per-device BROM certificate,
//! which is signed by NVIDIA's provisioner CA, so the architecture is never the prover's choice:
//! a Blackwell report cannot be checked under Hopper rules or the reverse (NVIDIA's own SDK takes
//! the architecture from the caller instead). Values come from NVIDIA's attestation SDK
//! (`nv-attestation-sdk-cpp/src/gpu/evidence.cpp` `GpuArchitectureData::create`,
//! `src/nv_x509.cpp` `get_fwid`) and its sample evidence.

use const_oid::ObjectIdentifier;

use super::fields::{
    OPAQUE_CHIP_SKU, OPAQUE_DRIVER_VERSION, OPAQUE_FWID, OPAQUE_PROJECT, OPAQUE_PROJECT_SKU,
    OPAQUE_VBIOS_VERSION,
};

/// TCG DICE FWID extension as Hopper-generation devices use it (NVIDIA's composite device
/// identifier).
pub const OID_FWID_HOPPER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
/// TCG DICE TcbInfo extension as Blackwell GPUs use it.
pub const OID_FWID_BLACKWELL: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1.1");

/// How the leaf certificate's FWID extension carries the firmware id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwidForm {
    /// `SEQUENCE { version INTEGER, identity SubjectPublicKeyInfo, fwid SEQUENCE { hashAlg,
    /// digest } }`: one FWID, and the DeviceID (BROM) key it was derived under.
    CompositeIdentifier,
    /// TCG `DiceTcbInfo` (`SEQUENCE` of context-tagged fields, `fwids [6]`); the firmware id is
    /// the **first** FWID of the list, as NVIDIA's verifier reads it (the others are zero on the
    /// samples and never compared).
    TcbInfoFirstFwid,
}

/// How the VBIOS_VERSION opaque field is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VbiosEncoding {
    /// 8 bytes, printed as bytes 3.2.1.0.4 in upper-case hex (GPUs: `96.00.9F.00.01`).
    Binary,
    /// NUL-padded ASCII already in dotted form (NVSwitch: `96.10.55.00.01`).
    Ascii,
}

/// What kind of device an architecture entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceClass {
    /// A GPU: registers as a chip and earns by its model's rated compute.
    Gpu,
    /// An NVSwitch: attests the fabric of a protected-PCIe host; it has no rated compute, so
    /// its evidence verifies but no model table rates it.
    NvSwitch,
}

/// One NVIDIA device generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Architecture {
    /// Generation name, e.g. `"Blackwell"`.
    pub name: &'static str,
    /// Chip name as the certificates spell it, e.g. `"GB100"`.
    pub chip: &'static str,
    /// Security engine named in the device certificates: `"GSP"` (GPUs), `"FSP"` (NVSwitch).
    pub engine: &'static str,
    /// GPU or NVSwitch.
    pub class: DeviceClass,
    /// Prefix of the common name of the CA that issues the BROM certificate.
    pub provisioner_ca_prefix: &'static str,
    /// Common name of the CA that issues the provisioner CA.
    pub identity_ca: &'static str,
    /// OID of the leaf certificate's FWID extension.
    pub fwid_extension: ObjectIdentifier,
    /// Form of that extension.
    pub fwid_form: FwidForm,
    /// Whether the report must carry an FWID opaque field to compare with the certificate's.
    /// (NVSwitch reports carry none; NVIDIA's verifier skips the comparison then, and so do we
    /// for that architecture only. Every GPU architecture requires it.)
    pub report_fwid: bool,
    /// Opaque fields that must be present (each at most once, as for every known field).
    pub required_opaque: &'static [u16],
    /// Encoding of VBIOS_VERSION.
    pub vbios: VbiosEncoding,
    /// Model name when the signed board fields name no more specific model.
    pub default_model: &'static str,
}

/// Fields every GPU report must carry: they name the board (model table) and the firmware.
const GPU_OPAQUE: &[u16] = &[
    OPAQUE_DRIVER_VERSION,
    OPAQUE_VBIOS_VERSION,
    OPAQUE_CHIP_SKU,
    OPAQUE_PROJECT,
    OPAQUE_PROJECT_SKU,
    OPAQUE_FWID,
];

/// Hopper GPUs (GH100: H100, H200).
pub const HOPPER: Architecture = Architecture {
    name: "Hopper",
    chip: "GH100",
    engine: "GSP",
    class: DeviceClass::Gpu,
    provisioner_ca_prefix: "NVIDIA GH100 Provisioner ICA",
    identity_ca: "NVIDIA GH100 Identity",
    fwid_extension: OID_FWID_HOPPER,
    fwid_form: FwidForm::CompositeIdentifier,
    report_fwid: true,
    required_opaque: GPU_OPAQUE,
    vbios: VbiosEncoding::Binary,
    default_model: "H100",
};

/// Blackwell GPUs (GB100 die: B100, B200, and the GPUs of GB200).
pub const BLACKWELL: Architecture = Architecture {
    name: "Blackwell",
    chip: "GB100",
    engine: "GSP",
    class: DeviceClass::Gpu,
    provisioner_ca_prefix: "NVIDIA GB100 Provisioner ICA",
    identity_ca: "NVIDIA GB100 Identity",
    fwid_extension: OID_FWID_BLACKWELL,
    fwid_form: FwidForm::TcbInfoFirstFwid,
    report_fwid: true,
    required_opaque: GPU_OPAQUE,
    vbios: VbiosEncoding::Binary,
    default_model: "B200",
};

/// Hopper-generation NVSwitch (LS10), present in protected-PCIe HGX hosts.
pub const NVSWITCH_LS10: Architecture = Architecture {
    name: "Hopper NVSwitch",
    chip: "LS_10",
    engine: "FSP",
    class: DeviceClass::NvSwitch,
    provisioner_ca_prefix: "NVIDIA LS_10 Provisioner ICA",
    identity_ca: "NVIDIA GH100 Identity",
    fwid_extension: OID_FWID_HOPPER,
    fwid_form: FwidForm::CompositeIdentifier,
    report_fwid: false,
    required_opaque: &[OPAQUE_VBIOS_VERSION],
    vbios: VbiosEncoding::Ascii,
    default_model: "NVSwitch LS10",
};

/// Every architecture the verifier accepts. Evidence of any other is refused with
/// [`crate::VerifyError::UnknownArchitecture`].
pub const ARCHITECTURES: &[Architecture] = &[HOPPER, BLACKWELL, NVSWITCH_LS10];

/// The parts of a device certificate name: `"<chip> <revision> <engine> <role>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName<'a> {
    /// e.g. `GB100`
    pub chip: &'a str,
    /// e.g. `A01`
    pub revision: &'a str,
    /// e.g. `GSP`
    pub engine: &'a str,
}

/// Split a device certificate CN ending in `role` (`"FMC LF"` for the leaf, `"BROM"` for the
/// DeviceID) into its parts; `None` if it does not have that shape.
pub fn parse_device_name<'a>(cn: &'a str, role: &str) -> Option<DeviceName<'a>> {
    let head = cn.strip_suffix(role)?.strip_suffix(' ')?;
    let mut parts = head.split(' ');
    let (chip, revision, engine) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [chip, revision, engine].iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(DeviceName {
        chip,
        revision,
        engine,
    })
}

/// The architecture of a leaf certificate common name, if the table has it.
pub fn architecture_of_leaf(leaf_cn: &str) -> Option<(&'static Architecture, DeviceName<'_>)> {
    let name = parse_device_name(leaf_cn, "FMC LF")?;
    ARCHITECTURES
        .iter()
        .find(|a| a.chip == name.chip && a.engine == name.engine)
        .map(|a| (a, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_strictly() {
        let n = parse_device_name("GB100 A01 GSP FMC LF", "FMC LF").unwrap();
        assert_eq!((n.chip, n.revision, n.engine), ("GB100", "A01", "GSP"));
        assert!(parse_device_name("GB100 A01 GSP BROM", "FMC LF").is_none());
        assert!(parse_device_name("GB100  A01 GSP FMC LF", "FMC LF").is_none());
        assert!(parse_device_name("GB100 A01 GSP X FMC LF", "FMC LF").is_none());
        assert!(parse_device_name("GB100 A01 FMC LF", "FMC LF").is_none());
        assert!(parse_device_name("FMC LF", "FMC LF").is_none());
        assert_eq!(
            architecture_of_leaf("GH100 A01 GSP FMC LF").unwrap().0.name,
            "Hopper"
        );
        assert_eq!(
            architecture_of_leaf("LS_10 A01 FSP FMC LF").unwrap().0.name,
            "Hopper NVSwitch"
        );
        // Right chip, wrong engine: not an entry.
        assert!(architecture_of_leaf("GB100 A01 FSP FMC LF").is_none());
        assert!(architecture_of_leaf("GR100 A01 GSP FMC LF").is_none());
    }

    #[test]
    fn table_entries_are_distinct() {
        for (i, a) in ARCHITECTURES.iter().enumerate() {
            for b in &ARCHITECTURES[i + 1..] {
                assert!((a.chip, a.engine) != (b.chip, b.engine), "{a:?} / {b:?}");
            }
            assert!(a.required_opaque.contains(&OPAQUE_VBIOS_VERSION));
            assert_eq!(a.report_fwid, a.required_opaque.contains(&OPAQUE_FWID));
        }
    }
}
