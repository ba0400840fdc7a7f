//! The API's limits, each attacked by a client: request rates per client, connections per
//! client, WebSocket sessions, subscriptions per session, and paged lists. A real node state
//! (genesis plus seeded entries) behind the real server on a loopback port the kernel picks.
//! Also: a finalized block is published no later than the state it leaves can be read.

use super::*;
use crate::{
    chain::Chain,
    engine, home,
    mempool::{Mempool, MempoolLimits},
    shared::Scheme,
};
use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{Digestible, Signer};
use commonware_runtime::{tokio as cw_tokio, Runner as _, Supervisor as _};
use futures::{SinkExt, StreamExt};
use std::{future::Future, net::IpAddr, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use unet_store::StateDb;
use unet_types::{
    chip::Registry,
    epoch::{validator_key, validator_list_key, AddressList, ValidatorInfo},
    genesis::Validator,
    keys::registry_key,
    Genesis, Params, PrivateKey,
};

type Ctx = cw_tokio::Context;

const VALIDATORS: usize = 450;
const CHIPS: u64 = 5_000;
/// Seed of the one funded account.
const SENDER: u64 = 77;

fn genesis() -> Genesis {
    Genesis {
        chain_id: 5,
        chain_name: "rpc-test".into(),
        genesis_time_ms: 0,
        params: Params::default(),
        consensus_polynomial: String::new(),
        validators: vec![Validator {
            name: "v0".into(),
            public_key: PrivateKey::from_seed(1).public_key(),
            p2p_address: "127.0.0.1:1".into(),
        }],
        allocations: vec![unet_types::genesis::Allocation {
            address: PrivateKey::from_seed(SENDER).public_key(),
            amount: 1_000 * unet_types::UNC,
            label: String::new(),
        }],
        poci: unet_devnet::devnet_poci(&PrivateKey::from_seed(2).public_key()).expect("poci"),
        treasury: None,
    }
}

/// Genesis plus `VALIDATORS` registered validators and a registry that counts `CHIPS` chips
/// (whose index entries are absent, as after deregistrations).
async fn seeded_state(context: &Ctx, genesis: &Genesis, partition: &str) {
    let mut writes = unet_state::genesis_writes(genesis).expect("genesis writes");
    let accounts: Vec<_> = (0..VALIDATORS as u64)
        .map(|i| PrivateKey::from_seed(1_000 + i).public_key())
        .collect();
    for (i, a) in accounts.iter().enumerate() {
        let info = ValidatorInfo {
            account: a.clone(),
            node_key: a.clone(),
            p2p_address: format!("10.0.0.1:{i}"),
            registered_height: i as u64,
        };
        writes.insert(validator_key(a), info.encode().to_vec());
    }
    writes.insert(
        validator_list_key(),
        AddressList(accounts).encode().to_vec(),
    );
    let mut registry = Registry::decode(writes[&registry_key()].clone()).expect("registry");
    registry.chip_count = CHIPS;
    writes.insert(registry_key(), registry.encode().to_vec());
    let mut db = StateDb::open(context.child("seed"), partition)
        .await
        .expect("open");
    let mut batch = db.new_batch();
    for (k, v) in writes {
        batch.put(k, v).expect("put");
    }
    let m = batch.merkleize(0).await.expect("merkleize");
    db.apply(&m).await.expect("apply");
    db.close().await.expect("close");
}

/// Runs `test` against an API with `limits` over a seeded node state.
fn with_api<F, Fut>(name: &str, limits: RpcLimits, test: F)
where
    F: FnOnce(Arc<ApiState<Ctx>>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let dir = std::env::temp_dir().join(format!("unet-rpc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = cw_tokio::Config::new()
        .with_storage_directory(dir.clone())
        .with_catch_panics(false);
    cw_tokio::Runner::new(cfg).start(|context| async move {
        let mut genesis = genesis();
        let rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let (output, _) = home::deal_genesis(rng, &genesis.validators).expect("deal");
        genesis.consensus_polynomial = hex::encode(output.public().encode());
        let epoch_zero = home::epoch_zero_info(&genesis, output);
        seeded_state(&context, &genesis, "rpc-test-state").await;
        let mut chain = Chain::open(context.child("state"), "rpc-test-state", genesis.clone())
            .await
            .expect("chain");
        let block = engine::genesis_block(&genesis, chain.root(), &epoch_zero);
        chain.set_applied(block.digest());
        let identity = *epoch_zero.output.public().public();
        let verifier = Scheme::certificate_verifier(unet_types::CONSENSUS_NAMESPACE, identity);
        let (mempool, _) = crate::mempool::actor::start(
            context.child("mempool"),
            Mempool::new(MempoolLimits::default()),
        );
        let shared = Arc::new(Shared::new(
            context.child("chain"),
            chain,
            mempool,
            verifier,
            &block,
            crate::shared::NodeRole::Validator,
        ));
        let (gossip, _rx) = TxGossip::detached();
        let state = Arc::new(ApiState::new(shared, gossip, Arc::new(String::new), limits));
        test(state).await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Serves `state` on 127.0.0.1 at a port the kernel picks.
async fn spawn_server(state: Arc<ApiState<Ctx>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_on(listener, state));
    addr
}

fn call(method: &str, params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string()
        .into_bytes()
}

async fn ask(state: &ApiState<Ctx>, client: &str, method: &str, params: Value) -> Value {
    let ip: IpAddr = client.parse().expect("ip");
    handle_body(state, &call(method, params), Some(ip))
        .await
        .expect("reply")
}

#[test]
fn a_client_over_its_rate_gets_an_error_while_another_is_served() {
    let limits = RpcLimits {
        client_rate_limit: 5,
        ..RpcLimits::default()
    };
    with_api("rate", limits, |state| async move {
        for _ in 0..5 {
            let r = ask(&state, "10.0.0.1", "unet_supply", Value::Null).await;
            assert!(r["result"]["height"].is_number(), "{r}");
        }
        let r = ask(&state, "10.0.0.1", "unet_supply", Value::Null).await;
        assert_eq!(r["error"]["code"], code::RATE_LIMITED, "{r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("rate limit exceeded for client 10.0.0.1: retry in "),
            "{message}"
        );
        // Another client is served meanwhile; hosts of one IPv6 /64 are one client.
        let r = ask(&state, "10.0.0.2", "unet_supply", Value::Null).await;
        assert!(r["result"]["height"].is_number(), "{r}");
        for _ in 0..5 {
            ask(&state, "2001:db8:0:1::1", "unet_supply", Value::Null).await;
        }
        let r = ask(&state, "2001:db8:0:1::2", "unet_supply", Value::Null).await;
        assert_eq!(r["error"]["code"], code::RATE_LIMITED, "same /64: {r}");
        // Each call of a batch counts.
        let batch: Vec<Value> = (0..6)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "unet_supply"}))
            .collect();
        let body = serde_json::to_vec(&batch).unwrap();
        let r = handle_body(&state, &body, Some("10.0.0.3".parse().unwrap()))
            .await
            .unwrap();
        let codes: Vec<_> = r
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["error"]["code"].as_i64())
            .collect();
        assert_eq!(codes[..5], [None; 5]);
        assert_eq!(codes[5], Some(code::RATE_LIMITED));
    });
}

/// Opens a TCP connection from `local` (any 127.0.0.0/8 address is this host).
async fn connect_from(local: &str, server: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{local}:0").parse().unwrap())
        .expect("bind a loopback address");
    socket.connect(server).await.expect("connect")
}

/// Sends one JSON-RPC call over HTTP/1.1 and returns the raw reply.
async fn http_call(stream: &mut tokio::net::TcpStream, method: &str) -> String {
    let body = String::from_utf8(call(method, Value::Null)).unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[test]
fn connections_over_the_per_client_cap_are_refused() {
    let limits = RpcLimits {
        max_connections_per_client: 2,
        ..RpcLimits::default()
    };
    with_api("conns", limits, |state| async move {
        let addr = spawn_server(state.clone()).await;
        let _a = connect_from("127.0.0.1", addr).await;
        let _b = connect_from("127.0.0.1", addr).await;
        let mut c = connect_from("127.0.0.1", addr).await;
        let mut reply = String::new();
        tokio::time::timeout(Duration::from_secs(10), c.read_to_string(&mut reply))
            .await
            .expect("the third connection is answered and closed at once")
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 429"), "{reply}");
        let body: Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"]["code"], code::LIMIT_REACHED);
        assert_eq!(
            body["error"]["message"],
            "too many connections from client 127.0.0.1 (max 2)"
        );
        // Another client is served.
        let mut d = connect_from("127.0.0.2", addr).await;
        let reply = http_call(&mut d, "unet_supply").await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        // A closed connection frees its slot.
        drop(d);
        let mut tries = 0;
        while state.connections.open() != 2 {
            tries += 1;
            assert!(tries < 200, "slots: {}", state.connections.open());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

async fn ws_send(ws: &mut WsStream, request: Value) -> Value {
    ws.send(WsMessage::text(request.to_string())).await.unwrap();
    loop {
        match ws.next().await.expect("reply").expect("frame") {
            WsMessage::Text(t) => return serde_json::from_str(&t).unwrap(),
            _ => continue,
        }
    }
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[test]
fn subscriptions_and_sessions_are_capped() {
    let limits = RpcLimits {
        max_subscriptions: 3,
        max_ws_connections: 1,
        ..RpcLimits::default()
    };
    with_api("subs", limits, |state| async move {
        let addr = spawn_server(state).await;
        let url = format!("ws://{addr}/ws");
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("ws");
        let sub = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "unet_subscribe", "params": ["newBlocks"]});
        for id in 1..=3 {
            let r = ws_send(&mut ws, sub(id)).await;
            assert_eq!(r["result"], id, "{r}");
        }
        let r = ws_send(&mut ws, sub(4)).await;
        assert_eq!(r["error"]["code"], code::LIMIT_REACHED, "{r}");
        assert_eq!(
            r["error"]["message"],
            "too many subscriptions on this connection (max 3); unsubscribe or open another connection"
        );
        // Unsubscribing frees a slot.
        let r = ws_send(
            &mut ws,
            json!({"jsonrpc": "2.0", "id": 5, "method": "unet_unsubscribe", "params": [2]}),
        )
        .await;
        assert_eq!(r["result"], true);
        let r = ws_send(&mut ws, sub(6)).await;
        assert!(r["result"].is_u64(), "{r}");
        // A second session is over the cap.
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 429);
                let body: Value =
                    serde_json::from_slice(response.body().as_ref().unwrap()).unwrap();
                assert_eq!(body["error"]["code"], code::LIMIT_REACHED);
            }
            other => panic!("second session accepted: {:?}", other.map(|_| ())),
        }
        // Calls still work on the first one.
        let r = ws_send(
            &mut ws,
            json!({"jsonrpc": "2.0", "id": 7, "method": "unet_supply"}),
        )
        .await;
        assert!(r["result"]["height"].is_number(), "{r}");
    });
}

#[test]
fn lists_return_at_most_a_page_and_a_cursor_that_continues() {
    with_api("pages", RpcLimits::default(), |state| async move {
        let mut seen = Vec::new();
        let mut cursor = json!(0);
        let mut pages = 0;
        while !cursor.is_null() {
            let r = ask(
                &state,
                "10.0.0.1",
                "unet_listValidators",
                json!({"cursor": cursor, "limit": 1_000}),
            )
            .await;
            let page = r["result"]["validators"].as_array().expect("page").clone();
            assert!(
                page.len() as u64 <= unet_api::params::MAX_PAGE,
                "{}",
                page.len()
            );
            seen.extend(page.into_iter().map(|v| v["p2p_address"].clone()));
            cursor = r["result"]["next"].clone();
            pages += 1;
        }
        assert_eq!(pages, 3);
        let expected: Vec<Value> = (0..VALIDATORS)
            .map(|i| json!(format!("10.0.0.1:{i}")))
            .collect();
        assert_eq!(seen, expected, "every validator once, in order");
        // The default page, and a bad limit.
        let r = ask(&state, "10.0.0.1", "unet_listValidators", json!({})).await;
        assert_eq!(
            r["result"]["validators"].as_array().unwrap().len() as u64,
            unet_api::params::DEFAULT_PAGE
        );
        assert_eq!(r["result"]["next"], unet_api::params::DEFAULT_PAGE);
        let r = ask(
            &state,
            "10.0.0.1",
            "unet_listValidators",
            json!({"limit": 0}),
        )
        .await;
        assert_eq!(r["error"]["code"], code::INVALID_PARAMS);
        // Scanning is bounded even when nothing matches: 5,000 index positions, all empty.
        let r = ask(&state, "10.0.0.1", "unet_listChips", json!({"limit": 200})).await;
        assert_eq!(r["result"]["chips"], json!([]));
        assert_eq!(r["result"]["next"], snapshot::MAX_SCAN);
        let r = ask(
            &state,
            "10.0.0.1",
            "unet_listChips",
            json!({"cursor": CHIPS - 10}),
        )
        .await;
        assert_eq!(r["result"]["next"], Value::Null);
        // `start` still works as the cursor's former name.
        let r = ask(
            &state,
            "10.0.0.1",
            "unet_listChips",
            json!({"start": CHIPS - 10}),
        )
        .await;
        assert_eq!(r["result"]["next"], Value::Null);
    });
}

#[test]
fn limits_round_trip_through_config_toml() {
    let config = crate::home::NodeConfig {
        name: "n".into(),
        p2p_listen: "127.0.0.1:1".parse().unwrap(),
        rpc_listen: "127.0.0.1:2".parse().unwrap(),
        data_dir: "data".into(),
        log: "info".into(),
        rpc_rate_limit: 7,
        rpc: RpcLimits {
            client_rate_limit: 3,
            ..RpcLimits::default()
        },
        mempool: MempoolLimits {
            ttl_blocks: 9,
            ..MempoolLimits::default()
        },
        tx_index_keep: 500,
        follow: crate::follow::FollowConfig {
            full: true,
            listen: Some("127.0.0.1:3".parse().unwrap()),
            max_followers: 2,
            upstreams: vec![format!(
                "{}@127.0.0.1:4",
                hex::encode(commonware_codec::Encode::encode(
                    &commonware_cryptography::Signer::public_key(
                        &commonware_cryptography::ed25519::PrivateKey::from_seed(5)
                    )
                ))
            )
            .parse()
            .unwrap()],
            sync: crate::follow::SyncMode::Replay,
            sync_min_height: 77,
        },
    };
    let text = toml::to_string_pretty(&config).unwrap();
    let back: crate::home::NodeConfig = toml::from_str(&text).unwrap();
    assert_eq!(back.rpc_limits().rate_limit, 7);
    assert_eq!(back.rpc_limits().client_rate_limit, 3);
    assert_eq!(back.mempool, config.mempool);
    assert_eq!(back.tx_index_keep, 500);
    assert_eq!(back.follow, config.follow);
    // An upstream must name a key and an address.
    for bad in ["127.0.0.1:4", "zz@127.0.0.1:4", "00@127.0.0.1:4"] {
        assert!(bad.parse::<crate::follow::Upstream>().is_err(), "{bad}");
    }
    // Every key optional; a misspelt one is an error, not a silent default.
    let minimal = "name = \"n\"\np2p_listen = \"127.0.0.1:1\"\nrpc_listen = \"127.0.0.1:2\"\n";
    let c: crate::home::NodeConfig = toml::from_str(minimal).unwrap();
    assert_eq!(c.rpc_limits(), RpcLimits::default());
    assert_eq!(c.mempool, MempoolLimits::default());
    assert_eq!(
        c.tx_index_keep, 0,
        "the index keeps every height by default"
    );
    assert_eq!(c.follow, crate::follow::FollowConfig::default());
    let typo = format!("{minimal}[rpc]\nclient_rate_limt = 5\n");
    assert!(toml::from_str::<crate::home::NodeConfig>(&typo).is_err());
}

/// The wallet checks an account proof against the header of the block the proof names, so that
/// block must be found as soon as the proof is served. Blocks are finalized while a client asks
/// for a proof and then for its block, over and over: every proof's block is there, with the
/// proof's hash and state root. Each round also queues a step on the chain actor, which runs
/// right after the finalizer's when it lands behind one, and checks that the height it reads
/// is already the finalized status and in the recent blocks.
#[test]
fn a_proofs_block_is_found_as_soon_as_the_proof_is_served() {
    use commonware_consensus::types::{Epoch, Height, Round, View};
    const BLOCKS: u64 = 12;
    let limits = RpcLimits {
        client_rate_limit: 1_000_000,
        ..RpcLimits::default()
    };
    with_api("proof-block", limits, |state| async move {
        let shared = state.shared.clone();
        let finalizing = tokio::spawn(async move {
            let leader = PrivateKey::from_seed(1).public_key();
            for height in 1..=BLOCKS {
                let leader = leader.clone();
                // An empty block on the applied tip, carrying the root its execution gives.
                let block = shared
                    .chain(move |c| {
                        Box::pin(async move {
                            let parent = c.applied_digest();
                            let make = |root| {
                                unet_types::Block::new(
                                    unet_types::Context {
                                        round: Round::new(Epoch::zero(), View::new(height)),
                                        leader: leader.clone(),
                                        parent: (View::new(height - 1), parent),
                                    },
                                    parent,
                                    Height::new(height),
                                    height,
                                    None,
                                    root,
                                    Vec::new(),
                                )
                            };
                            let draft = make(unet_types::Digest::from([0u8; 32]));
                            let params = c.genesis.params.clone();
                            let env = c.env(&draft, &params);
                            let built =
                                c.build_on(&parent, &env, Vec::new()).await.expect("builds");
                            Arc::new(make(built.state.root()))
                        })
                    })
                    .await
                    .expect("chain");
                crate::finalizer::finalize_one(&shared, &block)
                    .await
                    .expect("an empty block applies");
            }
        });
        let who = hex::encode(PrivateKey::from_seed(1_000).public_key().encode());
        let mut checked = 0;
        loop {
            // A chain step queued behind the finalizer's: the state it reads is published.
            let probe = state.shared.clone();
            let (applied, published) = state
                .shared
                .chain(move |c| {
                    Box::pin(async move {
                        let h = c.applied_height();
                        let recent = probe.recent.lock().expect("recent").contains_key(&h);
                        (
                            h,
                            probe.status().finalized_height == h && (h == 0 || recent),
                        )
                    })
                })
                .await
                .expect("chain");
            assert!(
                published,
                "the state at {applied} is read before its block is published"
            );
            let proof = ask(&state, "10.0.0.1", "unet_getProof", json!([who])).await;
            let proof = &proof["result"];
            let height = proof["height"].as_u64().expect("a proof's height");
            if height > 0 {
                let block = ask(&state, "10.0.0.1", "unet_getBlock", json!([height])).await;
                assert_eq!(block["result"]["hash"], proof["block"], "{block}");
                assert_eq!(
                    block["result"]["state_root"], proof["state_root"],
                    "{block}"
                );
                checked += 1;
            }
            if height == BLOCKS || finalizing.is_finished() {
                break;
            }
        }
        finalizing.await.expect("finalizer");
        assert!(checked >= 1, "no proof was read at a finalized height");
    });
}

/// `POST /txs` with a raw body over HTTP/1.1; returns the status line's code and the body.
async fn post_txs(server: SocketAddr, body: &[u8]) -> (u16, Value) {
    let mut stream = connect_from("127.0.0.1", server).await;
    let head = format!(
        "POST /txs HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().expect("status");
    let (_, json) = out.split_once("\r\n\r\n").expect("head");
    (status, serde_json::from_str(json).expect("json body"))
}

/// The binary submission path answers what `unet_sendTransactions` does, frame by frame: an
/// admitted transfer gets its hash, bytes that do not decode get an error and no hash, a
/// transfer for another chain is refused by name, and none of them sinks the others. A body
/// that does not split into frames is refused whole with HTTP 400.
#[test]
fn binary_submission_answers_each_frame() {
    with_api("submit", RpcLimits::default(), |state| async move {
        let server = spawn_server(state).await;
        let sender = PrivateKey::from_seed(SENDER);
        let transfer = |chain_id: u64, nonce: u64| {
            unet_types::Transaction {
                chain_id,
                sender: sender.public_key(),
                nonce,
                fee: Params::default().min_fee,
                payload: unet_types::Payload::Transfer {
                    to: PrivateKey::from_seed(9).public_key(),
                    amount: 5,
                },
            }
            .sign(&sender)
        };
        let good = transfer(genesis().chain_id, 0);
        let foreign = transfer(genesis().chain_id + 1, 1);
        let frames = vec![
            good.encode().to_vec(),
            vec![0xde, 0xad],
            foreign.encode().to_vec(),
        ];
        let (status, outcomes) =
            post_txs(server, &unet_api::submit::encode_submission(&frames)).await;
        assert_eq!(status, 200, "{outcomes}");
        let outcomes: Vec<unet_api::chain::SendOutcome> =
            serde_json::from_value(outcomes).expect("outcomes");
        assert_eq!(outcomes.len(), 3);
        assert_eq!(outcomes[0].hash, Some(good.hash()));
        assert!(outcomes[0].error.is_none(), "{:?}", outcomes[0]);
        assert!(outcomes[1].hash.is_none());
        assert_eq!(outcomes[1].error.as_ref().unwrap().check, "malformed");
        assert_eq!(outcomes[2].hash, Some(foreign.hash()));
        assert_eq!(outcomes[2].error.as_ref().unwrap().check, "wrong_chain");

        let mut cut = unet_api::submit::encode_submission(&frames);
        cut.truncate(cut.len() - 1);
        let (status, reply) = post_txs(server, &cut).await;
        assert_eq!(status, 400);
        assert!(reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("frame 2")));
    });
}

/// `POST /txs` counts against the client's request rate like a JSON-RPC call: past it, HTTP
/// 429 with the rate-limit error, and nothing is admitted.
#[test]
fn binary_submission_is_rate_limited() {
    let limits = RpcLimits {
        client_rate_limit: 2,
        ..RpcLimits::default()
    };
    with_api("submit-rate", limits, |state| async move {
        let server = spawn_server(state).await;
        let body = unet_api::submit::encode_submission(&[vec![0u8; 3]]);
        for _ in 0..2 {
            let (status, reply) = post_txs(server, &body).await;
            assert_eq!(status, 200, "{reply}");
        }
        let (status, reply) = post_txs(server, &body).await;
        assert_eq!(status, 429, "{reply}");
        assert_eq!(reply["error"]["code"], code::RATE_LIMITED, "{reply}");
    });
}
