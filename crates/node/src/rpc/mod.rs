//! The node's API: JSON-RPC 2.0 over HTTP (`POST /`) and WebSocket (`/ws`), plus `/health`
//! and Prometheus text metrics at `/metrics`.
//!
//! The methods, their params and results, the error codes and the subscription events are
//! the contract of the `unet_api` crate; this module serves it (see docs/api.md). Bad input
//! never panics: malformed JSON, wrong parameter types, unknown methods and invalid
//! transactions each get a JSON-RPC error with a specific code, and bodies over
//! [`MAX_BODY_BYTES`] are refused before parsing.

mod chips;
#[doc(hidden)]
pub mod fuzzing;
mod headers;
pub mod limits;
mod market;
mod methods;
mod rewards;
mod snapshot;
#[cfg(test)]
mod tests;
mod views;
mod ws;

use crate::{gossip::TxGossip, shared::Shared};
use axum::{
    extract::{ConnectInfo, DefaultBodyLimit, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    serve::ListenerExt,
    Extension, Router,
};
pub use limits::RpcLimits;
use limits::{CappedListener, ConnCounter, RateLimits};
use serde_json::{json, Value};
use std::{
    collections::{HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};
use unet_api::{chain::TxState, Response as RpcResponse};
use unet_store::StoreContext;
use unet_types::Digest;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
/// Requests per second accepted by one node's API (across all clients; see [`RpcLimits`] for
/// the per-client limits).
pub const DEFAULT_RATE_LIMIT: u32 = 20_000;
/// Most requests in one JSON-RPC batch.
pub const MAX_BATCH: usize = 1000;

pub use unet_api::{code, RpcError};

/// Metrics text source (the runtime's registry).
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

/// Runs `f` on the chain (through its owner) for an API call; a stopped owner is an internal
/// error.
pub(super) async fn on_chain<E, T, F>(state: &ApiState<E>, f: F) -> Result<T, RpcError>
where
    E: StoreContext,
    T: Send + 'static,
    F: for<'c> FnOnce(
            &'c mut crate::chain::Chain<E>,
        ) -> futures::future::BoxFuture<'c, Result<T, RpcError>>
        + Send
        + 'static,
{
    state.shared.chain(f).await.map_err(RpcError::internal)?
}

/// What the API handlers share.
pub struct ApiState<E: StoreContext> {
    /// The node's shared state (chain, mempool, status).
    pub shared: Arc<Shared<E>>,
    /// Where submitted transactions are gossiped to peers.
    pub gossip: TxGossip,
    /// Source of `/metrics`' text.
    pub metrics: MetricsFn,
    /// Rate, connection and subscription limits.
    pub limits: RpcLimits,
    rates: RateLimits,
    /// Open TCP connections.
    pub connections: Arc<ConnCounter>,
    /// Open WebSocket sessions.
    pub sessions: Arc<ConnCounter>,
    /// Recently refused transactions and why (bounded), for `unet_getTransaction`.
    pub rejected: Mutex<(HashMap<Digest, TxState>, VecDeque<Digest>)>,
    /// When the API started (for the reported uptime and rates).
    pub started: std::time::Instant,
}

impl<E: StoreContext> ApiState<E> {
    /// The handlers' state with fresh rate buckets and connection counters.
    pub fn new(
        shared: Arc<Shared<E>>,
        gossip: TxGossip,
        metrics: MetricsFn,
        limits: RpcLimits,
    ) -> Self {
        Self {
            shared,
            gossip,
            metrics,
            limits,
            rates: RateLimits::new(&limits),
            connections: ConnCounter::new(
                limits.max_connections,
                limits.max_connections_per_client,
            ),
            sessions: ConnCounter::new(
                limits.max_ws_connections,
                limits.max_connections_per_client,
            ),
            rejected: Mutex::new((HashMap::new(), VecDeque::new())),
            started: std::time::Instant::now(),
        }
    }

    pub(crate) fn remember_rejected(&self, hash: Digest, why: TxState) {
        let mut r = self.rejected.lock().expect("rejected lock");
        if r.0.insert(hash, why).is_none() {
            r.1.push_back(hash);
        }
        while r.1.len() > 10_000 {
            if let Some(old) = r.1.pop_front() {
                r.0.remove(&old);
            }
        }
    }
}

/// Builds the API router.
pub fn router<E: StoreContext>(state: Arc<ApiState<E>>) -> Router {
    Router::new()
        .route("/", post(http_rpc::<E>))
        .route(unet_api::submit::SUBMIT_PATH, post(submit::<E>))
        .route("/ws", get(ws::upgrade::<E>))
        .route("/health", get(health::<E>))
        .route("/metrics", get(metrics::<E>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        // The block explorer: `GET /` (page) and `GET /explorer/{*path}` (assets).
        .merge(unet_explorer::router())
}

/// Serves the API until the listener fails.
pub async fn serve<E: StoreContext>(
    addr: SocketAddr,
    state: Arc<ApiState<E>>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, state).await
}

/// Serves the API on a bound listener, within the connection limits of [`RpcLimits`].
pub async fn serve_on<E: StoreContext>(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState<E>>,
) -> std::io::Result<()> {
    // `tap_io` only so the remote address reaches handlers as `ConnectInfo<SocketAddr>`.
    let listener = CappedListener::new(listener, state.connections.clone()).tap_io(|_| {});
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// The client's address, when the server knows it (always, when served by [`serve_on`]).
pub(crate) type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

pub(crate) fn peer_ip(peer: &Peer) -> Option<IpAddr> {
    peer.as_ref().map(|Extension(ConnectInfo(a))| a.ip())
}

async fn http_rpc<E: StoreContext>(
    State(state): State<Arc<ApiState<E>>>,
    peer: Peer,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    // A body over the limit (or unreadable) still gets a JSON-RPC error, with the HTTP status.
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let message = format!("request body refused: {}", rejection.body_text());
            let reply = error_reply(Value::Null, RpcError::new(code::INVALID_REQUEST, message));
            let headers = [(header::CONTENT_TYPE, "application/json")];
            return (rejection.status(), headers, reply.to_string()).into_response();
        }
    };
    let reply = handle_body(&state, &body, peer_ip(&peer)).await;
    match reply {
        Some(v) => ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// `POST /txs` ([`unet_api::submit`]): `unet_sendTransactions` with a binary body, under the
/// same rate limit.
async fn submit<E: StoreContext>(
    State(state): State<Arc<ApiState<E>>>,
    peer: Peer,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let refuse = |status: StatusCode, e: RpcError| {
        let body = json!({ "error": e }).to_string();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let message = format!("request body refused: {}", rejection.body_text());
            return refuse(
                rejection.status(),
                RpcError::new(code::INVALID_REQUEST, message),
            );
        }
    };
    if let Err(e) = state.rates.check(peer_ip(&peer)) {
        return refuse(StatusCode::TOO_MANY_REQUESTS, e);
    }
    let txs = match unet_api::submit::decode_submission(&body) {
        Ok(frames) => frames
            .into_iter()
            .map(|f| unet_api::params::RawTx(Ok(f.to_vec())))
            .collect(),
        Err(message) => return refuse(StatusCode::BAD_REQUEST, RpcError::params(message)),
    };
    let params = unet_api::params::SendTransactionsParams { txs };
    match methods::send_transactions(&state, params).await {
        Ok(outcomes) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&outcomes).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => refuse(StatusCode::BAD_REQUEST, e),
    }
}

/// Handles one HTTP/WS JSON-RPC body (single or batch). `None` for notifications only.
pub(crate) async fn handle_body<E: StoreContext>(
    state: &ApiState<E>,
    body: &[u8],
    client: Option<IpAddr>,
) -> Option<Value> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(error_reply(
                Value::Null,
                RpcError::new(code::PARSE_ERROR, format!("parse error: {e}")),
            ))
        }
    };
    match parsed {
        Value::Array(items) => {
            if items.is_empty() {
                return Some(error_reply(
                    Value::Null,
                    RpcError::new(code::INVALID_REQUEST, "empty batch"),
                ));
            }
            if items.len() > MAX_BATCH {
                return Some(error_reply(
                    Value::Null,
                    RpcError::new(
                        code::INVALID_REQUEST,
                        format!("batch larger than {MAX_BATCH}"),
                    ),
                ));
            }
            let mut out = Vec::new();
            for item in items {
                if let Some(r) = handle_one(state, item, client).await {
                    out.push(r);
                }
            }
            if out.is_empty() {
                None
            } else {
                Some(Value::Array(out))
            }
        }
        other => handle_one(state, other, client).await,
    }
}

async fn handle_one<E: StoreContext>(
    state: &ApiState<E>,
    req: Value,
    client: Option<IpAddr>,
) -> Option<Value> {
    let Value::Object(obj) = req else {
        return Some(error_reply(
            Value::Null,
            RpcError::new(code::INVALID_REQUEST, "request must be an object"),
        ));
    };
    let id = obj.get("id").cloned();
    let reply_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some(error_reply(
            reply_id,
            RpcError::new(code::INVALID_REQUEST, "jsonrpc must be \"2.0\""),
        ));
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return Some(error_reply(
            reply_id,
            RpcError::new(code::INVALID_REQUEST, "method must be a string"),
        ));
    };
    if let Err(e) = state.rates.check(client) {
        return Some(error_reply(reply_id, e));
    }
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    let result = methods::dispatch(state, method, params).await;
    // Notifications (no id) get no reply.
    id.as_ref()?;
    Some(reply(match result {
        Ok(v) => RpcResponse::ok(reply_id, v),
        Err(e) => RpcResponse::err(reply_id, e),
    }))
}

/// A reply as JSON.
pub(crate) fn reply(r: RpcResponse) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

pub(crate) fn error_reply(id: Value, e: RpcError) -> Value {
    reply(RpcResponse::err(id, e))
}

async fn health<E: StoreContext>(State(state): State<Arc<ApiState<E>>>) -> Response {
    let s = state.shared.status();
    let body = json!({
        "status": "ok",
        "finalized_height": s.finalized_height,
        "uptime_s": state.started.elapsed().as_secs(),
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn metrics<E: StoreContext>(State(state): State<Arc<ApiState<E>>>) -> Response {
    let s = state.shared.status();
    let crate::mempool::MempoolFigures {
        len: mempool,
        bytes: mempool_bytes,
        stats: mempool_stats,
    } = state.shared.mempool.figures().await;
    let uptime = state.started.elapsed().as_secs_f64().max(1e-9);
    let mut text = String::new();
    let mut gauge = |name: &str, help: &str, v: f64| {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    };
    gauge(
        "unet_head_height",
        "Highest block proposed or verified",
        s.head_height as f64,
    );
    gauge(
        "unet_finalized_height",
        "Highest finalized block",
        s.finalized_height as f64,
    );
    gauge("unet_mempool_size", "Pending transactions", mempool as f64);
    gauge(
        "unet_mempool_bytes",
        "Encoded bytes of pending transactions",
        mempool_bytes as f64,
    );
    gauge(
        "unet_mempool_evicted_total",
        "Transactions evicted for higher-ranked ones, left out by proposers for good, or expired",
        (mempool_stats.evicted_full + mempool_stats.evicted_excluded + mempool_stats.expired)
            as f64,
    );
    gauge(
        "unet_api_connections",
        "Open API connections",
        state.connections.open() as f64,
    );
    gauge(
        "unet_api_ws_sessions",
        "Open WebSocket sessions",
        state.sessions.open() as f64,
    );
    gauge(
        "unet_peers",
        "Other validators in the peer set",
        state.shared.peers as f64,
    );
    gauge(
        "unet_finalized_txs_total",
        "Transactions finalized since start",
        s.finalized_txs as f64,
    );
    gauge(
        "unet_tx_per_second",
        "Average finalized transactions per second since start",
        s.finalized_txs as f64 / uptime,
    );
    text.push_str(&(state.metrics)());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
