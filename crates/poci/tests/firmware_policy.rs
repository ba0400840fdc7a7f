//! Governance's firmware policy (minimum driver and VBIOS versions, reference measurements)
//! against NVIDIA's real Hopper and Blackwell samples: the policy a report meets passes, each
//! requirement it misses is refused with its own check, on the cached path too, and a policy
//! applies only to its own architecture.

mod common;

use common::*;
use unet_poci::nvidia::{self, ChainCache, FirmwarePolicy, MeasurementRule};
use unet_poci::{NvidiaEvidence, TrustStore, VerifyError};

/// The trust store with `policy` set.
fn trust_with(policy: FirmwarePolicy) -> TrustStore {
    let mut trust = nvidia_trust();
    trust.set_firmware_policy(policy);
    trust
}

/// The exact policy the sample meets (its versions as minimums, every block pinned).
fn own_policy(ev: &NvidiaEvidence) -> FirmwarePolicy {
    let att = nvidia::verify(ev, &nonce(), NOW, &nvidia_trust()).unwrap();
    FirmwarePolicy::from_report(&att.architecture, &att.opaque, &att.report)
}

/// The verdict cold and through a warmed chain cache (they must agree).
fn verdicts(ev: &NvidiaEvidence, trust: &TrustStore) -> Result<(), VerifyError> {
    let cold = nvidia::verify(ev, &nonce(), NOW, trust).map(|_| ());
    let cache = ChainCache::default();
    // Warm the cache under a store with no policy, then verify under `trust`.
    let _ = nvidia::verify_cached(ev, &nonce(), NOW, &nvidia_trust(), &cache);
    let warm = nvidia::verify_cached(ev, &nonce(), NOW, trust, &cache).map(|_| ());
    assert_eq!(cold, warm, "cached and uncached verdicts differ");
    cold
}

#[test]
fn a_report_meets_the_policy_taken_from_it() {
    for ev in [evidence(), blackwell()] {
        let policy = own_policy(&ev);
        assert_eq!(policy.validate(), Ok(()));
        assert_eq!(policy.measurements.len(), 64);
        assert_eq!(verdicts(&ev, &trust_with(policy)), Ok(()));
    }
}

#[test]
fn a_driver_or_vbios_below_the_minimum_is_refused() {
    // Hopper sample: driver 550.90.07, VBIOS 96.00.9F.00.01. Blackwell: 575.32, 97.00.88.00.0F.
    let cases = [
        (evidence(), "Hopper", Some("550.90.08"), None, "driver"),
        (evidence(), "Hopper", Some("551"), None, "driver"),
        (evidence(), "Hopper", None, Some("96.00.A0.00.00"), "vbios"),
        (blackwell(), "Blackwell", Some("575.32.1"), None, "driver"),
        (
            blackwell(),
            "Blackwell",
            None,
            Some("97.00.88.00.10"),
            "vbios",
        ),
    ];
    for (ev, arch, driver, vbios, field) in cases {
        let policy = FirmwarePolicy {
            architecture: arch.into(),
            min_driver: driver.map(Into::into),
            min_vbios: vbios.map(Into::into),
            measurements: vec![],
        };
        let err = verdicts(&ev, &trust_with(policy)).unwrap_err();
        assert!(
            matches!(&err, VerifyError::FirmwareBelowMinimum { field: f, .. } if *f == field),
            "{arch} {driver:?} {vbios:?}: {err:?}"
        );
        assert_eq!(err.code(), "firmware_below_minimum");
    }
    // Exactly the sample's versions, and lower ones, pass (9F is hex: above 10).
    for (driver, vbios) in [
        ("550.90.07", "96.00.9F.00.01"),
        ("550.90.7", "96.00.9F.00.00"),
        ("535.104", "96.00.10.00.01"),
    ] {
        let policy = FirmwarePolicy {
            architecture: "Hopper".into(),
            min_driver: Some(driver.into()),
            min_vbios: Some(vbios.into()),
            measurements: vec![],
        };
        assert_eq!(
            verdicts(&evidence(), &trust_with(policy)),
            Ok(()),
            "{driver} {vbios}"
        );
    }
}

#[test]
fn a_measurement_outside_the_reference_values_is_refused() {
    for ev in [evidence(), blackwell()] {
        let own = own_policy(&ev);
        for i in [0, 17, 63] {
            // One bit off in one reference value.
            let mut policy = own.clone();
            policy.measurements[i].allowed[0][0] ^= 1;
            let index = policy.measurements[i].index;
            assert_eq!(
                verdicts(&ev, &trust_with(policy.clone())),
                Err(VerifyError::MeasurementNotAllowed { index })
            );
            // The true value as a second alternative is accepted (RIM alternatives).
            let truth = own.measurements[i].allowed[0].clone();
            policy.measurements[i].allowed.push(truth);
            assert_eq!(verdicts(&ev, &trust_with(policy)), Ok(()));
        }
        // An index the report does not carry.
        let mut policy = own.clone();
        policy.measurements = vec![MeasurementRule {
            index: 200,
            allowed: vec![vec![0; 48]],
        }];
        assert_eq!(
            verdicts(&ev, &trust_with(policy)),
            Err(VerifyError::MeasurementMissing { index: 200 })
        );
    }
}

#[test]
fn a_policy_binds_only_its_own_architecture() {
    // Blackwell's pinned measurements say nothing about a Hopper report, and the reverse.
    let mut trust = nvidia_trust();
    let mut hopper = own_policy(&evidence());
    let mut black = own_policy(&blackwell());
    hopper.min_driver = Some("999".into());
    black.min_driver = Some("999".into());
    trust.set_firmware_policy(black.clone());
    assert_eq!(verdicts(&evidence(), &trust), Ok(()));
    trust.set_firmware_policy(hopper);
    assert!(verdicts(&evidence(), &trust).is_err());
    assert!(verdicts(&blackwell(), &trust).is_err());
    // A later policy for the same architecture replaces the earlier one.
    black.min_driver = None;
    trust.set_firmware_policy(black);
    assert_eq!(verdicts(&blackwell(), &trust), Ok(()));
}

#[test]
fn policies_round_trip_through_json_with_hex_values() {
    let policy = own_policy(&blackwell());
    let text = serde_json::to_string(&policy).unwrap();
    assert!(text.contains("\"architecture\":\"Blackwell\""));
    assert!(text.contains("\"min_driver\":\"575.32\""));
    let back: FirmwarePolicy = serde_json::from_str(&text).unwrap();
    assert_eq!(back, policy);
    assert!(serde_json::from_str::<FirmwarePolicy>(
        r#"{"architecture":"Hopper","measurements":[{"index":1,"allowed":["zz"]}]}"#
    )
    .is_err());
}
