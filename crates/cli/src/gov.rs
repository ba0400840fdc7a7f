//! `unet gov`: governance actions approved by a threshold of governors.
//!
//! Each governor signs the action off-line with `unet gov approve` (the approval names the
//! chain and the current governance nonce, so it cannot be replayed); anyone then submits the
//! action with enough approvals with `unet gov submit`.

use crate::wallet::{node_error, submit, text, Common, Passphrase, Reported};
use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::Signer;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;
use unet_types::{
    chip::{kind, Approval, GovAction, Model, Root, GOV_NAMESPACE},
    hexser, Payload, Signature,
};

/// The action, as flags (exactly one).
#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
pub struct ActionArgs {
    /// Add a model or change its rating: NAME=TOPS (e.g. BM1688=16 or H20=296.5).
    #[arg(long)]
    set_model: Option<String>,
    /// Remove a model from the table.
    #[arg(long)]
    remove_model: Option<String>,
    /// Pin a vendor root certificate (PEM or DER file); see --kind and --devnet-only.
    #[arg(long)]
    add_root: Option<PathBuf>,
    /// Unpin a root by its SHA-256 fingerprint (hex).
    #[arg(long)]
    remove_root: Option<String>,
    /// Revoke a chip (hex chip id): it is marked revoked at once and can never register again.
    #[arg(long)]
    revoke_chip: Option<String>,
    /// Revoke a certificate, e.g. a vendor intermediate: its certificate file (PEM or DER) or its
    /// certificate id (64 hex, as `unet attest` prints in chain_fingerprints). The id names the
    /// certificate's subject key, so every encoding and re-issue of it is revoked.
    #[arg(long)]
    revoke_cert: Option<String>,
    /// Set an NVIDIA architecture's firmware policy from a JSON file (minimum driver and VBIOS
    /// versions, reference measurements; `unet attest nvidia --policy-out` writes one). A file
    /// with no minimum and no measurement removes the architecture's policy.
    #[arg(long)]
    set_firmware_policy: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct RootOptions {
    /// Evidence kind of --add-root: vendor-x509 or nvidia-spdm.
    #[arg(long, default_value = "vendor-x509")]
    kind: String,
    /// Trust --add-root only on chains that allow devnet roots.
    #[arg(long)]
    devnet_only: bool,
}

#[derive(Subcommand)]
pub enum GovCommand {
    /// Sign an approval of an action as a governor (writes an approval file).
    Approve {
        /// Governor key (name in the keystore).
        #[arg(long)]
        from: String,
        #[command(flatten)]
        action: ActionArgs,
        #[command(flatten)]
        root: RootOptions,
        /// Approval file to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// Submit an action with approval files; waits for finality.
    Submit {
        /// Key paying the fee (any account).
        #[arg(long)]
        from: String,
        #[command(flatten)]
        action: ActionArgs,
        #[command(flatten)]
        root: RootOptions,
        /// Approval files from `unet gov approve`.
        #[arg(long = "approval", required = true)]
        approvals: Vec<PathBuf>,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
}

/// What `unet gov approve` writes.
#[derive(Serialize, Deserialize)]
struct ApprovalFile {
    chain_id: u64,
    gov_nonce: u64,
    /// The action, codec-encoded, hex.
    action: String,
    governor: String,
    signature: String,
}

fn parse_hash(s: &str, what: &str) -> Result<[u8; 32]> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("{what} must be 64 hex digits"))
}

/// The DER of the (first) certificate in a PEM or DER file.
fn read_certificate(path: &std::path::Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(match std::str::from_utf8(&bytes) {
        Ok(t) if t.trim_start().starts_with("-----BEGIN") => unet_poci::pem_chain_to_der(t)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{} holds no certificate", path.display()))?,
        _ => bytes,
    })
}

fn action(a: &ActionArgs, root: &RootOptions) -> Result<GovAction> {
    if let Some(spec) = &a.set_model {
        let (name, tops) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--set-model takes NAME=TOPS"))?;
        let milli = unet_types::amount::parse_unc(tops)
            .ok()
            .and_then(|v| u64::try_from(v / 10u128.pow(15)).ok())
            .filter(|m| *m > 0)
            .ok_or_else(|| {
                anyhow!(
                    "--set-model: {tops:?} is not a positive rating in TOPS (3 decimals at most)"
                )
            })?;
        return Ok(GovAction::SetModel(Model {
            name: name.trim().to_string(),
            compute_milli_tops: milli,
        }));
    }
    if let Some(name) = &a.remove_model {
        return Ok(GovAction::RemoveModel { name: name.clone() });
    }
    if let Some(path) = &a.add_root {
        let der = read_certificate(path)?;
        let kind = match root.kind.as_str() {
            "vendor-x509" => kind::VENDOR_X509,
            "nvidia-spdm" => kind::NVIDIA_SPDM,
            other => bail!("--kind must be vendor-x509 or nvidia-spdm, not {other:?}"),
        };
        return Ok(GovAction::AddRoot(Root {
            kind,
            der,
            devnet_only: root.devnet_only,
        }));
    }
    if let Some(fp) = &a.remove_root {
        return Ok(GovAction::RemoveRoot {
            fingerprint: parse_hash(fp, "--remove-root")?,
        });
    }
    if let Some(id) = &a.revoke_chip {
        return Ok(GovAction::RevokeChip {
            chip_id: parse_hash(id, "--revoke-chip")?,
        });
    }
    if let Some(cert) = &a.revoke_cert {
        let is_id = cert.trim().len() == 64 && cert.trim().bytes().all(|b| b.is_ascii_hexdigit());
        let fingerprint = if is_id {
            parse_hash(cert, "--revoke-cert")?
        } else {
            let path = std::path::Path::new(cert);
            unet_poci::certificate_id(&read_certificate(path)?)
                .map_err(|e| anyhow!("--revoke-cert {}: {e}", path.display()))?
        };
        return Ok(GovAction::RevokeCertificate { fingerprint });
    }
    if let Some(path) = &a.set_firmware_policy {
        let policy = crate::attest::read_policy(path)?;
        return Ok(GovAction::SetFirmwarePolicy(
            unet_state::registry::chain_policy(&policy),
        ));
    }
    bail!("name one action")
}

pub fn run(command: GovCommand) -> Result<()> {
    let json_mode = match &command {
        GovCommand::Approve { common, .. } | GovCommand::Submit { common, .. } => common.json,
    };
    crate::wallet::run_command(json_mode, dispatch(command))
}

async fn dispatch(command: GovCommand) -> Result<()> {
    match command {
        GovCommand::Approve {
            from,
            action: a,
            root,
            out,
            passphrase,
            common,
        } => {
            let action = action(&a, &root)?;
            let key = common.unlock(&from, &passphrase)?;
            let client = common.client();
            let status = client.status().await.map_err(|e| node_error(&common, e))?;
            let registry = client.models().await.map_err(|e| node_error(&common, e))?;
            let gov_nonce = registry.governance_nonce;
            let signature = key.sign(
                GOV_NAMESPACE,
                &action.approval_message(status.chain_id, gov_nonce),
            );
            let file = ApprovalFile {
                chain_id: status.chain_id,
                gov_nonce,
                action: hex::encode(action.encode()),
                governor: hexser::to_hex(&key.public_key()),
                signature: hex::encode(signature.encode()),
            };
            std::fs::write(&out, serde_json::to_string_pretty(&file)?)
                .with_context(|| format!("writing {}", out.display()))?;
            let v = json!({"action": action.name(), "gov_nonce": gov_nonce, "governor": file.governor, "file": out});
            common.print(&v, || {
                format!(
                    "approved {} as governance action #{gov_nonce} -> {}",
                    action.name(),
                    out.display()
                )
            });
            Ok(())
        }
        GovCommand::Submit {
            from,
            action: a,
            root,
            approvals,
            timeout,
            passphrase,
            common,
        } => {
            let action = action(&a, &root)?;
            let encoded = hex::encode(action.encode());
            let mut list = Vec::new();
            for path in &approvals {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let f: ApprovalFile = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not an approval file", path.display()))?;
                if f.action != encoded {
                    bail!("{} approves a different action", path.display());
                }
                let governor = hexser::from_hex(&f.governor)
                    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
                let signature = Signature::decode(hex::decode(&f.signature)?)
                    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
                list.push(Approval {
                    governor,
                    signature,
                });
            }
            let key = common.unlock(&from, &passphrase)?;
            let client = common.client();
            let payload = Payload::Govern {
                action: action.clone(),
                approvals: list,
            };
            let hash = submit::send_payload(&common, &client, &key, None, payload).await?;
            let v = submit::wait_final(&common, &client, &hash, timeout).await?;
            let ok = v["receipt"]["status"] == "ok";
            let out = json!({"hash": hash, "action": action.name(), "height": v["height"], "receipt": v["receipt"]});
            common.print(&out, || {
                format!(
                    "{} finalized at height {}: {}",
                    action.name(),
                    text(&v["height"]),
                    crate::wallet::describe_receipt(&v["receipt"])
                )
            });
            if ok {
                Ok(())
            } else {
                Err(anyhow!(Reported(format!(
                    "governance action failed: {}",
                    crate::wallet::describe_receipt(&v["receipt"])
                ))))
            }
        }
    }
}
