//! WebSocket transport: the same JSON-RPC methods, plus subscriptions.
//!
//! `{"method":"unet_subscribe","params":["newBlocks"]}` returns a subscription id; each
//! finalized block then arrives as `{"method":"unet_subscription","params":{"subscription":ID,
//! "result":BLOCK}}`. `"events"` streams the receipts of each finalized block and its protocol
//! events (`chip_status`, `challenge`, `reward`, `epoch_settled`, `committee`), optionally
//! filtered by kind: `["events", {"kind": "transfer"}]`.
//!
//! Limits (see [`super::limits`]): at most `max_ws_connections` sessions (an upgrade beyond is
//! answered `429` with a `-32006` error), `max_subscriptions` per session (`-32006` beyond),
//! and every message, subscriptions included, counts against the client's request rate.

use super::{
    code, error_reply, handle_body, json as view, limits::ConnGuard, peer_ip, ApiState, Peer,
    RpcError,
};
use axum::{
    extract::{ws::Message, State, WebSocketUpgrade},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};
use std::{net::IpAddr, sync::Arc};
use unet_store::StoreContext;

pub(super) async fn upgrade<E: StoreContext>(
    State(state): State<Arc<ApiState<E>>>,
    peer: Peer,
    ws: WebSocketUpgrade,
) -> Response {
    let client = peer_ip(&peer);
    let slot = match state
        .sessions
        .try_open(client.unwrap_or(IpAddr::from([0u8; 4])))
    {
        Ok(slot) => slot,
        Err(why) => {
            let body = error_reply(Value::Null, RpcError::new(code::LIMIT_REACHED, why));
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response();
        }
    };
    ws.max_message_size(super::MAX_BODY_BYTES)
        .on_upgrade(move |socket| session(state, socket, client, slot))
}

enum Sub {
    Blocks,
    Events(Option<String>),
}

async fn session<E: StoreContext>(
    state: Arc<ApiState<E>>,
    mut socket: axum::extract::ws::WebSocket,
    client: Option<IpAddr>,
    _slot: ConnGuard,
) {
    let max_subs = state.limits.max_subscriptions;
    let mut finalized = state.shared.finalized_tx.subscribe();
    let mut subs: Vec<(u64, Sub)> = Vec::new();
    let mut next_id = 1u64;
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { return };
                let text = match msg {
                    Message::Text(t) => t.to_string(),
                    Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                    Message::Close(_) => return,
                    _ => continue,
                };
                let request = subscription_request(&text);
                let own = request.is_some() || is_unsubscribe(&text);
                // Other calls are counted by `handle_body`.
                if own {
                    if let Err(e) = state.rates.check(client) {
                        let id = serde_json::from_str::<Value>(&text).ok().and_then(|v| v.get("id").cloned()).unwrap_or(Value::Null);
                        if socket.send(Message::Text(error_reply(id, e).to_string().into())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                }
                let reply = match request {
                    Some((id, Ok(_))) if subs.len() >= max_subs => Some(error_reply(
                        id,
                        RpcError::new(
                            code::LIMIT_REACHED,
                            format!("too many subscriptions on this connection (max {max_subs}); unsubscribe or open another connection"),
                        ),
                    )),
                    Some((id, Ok(sub))) => {
                        let sid = next_id;
                        next_id += 1;
                        subs.push((sid, sub));
                        Some(json!({"jsonrpc":"2.0","id":id,"result":sid}))
                    }
                    Some((id, Err(e))) => Some(json!({"jsonrpc":"2.0","id":id,"error":{"code":super::code::INVALID_PARAMS,"message":e}})),
                    None if is_unsubscribe(&text) => {
                        let (id, sid) = unsubscribe_ids(&text);
                        let before = subs.len();
                        subs.retain(|(s, _)| Some(*s) != sid);
                        Some(json!({"jsonrpc":"2.0","id":id,"result": subs.len() != before}))
                    }
                    None => handle_body(&state, text.as_bytes(), client).await,
                };
                if let Some(r) = reply {
                    if socket.send(Message::Text(r.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            fb = finalized.recv() => {
                let fb = match fb {
                    Ok(fb) => fb,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                for (sid, sub) in &subs {
                    let result = match sub {
                        Sub::Blocks => view::finalized(&fb, false),
                        Sub::Events(kind) => {
                            let height = fb.block.height.get();
                            let mut events: Vec<Value> = fb.block.txs.iter().zip(fb.receipts.iter())
                                .filter(|(t, _)| kind.as_deref().is_none_or(|k| k == t.tx.payload.kind()))
                                .map(|(t, r)| json!({"kind": t.tx.payload.kind(), "height": height, "transaction": view::tx(t), "receipt": view::receipt(r)}))
                                .collect();
                            events.extend(fb.events.iter()
                                .filter(|e| kind.as_deref().is_none_or(|k| k == e.kind()))
                                .map(|e| {
                                    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                                    if let Some(o) = v.as_object_mut() {
                                        o.insert("height".into(), json!(height));
                                    }
                                    v
                                }));
                            if events.is_empty() { continue; }
                            Value::Array(events)
                        }
                    };
                    let note = json!({"jsonrpc":"2.0","method":"unet_subscription","params":{"subscription":sid,"result":result}});
                    if socket.send(Message::Text(note.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn subscription_request(text: &str) -> Option<(Value, Result<Sub, String>)> {
    let v: Value = serde_json::from_str(text).ok()?;
    if v.get("method")?.as_str()? != "unet_subscribe" {
        return None;
    }
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let params = v.get("params").cloned().unwrap_or(Value::Null);
    let topic = params.get(0).and_then(Value::as_str);
    let sub = match topic {
        Some("newBlocks") => Ok(Sub::Blocks),
        Some("events") => Ok(Sub::Events(
            params
                .get(1)
                .and_then(|o| o.get("kind"))
                .and_then(Value::as_str)
                .map(str::to_string),
        )),
        Some(other) => Err(format!(
            "unknown subscription {other:?}; topics: newBlocks, events"
        )),
        None => Err("params must be [topic, options?]".to_string()),
    };
    Some((id, sub))
}

fn is_unsubscribe(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.get("method")
                .and_then(Value::as_str)
                .map(|m| m == "unet_unsubscribe")
        })
        .unwrap_or(false)
}

fn unsubscribe_ids(text: &str) -> (Value, Option<u64>) {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let sid = v
        .get("params")
        .and_then(|p| p.get(0))
        .and_then(Value::as_u64);
    (id, sid)
}
