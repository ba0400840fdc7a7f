//! JSON views of chain objects as the API returns them.

use crate::{chain::TxLocation, shared::FinalizedBlock};
use commonware_cryptography::Digestible;
use serde_json::{json, Value};
use unet_state::Receipt;
use unet_types::{
    amount::format_unc, hexser::to_hex, keys::Account, Block, Payload, PublicKey, SignedTx,
};

pub fn hex32(d: &impl AsRef<[u8]>) -> String {
    hex::encode(d.as_ref())
}

pub fn tx(stx: &SignedTx) -> Value {
    let mut v = json!({
        "hash": hex32(&stx.hash()),
        "chain_id": stx.tx.chain_id,
        "sender": to_hex(&stx.tx.sender),
        "nonce": stx.tx.nonce,
        "fee": stx.tx.fee.to_string(),
        "kind": stx.tx.payload.kind(),
    });
    match &stx.tx.payload {
        Payload::Transfer { to, amount } => {
            v["to"] = json!(to_hex(to));
            v["amount"] = json!(amount.to_string());
        }
        Payload::RegisterChip {
            anchor_height,
            evidence,
        } => {
            v["anchor_height"] = json!(anchor_height);
            v["evidence_bytes"] = json!(evidence.len());
            if let Ok(c) = unet_poci::claimed_identity(evidence) {
                v["chip_id"] = json!(hex::encode(c.chip_id));
            }
        }
        Payload::TransferChip { chip_id, to } => {
            v["chip_id"] = json!(hex::encode(chip_id));
            v["to"] = json!(to_hex(to));
        }
        Payload::DeregisterChip { chip_id } => {
            v["chip_id"] = json!(hex::encode(chip_id));
        }
        Payload::Govern { action, approvals } => {
            v["action"] = json!(action.name());
            v["approvals"] = json!(approvals.len());
        }
        Payload::Liveness { responses } => {
            v["responses"] = Value::Array(
                responses
                    .iter()
                    .map(|r| {
                        json!({
                            "chip_id": hex::encode(r.chip_id),
                            "challenge_height": r.challenge_height,
                            "proof_bytes": r.proof.len(),
                        })
                    })
                    .collect(),
            );
        }
        Payload::RegisterValidator {
            node_key,
            p2p_address,
        } => {
            v["node_key"] = json!(to_hex(node_key));
            v["p2p_address"] = json!(p2p_address);
        }
        Payload::DeregisterValidator => {}
        Payload::CreateOffer { terms } => {
            v["terms"] = super::market::terms_json(terms);
        }
        Payload::UpdateOffer { offer_id, terms } => {
            v["offer_id"] = json!(offer_id);
            v["terms"] = super::market::terms_json(terms);
        }
        Payload::WithdrawOffer { offer_id } => {
            v["offer_id"] = json!(offer_id);
        }
        Payload::OpenLease {
            offer_id,
            chips,
            deposit,
        } => {
            v["offer_id"] = json!(offer_id);
            v["chips"] = json!(chips.iter().map(hex::encode).collect::<Vec<_>>());
            v["deposit"] = json!(deposit.to_string());
        }
        Payload::TopUp { lease_id, amount } => {
            v["lease_id"] = json!(lease_id);
            v["amount"] = json!(amount.to_string());
        }
        Payload::CloseLease { lease_id } => {
            v["lease_id"] = json!(lease_id);
        }
    }
    v
}

pub fn receipt(r: &Receipt) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

pub fn block(b: &Block, receipts: Option<&[Receipt]>, full: bool) -> Value {
    let mut v = json!({
        "height": b.height.get(),
        "hash": hex32(&b.digest()),
        "parent": hex32(&b.parent),
        "timestamp_ms": b.timestamp,
        "proposer": to_hex(b.proposer()),
        "view": b.context.round.view().get(),
        "epoch": b.context.round.epoch().get(),
        "state_root": hex32(&b.state_root),
        "tx_root": hex32(&b.tx_root),
        "beacon": hex32(&b.beacon()),
        "tx_count": b.txs.len(),
    });
    if full {
        v["transactions"] = Value::Array(b.txs.iter().map(tx).collect());
        if let Some(rs) = receipts {
            v["receipts"] = Value::Array(rs.iter().map(receipt).collect());
        }
    } else {
        v["transactions"] = Value::Array(b.txs.iter().map(|t| json!(hex32(&t.hash()))).collect());
    }
    v
}

pub fn finalized(fb: &FinalizedBlock, full: bool) -> Value {
    block(&fb.block, Some(&fb.receipts), full)
}

pub fn account(address: &PublicKey, a: &Account) -> Value {
    json!({
        "address": to_hex(address),
        "balance": a.balance.to_string(),
        "balance_unc": format_unc(a.balance),
        "nonce": a.nonce,
    })
}

pub fn location(l: &TxLocation) -> Value {
    json!({
        "status": "finalized",
        "height": l.height,
        "block": hex32(&l.block),
        "receipt": receipt(&l.receipt),
    })
}
