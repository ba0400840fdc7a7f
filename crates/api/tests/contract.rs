//! The contract's own rules: names, positional params, parameter errors, and that results
//! read back what they wrote (the enums on the wire included).

use commonware_cryptography::Signer as _;
use serde_json::{json, Value};
use std::collections::HashSet;
use unet_api::{
    calls,
    chain::{ReceiptStatus, ReceiptView, TxBody, TxLookup, TxState, TxView},
    code, decode_params,
    events::{BlockEvent, Event, EventItem, Topic},
    market::{CloseReason, LeaseState},
    params::{BlockId, PageParams},
    rewards::Rewards,
    Method,
};
use unet_types::{chip::ChipStatus, hexser::to_hex, Digest, PrivateKey};

fn digest(b: u8) -> Digest {
    unet_types::hexser::from_hex(&hex::encode([b; 32])).unwrap()
}

fn address(seed: u64) -> unet_types::PublicKey {
    PrivateKey::from_seed(seed).public_key()
}

#[test]
fn method_names_are_unique_prefixed_and_parse_back() {
    let mut seen = HashSet::new();
    for &m in Method::ALL {
        assert!(m.name().starts_with("unet_"), "{m}");
        assert!(seen.insert(m.name()), "{m} declared twice");
        assert_eq!(Method::from_name(m.name()), Some(m));
    }
    assert_eq!(Method::ALL.len(), 22);
    assert_eq!(Method::from_name("eth_blockNumber"), None);
}

#[test]
fn positional_params_are_named_in_order_and_extra_ones_refused() {
    let p = decode_params::<calls::GetBlock>(json!(["latest", false])).unwrap();
    assert_eq!((p.block, p.full), (BlockId::Latest, false));
    let p = decode_params::<calls::GetBlock>(json!({"height": "12"})).unwrap();
    assert_eq!((p.block, p.full), (BlockId::Height(12), true));
    let e = decode_params::<calls::GetAccount>(json!(["00", 1])).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMS);
    assert_eq!(
        e.message,
        "unet_getAccount takes at most 1 positional params: [address]"
    );
    let e = decode_params::<calls::ListChips>(json!([1])).unwrap_err();
    assert_eq!(e.message, "unet_listChips takes named params only: {..}");
    let e = decode_params::<calls::Status>(json!("x")).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMS);
}

#[test]
fn parameter_errors_name_the_field() {
    let cases = [
        (
            decode_params::<calls::GetAccount>(json!(["zz"])).err(),
            "address: invalid hex: Invalid character 'z' at position 0",
        ),
        (
            decode_params::<calls::GetAccount>(json!([5])).err(),
            "address: invalid type: integer `5`, expected a string",
        ),
        (
            decode_params::<calls::GetAccount>(json!({})).err(),
            "missing field `address`",
        ),
        (
            decode_params::<calls::GetBlock>(json!([-1])).err(),
            "block: height must be a non-negative integer",
        ),
        (
            decode_params::<calls::GetBlock>(json!([true])).err(),
            "block: block must be a height or hash, got true",
        ),
        (
            decode_params::<calls::GetBlock>(json!(["99999999999999999999"])).err(),
            "block: bad height",
        ),
        (
            decode_params::<calls::SendTransaction>(json!(["abc"])).err(),
            "tx: not hex: Odd number of digits",
        ),
        (
            decode_params::<calls::GetChip>(json!(["00"])).err(),
            "chip_id: must be 32 bytes",
        ),
        (
            decode_params::<calls::ListChips>(json!({"status": "asleep"})).err(),
            "status: unknown variant `asleep`, expected one of `online`, `unresponsive`, `revoked`",
        ),
        (
            decode_params::<calls::ListOffers>(json!({"min_free": -1})).err(),
            "min_free: must be a non-negative integer",
        ),
        (
            decode_params::<calls::GetLease>(json!({"id": true})).err(),
            "id: must be a number, got true",
        ),
    ];
    for (err, message) in cases {
        let err = err.expect(message);
        assert_eq!(
            (err.code, err.message.as_str()),
            (code::INVALID_PARAMS, message)
        );
    }
}

#[test]
fn numbers_come_as_numbers_or_decimal_strings() {
    let p = decode_params::<calls::ListOffers>(
        json!({"max_price": "340282366920938463463374607431768211455", "min_free": "7", "from": 3}),
    )
    .unwrap();
    assert_eq!(p.max_price, Some(u128::MAX));
    assert_eq!(p.min_free, Some(7));
    assert_eq!(p.page, PageParams::new(Some(3), None));
    assert_eq!(p.page.resolve(), Ok((3, 50)));
    assert_eq!(PageParams::new(None, Some(10_000)).resolve(), Ok((0, 200)));
    assert!(PageParams::new(None, Some(0)).resolve().is_err());
    let p = decode_params::<calls::GetLease>(json!(["18446744073709551615"])).unwrap();
    assert_eq!(p.id, u64::MAX);
}

fn receipt(status: ReceiptStatus) -> ReceiptView {
    ReceiptView {
        tx_hash: digest(1),
        index: 0,
        status,
        fee_burned: 5,
        fee_to_proposer: 1,
        skipped: vec![],
    }
}

fn transfer() -> TxView {
    TxView {
        hash: digest(1),
        chain_id: 7,
        sender: address(1),
        nonce: 3,
        fee: 10,
        body: TxBody::Transfer {
            to: address(2),
            amount: u128::MAX,
        },
    }
}

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    v: &T,
) -> Value {
    let json = serde_json::to_value(v).unwrap();
    assert_eq!(
        &serde_json::from_value::<T>(json.clone()).unwrap(),
        v,
        "{json}"
    );
    json
}

#[test]
fn results_read_back_what_they_wrote() {
    let tx = transfer();
    let json = round_trip(&tx);
    assert_eq!(json["kind"], "transfer");
    assert_eq!(json["amount"], u128::MAX.to_string());
    assert_eq!(json["to"], to_hex(&address(2)));

    let failed = receipt(ReceiptStatus::Failed {
        code: "insufficient_balance".into(),
        reason: "r".into(),
    });
    let json = round_trip(&failed);
    assert_eq!(
        (json["status"].clone(), json["code"].clone()),
        (json!("failed"), json!("insufficient_balance"))
    );
    assert!(json.get("skipped").is_none());

    for state in [
        TxState::Pending {
            transaction: tx.clone(),
        },
        TxState::Finalized {
            height: 9,
            block: digest(2),
            receipt: receipt(ReceiptStatus::Ok),
        },
        TxState::Rejected {
            check: "nonce_gap".into(),
            reason: "gap".into(),
        },
    ] {
        let lookup = TxLookup {
            hash: digest(1),
            state,
        };
        let json = round_trip(&lookup);
        assert_eq!(json["hash"], hex::encode([1u8; 32]));
        assert_eq!(lookup.is_final(), json["status"] != "pending");
    }
}

#[test]
fn enums_on_the_wire_refuse_unknown_names() {
    assert_eq!(
        serde_json::to_value(ChipStatus::Unresponsive).unwrap(),
        "unresponsive"
    );
    assert!(serde_json::from_value::<ChipStatus>(json!("asleep")).is_err());
    assert_eq!(
        serde_json::from_value::<LeaseState>(json!("closed")).unwrap(),
        LeaseState::Closed
    );
    assert!(serde_json::from_value::<LeaseState>(json!("paused")).is_err());
    assert_eq!(
        serde_json::from_value::<CloseReason>(json!("deposit_exhausted")).unwrap(),
        CloseReason::DepositExhausted
    );
    assert!(serde_json::from_value::<unet_api::chips::EvidenceKind>(json!("vendor-x509")).is_ok());
}

#[test]
fn events_decode_as_protocol_events_or_transactions() {
    let challenge = EventItem {
        height: 4,
        event: BlockEvent::Protocol(Event::Challenge {
            chip_id: [9; 32],
            height: 4,
            beacon: digest(3),
            deadline: 8,
        }),
    };
    let json = round_trip(&challenge);
    assert_eq!(
        (json["kind"].clone(), json["height"].clone()),
        (json!("challenge"), json!(4))
    );
    let tx = EventItem {
        height: 5,
        event: BlockEvent::Transaction(unet_api::events::TxEvent {
            kind: "transfer".into(),
            transaction: transfer(),
            receipt: receipt(ReceiptStatus::Ok),
        }),
    };
    let json = round_trip(&tx);
    assert_eq!(json["transaction"]["kind"], "transfer");
    assert_eq!(tx.event.kind(), "transfer");
    assert_eq!(challenge.event.kind(), "challenge");
    assert_eq!(
        Topic::from_params(
            &Topic::Events {
                kind: Some("reward".into())
            }
            .to_params()
        ),
        Ok(Topic::Events {
            kind: Some("reward".into())
        })
    );
    assert_eq!(
        Topic::from_params(&json!([])),
        Err("params must be [topic, options?]".into())
    );
}

#[test]
fn rewards_by_chip_and_by_owner_are_told_apart() {
    let owner = json!({
        "owner": to_hex(&address(1)), "epoch": 2, "current_epoch": 3, "amount": "5",
        "epoch_settled": false, "settlement": null,
    });
    assert!(matches!(
        serde_json::from_value::<Rewards>(owner).unwrap(),
        Rewards::Owner(_)
    ));
    let chip = json!({
        "chip_id": hex::encode([7u8; 32]), "owner": to_hex(&address(1)), "current_epoch": 3,
        "recent_rewards": [{"epoch": 2, "amount": "5"}], "total_rewards": "5",
        "settled_through_epoch": 2, "epoch": 1, "amount": null,
    });
    let Rewards::Chip(c) = serde_json::from_value::<Rewards>(chip.clone()).unwrap() else {
        panic!("a chip's rewards read as an owner's");
    };
    assert_eq!(c.asked.map(|a| (a.epoch, a.amount)), Some((1, None)));
    assert_eq!(round_trip(&Rewards::Chip(c)), chip);
}
