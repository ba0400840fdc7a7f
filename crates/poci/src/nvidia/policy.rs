//! Firmware policy: what a chain can do in place of NVIDIA's RIM comparison and version policy.
//!
//! NVIDIA's verifier fetches the driver and VBIOS reference integrity manifests (RIMs) from its
//! RIM service and compares every active golden measurement with the report's measurement block
//! of the same index; a relying party may also require minimum driver and VBIOS versions. A
//! validator cannot fetch anything (execution is a pure function of state and block), so
//! governance carries the same facts as chain data, one [`FirmwarePolicy`] per architecture:
//!
//! - `min_driver` / `min_vbios`: the signed DRIVER_VERSION and VBIOS_VERSION fields must be at
//!   least these (dotted versions compared component by component, driver components in
//!   decimal, VBIOS components in hexadecimal, as NVIDIA writes them);
//! - `measurements`: for each listed index, the report's measurement block of that index must
//!   exist and equal one of the allowed values (NVIDIA's RIMs list alternatives the same way).
//!   Governance derives them from NVIDIA's RIMs (checked with NVIDIA's tools off chain) or from
//!   the report of a machine it trusts (`unet attest --firmware-policy`).
//!
//! The policy is checked on the report, after the chain and signature: on registration and on
//! every liveness answer (which for NVIDIA chips is a fresh report), so raising a minimum takes
//! a registered chip on old firmware offline at its next challenge.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

use super::fields::OpaqueData;
use super::spdm::SpdmReport;
use crate::error::VerifyError;

/// Most measurement rules in one policy (NVIDIA reports carry at most 64 blocks).
pub const MAX_MEASUREMENT_RULES: usize = 64;
/// Most allowed values for one measurement index.
pub const MAX_ALTERNATIVES: usize = 16;
/// Longest version string accepted in a policy.
pub const MAX_VERSION_LEN: usize = 32;
/// Longest measurement value (SHA-512).
pub const MAX_MEASUREMENT_LEN: usize = 64;

/// Governance's firmware requirements for one architecture ([`super::Architecture::name`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwarePolicy {
    /// `"Hopper"`, `"Blackwell"` or `"Hopper NVSwitch"`.
    pub architecture: String,
    /// Lowest accepted DRIVER_VERSION, e.g. `"550.54.15"` (decimal components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_driver: Option<String>,
    /// Lowest accepted VBIOS_VERSION, e.g. `"96.00.9F.00.01"` (hexadecimal components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_vbios: Option<String>,
    /// Reference measurements; indexes not listed are not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<MeasurementRule>,
}

/// The values one measurement index may take.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasurementRule {
    /// Measurement block index (1-based on NVIDIA GPUs).
    pub index: u8,
    /// Allowed values (hex in JSON), any one of which matches.
    #[serde(with = "hex_list")]
    pub allowed: Vec<Vec<u8>>,
}

/// A version string as numbers, one per dot-separated component, read in `radix`. `None` if any
/// component is empty or not a number in that radix, or there are more than 8.
pub fn parse_version(v: &str, radix: u32) -> Option<Vec<u64>> {
    let parts: Vec<&str> = v.trim().split('.').collect();
    if parts.len() > 8 {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            if p.is_empty() || p.len() > 16 {
                None
            } else {
                u64::from_str_radix(p, radix).ok()
            }
        })
        .collect()
}

/// Compares two versions component by component; a missing trailing component counts as 0
/// (`"550.54"` == `"550.54.0"`).
pub fn compare_versions(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Driver versions are decimal ("550.90.07"), VBIOS versions hexadecimal ("96.00.9F.00.01").
const DRIVER_RADIX: u32 = 10;
const VBIOS_RADIX: u32 = 16;

impl FirmwarePolicy {
    /// Checks that the policy itself is well formed (what governance may publish): versions
    /// parse, indexes are unique, every rule has 1..=[`MAX_ALTERNATIVES`] values of at most
    /// [`MAX_MEASUREMENT_LEN`] bytes.
    pub fn validate(&self) -> Result<(), String> {
        if self.architecture.is_empty() || self.architecture.len() > 64 {
            return Err("architecture name must be 1..=64 bytes".into());
        }
        for (what, v, radix) in [
            ("min_driver", &self.min_driver, DRIVER_RADIX),
            ("min_vbios", &self.min_vbios, VBIOS_RADIX),
        ] {
            if let Some(v) = v {
                if v.len() > MAX_VERSION_LEN || parse_version(v, radix).is_none() {
                    return Err(format!("{what} {v:?} is not a dotted version"));
                }
            }
        }
        if self.measurements.len() > MAX_MEASUREMENT_RULES {
            return Err(format!("at most {MAX_MEASUREMENT_RULES} measurement rules"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for rule in &self.measurements {
            if !seen.insert(rule.index) {
                return Err(format!("measurement index {} listed twice", rule.index));
            }
            if rule.allowed.is_empty() || rule.allowed.len() > MAX_ALTERNATIVES {
                return Err(format!(
                    "measurement index {}: 1..={MAX_ALTERNATIVES} allowed values",
                    rule.index
                ));
            }
            if rule
                .allowed
                .iter()
                .any(|v| v.is_empty() || v.len() > MAX_MEASUREMENT_LEN)
            {
                return Err(format!(
                    "measurement index {}: values are 1..={MAX_MEASUREMENT_LEN} bytes",
                    rule.index
                ));
            }
        }
        Ok(())
    }

    /// Checks a verified report's signed fields against the policy.
    pub fn check(&self, opaque: &OpaqueData, report: &SpdmReport) -> Result<(), VerifyError> {
        for (field, have, min, radix) in [
            (
                "driver",
                &opaque.driver_version,
                &self.min_driver,
                DRIVER_RADIX,
            ),
            ("vbios", &opaque.vbios_version, &self.min_vbios, VBIOS_RADIX),
        ] {
            let Some(min) = min else { continue };
            let want =
                parse_version(min, radix).ok_or(VerifyError::FirmwareVersionUnreadable(field))?;
            let have_text = have
                .as_deref()
                .ok_or(VerifyError::FirmwareVersionUnreadable(field))?;
            let got = parse_version(have_text, radix)
                .ok_or(VerifyError::FirmwareVersionUnreadable(field))?;
            if compare_versions(&got, &want) == Ordering::Less {
                return Err(VerifyError::FirmwareBelowMinimum {
                    field,
                    have: have_text.to_string(),
                    min: min.clone(),
                });
            }
        }
        for rule in &self.measurements {
            let block = report
                .measurements
                .iter()
                .find(|m| m.index == rule.index)
                .ok_or(VerifyError::MeasurementMissing { index: rule.index })?;
            if !rule.allowed.iter().any(|v| v == &block.value) {
                return Err(VerifyError::MeasurementNotAllowed { index: rule.index });
            }
        }
        Ok(())
    }

    /// The policy a verified report satisfies exactly: its versions as minimums and every
    /// measurement block as the only allowed value (a template for governance, from a machine
    /// it trusts).
    pub fn from_report(architecture: &str, opaque: &OpaqueData, report: &SpdmReport) -> Self {
        Self {
            architecture: architecture.to_string(),
            min_driver: opaque.driver_version.clone(),
            min_vbios: opaque.vbios_version.clone(),
            measurements: report
                .measurements
                .iter()
                .take(MAX_MEASUREMENT_RULES)
                .map(|m| MeasurementRule {
                    index: m.index,
                    allowed: vec![m.value.clone()],
                })
                .collect(),
        }
    }
}

mod hex_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|h| hex::decode(h.trim()).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_component_in_their_radix() {
        let d = |v| parse_version(v, DRIVER_RADIX).unwrap();
        let b = |v| parse_version(v, VBIOS_RADIX).unwrap();
        assert_eq!(
            compare_versions(&d("550.90.07"), &d("550.90.7")),
            Ordering::Equal
        );
        assert_eq!(
            compare_versions(&d("550.90.07"), &d("550.100.1")),
            Ordering::Less
        );
        assert_eq!(
            compare_versions(&d("550.54"), &d("550.54.0")),
            Ordering::Equal
        );
        assert_eq!(
            compare_versions(&d("560"), &d("550.999")),
            Ordering::Greater
        );
        // VBIOS components are hex: 9F > 10 (it would be the other way round as text).
        assert_eq!(
            compare_versions(&b("96.00.9F.00.01"), &b("96.00.10.00.01")),
            Ordering::Greater
        );
        assert_eq!(parse_version("96.00.9F.00.01", DRIVER_RADIX), None);
        assert_eq!(parse_version("550..1", DRIVER_RADIX), None);
        assert_eq!(parse_version("1.2.3.4.5.6.7.8.9", DRIVER_RADIX), None);
        assert_eq!(parse_version("99999999999999999999", DRIVER_RADIX), None);
    }

    #[test]
    fn malformed_policies_are_refused() {
        let ok = FirmwarePolicy {
            architecture: "Hopper".into(),
            min_driver: Some("550.54.15".into()),
            min_vbios: Some("96.00.9F.00.01".into()),
            measurements: vec![MeasurementRule {
                index: 2,
                allowed: vec![vec![7; 48]],
            }],
        };
        assert_eq!(ok.validate(), Ok(()));
        let mut bad = ok.clone();
        bad.min_driver = Some("latest".into());
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.measurements.push(bad.measurements[0].clone());
        assert!(bad.validate().unwrap_err().contains("twice"));
        let mut bad = ok.clone();
        bad.measurements[0].allowed.clear();
        assert!(bad.validate().is_err());
        let mut bad = ok;
        bad.architecture.clear();
        assert!(bad.validate().is_err());
    }
}
