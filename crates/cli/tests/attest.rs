//! `unet attest` end to end: the built binary on NVIDIA's real H100 sample evidence (the copies in
//! crates/poci/tests/vectors/) and on devnet vendor-x509 evidence made by `unet attest x509-demo`.
//! Expected values are the ones crates/poci's own tests assert (tests/nvidia.rs).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The requester nonce of the shared H100 report.
const NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";
/// 2026-11-22T00:00:00Z (crates/poci's NOW): inside every validity window of the chain.
const NOW: u64 = 1_795_305_600;
/// 2022-03-01T00:00:00Z: the latest notBefore in the chain (NVIDIA GH100 Provisioner ICA 1,
/// index 2). Every notAfter in the chain is 9999-12-31T23:59:59Z (253402300799), so no time
/// before year 10000 finds an expired certificate; "not yet valid" is the reachable date check.
const LATEST_NOT_BEFORE: u64 = 1_646_092_800;
const LATEST_NOT_AFTER: u64 = 253_402_300_799;
/// chip_id of the sample H100: SHA-256 of its BROM (DeviceID) key, uncompressed SEC1.
const CHIP_ID: &str = "9d12115d2f417fef33ad0b3104515cb0d4973885e49055d864d8f028573dbc25";

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../poci/tests/vectors")
}

fn vector(name: &str) -> String {
    vectors().join(name).display().to_string()
}

/// Runs `unet attest ARGS`; returns (exit code, stdout JSON or Null, stderr).
fn attest(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unet"))
        .arg("attest")
        .args(args)
        .output()
        .expect("run unet");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    let json = if stdout.trim().is_empty() {
        Value::Null
    } else {
        assert_eq!(stdout.trim().lines().count(), 1, "one JSON line: {stdout}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    (out.status.code().expect("exit code"), json, stderr)
}

fn nvidia(report: &str, chain: &str, nonce: &str, at: u64, extra: &[&str]) -> (i32, Value, String) {
    let (report, chain, at) = (vector(report), vector(chain), at.to_string());
    let mut args = vec![
        "nvidia", "--report", &report, "--chain", &chain, "--nonce", nonce,
    ];
    args.extend(["--at", &at]);
    args.extend(extra);
    attest(&args)
}

fn assert_rejected(result: (i32, Value, String), check: &str) {
    let (code, v, _) = result;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["check"], check, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert_eq!(code, 1, "{v}");
}

const REPORT: &str = "hopperAttestationReport.txt";
const BAD_SIG: &str = "hopperAttestationReportInvalidSignature.txt";
const CHAIN: &str = "hopperCertChain.txt";
const CHAIN_EXPIRED: &str = "hopperCertChainExpired.txt";

#[test]
fn nvidia_valid_sample() {
    let (code, v, stderr) = nvidia(REPORT, CHAIN, NONCE, NOW, &[]);
    assert_eq!(code, 0, "{v} {stderr}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["kind"], "nvidia-spdm");
    assert_eq!(v["chip_id"], CHIP_ID);
    assert_eq!(v["model"], "H100");
    assert_eq!(
        v["model_detail"],
        "GH100 PROJECT=1010 PROJECT_SKU=0200 CHIP_SKU=882"
    );
    assert_eq!(v["serial"], "41431D480FE5E87274");
    assert_eq!(v["firmware"]["driver"], "550.90.07");
    assert_eq!(v["firmware"]["vbios"], "96.00.9F.00.01");
    assert_eq!(
        v["firmware"]["fwid"],
        "f5c384aebb579217a2c66b17ed0f28e6a9b8d639041acd7b4721cec004f7275494ba94bb5cdfdb3055ee051762b1f75d"
    );
    assert_eq!(v["measurements"], 64);
    assert_eq!(v["checked_at"], NOW);
    assert_eq!(v["leaf"], "GH100 A01 GSP FMC LF");
    assert_eq!(v["liveness"], "fresh_attestation");
    assert_eq!(v["devnet"], false);
    assert_eq!(v["chain_fingerprints"].as_array().map(Vec::len), Some(3));
    assert!(v["device_key"]
        .as_str()
        .unwrap()
        .starts_with("044f50da6e047a7981"));

    // Same answer as the library the chain runs, and the same with the root pinned explicitly.
    let e = unet_poci::NvidiaEvidence::from_hex_and_pem(
        &std::fs::read_to_string(vector(REPORT)).unwrap(),
        &std::fs::read_to_string(vector(CHAIN)).unwrap(),
    )
    .unwrap();
    let nonce: [u8; 32] = hex::decode(NONCE).unwrap().try_into().unwrap();
    let lib =
        unet_poci::nvidia::verify(&e, &nonce, NOW, &unet_poci::TrustStore::with_nvidia_root())
            .unwrap();
    assert_eq!(lib.identity.chip_id_hex(), CHIP_ID);
    let root = vector("verifier_device_root.pem");
    let (code, v2, _) = nvidia(REPORT, CHAIN, NONCE, NOW, &["--root", &root]);
    assert_eq!(code, 0);
    assert_eq!(v2, v);
}

#[test]
fn nvidia_validity_window_edges() {
    assert_eq!(nvidia(REPORT, CHAIN, NONCE, LATEST_NOT_BEFORE, &[]).0, 0);
    assert_eq!(nvidia(REPORT, CHAIN, NONCE, LATEST_NOT_AFTER, &[]).0, 0);
    // Before the provisioner ICA's notBefore: not yet valid.
    let r = nvidia(REPORT, CHAIN, NONCE, LATEST_NOT_BEFORE - 1, &[]);
    assert!(
        r.1["error"].as_str().unwrap().contains("certificate 2"),
        "{}",
        r.1
    );
    assert_rejected(r, "certificate_not_yet_valid");
    // After the earliest notAfter (all are 9999-12-31): expired.
    assert_rejected(
        nvidia(REPORT, CHAIN, NONCE, LATEST_NOT_AFTER + 1, &[]),
        "certificate_expired",
    );
}

#[test]
fn nvidia_invalid_signature_sample() {
    assert_rejected(
        nvidia(BAD_SIG, CHAIN, NONCE, NOW, &[]),
        "report_signature_invalid",
    );
}

#[test]
fn nvidia_wrong_nonce() {
    let mut wrong = NONCE.to_string();
    wrong.replace_range(63.., "a");
    assert_rejected(nvidia(REPORT, CHAIN, &wrong, NOW, &[]), "nonce_mismatch");
}

/// crates/poci found that `hopperCertChainExpired.txt` holds no X.509-expired certificate (every
/// notAfter is 9999-12-31; upstream "expired" names an expired driver RIM). It is another GPU's
/// chain, so with the valid report it is rejected because its leaf did not sign the report, and
/// with the invalid-signature report likewise. Mirrors crates/poci/tests/nvidia.rs.
#[test]
fn nvidia_expired_chain_sample() {
    assert_rejected(
        nvidia(REPORT, CHAIN_EXPIRED, NONCE, NOW, &[]),
        "report_signature_invalid",
    );
    assert_rejected(
        nvidia(BAD_SIG, CHAIN_EXPIRED, NONCE, NOW, &[]),
        "report_signature_invalid",
    );
}

#[test]
fn nvidia_root_not_pinned_and_malformed_evidence() {
    // Pin an unrelated root: the NVIDIA chain leads to no pinned root.
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo").display().to_string();
    assert_eq!(attest(&["x509-demo", "--out", &demo]).0, 0);
    let other_root = format!("{demo}/root.pem");
    assert_rejected(
        nvidia(REPORT, CHAIN, NONCE, NOW, &["--root", &other_root]),
        "unknown_root",
    );
    // A chain file that is not PEM and a report that is not hex are evidence verdicts (exit 1).
    assert_rejected(nvidia(REPORT, REPORT, NONCE, NOW, &[]), "malformed_pem");
    assert_rejected(nvidia(CHAIN, CHAIN, NONCE, NOW, &[]), "malformed_evidence");
}

#[test]
fn nvidia_usage_and_io_errors_exit_2() {
    let (code, v, stderr) = nvidia("no-such-report.txt", CHAIN, NONCE, NOW, &[]);
    assert_eq!(code, 2);
    assert_eq!(v, Value::Null, "nothing on stdout");
    assert!(stderr.contains("no-such-report.txt"), "{stderr}");
    assert_eq!(nvidia(REPORT, "no-such-chain.txt", NONCE, NOW, &[]).0, 2);
    assert_eq!(nvidia(REPORT, CHAIN, "abcd", NOW, &[]).0, 2);
    assert_eq!(nvidia(REPORT, CHAIN, &"zz".repeat(32), NOW, &[]).0, 2);
    assert_eq!(
        nvidia(REPORT, CHAIN, NONCE, NOW, &["--root", "/no/such/root.pem"]).0,
        2
    );
    // A root file holding a whole chain is not a root.
    let chain = vector(CHAIN);
    assert_eq!(nvidia(REPORT, CHAIN, NONCE, NOW, &["--root", &chain]).0, 2);
    // Missing required flag: clap's usage error, also exit 2.
    assert_eq!(attest(&["nvidia", "--report", &vector(REPORT)]).0, 2);
}

#[test]
fn x509_demo_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("chip").display().to_string();
    let (code, demo, stderr) = attest(&["x509-demo", "--out", &out, "--seed", "test-seed"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(demo["devnet"], true);
    // By default the demo chip is certified by the devnet CA that `unet devnet` pins in genesis.
    let devnet_ca =
        unet_poci::secure_element::DevnetVendorCa::from_seed(unet_devnet::DEVNET_CA_SEED).unwrap();
    assert_eq!(
        demo["root_fingerprint"],
        hex::encode(devnet_ca.root_fingerprint())
    );
    let nonce = demo["nonce"].as_str().unwrap().to_string();
    let chip_id = demo["chip_id"].as_str().unwrap().to_string();
    for f in [
        "evidence.bin",
        "evidence.hex",
        "root.pem",
        "chain.pem",
        "nonce.txt",
    ] {
        assert!(Path::new(&out).join(f).is_file(), "{f}");
    }
    // Deterministic: same seed, same chip.
    let again = dir.path().join("again").display().to_string();
    let (_, demo2, _) = attest(&["x509-demo", "--out", &again, "--seed", "test-seed"]);
    assert_eq!(demo2["chip_id"], chip_id.as_str());
    assert_eq!(
        std::fs::read(format!("{out}/evidence.bin")).unwrap(),
        std::fs::read(format!("{again}/evidence.bin")).unwrap()
    );

    let root = format!("{out}/root.pem");
    for evidence in ["evidence.bin", "evidence.hex"] {
        let evidence = format!("{out}/{evidence}");
        let (code, v, stderr) = attest(&[
            "x509",
            "--evidence",
            &evidence,
            "--nonce",
            &nonce,
            "--root",
            &root,
        ]);
        assert_eq!(code, 0, "{v} {stderr}");
        assert_eq!(v["ok"], true);
        assert_eq!(v["kind"], "vendor-x509");
        assert_eq!(v["chip_id"], chip_id.as_str());
        assert_eq!(v["model"], "BM1684X");
        assert_eq!(v["serial"], "DEMO-0001");
        assert_eq!(v["devnet"], true);
        assert_eq!(v["liveness"], "device_key_signature");
        assert!(v.get("firmware").is_none());
    }

    let evidence = format!("{out}/evidence.bin");
    let base = ["x509", "--evidence", &evidence, "--root", &root];
    let run = |extra: &[&str]| attest(&[&base[..], extra].concat());
    // Production trust stores refuse the devnet CA.
    assert_rejected(
        run(&["--nonce", &nonce, "--production"]),
        "devnet_root_not_allowed",
    );
    // Another nonce (e.g. another owner's registration) is refused.
    assert_rejected(run(&["--nonce", &"00".repeat(32)]), "nonce_mismatch");
    // Devnet certificates are valid 2020-01-01 .. 2099-12-31.
    assert_rejected(
        run(&["--nonce", &nonce, "--at", "4102444800"]),
        "certificate_expired",
    );
    assert_rejected(
        run(&["--nonce", &nonce, "--at", "1577836799"]),
        "certificate_not_yet_valid",
    );
    // A flipped byte in the signature (the container's last bytes).
    let mut bytes = std::fs::read(&evidence).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = dir.path().join("tampered.bin");
    std::fs::write(&tampered, &bytes).unwrap();
    let tampered = tampered.display().to_string();
    assert_rejected(
        attest(&[
            "x509",
            "--evidence",
            &tampered,
            "--nonce",
            &nonce,
            "--root",
            &root,
        ]),
        "evidence_signature_invalid",
    );
    // Truncated container; hex text that does not decode.
    std::fs::write(dir.path().join("short.bin"), &bytes[..40]).unwrap();
    let short = dir.path().join("short.bin").display().to_string();
    assert_rejected(
        attest(&[
            "x509",
            "--evidence",
            &short,
            "--nonce",
            &nonce,
            "--root",
            &root,
        ]),
        "malformed_evidence",
    );
    std::fs::write(dir.path().join("odd.hex"), "abc").unwrap();
    let odd = dir.path().join("odd.hex").display().to_string();
    assert_rejected(
        attest(&[
            "x509",
            "--evidence",
            &odd,
            "--nonce",
            &nonce,
            "--root",
            &root,
        ]),
        "malformed_evidence",
    );
    // NVIDIA evidence given to the x509 verifier: wrong kind.
    let nv = dir.path().join("nv.bin").display().to_string();
    let (code, _, _) = nvidia(REPORT, CHAIN, NONCE, NOW, &["--evidence-out", &nv]);
    assert_eq!(code, 0);
    assert_rejected(
        attest(&["x509", "--evidence", &nv, "--nonce", NONCE, "--root", &root]),
        "unsupported_evidence_kind",
    );
    // The NVIDIA root as a vendor-x509 root: the devnet chip's chain does not lead to it.
    let nv_root = vector("verifier_device_root.pem");
    assert_rejected(
        attest(&[
            "x509",
            "--evidence",
            &evidence,
            "--nonce",
            &nonce,
            "--root",
            &nv_root,
        ]),
        "unknown_root",
    );
    // I/O and usage errors.
    assert_eq!(
        attest(&[
            "x509",
            "--evidence",
            "/no/such",
            "--nonce",
            &nonce,
            "--root",
            &root
        ])
        .0,
        2
    );
    assert_eq!(
        attest(&["x509", "--evidence", &evidence, "--nonce", &nonce]).0,
        2
    );
}

#[test]
fn x509_demo_p384_and_explicit_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let nonce = "11".repeat(32);
    let (code, demo, _) = attest(&[
        "x509-demo",
        "--out",
        &out,
        "--curve",
        "p384",
        "--nonce",
        &nonce,
        "--model",
        "BM1686",
        "--ca-seed",
        "another vendor",
    ]);
    assert_eq!(code, 0);
    assert_eq!(demo["nonce"], nonce.as_str());
    let other = unet_poci::secure_element::DevnetVendorCa::from_seed(b"another vendor").unwrap();
    assert_eq!(
        demo["root_fingerprint"],
        hex::encode(other.root_fingerprint())
    );
    let (evidence, root) = (format!("{out}/evidence.hex"), format!("{out}/root.pem"));
    let (code, v, _) = attest(&[
        "x509",
        "--evidence",
        &evidence,
        "--nonce",
        &nonce,
        "--root",
        &root,
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["curve"], "P-384");
    assert_eq!(v["model"], "BM1686");
    assert_eq!(v["device_key"].as_str().map(str::len), Some(97 * 2));
}

#[test]
fn nvidia_firmware_policy_template_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("policy.json");
    let t = template.display().to_string();
    // The policy the sample meets exactly, written as a template.
    let (code, v, stderr) = nvidia(REPORT, CHAIN, NONCE, NOW, &["--policy-out", &t]);
    assert_eq!(code, 0, "{v} {stderr}");
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(&template).unwrap()).unwrap();
    assert_eq!(policy["architecture"], "Hopper");
    assert_eq!(policy["min_driver"], "550.90.07");
    assert_eq!(policy["min_vbios"], "96.00.9F.00.01");
    assert_eq!(policy["measurements"].as_array().unwrap().len(), 64);
    // Checked against it, the sample passes.
    let (code, v, _) = nvidia(REPORT, CHAIN, NONCE, NOW, &["--policy", &t]);
    assert_eq!((code, &v["ok"]), (0, &Value::Bool(true)), "{v}");
    // A higher driver minimum, or one reference value changed, is refused with its check.
    let mut higher = policy.clone();
    higher["min_driver"] = "550.90.08".into();
    let path = dir.path().join("higher.json");
    std::fs::write(&path, higher.to_string()).unwrap();
    let p = path.display().to_string();
    assert_rejected(
        nvidia(REPORT, CHAIN, NONCE, NOW, &["--policy", &p]),
        "firmware_below_minimum",
    );
    let mut other = policy.clone();
    other["measurements"][5]["allowed"][0] = "00".repeat(48).into();
    std::fs::write(&path, other.to_string()).unwrap();
    assert_rejected(
        nvidia(REPORT, CHAIN, NONCE, NOW, &["--policy", &p]),
        "measurement_not_allowed",
    );
    // A malformed policy file is a usage error, not a verdict.
    std::fs::write(&path, r#"{"architecture":"Hopper","min_driver":"new"}"#).unwrap();
    let (code, v, stderr) = nvidia(REPORT, CHAIN, NONCE, NOW, &["--policy", &p]);
    assert_eq!(code, 2, "{v} {stderr}");
    assert!(stderr.contains("min_driver"), "{stderr}");
}
