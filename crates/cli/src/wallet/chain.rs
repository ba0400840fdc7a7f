//! Read-only commands: `balance`, `tx`, `block`, `status`, `supply`, `proof`.

use super::{node_error, text, unc_field, Common, Reported};
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use unet_client::VerifyProof;
use unet_keystore::looks_like_address;
use unet_types::hexser::to_hex;

pub async fn balance(common: &Common, account: &str) -> Result<()> {
    let address = common.resolve(account)?;
    let v = common
        .client()
        .account(&address)
        .await
        .map_err(|e| node_error(common, e))?;
    let v = serde_json::to_value(v)?;
    common.print(&v, || {
        format!(
            "address  {}\nbalance  {}\nnonce    {}\nheight   {} (finalized)",
            text(&v["address"]),
            unc_field(&v["balance"]),
            text(&v["nonce"]),
            text(&v["height"]),
        )
    });
    Ok(())
}

/// Checks a transaction or block hash given on the command line.
fn check_hash(s: &str) -> Result<String> {
    if !looks_like_address(s) {
        bail!("{s:?} is not a hash: expected 64 hex digits");
    }
    Ok(s.strip_prefix("0x").unwrap_or(s).to_ascii_lowercase())
}

pub async fn tx(common: &Common, hash: &str) -> Result<()> {
    let hash = unet_types::hexser::from_hex(&check_hash(hash)?).map_err(|e| anyhow!(e))?;
    let v = common
        .client()
        .transaction(&hash)
        .await
        .map_err(|e| node_error(common, e))?;
    let v = serde_json::to_value(&v)?;
    common.print(&v, || describe_tx(&v));
    Ok(())
}

/// Text form of a `unet_getTransaction` result.
pub fn describe_tx(v: &Value) -> String {
    let mut s = format!("transaction  {}\n", text(&v["hash"]));
    match v["status"].as_str() {
        Some("finalized") => {
            let r = &v["receipt"];
            s += &format!(
                "status       finalized at height {} (block {})\n",
                text(&v["height"]),
                text(&v["block"])
            );
            s += &format!("result       {}\n", describe_result(r));
            s += &format!(
                "fee          {} burned, {} to the proposer\n",
                unc_field(&r["fee_burned"]),
                unc_field(&r["fee_to_proposer"])
            );
        }
        Some("pending") => {
            s += "status       pending (in the mempool, not yet finalized)\n";
            s += &describe_transfer(&v["transaction"]);
        }
        Some("rejected") => {
            s += &format!(
                "status       rejected ({}): {}\n",
                text(&v["check"]),
                text(&v["reason"])
            );
        }
        _ => s += &format!("status       {}\n", text(&v["status"])),
    }
    s
}

/// "ok" or "failed (code): reason" from a receipt.
pub fn describe_result(r: &Value) -> String {
    match r["status"].as_str() {
        Some("ok") => "ok".into(),
        Some("failed") => format!("FAILED ({}): {}", text(&r["code"]), text(&r["reason"])),
        _ => text(&r["status"]),
    }
}

fn describe_transfer(t: &Value) -> String {
    let mut s = format!(
        "kind         {}\nfrom         {}\n",
        text(&t["kind"]),
        text(&t["sender"])
    );
    if t["kind"] == "transfer" {
        s += &format!(
            "to           {}\namount       {}\n",
            text(&t["to"]),
            unc_field(&t["amount"])
        );
    }
    s + &format!(
        "fee          {}\nnonce        {}\n",
        unc_field(&t["fee"]),
        text(&t["nonce"])
    )
}

/// "1.5 UNC" from a base-unit JSON string.
fn unc_short(v: &Value) -> String {
    match v.as_str().and_then(|s| s.parse::<u128>().ok()) {
        Some(a) => format!("{} UNC", unet_types::amount::format_unc(a)),
        None => text(v),
    }
}

pub async fn block(common: &Common, which: &str) -> Result<()> {
    let param = if which == "latest" {
        json!("latest")
    } else if let Ok(h) = which.parse::<u64>() {
        json!(h)
    } else if looks_like_address(which) {
        json!(check_hash(which)?)
    } else {
        bail!("{which:?} is not a block: expected a height, a block hash or `latest`");
    };
    let block = serde_json::from_value(param).map_err(|e| anyhow!("{which:?}: {e}"))?;
    let v = common
        .client()
        .get_block(block, true)
        .await
        .map_err(|e| node_error(common, e))?;
    let v = serde_json::to_value(v)?;
    common.print(&v, || {
        let mut s = format!(
            "block        {}\nhash         {}\nparent       {}\ntimestamp    {} ms\n\
             proposer     {}\nview         {} (epoch {})\nstate root   {}\ntx root      {}\n\
             transactions {}\n",
            text(&v["height"]),
            text(&v["hash"]),
            text(&v["parent"]),
            text(&v["timestamp_ms"]),
            text(&v["proposer"]),
            text(&v["view"]),
            text(&v["epoch"]),
            text(&v["state_root"]),
            text(&v["tx_root"]),
            text(&v["tx_count"]),
        );
        let txs = v["transactions"].as_array().cloned().unwrap_or_default();
        let receipts = v["receipts"].as_array().cloned().unwrap_or_default();
        for (i, t) in txs.iter().enumerate() {
            let result = receipts.get(i).map(describe_result).unwrap_or_default();
            let what = if t["kind"] == "transfer" {
                format!(
                    "{} -> {} {}",
                    text(&t["sender"]),
                    text(&t["to"]),
                    unc_short(&t["amount"])
                )
            } else {
                format!("{} by {}", text(&t["kind"]), text(&t["sender"]))
            };
            s += &format!(
                "  {} {what} (fee {}, nonce {}) {result}\n",
                text(&t["hash"]),
                unc_short(&t["fee"]),
                text(&t["nonce"]),
            );
        }
        s
    });
    Ok(())
}

pub async fn status(common: &Common) -> Result<()> {
    let v = common
        .client()
        .status()
        .await
        .map_err(|e| node_error(common, e))?;
    let v = serde_json::to_value(v)?;
    common.print(&v, || {
        let p = &v["params"];
        format!(
            "node         {}\nchain        {} (id {})\ngenesis      {}\n\
             finalized    height {} (block {})\nstate root   {}\nhead         height {}\n\
             sync         {}\nvalidators   {} ({} peers connected)\nmempool      {} pending\n\
             min fee      {}\nfee burn     {} bps\nblock time   {} ms",
            common.rpc,
            text(&v["chain_name"]),
            text(&v["chain_id"]),
            text(&v["genesis_hash"]),
            text(&v["finalized_height"]),
            text(&v["finalized_hash"]),
            text(&v["finalized_state_root"]),
            text(&v["head_height"]),
            text(&v["sync"]),
            text(&v["validators"]),
            text(&v["peers"]),
            text(&v["mempool"]),
            unc_field(&p["min_fee"]),
            text(&p["fee_burn_bps"]),
            text(&p["block_time_ms"]),
        )
    });
    Ok(())
}

pub async fn supply(common: &Common) -> Result<()> {
    let v = common
        .client()
        .supply()
        .await
        .map_err(|e| node_error(common, e))?;
    let v = serde_json::to_value(v)?;
    common.print(&v, || {
        let mut s = format!("height       {}\n", text(&v["height"]));
        for f in [
            "max_supply",
            "genesis",
            "minted",
            "burned",
            "total",
            "circulating",
            "escrowed",
        ] {
            s += &format!("{f:<12} {}\n", unc_field(&v[f]));
        }
        s
    });
    Ok(())
}

pub async fn proof(common: &Common, account: &str) -> Result<()> {
    let address = common.resolve(account)?;
    let client = common.client();
    let proof = client
        .proof(&address)
        .await
        .map_err(|e| node_error(common, e))?;
    let mut out = json!({
        "address": to_hex(&proof.address),
        "height": proof.height,
        "block": to_hex(&proof.block),
        "state_root": to_hex(&proof.state_root),
    });
    let verified = proof.verify();
    // The root the proof is checked against must be the one in the finalized block header.
    let header = match client.block(proof.height).await {
        Ok(b) => Ok(b),
        Err(e) if e.is_not_found() => Err("no block header at that height"),
        Err(e) => return Err(node_error(common, e)),
    };
    let header_matches = header
        .as_ref()
        .ok()
        .map(|b| b.state_root == proof.state_root && b.hash == proof.block);
    out["header_matches"] = json!(header_matches);
    let failure = match (&verified, header_matches) {
        (Err(e), _) => Some(e.to_string()),
        (Ok(_), Some(false)) => Some(format!(
            "the proof's state root is not the state root of finalized block {}",
            proof.height
        )),
        _ => None,
    };
    out["verified"] = json!(failure.is_none());
    match &verified {
        Ok(Some(a)) => {
            out["account"] = json!({
                "balance": a.balance.to_string(),
                "balance_unc": unet_types::amount::format_unc(a.balance),
                "nonce": a.nonce,
            });
        }
        Ok(None) => out["account"] = Value::Null,
        Err(_) => {}
    }
    if let Some(reason) = &failure {
        out["reason"] = json!(reason);
    }
    common.print(&out, || {
        let mut s = match &failure {
            None => format!("proof for {}: VERIFIED\n", proof.address),
            Some(r) => format!("proof for {}: FAILED: {r}\n", proof.address),
        };
        match &verified {
            Ok(Some(a)) => {
                s += &format!(
                    "balance      {}\nnonce        {}\n",
                    super::unc(a.balance),
                    a.nonce
                );
            }
            Ok(None) => s += "account      proven absent (never funded)\n",
            Err(_) => {}
        }
        s += &format!(
            "height       {}\nblock        {}\nstate root   {}\nheader       {}\n",
            proof.height,
            proof.block,
            proof.state_root,
            match (header_matches, &header) {
                (Some(true), _) => "the root matches the finalized block header".to_string(),
                (Some(false), _) => "MISMATCH with the finalized block header".to_string(),
                (None, Err(why)) => format!("not checked ({why})"),
                (None, Ok(_)) => "not checked".to_string(),
            }
        );
        s
    });
    match failure {
        Some(r) => Err(anyhow!(Reported(format!("proof verification failed: {r}")))),
        None => Ok(()),
    }
}
