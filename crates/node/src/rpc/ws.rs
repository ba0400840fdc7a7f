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
    code, error_reply, handle_body, limits::ConnGuard, peer_ip, reply, views, ApiState, Peer,
    RpcError,
};
use axum::{
    extract::{ws::Message, State, WebSocketUpgrade},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use std::{net::IpAddr, sync::Arc};
use unet_api::{
    events::{NotificationMessage, Topic, SUBSCRIBE, UNSUBSCRIBE},
    Response as RpcResponse,
};
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

async fn session<E: StoreContext>(
    state: Arc<ApiState<E>>,
    mut socket: axum::extract::ws::WebSocket,
    client: Option<IpAddr>,
    _slot: ConnGuard,
) {
    let max_subs = state.limits.max_subscriptions;
    let mut finalized = state.shared.finalized_tx.subscribe();
    let mut subs: Vec<(u64, Topic)> = Vec::new();
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
                        Some(reply(RpcResponse::ok(id, sid.into())))
                    }
                    Some((id, Err(e))) => Some(error_reply(id, RpcError::params(e))),
                    None if is_unsubscribe(&text) => {
                        let (id, sid) = unsubscribe_ids(&text);
                        let before = subs.len();
                        subs.retain(|(s, _)| Some(*s) != sid);
                        Some(reply(RpcResponse::ok(id, (subs.len() != before).into())))
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
                        Topic::NewBlocks => serde_json::to_value(views::finalized(&fb, false)),
                        Topic::Events { kind } => {
                            let events = views::block_events(&fb, kind.as_deref());
                            if events.is_empty() { continue; }
                            serde_json::to_value(events)
                        }
                    };
                    let Ok(result) = result else { continue };
                    let Ok(note) = serde_json::to_string(&NotificationMessage::new(*sid, result)) else { continue };
                    if socket.send(Message::Text(note.into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A `unet_subscribe` request: its id and the topic (or why the params name none).
fn subscription_request(text: &str) -> Option<(Value, Result<Topic, String>)> {
    let v: Value = serde_json::from_str(text).ok()?;
    if v.get("method")?.as_str()? != SUBSCRIBE {
        return None;
    }
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let params = v.get("params").cloned().unwrap_or(Value::Null);
    Some((id, Topic::from_params(&params)))
}

fn is_unsubscribe(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.get("method")
                .and_then(Value::as_str)
                .map(|m| m == UNSUBSCRIBE)
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
