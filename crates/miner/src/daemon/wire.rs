//! The node's answers and notifications, decoded with the `unet-api` contract types and
//! mapped into the daemon's facts.
//!
//! Pure functions, used by [`super::rpc::RpcChain`]. Answers come from the network: one that
//! does not decode as its contract type never panics; it becomes an error for that chip, an
//! unknown transaction, or a skipped event (with a warning). Each event of a notification
//! decodes on its own, so one malformed event does not hide the others.

use super::chain::{
    ChallengeEvent, ChipOnChain, ChipStatusEvent, Notification, PendingChallenge, Receipt,
    RewardEvent, TxLookup,
};
use serde_json::Value;
use tracing::warn;
use unet_api::{
    chain::{BlockTxs, BlockView, ReceiptStatus, ReceiptView, TxState},
    chips::ChipView,
    events::{BlockEvent, Event, EventItem, NotificationMessage},
};
use unet_types::hexser;

/// Subscription ids of one socket, in subscription order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sids {
    /// Subscription to challenge events.
    pub challenge: u64,
    /// Subscription to chip status changes.
    pub chip_status: u64,
    /// Subscription to reward payments.
    pub reward: u64,
    /// Subscription to finalized blocks.
    pub blocks: u64,
}

/// An `unet_getChip` answer.
pub fn chip(v: Value) -> Result<ChipOnChain, String> {
    let c: ChipView = serde_json::from_value(v).map_err(|e| format!("unet_getChip answer: {e}"))?;
    Ok(ChipOnChain {
        owner: hexser::to_hex(&c.owner),
        status: c.status,
        rewards_total: Some(c.rewards.total),
        pending_challenge: c.liveness.pending_challenge.map(|p| PendingChallenge {
            height: p.height,
            beacon: p.beacon,
        }),
    })
}

/// An `unet_getTransaction` answer. A transaction this node refused, or an answer that does
/// not decode, is unknown: the daemon looks again or resends.
pub fn transaction(v: Value) -> TxLookup {
    match serde_json::from_value::<unet_api::chain::TxLookup>(v) {
        Ok(t) => match t.state {
            TxState::Finalized { receipt: r, .. } => TxLookup::Finalized(receipt(&r)),
            TxState::Pending { .. } => TxLookup::Pending,
            TxState::Rejected { .. } => TxLookup::Unknown,
        },
        Err(e) => {
            warn!("unet_getTransaction answer does not decode: {e}");
            TxLookup::Unknown
        }
    }
}

/// A transaction receipt.
pub fn receipt(r: &ReceiptView) -> Receipt {
    let (ok, code, reason) = match &r.status {
        ReceiptStatus::Ok => (true, String::new(), String::new()),
        ReceiptStatus::Failed { code, reason } => (false, code.clone(), reason.clone()),
    };
    Receipt {
        ok,
        code,
        reason,
        skipped: r
            .skipped
            .iter()
            .filter_map(|s| Some((usize::try_from(s.index).ok()?, s.code.clone())))
            .collect(),
    }
}

/// One message of the socket; `None` for a message of no subscription of ours (or one that
/// is not a notification).
pub fn notification(v: Value, sids: &Sids) -> Option<Notification> {
    let msg: NotificationMessage<Value> = serde_json::from_value(v).ok()?;
    let (sid, result) = (msg.params.subscription, msg.params.result);
    if sid == sids.blocks {
        let block: BlockView = match serde_json::from_value(result) {
            Ok(b) => b,
            Err(e) => {
                warn!("block notification does not decode: {e}");
                return None;
            }
        };
        let txs = match &block.transactions {
            BlockTxs::Hashes(h) => h.iter().map(hexser::to_hex).collect(),
            BlockTxs::Full(t) => t.iter().map(|t| hexser::to_hex(&t.hash)).collect(),
        };
        return Some(Notification::Block {
            height: block.height,
            txs,
        });
    }
    if sid != sids.challenge && sid != sids.chip_status && sid != sids.reward {
        return None;
    }
    let events = events(result);
    Some(if sid == sids.challenge {
        Notification::Challenges(events.iter().filter_map(challenge).collect())
    } else if sid == sids.chip_status {
        Notification::ChipStatus(events.iter().filter_map(chip_status).collect())
    } else {
        Notification::Rewards(events.iter().filter_map(reward).collect())
    })
}

/// The protocol events of an `events` notification, each decoded on its own.
fn events(result: Value) -> Vec<Event> {
    let Value::Array(items) = result else {
        warn!("events notification is not a list");
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| match serde_json::from_value::<EventItem>(item) {
            Ok(EventItem {
                event: BlockEvent::Protocol(e),
                ..
            }) => Some(e),
            Ok(_) => None,
            Err(e) => {
                warn!("skipping an event that does not decode: {e}");
                None
            }
        })
        .collect()
}

fn challenge(e: &Event) -> Option<ChallengeEvent> {
    match e {
        Event::Challenge {
            chip_id,
            height,
            beacon,
            deadline,
        } => Some(ChallengeEvent {
            chip_id: *chip_id,
            height: *height,
            beacon: *beacon,
            deadline: Some(*deadline),
        }),
        _ => None,
    }
}

fn chip_status(e: &Event) -> Option<ChipStatusEvent> {
    match e {
        Event::ChipStatus {
            chip_id,
            to,
            reason,
            ..
        } => Some(ChipStatusEvent {
            chip_id: *chip_id,
            to: *to,
            reason: reason.clone(),
        }),
        _ => None,
    }
}

fn reward(e: &Event) -> Option<RewardEvent> {
    match e {
        Event::Reward {
            chip_id,
            owner,
            epoch,
            amount,
        } => Some(RewardEvent {
            chip_id: *chip_id,
            owner: hexser::to_hex(owner),
            amount: *amount,
            epoch: Some(*epoch),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Copying, DecodeExt};
    use commonware_cryptography::Signer as _;
    use serde_json::json;
    use unet_api::{
        chain::{SkippedAnswerView, TxBody, TxView},
        chips::{EvidenceKind, LivenessView, PendingChallengeView, RewardSummaryView},
    };
    use unet_types::{chip::ChipStatus, Address, Digest, PrivateKey};

    const SIDS: Sids = Sids {
        challenge: 1,
        chip_status: 2,
        reward: 3,
        blocks: 4,
    };

    fn note(sid: u64, result: Value) -> Value {
        serde_json::to_value(NotificationMessage::new(sid, result)).unwrap()
    }

    fn address(seed: u8) -> Address {
        PrivateKey::decode(Copying(&[seed; 32][..]))
            .unwrap()
            .public_key()
    }

    fn item(height: u64, event: Event) -> Value {
        serde_json::to_value(EventItem {
            height,
            event: BlockEvent::Protocol(event),
        })
        .unwrap()
    }

    #[test]
    fn events_are_read_and_malformed_ones_skipped() {
        let id = [7u8; 32];
        let beacon = Digest([9u8; 32]);
        let good = item(
            10,
            Event::Challenge {
                chip_id: id,
                height: 10,
                beacon,
                deadline: 14,
            },
        );
        let with = |field: &str, value: Value| {
            let mut v = good.clone();
            v[field] = value;
            v
        };
        let mut no_height = good.clone();
        no_height.as_object_mut().unwrap().remove("height");
        let v = note(
            1,
            json!([
                good,
                with("beacon", json!("zz")),
                with("chip_id", json!("abcd")),
                no_height,
                with("kind", json!("transfer")),
                item(
                    10,
                    Event::ChipStatus {
                        chip_id: id,
                        from: ChipStatus::Online,
                        to: ChipStatus::Unresponsive,
                        reason: "missed".into()
                    }
                ),
                "not an object",
            ]),
        );
        let Some(Notification::Challenges(c)) = notification(v, &SIDS) else {
            panic!("challenges expected");
        };
        assert_eq!(
            c,
            vec![ChallengeEvent {
                chip_id: id,
                height: 10,
                beacon,
                deadline: Some(14)
            }]
        );
        // A chip status event, typed end to end.
        let v = note(
            2,
            json!([item(
                11,
                Event::ChipStatus {
                    chip_id: id,
                    from: ChipStatus::Online,
                    to: ChipStatus::Unresponsive,
                    reason: "missed".into()
                }
            )]),
        );
        assert_eq!(
            notification(v, &SIDS),
            Some(Notification::ChipStatus(vec![ChipStatusEvent {
                chip_id: id,
                to: ChipStatus::Unresponsive,
                reason: "missed".into()
            }]))
        );
        // Blocks: their transaction hashes; a block that does not decode is skipped.
        let (h1, h2) = (Digest([1u8; 32]), Digest([2u8; 32]));
        let block = BlockView {
            height: 5,
            hash: Digest([3u8; 32]),
            parent: Digest([4u8; 32]),
            timestamp_ms: 0,
            proposer: address(1),
            view: 5,
            epoch: 0,
            state_root: Digest([5u8; 32]),
            tx_root: Digest([6u8; 32]),
            beacon: Digest([7u8; 32]),
            tx_count: 2,
            transactions: BlockTxs::Hashes(vec![h1, h2]),
            receipts: None,
        };
        assert_eq!(
            notification(note(4, serde_json::to_value(&block).unwrap()), &SIDS),
            Some(Notification::Block {
                height: 5,
                txs: vec![hexser::to_hex(&h1), hexser::to_hex(&h2)]
            })
        );
        let mut bad = serde_json::to_value(&block).unwrap();
        bad["transactions"] = json!(["aa", 3]);
        assert_eq!(notification(note(4, bad), &SIDS), None);
        assert_eq!(notification(note(4, json!({"txs": []})), &SIDS), None);
        // Another subscription, or not a notification at all.
        assert_eq!(notification(note(9, json!([])), &SIDS), None);
        assert_eq!(notification(json!({"id": 1, "result": 4}), &SIDS), None);
        // A reward whose amount is not a number is skipped, the good one is read.
        let owner = address(2);
        let good = item(
            20,
            Event::Reward {
                chip_id: id,
                owner: owner.clone(),
                epoch: 3,
                amount: 12,
            },
        );
        let mut bad = good.clone();
        bad["amount"] = json!("not a number");
        let Some(Notification::Rewards(r)) = notification(note(3, json!([bad, good])), &SIDS)
        else {
            panic!("rewards expected");
        };
        assert_eq!(
            r,
            vec![RewardEvent {
                chip_id: id,
                owner: hexser::to_hex(&owner),
                amount: 12,
                epoch: Some(3)
            }]
        );
    }

    fn chip_view() -> ChipView {
        ChipView {
            chip_id: [7u8; 32],
            owner: address(1),
            model: "BM1684X".into(),
            compute_milli_tops: Some(32_000),
            kind: EvidenceKind::VendorX509,
            serial: "s".into(),
            status: ChipStatus::Online,
            registered_height: 3,
            device_key: vec![4; 65],
            root: [0u8; 32],
            index: 0,
            liveness: LivenessView {
                pending_challenge: Some(PendingChallengeView {
                    height: 8,
                    beacon: Digest([1u8; 32]),
                }),
                last_challenge: 8,
                last_response: 4,
                online_since: Some(3),
                misses_epoch: 0,
                misses: 0,
            },
            rewards: RewardSummaryView {
                last_epoch: 1,
                last_amount: 5,
                total: 12,
            },
        }
    }

    fn receipt_view(status: ReceiptStatus, skipped: Vec<SkippedAnswerView>) -> ReceiptView {
        ReceiptView {
            tx_hash: Digest([1u8; 32]),
            index: 0,
            status,
            fee_burned: 1,
            fee_to_proposer: 1,
            skipped,
        }
    }

    #[test]
    fn chip_and_transaction_answers_are_read_defensively() {
        let answer = serde_json::to_value(chip_view()).unwrap();
        let c = chip(answer.clone()).unwrap();
        assert_eq!(c.owner, hexser::to_hex(&address(1)));
        assert_eq!(c.status, ChipStatus::Online);
        assert_eq!(c.rewards_total, Some(12));
        assert_eq!(c.pending_challenge.map(|p| p.height), Some(8));
        let mut bad = answer.clone();
        bad["liveness"]["pending_challenge"]["beacon"] = json!("00");
        assert!(chip(bad).is_err());
        let mut bad = answer;
        bad["status"] = json!("dormant");
        assert!(chip(bad).is_err());
        assert!(chip(json!(null)).is_err());

        let lookup = |state: TxState| {
            serde_json::to_value(unet_api::chain::TxLookup {
                hash: Digest([1u8; 32]),
                state,
            })
            .unwrap()
        };
        let skipped = vec![SkippedAnswerView {
            index: 1,
            chip_id: [7u8; 32],
            code: "liveness_already_answered".into(),
            reason: "answered".into(),
        }];
        let finalized = lookup(TxState::Finalized {
            height: 9,
            block: Digest([2u8; 32]),
            receipt: receipt_view(ReceiptStatus::Ok, skipped),
        });
        assert_eq!(
            transaction(finalized),
            TxLookup::Finalized(Receipt {
                ok: true,
                code: String::new(),
                reason: String::new(),
                skipped: vec![(1, "liveness_already_answered".into())]
            })
        );
        let failed = lookup(TxState::Finalized {
            height: 9,
            block: Digest([2u8; 32]),
            receipt: receipt_view(
                ReceiptStatus::Failed {
                    code: "insufficient_fee".into(),
                    reason: "fee".into(),
                },
                Vec::new(),
            ),
        });
        assert_eq!(
            transaction(failed),
            TxLookup::Finalized(Receipt {
                ok: false,
                code: "insufficient_fee".into(),
                reason: "fee".into(),
                skipped: Vec::new()
            })
        );
        let pending = lookup(TxState::Pending {
            transaction: TxView {
                hash: Digest([1u8; 32]),
                chain_id: 1,
                sender: address(1),
                nonce: 0,
                fee: 1,
                body: TxBody::Transfer {
                    to: address(2),
                    amount: 5,
                },
            },
        });
        assert_eq!(transaction(pending), TxLookup::Pending);
        let rejected = lookup(TxState::Rejected {
            check: "duplicate".into(),
            reason: "seen".into(),
        });
        assert_eq!(transaction(rejected), TxLookup::Unknown);
        assert_eq!(transaction(json!({"status": "pending"})), TxLookup::Unknown);
        assert_eq!(transaction(json!("garbage")), TxLookup::Unknown);
    }
}
