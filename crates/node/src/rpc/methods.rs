//! JSON-RPC method handlers.

use super::{code, json as view, ApiState, RpcError};
use crate::gossip;
use commonware_codec::DecodeExt;
use commonware_cryptography::Digestible;
use serde_json::{json, Value};
use unet_store::StoreContext;
use unet_types::{hexser::from_hex, keys::account_key, Digest, PublicKey, SignedTx};

type Result<T> = std::result::Result<T, RpcError>;

/// Every method this API serves.
pub const METHODS: &[&str] = &[
    "unet_status",
    "unet_getBlock",
    "unet_getAccount",
    "unet_sendTransaction",
    "unet_sendTransactions",
    "unet_getTransaction",
    "unet_supply",
    "unet_getProof",
    "unet_getChip",
    "unet_listChips",
    "unet_listModels",
    "unet_registrationNonce",
    "unet_getRewards",
    "unet_getEpochRewards",
    "unet_networkCompute",
    "unet_getCommittee",
    "unet_listValidators",
    "unet_listOffers",
    "unet_getLease",
    "unet_listLeases",
];

pub(super) async fn dispatch<E: StoreContext>(
    state: &ApiState<E>,
    method: &str,
    params: Value,
) -> Result<Value> {
    match method {
        "unet_status" => status(state).await,
        "unet_getBlock" => get_block(state, &params).await,
        "unet_getAccount" => get_account(state, &params).await,
        "unet_sendTransaction" => send_transaction(state, &params).await,
        "unet_sendTransactions" => send_transactions(state, &params).await,
        "unet_getTransaction" => get_transaction(state, &params).await,
        "unet_supply" => supply(state).await,
        "unet_getProof" => get_proof(state, &params).await,
        "unet_getChip" => super::chips::get_chip(state, &params).await,
        "unet_listChips" => super::chips::list_chips(state, &params).await,
        "unet_listModels" => super::chips::list_models(state).await,
        "unet_registrationNonce" => super::chips::registration_nonce_for(state, &params).await,
        "unet_getRewards" => super::rewards::get_rewards(state, &params).await,
        "unet_getEpochRewards" => super::rewards::get_epoch_rewards(state, &params).await,
        "unet_networkCompute" => super::rewards::network_compute(state).await,
        "unet_getCommittee" => super::rewards::get_committee(state, &params).await,
        "unet_listValidators" => super::rewards::list_validators(state, &params).await,
        "unet_listOffers" => super::market::list_offers(state, &params).await,
        "unet_getLease" => super::market::get_lease(state, &params).await,
        "unet_listLeases" => super::market::list_leases(state, &params).await,
        other => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("unknown method {other:?}; methods: {}", METHODS.join(", ")),
        )),
    }
}

/// Reads a named parameter from `{"name": ..}` or the `index`-th of `[..]`.
pub(super) fn param<'a>(params: &'a Value, name: &str, index: usize) -> Option<&'a Value> {
    match params {
        Value::Object(m) => m.get(name),
        Value::Array(a) => a.get(index),
        _ => None,
    }
}

pub(super) fn str_param<'a>(params: &'a Value, name: &str, index: usize) -> Result<&'a str> {
    match param(params, name, index) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(RpcError::params(format!(
            "{name} must be a string, got {other}"
        ))),
        None => Err(RpcError::params(format!("missing parameter {name}"))),
    }
}

pub(super) fn parse_address(s: &str) -> Result<PublicKey> {
    from_hex::<PublicKey>(s).map_err(|e| RpcError::params(format!("address: {e}")))
}

pub(super) fn parse_hash(s: &str) -> Result<Digest> {
    from_hex::<Digest>(s).map_err(|e| RpcError::params(format!("hash: {e}")))
}

async fn status<E: StoreContext>(state: &ApiState<E>) -> Result<Value> {
    let s = state.shared.status();
    let chain = state.shared.chain().await;
    let genesis = &chain.genesis;
    Ok(json!({
        "chain_id": genesis.chain_id,
        "chain_name": genesis.chain_name,
        "genesis_hash": view::hex32(&state.shared.genesis_digest),
        "head_height": s.head_height,
        "head_hash": s.head_digest.map(|d| view::hex32(&d)),
        "finalized_height": s.finalized_height,
        "finalized_hash": s.finalized_digest.map(|d| view::hex32(&d)).unwrap_or_else(|| view::hex32(&chain.applied_digest())),
        "finalized_state_root": view::hex32(&chain.root()),
        "finalized_timestamp_ms": s.finalized_timestamp,
        "epoch": unet_types::epoch::epoch_of(s.finalized_height, genesis.params.epoch_length),
        "peers": state.shared.peers,
        "validators": genesis.validators.len(),
        "mempool": state.shared.mempool.lock().expect("mempool lock").len(),
        "sync": if s.head_height > s.finalized_height + 10 { "catching_up" } else { "synced" },
        "params": genesis.params,
    }))
}

async fn get_block<E: StoreContext>(state: &ApiState<E>, params: &Value) -> Result<Value> {
    let full = param(params, "full", 1)
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let which = param(params, "block", 0)
        .or_else(|| param(params, "height", 0))
        .or_else(|| param(params, "hash", 0))
        .ok_or_else(|| {
            RpcError::params("missing parameter block (height number, hash hex, or \"latest\")")
        })?;
    let height = match which {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| RpcError::params("height must be a non-negative integer"))?,
        Value::String(s) if s == "latest" => state.shared.status().finalized_height,
        Value::String(s) if s.len() <= 20 && s.chars().all(|c| c.is_ascii_digit()) => {
            s.parse().map_err(|_| RpcError::params("bad height"))?
        }
        Value::String(s) => {
            let hash = parse_hash(s)?;
            return block_by_hash(state, &hash, full).await;
        }
        other => {
            return Err(RpcError::params(format!(
                "block must be a height or hash, got {other}"
            )))
        }
    };
    if let Some(fb) = state
        .shared
        .recent
        .lock()
        .expect("recent")
        .get(&height)
        .cloned()
    {
        return Ok(view::finalized(&fb, full));
    }
    match state.shared.block_at(height).await {
        Some(b) => Ok(view::block(&b, None, full)),
        None => Err(RpcError::new(
            code::NOT_FOUND,
            format!("no finalized block at height {height}"),
        )),
    }
}

async fn block_by_hash<E: StoreContext>(
    state: &ApiState<E>,
    hash: &Digest,
    full: bool,
) -> Result<Value> {
    let found = state
        .shared
        .recent
        .lock()
        .expect("recent")
        .values()
        .find(|fb| fb.block.digest() == *hash)
        .cloned();
    if let Some(fb) = found {
        return Ok(view::finalized(&fb, full));
    }
    if let Some(marshal) = state.shared.marshal.get() {
        if let Some(b) = marshal.get_block(hash).await {
            return Ok(view::block(b.inner(), None, full));
        }
    }
    Err(RpcError::new(
        code::NOT_FOUND,
        format!("no finalized block with hash {}", view::hex32(hash)),
    ))
}

async fn get_account<E: StoreContext>(state: &ApiState<E>, params: &Value) -> Result<Value> {
    let address = parse_address(str_param(params, "address", 0)?)?;
    let chain = state.shared.chain().await;
    let account = chain
        .account(&address)
        .await
        .map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))?;
    let mut v = view::account(&address, &account);
    v["height"] = json!(chain.applied_height());
    drop(chain);
    let pending = state
        .shared
        .mempool
        .lock()
        .expect("mempool lock")
        .next_nonce(&address, account.nonce);
    v["pending_nonce"] = json!(pending);
    Ok(v)
}

async fn send_transaction<E: StoreContext>(state: &ApiState<E>, params: &Value) -> Result<Value> {
    let raw = str_param(params, "tx", 0)?;
    let raw = raw.strip_prefix("0x").unwrap_or(raw);
    let bytes = hex::decode(raw).map_err(|e| RpcError::params(format!("tx is not hex: {e}")))?;
    let stx = match SignedTx::decode_untrusted(&bytes) {
        Ok(t) => t,
        Err(e) => return Err(tx_error(e)),
    };
    let hash = stx.hash();
    let result = gossip::admit(&state.shared, vec![stx.clone()]).await;
    match result.into_iter().next() {
        Some(Ok(_)) => {
            state.gossip.publish(stx);
            Ok(json!({"hash": view::hex32(&hash)}))
        }
        Some(Err(e)) => {
            state.remember_rejected(
                hash,
                json!({"status": "rejected", "check": e.code(), "reason": e.to_string()}),
            );
            Err(tx_error(e))
        }
        None => Err(RpcError::new(code::INTERNAL, "admission returned nothing")),
    }
}

/// Most transactions in one `unet_sendTransactions` call.
pub const MAX_SEND_BATCH: usize = 1000;

/// Admits many transactions at once (their signatures are batch-verified). Returns one entry
/// per transaction, in order: `{"hash"}` or `{"error": {"check", "message"}}`.
async fn send_transactions<E: StoreContext>(state: &ApiState<E>, params: &Value) -> Result<Value> {
    let list = match param(params, "txs", 0) {
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(RpcError::params(format!(
                "txs must be an array of hex strings, got {other}"
            )))
        }
        None => return Err(RpcError::params("missing parameter txs")),
    };
    if list.len() > MAX_SEND_BATCH {
        return Err(RpcError::params(format!(
            "at most {MAX_SEND_BATCH} transactions per call"
        )));
    }
    let mut out: Vec<Option<Value>> = vec![None; list.len()];
    let mut decoded = Vec::new();
    let mut positions = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let parsed = item
            .as_str()
            .ok_or_else(|| unet_types::TxError::Malformed("not a hex string".into()))
            .and_then(|raw| {
                hex::decode(raw.strip_prefix("0x").unwrap_or(raw))
                    .map_err(|e| unet_types::TxError::Malformed(format!("not hex: {e}")))
            })
            .and_then(|bytes| SignedTx::decode_untrusted(&bytes));
        match parsed {
            Ok(stx) => {
                positions.push(i);
                decoded.push(stx);
            }
            Err(e) => {
                out[i] = Some(json!({"error": {"check": e.code(), "message": e.to_string()}}))
            }
        }
    }
    let results = gossip::admit(&state.shared, decoded.clone()).await;
    for ((i, stx), r) in positions.into_iter().zip(decoded).zip(results) {
        let hash = stx.hash();
        out[i] = Some(match r {
            Ok(_) => {
                state.gossip.publish(stx);
                json!({"hash": view::hex32(&hash)})
            }
            Err(e) => {
                state.remember_rejected(
                    hash,
                    json!({"status": "rejected", "check": e.code(), "reason": e.to_string()}),
                );
                json!({"hash": view::hex32(&hash), "error": {"check": e.code(), "message": e.to_string()}})
            }
        });
    }
    Ok(Value::Array(
        out.into_iter().map(|v| v.unwrap_or(Value::Null)).collect(),
    ))
}

fn tx_error(e: unet_types::TxError) -> RpcError {
    RpcError {
        code: code::INVALID_TX,
        message: format!("invalid transaction: {e}"),
        data: Some(json!({"check": e.code()})),
    }
}

async fn get_transaction<E: StoreContext>(state: &ApiState<E>, params: &Value) -> Result<Value> {
    let hash = parse_hash(str_param(params, "hash", 0)?)?;
    {
        let chain = state.shared.chain().await;
        if let Some(l) = chain.tx_index.get(&hash) {
            let mut v = view::location(l);
            v["hash"] = json!(view::hex32(&hash));
            return Ok(v);
        }
    }
    if let Some(t) = state
        .shared
        .mempool
        .lock()
        .expect("mempool lock")
        .get(&hash)
    {
        return Ok(
            json!({"hash": view::hex32(&hash), "status": "pending", "transaction": view::tx(t)}),
        );
    }
    if let Some(r) = state.rejected.lock().expect("rejected").0.get(&hash) {
        let mut v = r.clone();
        v["hash"] = json!(view::hex32(&hash));
        return Ok(v);
    }
    Err(RpcError::new(
        code::NOT_FOUND,
        format!("unknown transaction {}", view::hex32(&hash)),
    ))
}

async fn supply<E: StoreContext>(state: &ApiState<E>) -> Result<Value> {
    let chain = state.shared.chain().await;
    let s = chain.supply;
    Ok(json!({
        "height": chain.applied_height(),
        "max_supply": unet_types::amount::MAX_SUPPLY.to_string(),
        "genesis": s.genesis.to_string(),
        "minted": s.minted.to_string(),
        "burned": s.burned.to_string(),
        "total": s.total().to_string(),
        "circulating": s.circulating().to_string(),
        "escrowed": s.escrowed.to_string(),
    }))
}

async fn get_proof<E: StoreContext>(state: &ApiState<E>, params: &Value) -> Result<Value> {
    let address = parse_address(str_param(params, "address", 0)?)?;
    let key = account_key(&address);
    let chain = state.shared.chain().await;
    let proof = chain
        .prove(&key)
        .await
        .map_err(|e| RpcError::new(code::INTERNAL, e.to_string()))?;
    let value = proof.claimed_value().map(|v| v.to_vec());
    let account = value
        .as_ref()
        .and_then(|v| unet_types::keys::Account::decode(v.clone()).ok())
        .map(|a| view::account(&address, &a));
    Ok(json!({
        "address": unet_types::hexser::to_hex(&address),
        "key": view::hex32(&key),
        "height": chain.applied_height(),
        "block": view::hex32(&chain.applied_digest()),
        "state_root": view::hex32(&chain.root()),
        "value": value.map(hex::encode),
        "account": account,
        "proof": hex::encode(proof.to_bytes()),
    }))
}
