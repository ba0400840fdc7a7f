//! Submitting a signed transaction with the next free nonce, and waiting for its result.
//!
//! Nonce: the node's mempool holds at most one transaction per (sender, nonce) and refuses
//! another at the same fee or lower with `data.check = "duplicate"`; on that answer the next
//! nonce is tried, so transactions sent while earlier ones are pending queue up behind them.
//! If a block finalizes meanwhile (`nonce_too_low`), the account is read again.

use super::{node_error, Common};
use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::time::Duration;
use unet_client::{api::chain::TxState, Client, ClientError};
use unet_types::{Address, SignedTx};

/// How many nonces past the finalized one are tried before giving up.
const MAX_NONCE_TRIES: u32 = 64;

/// Sends `sign(nonce)` starting at `nonce`; unless `pinned`, moves to the next nonce when the
/// node says a pending transaction holds it. Returns the hash and the nonce used.
pub async fn send_with_nonce_retry(
    common: &Common,
    client: &Client,
    sender: &Address,
    mut nonce: u64,
    pinned: bool,
    sign: impl Fn(u64) -> SignedTx,
) -> Result<(String, u64)> {
    let mut tries = 0;
    loop {
        let stx = sign(nonce);
        let err = match client.send_transaction(&stx).await {
            Ok(hash) => return Ok((hex::encode(hash), nonce)),
            Err(e) => e,
        };
        let check = err.check().unwrap_or_default().to_string();
        tries += 1;
        if pinned || tries >= MAX_NONCE_TRIES {
            return Err(refused(common, err, &check));
        }
        match check.as_str() {
            // Another transaction of this sender already holds this nonce in the mempool.
            "duplicate" => nonce += 1,
            // A block consumed this nonce since we read the account.
            "nonce_too_low" => {
                let now = client
                    .account(sender)
                    .await
                    .map_err(|e| node_error(common, e))?;
                nonce = (nonce + 1).max(now.nonce);
            }
            _ => return Err(refused(common, err, &check)),
        }
    }
}

/// Waits until `hash` is finalized; errors if it was rejected or does not finalize in time.
pub async fn wait_final(
    common: &Common,
    client: &Client,
    hash: &str,
    timeout: u64,
) -> Result<Value> {
    let digest = unet_types::hexser::from_hex(hash)
        .map_err(|e| anyhow!("transaction hash {hash:?}: {e}"))?;
    let v = client
        .wait_finalized(&digest, Duration::from_secs(timeout))
        .await
        .map_err(|e| match e {
            ClientError::Timeout(_) => anyhow!(
                "transaction {hash} was not finalized within {timeout}s; it may still be pending \
                 (`unet tx {hash}`)"
            ),
            e => node_error(common, e),
        })?;
    if let TxState::Rejected { check, reason } = &v.state {
        bail!("transaction {hash} was rejected ({check}): {reason}");
    }
    Ok(serde_json::to_value(&v)?)
}

pub fn refused(common: &Common, err: ClientError, check: &str) -> anyhow::Error {
    let hint = match check {
        "nonce_gap" => " (too many pending transactions from this account, or --nonce is ahead)",
        "nonce_too_low" => " (that nonce was already used)",
        "duplicate" => " (a pending transaction already uses that nonce with this fee or more)",
        _ => "",
    };
    let e = node_error(common, err);
    if hint.is_empty() {
        e
    } else {
        e.context(format!("transaction refused{hint}"))
    }
}

/// Signs `payload` from `key` with the account's next free nonce (fee: `fee`, or the chain's
/// minimum) and submits it. Returns the transaction hash.
pub async fn send_payload(
    common: &Common,
    client: &Client,
    key: &unet_types::PrivateKey,
    fee: Option<u128>,
    payload: unet_types::Payload,
) -> Result<String> {
    use commonware_cryptography::Signer;
    let sender = key.public_key();
    let status = client.status().await.map_err(|e| node_error(common, e))?;
    let account = client
        .account(&sender)
        .await
        .map_err(|e| node_error(common, e))?;
    let fee = fee.unwrap_or(status.params.min_fee);
    let sign = |n: u64| {
        unet_types::Transaction {
            chain_id: status.chain_id,
            sender: sender.clone(),
            nonce: n,
            fee,
            payload: payload.clone(),
        }
        .sign(key)
    };
    let start = account.pending_nonce;
    let (hash, _) = send_with_nonce_retry(common, client, &sender, start, false, sign).await?;
    Ok(hash)
}

/// Signs `payload` with the keystore key `from`, submits it, waits for finality and prints the
/// receipt; a failed receipt is an error (already reported). The common path of every command
/// that sends one transaction (`unet validator`, `unet market`).
pub async fn send_and_report(
    common: &Common,
    from: &str,
    passphrase: &super::Passphrase,
    timeout: u64,
    payload: unet_types::Payload,
) -> Result<()> {
    let key = common.unlock(from, passphrase)?;
    let client = common.client();
    let hash = send_payload(common, &client, &key, None, payload).await?;
    let v = wait_final(common, &client, &hash, timeout).await?;
    let receipt = super::describe_receipt(&v["receipt"]);
    common.print(
        &serde_json::json!({"hash": hash, "height": v["height"], "receipt": v["receipt"]}),
        || {
            format!(
                "transaction {hash} finalized at height {}: {receipt}",
                super::text(&v["height"])
            )
        },
    );
    if v["receipt"]["status"] == "ok" {
        Ok(())
    } else {
        Err(anyhow!(super::Reported(format!(
            "transaction {hash} failed: {receipt}"
        ))))
    }
}

/// One API call, with the node's error explained.
pub async fn request<C: unet_client::api::Call>(
    common: &Common,
    params: C::Params,
) -> Result<Value> {
    let result = common
        .client()
        .request::<C>(params)
        .await
        .map_err(|e| node_error(common, e))?;
    Ok(serde_json::to_value(result)?)
}
