//! Firmware policies as chain data: governance's minimum driver and VBIOS versions and
//! reference measurements for one NVIDIA architecture (checked by `unet_poci::nvidia::policy`).
//!
//! ```text
//! FirmwarePolicy  := architecture str | min_driver str | min_vbios str | rules vec<MeasurementRule>
//! MeasurementRule := index u8 | allowed vec<bytes>
//! ```
//!
//! An empty string means "no minimum". A policy with no minimum and no rule removes the
//! architecture's policy.

use crate::chip::{read_str, str_size, write_str};
use bytes::BufMut;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};

/// Most firmware policies (one per architecture).
pub const MAX_FIRMWARE_POLICIES: usize = 16;
/// Most measurement rules in a policy (NVIDIA reports carry 64 blocks).
pub const MAX_RULES: usize = 64;
/// Most allowed values per measurement index.
pub const MAX_ALTERNATIVES: usize = 16;
/// Longest measurement value (SHA-512).
pub const MAX_VALUE: usize = 64;
/// Longest architecture name or version string.
pub const MAX_TEXT: usize = 64;

/// Governance's firmware requirements for one architecture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirmwarePolicy {
    /// Architecture name as the verifier names it ("Hopper", "Blackwell", "Hopper NVSwitch").
    pub architecture: String,
    /// Lowest accepted driver version ("" = none).
    pub min_driver: String,
    /// Lowest accepted VBIOS version ("" = none).
    pub min_vbios: String,
    /// Reference values by measurement index.
    pub measurements: Vec<MeasurementRule>,
}

impl FirmwarePolicy {
    /// Whether the policy requires nothing (setting it removes the architecture's policy).
    pub fn is_empty(&self) -> bool {
        self.min_driver.is_empty() && self.min_vbios.is_empty() && self.measurements.is_empty()
    }
}

/// The values one measurement index may take.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeasurementRule {
    /// The SPDM measurement block index the rule applies to.
    pub index: u8,
    /// The measurement values accepted at that index (raw bytes, compared exactly).
    pub allowed: Vec<Vec<u8>>,
}

fn read_text(buf: &mut impl commonware_codec::Buf) -> Result<String, CodecError> {
    read_str(buf, MAX_TEXT)
}

impl Write for MeasurementRule {
    fn write(&self, buf: &mut impl BufMut) {
        self.index.write(buf);
        self.allowed.write(buf);
    }
}

impl EncodeSize for MeasurementRule {
    fn encode_size(&self) -> usize {
        1 + self.allowed.encode_size()
    }
}

impl Read for MeasurementRule {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        let value = (RangeCfg::from(..=MAX_VALUE), ());
        Ok(Self {
            index: u8::read(buf)?,
            allowed: Vec::<Vec<u8>>::read_cfg(buf, &(RangeCfg::from(..=MAX_ALTERNATIVES), value))?,
        })
    }
}

impl Write for FirmwarePolicy {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.architecture, buf);
        write_str(&self.min_driver, buf);
        write_str(&self.min_vbios, buf);
        self.measurements.write(buf);
    }
}

impl EncodeSize for FirmwarePolicy {
    fn encode_size(&self) -> usize {
        str_size(&self.architecture)
            + str_size(&self.min_driver)
            + str_size(&self.min_vbios)
            + self.measurements.encode_size()
    }
}

impl Read for FirmwarePolicy {
    type Cfg = ();
    fn read_cfg(buf: &mut impl commonware_codec::Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            architecture: read_text(buf)?,
            min_driver: read_text(buf)?,
            min_vbios: read_text(buf)?,
            measurements: Vec::<MeasurementRule>::read_cfg(
                buf,
                &(RangeCfg::from(..=MAX_RULES), ()),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    #[test]
    fn round_trips_and_bounds_hold() {
        let p = FirmwarePolicy {
            architecture: "Blackwell".into(),
            min_driver: "575.32".into(),
            min_vbios: String::new(),
            measurements: vec![MeasurementRule {
                index: 3,
                allowed: vec![vec![1; 48], vec![2; 48]],
            }],
        };
        let bytes = p.encode();
        assert_eq!(bytes.len(), p.encode_size());
        assert_eq!(FirmwarePolicy::decode(bytes).unwrap(), p);
        let mut long = p.clone();
        long.measurements[0].allowed = vec![vec![0; 48]; MAX_ALTERNATIVES + 1];
        assert!(FirmwarePolicy::decode(long.encode()).is_err());
        let mut wide = p;
        wide.measurements[0].allowed = vec![vec![0; MAX_VALUE + 1]];
        assert!(FirmwarePolicy::decode(wide.encode()).is_err());
    }
}
