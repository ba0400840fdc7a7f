//! `unet transfer`: sign a transfer with a keystore key, submit it, wait for finality.
//!
//! Nonce: the account's `pending_nonce` from `unet_getAccount` (after its pending transactions
//! on that node). The node's mempool holds at
//! most one transaction per (sender, nonce) and refuses another one at the same fee or lower
//! with `data.check = "duplicate"`; on that answer the next nonce is tried, so transfers sent
//! while earlier ones are still pending queue up behind them. If a block finalizes meanwhile
//! (`nonce_too_low`), the account is read again. `--nonce N` pins the nonce instead (with a
//! higher fee this deliberately replaces a pending transaction of that nonce).

use super::{chain::describe_result, node_error, unc, unc_field, Common, Passphrase, Reported};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use commonware_codec::Encode;
use commonware_cryptography::Signer;
use serde_json::{json, Value};
use unet_types::{
    amount::{format_unc, parse_unc},
    hexser, Payload, Transaction,
};

#[derive(Args)]
pub struct TransferArgs {
    /// Sending key (its name in the keystore).
    #[arg(long)]
    pub from: String,
    /// Recipient: an address (64 hex digits) or the name of a key in the keystore.
    #[arg(long)]
    pub to: String,
    /// Amount in UNC, up to 18 decimals (e.g. 1.5).
    #[arg(long)]
    pub amount: String,
    /// Fee in UNC [default: the chain's minimum fee].
    #[arg(long)]
    pub fee: Option<String>,
    /// Use this nonce instead of the next free one.
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Return once the node has accepted the transaction, without waiting for finality.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the signed transaction (hex, as `unet_sendTransaction` takes it) without sending.
    #[arg(long, conflicts_with = "no_wait")]
    pub sign_only: bool,
    /// Seconds to wait for finality.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    #[command(flatten)]
    pub passphrase: Passphrase,
    #[command(flatten)]
    pub common: Common,
}

pub async fn run(args: TransferArgs) -> Result<()> {
    let common = &args.common;
    let amount = parse_unc(&args.amount).map_err(|e| anyhow!("--amount: {e}"))?;
    if amount == 0 {
        bail!("--amount must be greater than zero");
    }
    let fee = match &args.fee {
        Some(f) => Some(parse_unc(f).map_err(|e| anyhow!("--fee: {e}"))?),
        None => None,
    };
    let key = common.unlock(&args.from, &args.passphrase)?;
    let sender = key.public_key();
    let to = common.resolve(&args.to)?;
    let client = common.client();
    let status = client.status().await.map_err(|e| node_error(common, e))?;
    let min_fee = status.params.min_fee;
    let fee = fee.unwrap_or(min_fee);
    if fee < min_fee {
        bail!(
            "--fee {} is below the chain's minimum fee {}",
            format_unc(fee),
            unc(min_fee)
        );
    }
    let account = client
        .account(&sender)
        .await
        .map_err(|e| node_error(common, e))?;
    let needed = amount
        .checked_add(fee)
        .ok_or_else(|| anyhow!("amount plus fee overflows"))?;
    if account.balance < needed {
        bail!(
            "insufficient balance: {:?} has {}, the transfer needs {} (amount + fee)",
            args.from,
            unc(account.balance),
            unc(needed)
        );
    }
    let nonce = args.nonce.unwrap_or(account.pending_nonce);
    let sign = |nonce: u64| {
        Transaction {
            chain_id: status.chain_id,
            sender: sender.clone(),
            nonce,
            fee,
            payload: Payload::Transfer {
                to: to.clone(),
                amount,
            },
        }
        .sign(&key)
    };
    if args.sign_only {
        let stx = sign(nonce);
        let hash = hex::encode(stx.hash());
        let raw = hex::encode(stx.encode());
        let out = json!({"tx": raw, "hash": hash, "nonce": nonce, "fee": fee.to_string()});
        common.print(&out, || raw.clone());
        if !common.json {
            eprintln!(
                "signed {hash} (nonce {nonce}, fee {}); not sent",
                format_unc(fee)
            );
        }
        return Ok(());
    }
    let (hash, nonce) = super::submit::send_with_nonce_retry(
        common,
        &client,
        &sender,
        nonce,
        args.nonce.is_some(),
        sign,
    )
    .await?;
    let mut out = json!({
        "hash": hash,
        "from": hexser::to_hex(&sender),
        "to": hexser::to_hex(&to),
        "amount": amount.to_string(),
        "fee": fee.to_string(),
        "nonce": nonce,
    });
    if !common.json {
        eprintln!("submitted {hash} (nonce {nonce}, fee {})", format_unc(fee));
    }
    if args.no_wait {
        out["status"] = json!("pending");
        common.print(&out, || {
            format!("transaction {hash} is pending; follow it with `unet tx {hash}`")
        });
        return Ok(());
    }
    let v = super::submit::wait_final(common, &client, &hash, args.timeout).await?;
    out["status"] = v["status"].clone();
    out["height"] = v["height"].clone();
    out["block"] = v["block"].clone();
    out["receipt"] = v["receipt"].clone();
    let ok = v["receipt"]["status"] == "ok";
    common.print(&out, || describe(&out));
    if ok {
        Ok(())
    } else {
        Err(anyhow!(Reported(format!(
            "transaction {hash} was finalized but failed: {}",
            describe_result(&v["receipt"])
        ))))
    }
}

fn describe(v: &Value) -> String {
    format!(
        "transaction  {}\nstatus       {} at height {} (block {})\nresult       {}\n\
         from         {}\nto           {}\namount       {}\nfee          {}\nnonce        {}",
        super::text(&v["hash"]),
        super::text(&v["status"]),
        super::text(&v["height"]),
        super::text(&v["block"]),
        describe_result(&v["receipt"]),
        super::text(&v["from"]),
        super::text(&v["to"]),
        unc_field(&v["amount"]),
        unc_field(&v["fee"]),
        super::text(&v["nonce"]),
    )
}
