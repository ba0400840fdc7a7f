//! The node API refuses bad input with exact JSON-RPC errors and keeps serving: malformed JSON,
//! non-objects, wrong parameter types, unknown methods, batch and body limits, and invalid
//! transactions (each failed check named in `data.check`). Runs against a real 4-validator
//! network of `unet node` processes on loopback; one network, one test with numbered sections.

mod support;

use commonware_codec::Encode;
use commonware_cryptography::Signer;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{Network, VALIDATORS};
use tokio_tungstenite::tungstenite::Message;
use unet_client::{
    api::chain::{ReceiptStatus, TxState},
    Client,
};
use unet_node::rpc::{MAX_BATCH, MAX_BODY_BYTES};
use unet_types::{tx::MAX_TX_BYTES, Payload, PrivateKey, SignedTx, Transaction, UNC};

const P2P_PORT: u16 = 31010;
const RPC_PORT: u16 = 9110;
const CHAIN_ID: u64 = 7701;

fn url() -> String {
    format!("http://127.0.0.1:{RPC_PORT}")
}

/// POSTs a raw body; returns the HTTP status and the body parsed as JSON (Null if empty).
async fn post(http: &reqwest::Client, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let resp = http
        .post(url())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("http request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {text}"))
    };
    (status, v)
}

/// Asserts a single JSON-RPC error reply: HTTP 200, the id echoed, the code and message.
#[track_caller]
fn assert_error(reply: &(u16, Value), id: Value, code: i64, message: &str) {
    let (status, v) = reply;
    assert_eq!(*status, 200, "{v}");
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    assert_eq!(v["id"], id, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert_eq!(v["error"]["message"], message, "{v}");
    assert!(v.get("result").is_none(), "{v}");
}

fn call(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string()
}

fn transfer(key: &PrivateKey, chain_id: u64, nonce: u64, fee: u128, amount: u128) -> SignedTx {
    let to = PrivateKey::from_seed(99).public_key();
    Transaction {
        chain_id,
        sender: key.public_key(),
        nonce,
        fee,
        payload: Payload::Transfer { to, amount },
    }
    .sign(key)
}

/// Sends raw transaction bytes; returns the reply.
async fn send_raw(http: &reqwest::Client, bytes: &[u8]) -> (u16, Value) {
    post(
        http,
        call("unet_sendTransaction", json!([hex::encode(bytes)])),
    )
    .await
}

/// Asserts an invalid-transaction reply naming `check`, with the exact message.
#[track_caller]
fn assert_tx_refused(reply: &(u16, Value), check: &str, message: &str) {
    assert_error(
        reply,
        json!(7),
        -32010,
        &format!("invalid transaction: {message}"),
    );
    assert_eq!(
        reply.1["error"]["data"],
        json!({"check": check}),
        "{}",
        reply.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refuses_bad_input_and_keeps_serving() {
    let net = Network::start(P2P_PORT, RPC_PORT, &[]).await;
    let http = reqwest::Client::new();
    let client = Client::new(url());
    let min_fee = client.status().await.expect("status").params.min_fee;
    assert_eq!(min_fee, UNC / 1000);

    // 1. Malformed JSON, non-objects, bad envelopes, unknown methods.
    let r = post(&http, r#"{"jsonrpc":"2.0","id":1,"method":"unet_status""#).await;
    assert_error(
        &r,
        Value::Null,
        -32700,
        "parse error: EOF while parsing an object at line 1 column 46",
    );
    let r = post(&http, "not json").await;
    assert_error(
        &r,
        Value::Null,
        -32700,
        "parse error: expected ident at line 1 column 2",
    );
    for body in ["42", "\"unet_status\"", "null", "true"] {
        assert_error(
            &post(&http, body).await,
            Value::Null,
            -32600,
            "request must be an object",
        );
    }
    let r = post(&http, r#"{"jsonrpc":"1.0","id":1,"method":"unet_status"}"#).await;
    assert_error(&r, json!(1), -32600, "jsonrpc must be \"2.0\"");
    let r = post(&http, r#"{"jsonrpc":"2.0","id":"abc","method":5}"#).await;
    assert_error(&r, json!("abc"), -32600, "method must be a string");
    let (status, v) = post(&http, call("eth_blockNumber", json!([]))).await;
    assert_eq!((status, v["id"].clone()), (200, json!(7)));
    assert_eq!(v["error"]["code"], -32601, "{v}");
    let message = v["error"]["message"].as_str().expect("message");
    let listed = message
        .strip_prefix("unknown method \"eth_blockNumber\"; methods: ")
        .unwrap_or_else(|| panic!("{message}"));
    let listed: Vec<&str> = listed.split(", ").collect();
    for m in [
        "unet_status",
        "unet_getBlock",
        "unet_getAccount",
        "unet_sendTransaction",
        "unet_getTransaction",
        "unet_supply",
        "unet_getProof",
    ] {
        assert!(listed.contains(&m), "{m} missing from {listed:?}");
    }

    // 2. Wrong parameter types.
    let cases = [
        ("unet_getAccount", json!([5]), "address: invalid type: integer `5`, expected a string"),
        ("unet_getAccount", json!([]), "missing field `address`"),
        ("unet_getAccount", json!({"addr": "00"}), "missing field `address`"),
        ("unet_getAccount", json!(["zz"]), "address: invalid hex: Invalid character 'z' at position 0"),
        ("unet_getProof", json!([["a"]]), "address: invalid type: sequence, expected a string"),
        ("unet_getBlock", json!([-1]), "block: height must be a non-negative integer"),
        ("unet_getBlock", json!([1.5]), "block: height must be a non-negative integer"),
        ("unet_getBlock", json!([true]), "block: block must be a height or hash, got true"),
        ("unet_getBlock", json!(["99999999999999999999"]), "block: bad height"),
        ("unet_getTransaction", json!([1]), "hash: invalid type: integer `1`, expected a string"),
        ("unet_getTransaction", json!(["abcd"]), "hash: invalid value: Unexpected End-of-Buffer: Not enough bytes remaining to read data"),
        ("unet_sendTransaction", json!([{"tx": 1}]), "tx: invalid type: map, expected a string"),
        ("unet_sendTransaction", json!(["zz"]), "tx: not hex: Invalid character 'z' at position 0"),
        ("unet_sendTransaction", json!(["abc"]), "tx: not hex: Odd number of digits"),
    ];
    for (method, params, message) in cases {
        let r = post(&http, call(method, params.clone())).await;
        assert_error(&r, json!(7), -32602, message);
    }
    let r = post(&http, call("unet_getBlock", json!([1_000_000_000]))).await;
    assert_error(
        &r,
        json!(7),
        -32004,
        "no finalized block at height 1000000000",
    );
    let r = post(&http, call("unet_getTransaction", json!(["00".repeat(32)]))).await;
    assert_error(
        &r,
        json!(7),
        -32004,
        &format!("unknown transaction {}", "00".repeat(32)),
    );

    // 3. Batches: empty, over the limit, mixed, notifications only.
    assert_error(&post(&http, "[]").await, Value::Null, -32600, "empty batch");
    let too_many: Vec<Value> = (0..=MAX_BATCH)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "unet_supply"}))
        .collect();
    let r = post(&http, Value::Array(too_many).to_string()).await;
    assert_error(
        &r,
        Value::Null,
        -32600,
        &format!("batch larger than {MAX_BATCH}"),
    );
    let mixed = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "unet_supply"},
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        17,
        {"jsonrpc": "2.0", "method": "unet_status"},
    ]);
    let (status, v) = post(&http, mixed.to_string()).await;
    assert_eq!(status, 200);
    let items = v.as_array().expect("batch reply");
    assert_eq!(items.len(), 3, "the notification gets no reply: {v}");
    assert_eq!(items[0]["id"], 1);
    assert_eq!(items[0]["result"]["genesis"], "300000000000000000000000000");
    assert_eq!(
        (items[1]["id"].clone(), items[1]["error"]["code"].clone()),
        (json!(2), json!(-32601))
    );
    assert_eq!(
        (items[2]["id"].clone(), items[2]["error"]["code"].clone()),
        (Value::Null, json!(-32600))
    );
    let r = post(&http, r#"{"jsonrpc":"2.0","method":"unet_status"}"#).await;
    assert_eq!(r, (204, Value::Null), "a notification gets no reply");

    // 4. Oversized body: refused before parsing, still a JSON-RPC error (HTTP 413).
    let pad = "x".repeat(MAX_BODY_BYTES + 1);
    let (status, v) = post(&http, call("unet_status", json!([pad]))).await;
    assert_eq!(status, 413);
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert_eq!(
        v["error"]["message"],
        "request body refused: Failed to buffer the request body: length limit exceeded"
    );

    // 5. Invalid transactions: every check named in data.check.
    let faucet = net.faucet();
    let good = transfer(&faucet, CHAIN_ID, 0, min_fee, UNC);
    let bytes = good.encode().to_vec();
    let r = send_raw(&http, &bytes[..bytes.len() - 1]).await;
    assert_tx_refused(
        &r,
        "malformed",
        "malformed transaction: Unexpected End-of-Buffer: Not enough bytes remaining to read data",
    );
    let r = send_raw(&http, &[]).await;
    assert_tx_refused(
        &r,
        "malformed",
        "malformed transaction: Unexpected End-of-Buffer: Not enough bytes remaining to read data",
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    let r = send_raw(&http, &trailing).await;
    assert_eq!(r.1["error"]["code"], -32010, "{}", r.1);
    assert_eq!(r.1["error"]["data"]["check"], "malformed", "{}", r.1);
    let r = send_raw(&http, &vec![0u8; MAX_TX_BYTES + 1]).await;
    let too_large = format!(
        "transaction too large: {} bytes (max {MAX_TX_BYTES})",
        MAX_TX_BYTES + 1
    );
    assert_tx_refused(&r, "too_large", &too_large);
    let wrong_chain = transfer(&faucet, CHAIN_ID + 1, 0, min_fee, UNC);
    let r = send_raw(&http, &wrong_chain.encode()).await;
    assert_tx_refused(
        &r,
        "wrong_chain",
        &format!("wrong chain id: expected {CHAIN_ID}, got {}", CHAIN_ID + 1),
    );
    // Signed by another key than the sender's.
    let mut forged = transfer(&PrivateKey::from_seed(5), CHAIN_ID, 0, min_fee, UNC).tx;
    forged.sender = faucet.public_key();
    let forged = forged.sign(&PrivateKey::from_seed(5));
    let r = send_raw(&http, &forged.encode()).await;
    assert_tx_refused(
        &r,
        "bad_signature",
        "bad signature: not signed by the sender's key",
    );
    // A flipped signature bit.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let r = send_raw(&http, &flipped).await;
    assert_tx_refused(
        &r,
        "bad_signature",
        "bad signature: not signed by the sender's key",
    );
    let cheap = transfer(&faucet, CHAIN_ID, 0, min_fee - 1, UNC);
    let r = send_raw(&http, &cheap.encode()).await;
    assert_tx_refused(
        &r,
        "fee_too_low",
        &format!("fee too low: minimum {min_fee}, got {}", min_fee - 1),
    );
    let zero = transfer(&faucet, CHAIN_ID, 0, min_fee, 0);
    let r = send_raw(&http, &zero.encode()).await;
    assert_tx_refused(&r, "zero_amount", "transfer of zero");
    let max_per_sender = unet_node::mempool::MempoolLimits::default().max_per_sender as u64;
    let far = transfer(&faucet, CHAIN_ID, max_per_sender, min_fee, UNC);
    let r = send_raw(&http, &far.encode()).await;
    assert_tx_refused(
        &r,
        "nonce_gap",
        &format!("nonce gap: account nonce is 0, got {max_per_sender}"),
    );
    // A refused transaction is remembered as rejected, with its check.
    let why = client
        .transaction(&wrong_chain.hash())
        .await
        .expect("remembered");
    assert!(
        matches!(&why.state, TxState::Rejected { check, .. } if check == "wrong_chain"),
        "{why:?}"
    );
    // A pending transaction (nonce 5 waits for 0..4) sent again is a duplicate.
    let waiting = transfer(&faucet, CHAIN_ID, 5, min_fee, UNC);
    let r = send_raw(&http, &waiting.encode()).await;
    assert_eq!(
        r.1["result"]["hash"],
        hex::encode(waiting.hash()),
        "{}",
        r.1
    );
    let r = send_raw(&http, &waiting.encode()).await;
    assert_tx_refused(&r, "duplicate", "already known");
    let pending = client.transaction(&waiting.hash()).await.expect("pending");
    assert!(
        matches!(&pending.state, TxState::Pending { transaction } if transaction.nonce == 5),
        "{pending:?}"
    );
    // Replay: the good transaction is finalized, then sent again.
    let hash = client.send_transaction(&good).await.expect("accepted");
    assert_eq!(hash, good.hash());
    let done = client
        .wait_finalized(&hash, support::patience())
        .await
        .expect("finalized");
    assert_eq!(
        done.receipt().map(|r| &r.status),
        Some(&ReceiptStatus::Ok),
        "{done:?}"
    );
    let r = send_raw(&http, &bytes).await;
    assert_tx_refused(
        &r,
        "nonce_too_low",
        "nonce too low: account nonce is 1, got 0 (already used: replay?)",
    );
    let account = client.account(&faucet.public_key()).await.expect("account");
    assert_eq!(account.nonce, 1);

    // 6. WebSocket: unknown topic refused, calls and unsubscribe work on the socket.
    let err = client
        .subscribe_raw(json!(["gossip"]))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.code(), Some(-32602));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{RPC_PORT}/ws"))
        .await
        .expect("ws connect");
    let mut ask = async |text: String| -> Value {
        ws.send(Message::Text(text.into())).await.expect("ws send");
        loop {
            let msg = tokio::time::timeout(support::patience(), ws.next())
                .await
                .expect("ws reply in time")
                .expect("ws open")
                .expect("ws message");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("ws JSON");
                if v.get("method").is_none() {
                    return v;
                }
            }
        }
    };
    let v = ask(r#"{"jsonrpc":"2.0","id":1,"method":"unet_subscribe","params":[]}"#.into()).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert_eq!(v["error"]["message"], "params must be [topic, options?]");
    let v =
        ask(r#"{"jsonrpc":"2.0","id":2,"method":"unet_subscribe","params":["newBlocks"]}"#.into())
            .await;
    assert_eq!(v, json!({"jsonrpc": "2.0", "id": 2, "result": 1}));
    let v =
        ask(r#"{"jsonrpc":"2.0","id":3,"method":"unet_unsubscribe","params":[1]}"#.into()).await;
    assert_eq!(v, json!({"jsonrpc": "2.0", "id": 3, "result": true}));
    let v =
        ask(r#"{"jsonrpc":"2.0","id":4,"method":"unet_unsubscribe","params":[1]}"#.into()).await;
    assert_eq!(v, json!({"jsonrpc": "2.0", "id": 4, "result": false}));
    let v = ask("{oops".into()).await;
    assert_eq!(v["error"]["code"], -32700, "{v}");
    let v = ask(call("unet_supply", json!([]))).await;
    assert_eq!(v["result"]["burned"], (min_fee / 2).to_string(), "{v}");

    // 7. After all that, every node still serves.
    for i in 0..VALIDATORS {
        let c = Client::new(format!("http://127.0.0.1:{}", RPC_PORT + i as u16));
        let s = c.status().await.expect("still serving");
        assert_eq!(s.chain_id, CHAIN_ID);
    }
    let health: Value = http
        .get(format!("{}/health", url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = http
        .get(format!("{}/metrics", url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# TYPE unet_finalized_height gauge\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nunet_finalized_txs_total 1\n"),
        "{metrics}"
    );
}
