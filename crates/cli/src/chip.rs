//! `unet chip`: manufacture emulated chips, register them, and query or move registered chips.
//!
//! `provision` stands in for a chip factory: it makes a software secure element (a 128-bit
//! device secret sealing a P-256/P-384 device key) and certifies its key with the devnet
//! vendor CA that a devnet genesis pins. The chip file it writes keeps the device secret next
//! to the sealed key, which is what lets the emulator sign; a real chip keeps the secret in
//! eFuse. Only devnets trust this CA.

use crate::wallet::{node_error, submit, text, Common, Passphrase, Reported};
use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use commonware_cryptography::Signer;
use serde_json::{json, Value};
use std::path::PathBuf;
use unet_client::api::params::{ListChipsParams, PageParams};
use unet_poci::Curve;
use unet_types::{amount::parse_unc, hexser, Payload};

#[derive(Subcommand)]
pub enum ChipCommand {
    /// Manufacture an emulated chip certified by a devnet CA: a software secure element, or
    /// with `--gpu --model H100|B200` an emulated NVIDIA GPU that attests with SPDM reports.
    Provision {
        /// Chip file to write (mode 0600).
        #[arg(long)]
        out: PathBuf,
        /// Model name (must be in the chain's model table to register, see `unet chip models`).
        #[arg(long, default_value = "BM1684X")]
        model: String,
        /// Serial number [default: derived from the chip's key].
        #[arg(long)]
        serial: Option<String>,
        /// Curve of the device key: p256 or p384.
        #[arg(long, default_value = "p256")]
        curve: String,
        /// An emulated NVIDIA GPU (SPDM evidence) of --model H100 or B200.
        #[arg(long)]
        gpu: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Register a chip to a key: evidence bound to the latest finalized block and the owner.
    Register {
        /// Owner key (name in the keystore); pays the fee.
        #[arg(long)]
        from: String,
        /// Chip file from `unet chip provision`.
        #[arg(long)]
        chip: PathBuf,
        /// Fee in UNC [default: the chain's minimum].
        #[arg(long)]
        fee: Option<String>,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// Show a registered chip.
    Show {
        chip_id: String,
        #[command(flatten)]
        common: Common,
    },
    /// List registered chips, optionally by owner, model or status.
    List {
        /// Owner address or key name.
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        model: Option<String>,
        /// online, unresponsive or revoked.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 0)]
        start: u64,
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Give a chip to another owner.
    Transfer {
        #[arg(long)]
        from: String,
        #[arg(long)]
        chip_id: String,
        /// New owner: address or key name.
        #[arg(long)]
        to: String,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a chip from the registry.
    Deregister {
        #[arg(long)]
        from: String,
        #[arg(long)]
        chip_id: String,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// The model table, pinned vendor roots and governance.
    Models {
        #[command(flatten)]
        common: Common,
    },
}

/// An emulated chip on disk (the miner's software backend reads the same files).
pub use unet_miner::ChipFile;

pub fn run(command: ChipCommand) -> Result<()> {
    let json_mode = match &command {
        ChipCommand::Provision { common, .. }
        | ChipCommand::Register { common, .. }
        | ChipCommand::Show { common, .. }
        | ChipCommand::List { common, .. }
        | ChipCommand::Transfer { common, .. }
        | ChipCommand::Deregister { common, .. }
        | ChipCommand::Models { common } => common.json,
    };
    crate::wallet::run_command(json_mode, dispatch(command))
}

async fn dispatch(command: ChipCommand) -> Result<()> {
    match command {
        ChipCommand::Provision {
            out,
            model,
            serial,
            curve,
            gpu,
            common,
        } => {
            let curve = match curve.as_str() {
                "p256" | "P-256" => Curve::P256,
                "p384" | "P-384" => Curve::P384,
                other => bail!("--curve must be p256 or p384, not {other:?}"),
            };
            let chip = crate::miner::emulated_chip(&model, serial.as_deref(), curve, gpu)?;
            chip.save(&out)?;
            let v = json!({"chip_id": chip.chip_id, "model": chip.model, "serial": chip.serial, "file": out});
            common.print(&v, || {
                format!(
                    "manufactured chip {} ({} {}) -> {}",
                    chip.chip_id,
                    chip.model,
                    chip.serial,
                    out.display()
                )
            });
            Ok(())
        }
        ChipCommand::Register {
            from,
            chip,
            fee,
            timeout,
            passphrase,
            common,
        } => {
            let file = ChipFile::load(&chip)?;
            let key = common.unlock(&from, &passphrase)?;
            let owner = key.public_key();
            let client = common.client();
            let fee = fee
                .map(|f| parse_unc(&f).map_err(|e| anyhow!("--fee: {e}")))
                .transpose()?;
            // The node gives the anchor; the nonce is computed here for our own address, so
            // a lying node cannot have the chip sign a registration to someone else.
            let status = client.status().await.map_err(|e| node_error(&common, e))?;
            let anchor =
                unet_miner::register::fetch_anchor(&client, status.chain_id, &owner).await?;
            if anchor.node_disagrees {
                eprintln!(
                    "warning: {} handed out a registration nonce that is not the one for {}; \
                     signing the nonce computed here instead",
                    client.url(),
                    hexser::to_hex(&owner)
                );
            }
            let (nonce, anchor_height) = (anchor.nonce, anchor.height);
            let evidence = file.registration_evidence(&nonce)?;
            let payload = Payload::RegisterChip {
                anchor_height,
                evidence,
            };
            let hash = submit::send_payload(&common, &client, &key, fee, payload).await?;
            finish(&common, &client, &hash, timeout, Some(&file.chip_id)).await
        }
        ChipCommand::Show { chip_id, common } => {
            let id = unet_client::api::hex::decode32(&chip_id)
                .map_err(|e| anyhow!("chip id {chip_id:?}: {e}"))?;
            let v = common
                .client()
                .chip(&id)
                .await
                .map_err(|e| node_error(&common, e))?;
            let v = serde_json::to_value(v)?;
            common.print(&v, || describe_chip(&v));
            Ok(())
        }
        ChipCommand::List {
            owner,
            model,
            status,
            start,
            limit,
            common,
        } => {
            let owner = owner.map(|o| common.resolve(&o)).transpose()?;
            let status = status
                .map(|s| serde_json::from_value(json!(s)))
                .transpose()
                .map_err(|e| anyhow!("--status: {e}"))?;
            let filter = ListChipsParams {
                owner,
                model,
                status,
                page: PageParams::new(Some(start), Some(limit)),
            };
            let v = common
                .client()
                .chips(filter)
                .await
                .map_err(|e| node_error(&common, e))?;
            let v = serde_json::to_value(v)?;
            common.print(&v, || {
                let chips = v["chips"].as_array().cloned().unwrap_or_default();
                let mut out = format!(
                    "{} chip(s) shown, {} registered in total\n",
                    chips.len(),
                    text(&v["total_registered"])
                );
                for c in &chips {
                    out.push_str(&format!(
                        "{}  {:<8} {:<12} {:<13} owner {}\n",
                        text(&c["chip_id"]),
                        text(&c["model"]),
                        text(&c["status"]),
                        text(&c["kind"]),
                        text(&c["owner"])
                    ));
                }
                if !v["next"].is_null() {
                    out.push_str(&format!("more: --start {}\n", text(&v["next"])));
                }
                out
            });
            Ok(())
        }
        ChipCommand::Transfer {
            from,
            chip_id,
            to,
            timeout,
            passphrase,
            common,
        } => {
            let to = common.resolve(&to)?;
            let id = parse_id(&chip_id)?;
            send_simple(
                &common,
                &from,
                &passphrase,
                timeout,
                Payload::TransferChip { chip_id: id, to },
                &chip_id,
            )
            .await
        }
        ChipCommand::Deregister {
            from,
            chip_id,
            timeout,
            passphrase,
            common,
        } => {
            let id = parse_id(&chip_id)?;
            send_simple(
                &common,
                &from,
                &passphrase,
                timeout,
                Payload::DeregisterChip { chip_id: id },
                &chip_id,
            )
            .await
        }
        ChipCommand::Models { common } => {
            let v = common
                .client()
                .models()
                .await
                .map_err(|e| node_error(&common, e))?;
            let v = serde_json::to_value(v)?;
            common.print(&v, || {
                let mut out = String::from("model        rated compute (TOPS)\n");
                for m in v["models"].as_array().cloned().unwrap_or_default() {
                    let milli = m["compute_milli_tops"].as_u64().unwrap_or(0);
                    out.push_str(&format!(
                        "{:<12} {}.{:03}\n",
                        text(&m["name"]),
                        milli / 1000,
                        milli % 1000
                    ));
                }
                for p in v["firmware_policies"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    out.push_str(&format!(
                        "firmware policy {}: driver >= {}, VBIOS >= {}, {} measurement(s) pinned\n",
                        text(&p["architecture"]),
                        p["min_driver"].as_str().unwrap_or("any"),
                        p["min_vbios"].as_str().unwrap_or("any"),
                        p["measurements"].as_array().map_or(0, Vec::len)
                    ));
                }
                out.push_str(&format!(
                    "chips registered: {}\n",
                    text(&v["chips_registered"])
                ));
                out
            });
            Ok(())
        }
    }
}

fn parse_id(s: &str) -> Result<[u8; 32]> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("chip id must be 64 hex digits"))
}

async fn send_simple(
    common: &Common,
    from: &str,
    passphrase: &Passphrase,
    timeout: u64,
    payload: Payload,
    chip_id: &str,
) -> Result<()> {
    let key = common.unlock(from, passphrase)?;
    let client = common.client();
    let hash = submit::send_payload(common, &client, &key, None, payload).await?;
    finish(common, &client, &hash, timeout, Some(chip_id)).await
}

/// Waits for finality, prints the receipt (and the chip as it now is), fails on a failed receipt.
async fn finish(
    common: &Common,
    client: &unet_client::Client,
    hash: &str,
    timeout: u64,
    chip_id: Option<&str>,
) -> Result<()> {
    let v = submit::wait_final(common, client, hash, timeout).await?;
    let mut out = json!({"hash": hash, "height": v["height"], "receipt": v["receipt"]});
    let ok = v["receipt"]["status"] == "ok";
    if let (true, Some(id)) = (ok, chip_id) {
        out["chip"] = match unet_client::api::hex::decode32(id) {
            Ok(id) => client
                .chip(&id)
                .await
                .ok()
                .and_then(|c| serde_json::to_value(c).ok())
                .unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
    }
    common.print(&out, || {
        let mut s = format!(
            "transaction {hash} finalized at height {}: {}",
            text(&v["height"]),
            crate::wallet::describe_receipt(&v["receipt"])
        );
        if !out["chip"].is_null() {
            s.push('\n');
            s.push_str(&describe_chip(&out["chip"]));
        }
        s
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!(Reported(format!(
            "transaction {hash} failed: {}",
            crate::wallet::describe_receipt(&v["receipt"])
        ))))
    }
}

fn describe_chip(c: &Value) -> String {
    let milli = c["compute_milli_tops"].as_u64().unwrap_or(0);
    format!(
        "chip      {}\nmodel     {} ({}.{:03} TOPS)\nstatus    {}\nowner     {}\nkind      {}\nserial    {}\nsince     height {}",
        text(&c["chip_id"]), text(&c["model"]), milli / 1000, milli % 1000, text(&c["status"]),
        text(&c["owner"]), text(&c["kind"]), text(&c["serial"]), text(&c["registered_height"]),
    )
}
