//! What one API client may use: requests per second, connections, subscriptions.
//!
//! A client is its IP address (IPv6: its /64, which one machine usually holds whole), taken
//! from the TCP connection. Forwarding headers are not trusted: behind a reverse proxy every
//! client is the proxy, so give the proxy its own limits there.
//!
//! - **Requests**: a token bucket per client (`client_rate_limit` calls per second, that many
//!   in a burst) inside the node-wide one (`rate_limit`). Each call of a batch counts. Over
//!   either, the call gets `-32005` naming which limit and when to retry; other clients are
//!   still served.
//! - **Connections**: at most `max_connections` open TCP connections, `max_connections_per_client`
//!   of them from one client. A connection over either is answered `429` with a JSON-RPC error
//!   and closed at once, before any HTTP is read.
//! - **WebSocket**: at most `max_ws_connections` sessions and `max_subscriptions` per session
//!   (`-32006` beyond).

use super::{code, error_reply, RpcError};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// API limits (the `[rpc]` table of a node's `config.toml`; `rate_limit` is the top-level
/// `rpc_rate_limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcLimits {
    /// Calls per second served by the node, all clients together.
    #[serde(skip)]
    pub rate_limit: u32,
    /// Calls per second served to one client.
    pub client_rate_limit: u32,
    /// Open TCP connections.
    pub max_connections: usize,
    /// Open TCP connections from one client.
    pub max_connections_per_client: usize,
    /// Open WebSocket sessions.
    pub max_ws_connections: usize,
    /// Subscriptions of one WebSocket session.
    pub max_subscriptions: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            rate_limit: super::DEFAULT_RATE_LIMIT,
            client_rate_limit: 2_000,
            max_connections: 4_096,
            max_connections_per_client: 128,
            max_ws_connections: 1_024,
            max_subscriptions: 16,
        }
    }
}

/// Clients whose buckets are kept before idle ones are forgotten.
const MAX_TRACKED_CLIENTS: usize = 100_000;

/// The client a connection belongs to: its IPv4 address, or its IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The node-wide and per-client request buckets.
pub struct RateLimits {
    global: DefaultDirectRateLimiter,
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

impl RateLimits {
    /// Buckets for the node-wide rate (`rate_limit` per second) and each client's rate.
    pub fn new(limits: &RpcLimits) -> Self {
        let quota = |n: u32| Quota::per_second(NonZeroU32::new(n.max(1)).expect("non-zero"));
        Self {
            global: RateLimiter::direct(quota(limits.rate_limit)),
            per_client: RateLimiter::keyed(quota(limits.client_rate_limit)),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one call from `client`'s bucket, then from the node's.
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), RpcError> {
        if let Some(ip) = client {
            let key = client_key(ip);
            if let Err(not_until) = self.per_client.check_key(&key) {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                return Err(limited(format!(
                    "rate limit exceeded for client {key}: retry in {} ms",
                    wait.as_millis().max(1)
                )));
            }
            // Forget idle clients now and then, so the table stays small.
            if self
                .checks
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(4096)
                && self.per_client.len() > MAX_TRACKED_CLIENTS
            {
                self.per_client.retain_recent();
                self.per_client.shrink_to_fit();
            }
        }
        self.global
            .check()
            .map_err(|_| limited("node-wide rate limit exceeded, retry later".into()))
    }
}

fn limited(message: String) -> RpcError {
    RpcError::new(code::RATE_LIMITED, message)
}

/// Counts open connections, in total and per client.
pub struct ConnCounter {
    max_total: usize,
    max_per_client: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One counted connection; dropping it frees the slot.
pub struct ConnGuard {
    counter: Arc<ConnCounter>,
    client: IpAddr,
}

impl ConnCounter {
    /// A counter allowing `max_total` open connections, at most `max_per_client` per client IP.
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_client,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// Takes a slot for `ip`, or says which limit is reached.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, String> {
        let client = client_key(ip);
        let mut open = self.open.lock().expect("connections lock");
        if open.0 >= self.max_total {
            return Err(format!(
                "too many connections to this node (max {})",
                self.max_total
            ));
        }
        let mine = open.1.entry(client).or_insert(0);
        if *mine >= self.max_per_client {
            return Err(format!(
                "too many connections from client {client} (max {})",
                self.max_per_client
            ));
        }
        *mine += 1;
        open.0 += 1;
        Ok(ConnGuard {
            counter: self.clone(),
            client,
        })
    }

    /// Open connections (all clients).
    pub fn open(&self) -> usize {
        self.open.lock().expect("connections lock").0
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut open = self.counter.open.lock().expect("connections lock");
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.client);
            }
        }
    }
}

/// A TCP listener that keeps to a [`ConnCounter`]: a connection over a limit is answered
/// `429` with a JSON-RPC error and closed.
pub struct CappedListener {
    inner: TcpListener,
    counter: Arc<ConnCounter>,
}

impl CappedListener {
    /// Wraps `inner`, counting its connections in `counter`.
    pub fn new(inner: TcpListener, counter: Arc<ConnCounter>) -> Self {
        Self { inner, counter }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::debug!(error = %e, "API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.counter.try_open(addr.ip()) {
                Ok(guard) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        CountedStream {
                            inner: stream,
                            _guard: guard,
                        },
                        addr,
                    );
                }
                Err(why) => {
                    tracing::debug!(%addr, why, "API connection refused");
                    refuse(stream, why);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Best effort: a `429` with a JSON-RPC error, then close (never waits on the peer).
fn refuse(stream: TcpStream, why: String) {
    let body = error_reply(
        serde_json::Value::Null,
        RpcError::new(code::LIMIT_REACHED, why),
    )
    .to_string();
    let reply = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(reply.as_bytes());
}

/// An accepted connection holding its slot.
pub struct CountedStream {
    inner: TcpStream,
    _guard: ConnGuard,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
