//! `unet market ...`: offer chips for rent, find offers, rent, top up, close, list leases.

use crate::wallet::{submit, text, Common, Passphrase, Reported};
use anyhow::{anyhow, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use unet_client::api::{
    calls,
    params::{LeaseParams, ListLeasesParams, ListOffersParams, PageParams},
};
use unet_types::{
    amount::{format_unc, parse_unc},
    chip::ChipId,
    market::{Capabilities, OfferTerms},
    Payload,
};

#[derive(Subcommand)]
pub enum MarketCommand {
    /// Offer chips you own (all Online) for rent, or replace the terms of offer `--id`.
    Offer {
        /// Provider account (name in the keystore); must own the chips.
        #[arg(long)]
        from: String,
        /// Update this offer instead of creating one.
        #[arg(long)]
        id: Option<u64>,
        /// Chip id (hex), repeatable.
        #[arg(long = "chip", required = true)]
        chips: Vec<String>,
        /// Price per chip per block, in UNC (e.g. 0.0001).
        #[arg(long)]
        price: String,
        #[arg(long, default_value_t = 1)]
        min_blocks: u64,
        #[arg(long, default_value_t = 864_000)]
        max_blocks: u64,
        /// Where renters reach your agent (http:// or https:// URL).
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value = "")]
        model: String,
        #[arg(long, default_value_t = 0)]
        memory_mib: u64,
        /// Free-text tag, repeatable (at most 8).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// Withdraw one of your offers (open leases run on).
    Withdraw {
        #[arg(long)]
        from: String,
        #[arg(long)]
        id: u64,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// List offers, filtered by model, price (UNC per chip per block) and free chips.
    Offers {
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        max_price: Option<String>,
        #[arg(long)]
        min_free: Option<u64>,
        /// First offer id to look at (paging).
        #[arg(long)]
        start: Option<u64>,
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Rent chips of an offer, escrowing a deposit.
    Rent {
        #[arg(long)]
        from: String,
        #[arg(long)]
        offer: u64,
        /// Chip id (hex), repeatable.
        #[arg(long = "chip", required = true)]
        chips: Vec<String>,
        /// Deposit in UNC (at least the minimum duration and the first settlement period).
        #[arg(long)]
        deposit: String,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// Add to the deposit of your lease.
    Topup {
        #[arg(long)]
        from: String,
        #[arg(long)]
        lease: u64,
        /// Amount in UNC.
        #[arg(long)]
        amount: String,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// Close a lease (as its renter or its provider).
    Close {
        #[arg(long)]
        from: String,
        #[arg(long)]
        lease: u64,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        common: Common,
    },
    /// Show lease `--id`, or the open leases of a renter or a provider (address or key name).
    Leases {
        #[arg(long)]
        id: Option<u64>,
        #[arg(long)]
        renter: Option<String>,
        #[arg(long)]
        provider: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Check a job result's receipt (a file from `unet job ... --out FILE`): it covers
    /// exactly this job and result on this chain and lease, and the leased chip's device key
    /// as registered on chain signed it.
    VerifyReceipt {
        /// The saved job (JSON with `job_id`, `lease_id`, `result_json`, `receipt`).
        file: std::path::PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

pub fn run(command: MarketCommand) -> Result<()> {
    let json_mode = match &command {
        MarketCommand::Offer { common, .. }
        | MarketCommand::Withdraw { common, .. }
        | MarketCommand::Offers { common, .. }
        | MarketCommand::Rent { common, .. }
        | MarketCommand::Topup { common, .. }
        | MarketCommand::Close { common, .. }
        | MarketCommand::Leases { common, .. }
        | MarketCommand::VerifyReceipt { common, .. } => common.json,
    };
    crate::wallet::run_command(json_mode, dispatch(command))
}

fn chip_ids(chips: &[String]) -> Result<Vec<ChipId>> {
    chips
        .iter()
        .map(|c| {
            let b =
                hex::decode(c.trim_start_matches("0x")).map_err(|e| anyhow!("--chip {c}: {e}"))?;
            b.try_into()
                .map_err(|_| anyhow!("--chip {c}: a chip id is 32 bytes"))
        })
        .collect()
}

fn unc_arg(name: &str, v: &str) -> Result<u128> {
    parse_unc(v).map_err(|e| anyhow!("--{name}: {e}"))
}

fn unc(v: &Value) -> String {
    text(v)
        .parse::<u128>()
        .map(format_unc)
        .unwrap_or_else(|_| text(v))
}

fn lease_line(l: &Value) -> String {
    format!(
        "lease {} ({}{}): offer {}, {} chip(s), {} UNC/block, blocks {}..{}, paid until {}, deposit {} UNC, paid {} UNC, owed now {} UNC, endpoint {}",
        text(&l["id"]),
        text(&l["status"]),
        l["close_reason"]
            .as_str()
            .map(|r| format!(": {r} at {}", text(&l["closed_at"])))
            .unwrap_or_default(),
        text(&l["offer_id"]),
        l["chips"].as_array().map_or(0, Vec::len),
        unc(&l["price_per_block"]),
        text(&l["start"]),
        text(&l["end"]),
        text(&l["paid_until"]),
        unc(&l["deposit"]),
        unc(&l["total_paid"]),
        unc(&l["owed_now"]),
        text(&l["endpoint"]),
    )
}

async fn dispatch(command: MarketCommand) -> Result<()> {
    match command {
        MarketCommand::VerifyReceipt { file, common } => verify_receipt(&file, &common).await,
        MarketCommand::Offer {
            from,
            id,
            chips,
            price,
            min_blocks,
            max_blocks,
            endpoint,
            model,
            memory_mib,
            tags,
            timeout,
            passphrase,
            common,
        } => {
            let terms = OfferTerms {
                chips: chip_ids(&chips)?,
                price_per_block: unc_arg("price", &price)?,
                min_blocks,
                max_blocks,
                endpoint,
                capabilities: Capabilities {
                    model,
                    memory_mib,
                    tags,
                },
            };
            terms.validate().map_err(|e| anyhow!("{e}"))?;
            let payload = match id {
                Some(offer_id) => Payload::UpdateOffer { offer_id, terms },
                None => Payload::CreateOffer { terms },
            };
            submit::send_and_report(&common, &from, &passphrase, timeout, payload).await
        }
        MarketCommand::Withdraw {
            from,
            id,
            timeout,
            passphrase,
            common,
        } => {
            submit::send_and_report(
                &common,
                &from,
                &passphrase,
                timeout,
                Payload::WithdrawOffer { offer_id: id },
            )
            .await
        }
        MarketCommand::Offers {
            model,
            max_price,
            min_free,
            start,
            limit,
            common,
        } => {
            let max_price = match max_price {
                Some(p) => Some(unc_arg("max-price", &p)?),
                None => None,
            };
            let filter = ListOffersParams {
                model,
                max_price,
                min_free,
                page: PageParams::new(start, limit),
            };
            let v = submit::request::<calls::ListOffers>(&common, filter).await?;
            common.print(&v, || {
                let mut s = String::new();
                for o in v["offers"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "offer {}: {} x {} ({} MiB), {} free, {} UNC/chip/block, {}..{} blocks, {} by {}\n",
                        text(&o["id"]),
                        o["chips"].as_array().map_or(0, Vec::len),
                        text(&o["model"]),
                        text(&o["memory_mib"]),
                        o["free_chips"].as_array().map_or(0, Vec::len),
                        unc(&o["price_per_block"]),
                        text(&o["min_blocks"]),
                        text(&o["max_blocks"]),
                        text(&o["endpoint"]),
                        text(&o["provider"]),
                    ));
                }
                if let Some(n) = v["next"].as_u64() {
                    s.push_str(&format!("more: --start {n}\n"));
                }
                if s.is_empty() {
                    s.push_str("no offers\n");
                }
                s
            });
            Ok(())
        }
        MarketCommand::Rent {
            from,
            offer,
            chips,
            deposit,
            timeout,
            passphrase,
            common,
        } => {
            let payload = Payload::OpenLease {
                offer_id: offer,
                chips: chip_ids(&chips)?,
                deposit: unc_arg("deposit", &deposit)?,
            };
            submit::send_and_report(&common, &from, &passphrase, timeout, payload).await
        }
        MarketCommand::Topup {
            from,
            lease,
            amount,
            timeout,
            passphrase,
            common,
        } => {
            let payload = Payload::TopUp {
                lease_id: lease,
                amount: unc_arg("amount", &amount)?,
            };
            submit::send_and_report(&common, &from, &passphrase, timeout, payload).await
        }
        MarketCommand::Close {
            from,
            lease,
            timeout,
            passphrase,
            common,
        } => {
            submit::send_and_report(
                &common,
                &from,
                &passphrase,
                timeout,
                Payload::CloseLease { lease_id: lease },
            )
            .await
        }
        MarketCommand::Leases {
            id,
            renter,
            provider,
            common,
        } => {
            let v = match (id, renter, provider) {
                (Some(id), None, None) => {
                    submit::request::<calls::GetLease>(&common, LeaseParams { id }).await?
                }
                (None, Some(r), None) => {
                    let filter = ListLeasesParams {
                        renter: Some(common.resolve(&r)?),
                        ..Default::default()
                    };
                    submit::request::<calls::ListLeases>(&common, filter).await?
                }
                (None, None, Some(p)) => {
                    let filter = ListLeasesParams {
                        provider: Some(common.resolve(&p)?),
                        ..Default::default()
                    };
                    submit::request::<calls::ListLeases>(&common, filter).await?
                }
                _ => return Err(anyhow!("give exactly one of --id, --renter or --provider")),
            };
            common.print(&v, || match v["leases"].as_array() {
                Some(ls) if ls.is_empty() => "no open leases".into(),
                Some(ls) => ls.iter().map(lease_line).collect::<Vec<_>>().join("\n"),
                None => lease_line(&v),
            });
            Ok(())
        }
    }
}

async fn verify_receipt(file: &std::path::Path, common: &Common) -> Result<()> {
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow!("reading {}: {e}", file.display()))?;
    let view: unet_renter::job::JobView = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{} is not a saved job: {e}", file.display()))?;
    match unet_renter::client::verify_receipt(&common.client(), &view).await {
        Ok(v) => {
            let r = view.receipt.as_ref();
            common.print(
                &json!({
                    "valid": true,
                    "job_id": view.job_id,
                    "lease_id": view.lease_id,
                    "chip_id": v.chip_id,
                    "chip_kind": v.chip_kind,
                    "chain_id": r.map(|r| r.chain_id),
                    "result_hash": r.map(|r| r.result_hash.clone()),
                    "status": v.result.status,
                }),
                || {
                    format!(
                        "valid: job {} of lease {} was run by chip {} ({}), which signed its result",
                        view.job_id, view.lease_id, v.chip_id, v.chip_kind
                    )
                },
            );
            Ok(())
        }
        Err(e) => {
            common.print(&json!({"valid": false, "error": e}), || {
                format!("INVALID: {e}")
            });
            Err(anyhow!(Reported(format!("receipt does not verify: {e}"))))
        }
    }
}
