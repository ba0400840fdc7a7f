//! `unet validator ...`, `unet rewards`, `unet compute`: validator registration, committees,
//! rewards and the network's online compute.

use crate::wallet::{node_error, submit, text, Common, Passphrase};
use anyhow::{anyhow, Result};
use clap::Subcommand;
use serde_json::Value;
use unet_client::api::{
    calls,
    params::{CommitteeParams, GetRewardsParams, PageParams, MAX_PAGE},
    NoParams,
};
use unet_types::{hexser, Payload};

#[derive(Subcommand)]
pub enum ValidatorCommand {
    /// Offer the online attested compute of the sender's chips as validator weight, for the
    /// node with identity `--node-key` reachable at `--p2p` (takes effect two epochs later).
    Register {
        /// Account whose chips count (name in the keystore); pays the fee.
        #[arg(long)]
        from: String,
        /// The node's identity public key (hex; `keys/identity.key` of its home).
        #[arg(long)]
        node_key: String,
        /// The node's p2p address (ip:port).
        #[arg(long)]
        p2p: String,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// Stop being considered for committees.
    Deregister {
        #[arg(long)]
        from: String,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// Registered validators and their online compute.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// The committee of an epoch (default: the current one).
    Committee {
        #[arg(long)]
        epoch: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
}

pub fn run(command: ValidatorCommand) -> Result<()> {
    let json_mode = match &command {
        ValidatorCommand::Register { common, .. }
        | ValidatorCommand::Deregister { common, .. }
        | ValidatorCommand::List { common }
        | ValidatorCommand::Committee { common, .. } => common.json,
    };
    crate::wallet::run_command(json_mode, dispatch(command))
}

async fn dispatch(command: ValidatorCommand) -> Result<()> {
    match command {
        ValidatorCommand::Register {
            from,
            node_key,
            p2p,
            timeout,
            passphrase,
            common,
        } => {
            let node_key = hexser::from_hex(&node_key)
                .map_err(|e| anyhow!("--node-key is not a public key: {e}"))?;
            let payload = Payload::RegisterValidator {
                node_key,
                p2p_address: p2p,
            };
            submit::send_and_report(&common, &from, &passphrase, timeout, payload).await
        }
        ValidatorCommand::Deregister {
            from,
            timeout,
            passphrase,
            common,
        } => {
            submit::send_and_report(
                &common,
                &from,
                &passphrase,
                timeout,
                Payload::DeregisterValidator,
            )
            .await
        }
        ValidatorCommand::List { common } => {
            // Every page (the node returns at most 200 validators per call).
            let mut all = Vec::new();
            let mut cursor = Some(0);
            while let Some(at) = cursor {
                let page = common
                    .client()
                    .validators(PageParams::new(Some(at), Some(MAX_PAGE)))
                    .await
                    .map_err(|e| node_error(&common, e))?;
                for v in &page.validators {
                    all.push(serde_json::to_value(v)?);
                }
                cursor = page.next;
            }
            let v = serde_json::Value::Array(all);
            common.print(&v, || {
                let mut s = format!("{:<66} {:<22} {:>14}\n", "node key", "p2p", "online TOPS");
                for m in v.as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "{:<66} {:<22} {:>14}\n",
                        text(&m["node_key"]),
                        text(&m["p2p_address"]),
                        tops(&m["online_compute_milli_tops"])
                    ));
                }
                s
            });
            Ok(())
        }
        ValidatorCommand::Committee { epoch, common } => {
            let v =
                submit::request::<calls::GetCommittee>(&common, CommitteeParams { epoch }).await?;
            common.print(&v, || {
                let mut s = format!(
                    "committee of epoch {} (current {}), total weight {}\n",
                    text(&v["epoch"]),
                    text(&v["current_epoch"]),
                    text(&v["total_weight"])
                );
                for m in v["members"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "{}  {:<22} weight {}\n",
                        text(&m["node_key"]),
                        text(&m["p2p_address"]),
                        text(&m["weight"])
                    ));
                }
                s
            });
            Ok(())
        }
    }
}

fn tops(v: &Value) -> String {
    let milli: u128 = text(v).parse().unwrap_or(0);
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

/// `unet rewards`: what an owner or a chip earned.
pub fn rewards(
    owner: Option<String>,
    chip: Option<String>,
    epoch: Option<u64>,
    common: Common,
) -> Result<()> {
    crate::wallet::run_command(common.json, async move {
        let params = match (owner, chip) {
            (Some(o), None) => GetRewardsParams {
                owner: Some(common.resolve(&o)?),
                chip_id: None,
                epoch,
            },
            (None, Some(c)) => GetRewardsParams {
                owner: None,
                chip_id: Some(
                    unet_client::api::hex::decode32(&c).map_err(|e| anyhow!("--chip {c}: {e}"))?,
                ),
                epoch,
            },
            _ => return Err(anyhow!("give exactly one of --owner or --chip")),
        };
        let v = submit::request::<calls::GetRewards>(&common, params).await?;
        common.print(&v, || {
            if v.get("chip_id").is_some() {
                let mut s = format!(
                    "chip {}: total {} UNC",
                    text(&v["chip_id"]),
                    unc(&v["total_rewards"])
                );
                for r in v["recent_rewards"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "\n  epoch {:>6}: {} UNC",
                        text(&r["epoch"]),
                        unc(&r["amount"])
                    ));
                }
                s
            } else {
                format!(
                    "owner {} earned {} UNC in epoch {} (current epoch {}, epoch settled: {})",
                    text(&v["owner"]),
                    unc(&v["amount"]),
                    text(&v["epoch"]),
                    text(&v["current_epoch"]),
                    text(&v["epoch_settled"])
                )
            }
        });
        Ok(())
    })
}

/// `unet compute`: online chips and compute.
pub fn compute(common: Common) -> Result<()> {
    crate::wallet::run_command(common.json, async move {
        let v = submit::request::<calls::NetworkCompute>(&common, NoParams {}).await?;
        common.print(&v, || {
            let mut s = format!(
                "epoch {} (height {}): {} chips online, {} TOPS; epoch emission {} UNC\n",
                text(&v["epoch"]),
                text(&v["height"]),
                text(&v["online_chips"]),
                tops(&v["online_compute_milli_tops"]),
                unc(&v["epoch_emission"])
            );
            for m in v["models"].as_array().into_iter().flatten() {
                s.push_str(&format!(
                    "  {:<16} {:>6} chips {:>14} TOPS\n",
                    text(&m["model"]),
                    text(&m["online_chips"]),
                    tops(&m["online_compute"])
                ));
            }
            s
        });
        Ok(())
    })
}

fn unc(v: &Value) -> String {
    text(v)
        .parse::<u128>()
        .map(unet_types::amount::format_unc)
        .unwrap_or_else(|_| text(v))
}
