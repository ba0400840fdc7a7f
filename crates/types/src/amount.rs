//! UNC amounts: 18 decimals in `u128` base units.

use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

/// An amount of UNC in base units (1 UNC = 10^18 base units).
pub type Amount = u128;

/// Number of decimals of UNC.
pub const DECIMALS: u32 = 18;

/// One UNC in base units.
pub const UNC: Amount = 10u128.pow(DECIMALS);

/// Maximum supply: 10,000,000,000 UNC.
pub const MAX_SUPPLY: Amount = 10_000_000_000 * UNC;

/// Formats base units as a decimal UNC string (`"1.5"` for 1.5 UNC), trimming trailing zeros.
pub fn format_unc(amount: Amount) -> String {
    let whole = amount / UNC;
    let frac = amount % UNC;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:018}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Parses a decimal UNC string (`"1.5"`, `"20"`) into base units.
pub fn parse_unc(s: &str) -> Result<Amount, String> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err("empty amount".into());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid amount {s:?}: digits and one '.' only"));
    }
    if frac.len() > DECIMALS as usize {
        return Err(format!(
            "invalid amount {s:?}: more than {DECIMALS} decimals"
        ));
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("amount {s:?} too large"))?
    };
    let frac_units: u128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<18}")
            .parse()
            .map_err(|_| format!("invalid amount {s:?}"))?
    };
    whole
        .checked_mul(UNC)
        .and_then(|w| w.checked_add(frac_units))
        .ok_or_else(|| format!("amount {s:?} too large"))
}

/// Serde helper: `u128` as a decimal string of base units (JSON numbers cannot hold u128).
pub mod base_units {
    use super::*;

    /// Writes `v` as a decimal string.
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Reads a decimal string of base units; a JSON number, a non-decimal string or a value
    /// above `u128::MAX` is an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| D::Error::custom(format!("invalid base-unit amount {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_round_trip() {
        assert_eq!(format_unc(UNC), "1");
        assert_eq!(format_unc(UNC + UNC / 2), "1.5");
        assert_eq!(format_unc(1), "0.000000000000000001");
        assert_eq!(parse_unc("1.5").unwrap(), UNC + UNC / 2);
        assert_eq!(parse_unc("0.000000000000000001").unwrap(), 1);
        assert_eq!(parse_unc("10000000000").unwrap(), MAX_SUPPLY);
        for bad in [
            "",
            ".",
            "1.2.3",
            "-1",
            "1e5",
            "0.0000000000000000001",
            "abc",
        ] {
            assert!(parse_unc(bad).is_err(), "{bad}");
        }
        assert!(parse_unc("999999999999999999999999999999999999999").is_err());
    }
}
