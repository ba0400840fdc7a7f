//! `unet attest`: verify chip attestation evidence offline with the same code validators run
//! (`unet-poci`), and print one JSON verdict.
//!
//! - `unet attest nvidia`: a real NVIDIA H100/H200/B200 SPDM report (hex of request || response,
//!   as NVIDIA's tools write it) and its PEM chain (leaf first), against the bundled "NVIDIA
//!   Device Identity CA" or `--root`.
//! - `unet attest x509`: a vendor-x509 evidence container (binary or hex) against `--root`.
//! - `unet attest x509-demo`: make a devnet chip (software secure element certified by the
//!   devnet vendor CA) and write evidence + root files to try `unet attest x509` on.
//!
//! Exit codes: 0 = the evidence verified; 1 = it did not (the JSON on stdout says which check
//! failed); 2 = usage or I/O error (message on stderr, nothing on stdout).

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};
use unet_devnet::DEVNET_CA_SEED;
use unet_poci::{
    secure_element::DevnetVendorCa, verify_nvidia_container, ChipIdentity, Curve, Evidence,
    EvidenceKind, EvidenceVerifier, LivenessMethod, NvidiaEvidence, TrustStore, VendorX509Evidence,
    VendorX509Verifier, VerifyError,
};

/// Largest input file read (evidence, reports, chains, roots are a few KiB).
const MAX_INPUT: u64 = 1024 * 1024;

#[derive(Args)]
pub struct AttestArgs {
    #[command(subcommand)]
    pub command: AttestCommand,
}

#[derive(Subcommand)]
pub enum AttestCommand {
    /// Verify an NVIDIA GPU attestation report (SPDM 1.1 GET_MEASUREMENTS) and its certificate chain.
    Nvidia(NvidiaArgs),
    /// Verify vendor-x509 evidence (the encoded evidence container, binary or hex).
    X509(X509Args),
    /// Make a devnet chip (software secure element + devnet vendor CA) and write evidence and root
    /// files for `unet attest x509`. Devnet only: its CA is refused by production trust stores.
    X509Demo(DemoArgs),
}

#[derive(Args)]
pub struct NvidiaArgs {
    /// The report: hex text of the SPDM request (37 bytes) followed by the response.
    #[arg(long)]
    pub report: PathBuf,
    /// The certificate chain, PEM, leaf (GSP FMC) first.
    #[arg(long)]
    pub chain: PathBuf,
    /// The expected requester nonce (64 hex digits).
    #[arg(long)]
    pub nonce: String,
    /// Root certificate to pin (PEM or DER). Default: the bundled NVIDIA Device Identity CA.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Check certificate validity at this time (unix seconds). Default: now.
    #[arg(long)]
    pub at: Option<u64>,
    /// Also write the evidence container (what a RegisterChip transaction carries) to this file.
    #[arg(long)]
    pub evidence_out: Option<PathBuf>,
    /// Check the report against a firmware policy (JSON: architecture, min_driver, min_vbios,
    /// measurements), as a chain with that policy would.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Write the firmware policy this report meets exactly (its versions as minimums, every
    /// measurement pinned): a template for `unet gov approve --set-firmware-policy`.
    #[arg(long)]
    pub policy_out: Option<PathBuf>,
}

#[derive(Args)]
pub struct X509Args {
    /// The evidence container, binary or hex text.
    #[arg(long)]
    pub evidence: PathBuf,
    /// The expected nonce (64 hex digits).
    #[arg(long)]
    pub nonce: String,
    /// The vendor root certificate to pin (PEM or DER).
    #[arg(long)]
    pub root: PathBuf,
    /// Check certificate validity at this time (unix seconds). Default: now.
    #[arg(long)]
    pub at: Option<u64>,
    /// Use a production trust store: devnet-only roots (the devnet vendor CA) are refused.
    #[arg(long)]
    pub production: bool,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Directory to write evidence.bin, evidence.hex, root.pem, chain.pem and nonce.txt into.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the chip (its device secret and key): same seeds, same files.
    #[arg(long, default_value = "unet-attest-demo")]
    pub seed: String,
    /// Seed of the devnet vendor CA. Default: the one `unet devnet` / `unet testnet` pin in
    /// genesis, so the evidence can register on such a network (with its registration nonce).
    #[arg(long)]
    pub ca_seed: Option<String>,
    /// Nonce the chip signs (64 hex digits). Default: derived from the seed.
    #[arg(long)]
    pub nonce: Option<String>,
    /// Model name written in the device certificate (its CN).
    #[arg(long, default_value = "BM1684X")]
    pub model: String,
    /// Serial written in the device certificate.
    #[arg(long, default_value = "DEMO-0001")]
    pub serial: String,
    /// Curve of the chip's DeviceID key.
    #[arg(long, value_enum, default_value_t = DemoCurve::P256)]
    pub curve: DemoCurve,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DemoCurve {
    P256,
    P384,
}

/// Runs the command and exits the process with 0, 1 or 2 (see the module docs).
pub fn run(args: AttestArgs) -> Result<()> {
    let outcome = match args.command {
        AttestCommand::Nvidia(a) => nvidia(a),
        AttestCommand::X509(a) => x509(a),
        AttestCommand::X509Demo(a) => demo(a),
    };
    let code = match outcome {
        Ok((verdict, ok)) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{verdict}");
            let _ = out.flush();
            if ok {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("unet attest: {e:#}");
            2
        }
    };
    std::process::exit(code)
}

/// `Ok((verdict JSON, valid))` when the inputs could be read; `Err` for usage and I/O errors.
type Verdict = Result<(String, bool)>;

/// A verified chip (fields in this order in the JSON).
#[derive(Serialize)]
struct Verified {
    ok: bool,
    kind: &'static str,
    chip_id: String,
    model: String,
    model_detail: String,
    serial: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    firmware: Option<Firmware>,
    #[serde(skip_serializing_if = "Option::is_none")]
    measurements: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leaf: Option<String>,
    checked_at: u64,
    curve: &'static str,
    device_key: String,
    liveness: &'static str,
    root_fingerprint: String,
    chain_fingerprints: Vec<String>,
    devnet: bool,
    evidence_bytes: usize,
}

#[derive(Serialize)]
struct Firmware {
    driver: Option<String>,
    vbios: Option<String>,
    fwid: Option<String>,
}

/// A rejection: which check failed and its message.
#[derive(Serialize)]
struct Rejected {
    ok: bool,
    kind: &'static str,
    check: String,
    error: String,
}

#[derive(Serialize)]
struct DemoOutput {
    ok: bool,
    kind: &'static str,
    devnet: bool,
    chip_id: String,
    model: String,
    serial: String,
    nonce: String,
    root_fingerprint: String,
    dir: String,
    files: Vec<&'static str>,
    #[serde(rename = "try")]
    try_it: String,
}

fn to_json(v: &impl Serialize) -> Result<String> {
    serde_json::to_string(v).context("encoding the verdict")
}

fn nvidia(a: NvidiaArgs) -> Verdict {
    let nonce = parse_nonce(&a.nonce)?;
    let report = read_text(&a.report, "report")?;
    let chain = read_text(&a.chain, "chain")?;
    let mut trust = match &a.root {
        None => TrustStore::with_nvidia_root(),
        Some(path) => {
            let mut trust = TrustStore::new();
            pin_root(&mut trust, EvidenceKind::NvidiaSpdm, path)?;
            trust
        }
    };
    if let Some(path) = &a.policy {
        trust.set_firmware_policy(read_policy(path)?);
    }
    let at = a.at.unwrap_or_else(now);
    let kind = EvidenceKind::NvidiaSpdm;
    // The files are the evidence being judged: if they do not decode, that is a verdict.
    let container = match NvidiaEvidence::from_hex_and_pem(&report, &chain)
        .and_then(|e| Evidence::NvidiaSpdm(e).encode())
    {
        Ok(c) => c,
        Err(e) => return Ok((failure(kind, &e)?, false)),
    };
    if let Some(path) = &a.evidence_out {
        std::fs::write(path, &container).with_context(|| format!("writing {}", path.display()))?;
    }
    match verify_nvidia_container(&container, &nonce, at, &trust) {
        Ok(att) => {
            let mut v = verified(&att.identity, at, container.len());
            v.measurements = Some(att.report.measurements.len());
            if let Some(path) = &a.policy_out {
                let policy = unet_poci::nvidia::FirmwarePolicy::from_report(
                    &att.architecture,
                    &att.opaque,
                    &att.report,
                );
                let text = serde_json::to_string_pretty(&policy).context("encoding the policy")?;
                std::fs::write(path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            v.leaf = Some(att.leaf_common_name);
            Ok((to_json(&v)?, true))
        }
        Err(e) => Ok((failure(kind, &e)?, false)),
    }
}

/// A firmware policy file (JSON), checked to be well formed.
pub fn read_policy(path: &std::path::Path) -> Result<unet_poci::nvidia::FirmwarePolicy> {
    let text = read_text(path, "firmware policy")?;
    let policy: unet_poci::nvidia::FirmwarePolicy = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a firmware policy", path.display()))?;
    policy
        .validate()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(policy)
}

fn x509(a: X509Args) -> Verdict {
    let nonce = parse_nonce(&a.nonce)?;
    let raw = read_file(&a.evidence, "evidence")?;
    let mut trust = if a.production {
        TrustStore::new()
    } else {
        TrustStore::devnet()
    };
    pin_root(&mut trust, EvidenceKind::VendorX509, &a.root)?;
    let at = a.at.unwrap_or_else(now);
    let kind = EvidenceKind::VendorX509;
    let container = match decode_maybe_hex(&raw) {
        Some(c) => c,
        None => {
            let e =
                VerifyError::MalformedEvidence("hex text with an odd length or a non-hex digit");
            return Ok((failure(kind, &e)?, false));
        }
    };
    match VendorX509Verifier.verify_registration(&container, &nonce, at, &trust) {
        Ok(id) => Ok((to_json(&verified(&id, at, container.len()))?, true)),
        Err(e) => Ok((failure(kind, &e)?, false)),
    }
}

fn demo(a: DemoArgs) -> Verdict {
    let nonce = match &a.nonce {
        Some(n) => parse_nonce(n)?,
        None => unet_types::sha256(&[b"unet attest x509-demo nonce", a.seed.as_bytes()]),
    };
    let curve = match a.curve {
        DemoCurve::P256 => Curve::P256,
        DemoCurve::P384 => Curve::P384,
    };
    let ca_seed = a.ca_seed.as_ref().map_or(DEVNET_CA_SEED, |s| s.as_bytes());
    let ca = DevnetVendorCa::from_seed(ca_seed).map_err(|e| anyhow!("devnet vendor CA: {e}"))?;
    let secret = unet_types::sha256(&[b"unet attest x509-demo device secret", a.seed.as_bytes()]);
    let mut device_secret = [0u8; 16];
    device_secret.copy_from_slice(&secret[..16]);
    let key_seed = [
        b"unet attest x509-demo device key".as_slice(),
        a.seed.as_bytes(),
    ]
    .concat();
    let (se, chain) = ca
        .provision_chip(device_secret, &key_seed, curve, &a.model, &a.serial)
        .map_err(|e| anyhow!("provisioning the demo chip: {e}"))?;
    let signature = se
        .sign_registration(&nonce)
        .map_err(|e| anyhow!("signing: {e}"))?;
    let evidence = Evidence::VendorX509(VendorX509Evidence {
        nonce,
        chain: chain.clone(),
        signature,
    })
    .encode()
    .map_err(|e| anyhow!("encoding the evidence: {e}"))?;

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let chain_pem: String = chain.iter().map(|c| pem(c)).collect::<Result<_>>()?;
    let files = [
        ("evidence.bin", evidence.clone()),
        (
            "evidence.hex",
            format!("{}\n", hex::encode(&evidence)).into_bytes(),
        ),
        ("root.pem", pem(ca.root_der())?.into_bytes()),
        ("chain.pem", chain_pem.into_bytes()),
        (
            "nonce.txt",
            format!("{}\n", hex::encode(nonce)).into_bytes(),
        ),
    ];
    for (name, bytes) in &files {
        let path = a.out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let dir = a.out.display().to_string();
    let out = DemoOutput {
        ok: true,
        kind: kind_name(EvidenceKind::VendorX509),
        devnet: true,
        chip_id: hex::encode(se.chip_id()),
        model: a.model,
        serial: a.serial,
        nonce: hex::encode(nonce),
        root_fingerprint: hex::encode(ca.root_fingerprint()),
        files: files.iter().map(|(n, _)| *n).collect(),
        try_it: format!(
            "unet attest x509 --evidence {dir}/evidence.bin --nonce {} --root {dir}/root.pem",
            hex::encode(nonce)
        ),
        dir,
    };
    Ok((to_json(&out)?, true))
}

fn kind_name(kind: EvidenceKind) -> &'static str {
    match kind {
        EvidenceKind::NvidiaSpdm => "nvidia-spdm",
        EvidenceKind::VendorX509 => "vendor-x509",
    }
}

fn verified(id: &ChipIdentity, at: u64, evidence_bytes: usize) -> Verified {
    Verified {
        ok: true,
        kind: kind_name(id.kind),
        chip_id: id.chip_id_hex(),
        model: id.model.clone(),
        model_detail: id.model_detail.clone(),
        serial: id.serial.clone(),
        firmware: (id.kind == EvidenceKind::NvidiaSpdm).then(|| Firmware {
            driver: id.firmware.driver_version.clone(),
            vbios: id.firmware.vbios_version.clone(),
            fwid: id.firmware.fwid.as_ref().map(hex::encode),
        }),
        measurements: None,
        leaf: None,
        checked_at: at,
        curve: match id.device_public_key.curve {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        },
        device_key: hex::encode(&id.device_public_key.sec1),
        liveness: match id.liveness {
            LivenessMethod::DeviceKeySignature => "device_key_signature",
            LivenessMethod::FreshAttestation => "fresh_attestation",
        },
        root_fingerprint: hex::encode(id.root_fingerprint),
        chain_fingerprints: id.chain_fingerprints.iter().map(hex::encode).collect(),
        devnet: id.devnet,
        evidence_bytes,
    }
}

fn failure(kind: EvidenceKind, e: &VerifyError) -> Result<String> {
    to_json(&Rejected {
        ok: false,
        kind: kind_name(kind),
        check: check_name(e),
        error: e.to_string(),
    })
}

/// The snake_case name of the failing check, from the variant name:
/// `CertificateExpired { .. }` -> `certificate_expired`.
pub fn check_name(e: &VerifyError) -> String {
    e.code()
}

fn pin_root(trust: &mut TrustStore, kind: EvidenceKind, path: &Path) -> Result<()> {
    let bytes = read_file(path, "root")?;
    let added = match std::str::from_utf8(&bytes) {
        Ok(text) if text.trim_start().starts_with("-----BEGIN") => {
            trust.add_root_pem(kind, text, false)
        }
        _ => trust.add_root(kind, &bytes, false),
    };
    added.map(|_| ()).map_err(|e| {
        anyhow!(
            "--root {}: not a usable root certificate: {e}",
            path.display()
        )
    })
}

fn parse_nonce(text: &str) -> Result<[u8; 32]> {
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(text).map_err(|e| anyhow!("--nonce: not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow!(
            "--nonce: expected 32 bytes (64 hex digits), got {}",
            b.len()
        )
    })
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("{what} file {}", path.display()))?;
    if meta.len() > MAX_INPUT {
        bail!(
            "{what} file {} is larger than {MAX_INPUT} bytes",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {what} file {}", path.display()))
}

/// Text evidence file. Bytes that are not UTF-8 become U+FFFD, which the hex and PEM decoders
/// then reject as malformed evidence (a verdict, like any other undecodable evidence).
fn read_text(path: &Path, what: &str) -> Result<String> {
    Ok(String::from_utf8_lossy(&read_file(path, what)?).into_owned())
}

/// Hex text (whitespace allowed) if the bytes are all hex digits and whitespace, else the bytes
/// themselves. A binary container starts with its kind tag (0x01 or 0x02), never a hex digit, so
/// the two forms cannot be confused. `None`: text that looks like hex but does not decode.
fn decode_maybe_hex(raw: &[u8]) -> Option<Vec<u8>> {
    let looks_hex = !raw.is_empty()
        && raw
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if !looks_hex {
        return Some(raw.to_vec());
    }
    let digits: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    hex::decode(digits).ok()
}

fn pem(der: &[u8]) -> Result<String> {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
        .map_err(|e| anyhow!("PEM encoding: {e}"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names() {
        assert_eq!(check_name(&VerifyError::NonceMismatch), "nonce_mismatch");
        assert_eq!(
            check_name(&VerifyError::ReportSignatureInvalid),
            "report_signature_invalid"
        );
        assert_eq!(
            check_name(&VerifyError::CertificateExpired {
                index: 0,
                not_after: 1,
                now: 2
            }),
            "certificate_expired"
        );
        assert_eq!(
            check_name(&VerifyError::MalformedEvidence("x")),
            "malformed_evidence"
        );
    }

    #[test]
    fn hex_or_binary() {
        assert_eq!(decode_maybe_hex(b"0a0B\n"), Some(vec![0x0a, 0x0b]));
        assert_eq!(decode_maybe_hex(&[1, 2, 3]), Some(vec![1, 2, 3]));
        assert_eq!(decode_maybe_hex(b"abc"), None);
        assert_eq!(decode_maybe_hex(b""), Some(vec![]));
    }

    #[test]
    fn nonces() {
        assert!(parse_nonce(&"ab".repeat(32)).is_ok());
        assert!(parse_nonce(&format!("0x{}", "ab".repeat(32))).is_ok());
        assert!(parse_nonce("abcd").is_err());
        assert!(parse_nonce(&"zz".repeat(32)).is_err());
    }
}
