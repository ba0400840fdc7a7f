//! The node's JSON answers and notifications, read into the daemon's typed facts.
//!
//! Pure functions, used by [`super::rpc::RpcChain`]. Answers come from the network: a field
//! missing or malformed never panics; it becomes an error for that chip, or the event is
//! skipped with a warning.

use super::chain::{
    ChallengeEvent, ChipOnChain, ChipStatusEvent, Notification, PendingChallenge, Receipt,
    RewardEvent, TxLookup,
};
use serde_json::Value;
use tracing::warn;
use unet_types::{chip::ChipId, hexser, Digest};

/// Subscription ids of one socket, in subscription order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sids {
    pub challenge: u64,
    pub chip_status: u64,
    pub reward: u64,
    pub blocks: u64,
}

/// A chip id written as hex.
pub fn parse_id(v: &Value) -> Option<ChipId> {
    hex::decode(v.as_str()?).ok()?.try_into().ok()
}

/// An `unet_getChip` answer.
pub fn chip(v: &Value) -> Result<ChipOnChain, String> {
    let p = &v["liveness"]["pending_challenge"];
    let pending_challenge = match (p["height"].as_u64(), p["beacon"].as_str()) {
        (Some(height), Some(b)) => Some(PendingChallenge {
            height,
            beacon: hexser::from_hex(b).map_err(|e| format!("beacon: {e}"))?,
        }),
        _ => None,
    };
    Ok(ChipOnChain {
        owner: v["owner"].as_str().unwrap_or_default().to_string(),
        status: v["status"].as_str().unwrap_or("unknown").to_string(),
        rewards_total: v["rewards"]["total"].as_str().and_then(|s| s.parse().ok()),
        pending_challenge,
    })
}

/// An `unet_getTransaction` answer.
pub fn transaction(v: &Value) -> TxLookup {
    match v["status"].as_str() {
        Some("finalized") => TxLookup::Finalized(receipt(&v["receipt"])),
        Some("pending") => TxLookup::Pending,
        _ => TxLookup::Unknown,
    }
}

/// A transaction receipt.
pub fn receipt(r: &Value) -> Receipt {
    let skipped = r["skipped"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    Some((
                        usize::try_from(s["index"].as_u64()?).ok()?,
                        s["code"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Receipt {
        ok: r["status"] == "ok",
        code: r["code"].as_str().unwrap_or_default().to_string(),
        reason: match &r["reason"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        },
        skipped,
    }
}

/// One notification message; `None` for a message of no subscription of ours.
pub fn notification(v: &Value, sids: &Sids) -> Option<Notification> {
    let sid = v["params"]["subscription"].as_u64()?;
    let result = &v["params"]["result"];
    let events = || result.as_array().into_iter().flatten();
    if sid == sids.challenge {
        Some(Notification::Challenges(
            events().filter_map(challenge).collect(),
        ))
    } else if sid == sids.chip_status {
        Some(Notification::ChipStatus(
            events().filter_map(chip_status).collect(),
        ))
    } else if sid == sids.reward {
        Some(Notification::Rewards(events().filter_map(reward).collect()))
    } else if sid == sids.blocks {
        let Some(height) = result["height"].as_u64() else {
            warn!("block notification without a height");
            return None;
        };
        let txs = result["transactions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        Some(Notification::Block { height, txs })
    } else {
        None
    }
}

fn challenge(e: &Value) -> Option<ChallengeEvent> {
    if e["kind"] != "challenge" {
        return None;
    }
    let chip_id = parse_id(&e["chip_id"])?;
    let (Some(height), Some(b)) = (e["height"].as_u64(), e["beacon"].as_str()) else {
        warn!("challenge event without height or beacon: {e}");
        return None;
    };
    let Ok(beacon) = hexser::from_hex::<Digest>(b) else {
        warn!("challenge event with a bad beacon: {e}");
        return None;
    };
    Some(ChallengeEvent {
        chip_id,
        height,
        beacon,
        deadline: e["deadline"].as_u64(),
    })
}

fn chip_status(e: &Value) -> Option<ChipStatusEvent> {
    if e["kind"] != "chip_status" {
        return None;
    }
    Some(ChipStatusEvent {
        chip_id: parse_id(&e["chip_id"])?,
        to: e["to"].as_str().unwrap_or("unknown").to_string(),
        reason: e["reason"].as_str().unwrap_or_default().to_string(),
    })
}

fn reward(e: &Value) -> Option<RewardEvent> {
    if e["kind"] != "reward" {
        return None;
    }
    Some(RewardEvent {
        chip_id: parse_id(&e["chip_id"])?,
        owner: e["owner"].as_str().unwrap_or_default().to_string(),
        amount: e["amount"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        epoch: e["epoch"].as_u64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SIDS: Sids = Sids {
        challenge: 1,
        chip_status: 2,
        reward: 3,
        blocks: 4,
    };

    fn note(sid: u64, result: Value) -> Value {
        json!({"jsonrpc": "2.0", "method": "unet_subscription",
               "params": {"subscription": sid, "result": result}})
    }

    #[test]
    fn events_are_read_and_malformed_ones_skipped() {
        let id = [7u8; 32];
        let beacon = hexser::to_hex(&unet_types::Digest([9u8; 32]));
        let v = note(
            1,
            json!([
                {"kind": "challenge", "chip_id": hex::encode(id), "height": 10, "beacon": beacon, "deadline": 14},
                {"kind": "challenge", "chip_id": hex::encode(id), "height": 11, "beacon": "zz"},
                {"kind": "challenge", "chip_id": "abcd", "height": 12, "beacon": beacon},
                {"kind": "challenge", "chip_id": hex::encode(id), "beacon": beacon},
                {"kind": "transfer", "chip_id": hex::encode(id), "height": 13, "beacon": beacon},
                "not an object",
            ]),
        );
        let Some(Notification::Challenges(c)) = notification(&v, &SIDS) else {
            panic!("challenges expected");
        };
        assert_eq!(
            c,
            vec![ChallengeEvent {
                chip_id: id,
                height: 10,
                beacon: unet_types::Digest([9u8; 32]),
                deadline: Some(14)
            }]
        );
        let v = note(4, json!({"height": 5, "transactions": ["aa", 3, "bb"]}));
        assert_eq!(
            notification(&v, &SIDS),
            Some(Notification::Block {
                height: 5,
                txs: vec!["aa".into(), "bb".into()]
            })
        );
        assert_eq!(notification(&note(4, json!({"txs": []})), &SIDS), None);
        assert_eq!(notification(&note(9, json!([])), &SIDS), None);
        assert_eq!(notification(&json!({"id": 1, "result": 4}), &SIDS), None);
        let v = note(
            3,
            json!([{"kind": "reward", "chip_id": hex::encode(id), "owner": "ab", "amount": "not a number"}]),
        );
        let Some(Notification::Rewards(r)) = notification(&v, &SIDS) else {
            panic!("rewards expected");
        };
        assert_eq!(r[0].amount, 0);
    }

    #[test]
    fn chip_and_receipt_answers_are_read_defensively() {
        let beacon = hexser::to_hex(&unet_types::Digest([1u8; 32]));
        let c = chip(
            &json!({"owner": "ab", "status": "online", "rewards": {"total": "12"},
                             "liveness": {"pending_challenge": {"height": 8, "beacon": beacon}}}),
        )
        .unwrap();
        assert_eq!(c.rewards_total, Some(12));
        assert_eq!(c.pending_challenge.map(|p| p.height), Some(8));
        assert!(
            chip(&json!({"liveness": {"pending_challenge": {"height": 8, "beacon": "00"}}}))
                .is_err()
        );
        assert_eq!(chip(&json!(null)).unwrap().status, "unknown");
        let r = transaction(&json!({"status": "finalized", "receipt": {"status": "ok",
            "skipped": [{"index": 1, "code": "liveness_already_answered"}, {"index": -1, "code": "x"}]}}));
        assert_eq!(
            r,
            TxLookup::Finalized(Receipt {
                ok: true,
                code: String::new(),
                reason: String::new(),
                skipped: vec![(1, "liveness_already_answered".into())]
            })
        );
        assert_eq!(
            transaction(&json!({"status": "pending"})),
            TxLookup::Pending
        );
        assert_eq!(
            transaction(&json!({"status": "rejected"})),
            TxLookup::Unknown
        );
        assert_eq!(transaction(&json!("garbage")), TxLookup::Unknown);
    }
}
