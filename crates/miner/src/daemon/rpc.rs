//! [`RpcChain`]: the daemon's [`MinerChain`] over one node's JSON-RPC and WebSocket API.
//!
//! Every call the daemon makes to a node is in this file, written with the `unet-api`
//! contract: typed calls of [`unet_client::Client`] where one call is made, the contract's
//! method names and parameter types for the batched ones, its topics and request type for
//! the subscriptions. The answers are decoded into contract types by [`super::wire`].

use super::{
    chain::{
        AccountState, ChainStatus, ChipReading, MinerChain, NodeAnchor, Notifications, SendOutcome,
        TxLookup,
    },
    wire::{self, Sids},
};
use anyhow::{anyhow, Result};
use futures::{future::BoxFuture, SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};
use unet_api::{
    code::{INVALID_TX, NOT_FOUND},
    events::{Topic, SUBSCRIBE},
    params::{ChipParams, HashParams},
    Method, Request,
};
use unet_client::{Client, ClientError};
use unet_types::{chip::ChipId, hexser, Address, Digest, SignedTx};

/// Calls per JSON-RPC batch.
const BATCH: usize = 200;

/// One node, through [`unet_client::Client`].
pub struct RpcChain {
    client: Client,
}

impl RpcChain {
    /// The node whose API is at `url`.
    pub fn new(url: &str) -> Self {
        Self {
            client: Client::new(url),
        }
    }

    /// `method` once per parameter (the method's parameter type), in batches; one reply
    /// each, in order.
    async fn batch<P: Serialize>(
        &self,
        method: Method,
        params: impl Iterator<Item = P>,
    ) -> Result<Vec<std::result::Result<Value, ClientError>>> {
        let params = params
            .map(serde_json::to_value)
            .collect::<std::result::Result<Vec<Value>, _>>()?;
        let mut out = Vec::with_capacity(params.len());
        for chunk in params.chunks(BATCH) {
            let calls: Vec<(&str, Value)> =
                chunk.iter().map(|p| (method.name(), p.clone())).collect();
            out.extend(self.client.batch(&calls).await?);
        }
        Ok(out)
    }
}

impl MinerChain for RpcChain {
    fn name(&self) -> String {
        self.client.url().to_string()
    }

    fn status(&self) -> BoxFuture<'_, Result<ChainStatus>> {
        Box::pin(async move {
            let s = self
                .client
                .status()
                .await
                .map_err(|e| anyhow!("unet_status: {e}"))?;
            Ok(ChainStatus {
                chain_id: s.chain_id,
                genesis_hash: s.genesis_hash,
                finalized_height: s.finalized_height,
                response_window: s.params.response_window,
                max_registrations_per_block: s.params.max_registrations_per_block,
                min_fee: s.params.min_fee,
            })
        })
    }

    fn account<'a>(&'a self, owner: &'a Address) -> BoxFuture<'a, Result<AccountState>> {
        Box::pin(async move {
            let a = self.client.account(owner).await?;
            Ok(AccountState {
                nonce: a.nonce,
                balance: a.balance,
            })
        })
    }

    fn chips<'a>(&'a self, ids: &'a [ChipId]) -> BoxFuture<'a, Result<Vec<ChipReading>>> {
        Box::pin(async move {
            let replies = self
                .batch(
                    Method::GetChip,
                    ids.iter().map(|id| ChipParams { chip_id: *id }),
                )
                .await?;
            Ok(replies
                .into_iter()
                .map(|r| match r {
                    Ok(v) => match wire::chip(v) {
                        Ok(c) => ChipReading::Found(c),
                        Err(e) => ChipReading::Error(e),
                    },
                    Err(ClientError::Rpc {
                        code: NOT_FOUND, ..
                    }) => ChipReading::NotFound,
                    Err(e) => ChipReading::Error(e.to_string()),
                })
                .collect())
        })
    }

    fn transactions<'a>(&'a self, hashes: &'a [String]) -> BoxFuture<'a, Result<Vec<TxLookup>>> {
        Box::pin(async move {
            let hashes = hashes
                .iter()
                .map(|h| hexser::from_hex::<Digest>(h).map(|hash| HashParams { hash }))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| anyhow!("a transaction hash of ours is not hex: {e}"))?;
            let replies = self
                .batch(Method::GetTransaction, hashes.into_iter())
                .await?;
            replies
                .into_iter()
                .map(|r| match r {
                    Ok(v) => Ok(wire::transaction(v)),
                    Err(ClientError::Rpc { .. }) => Ok(TxLookup::Unknown),
                    Err(e) => Err(e.into()),
                })
                .collect()
        })
    }

    fn send<'a>(&'a self, txs: &'a [SignedTx]) -> BoxFuture<'a, Result<Vec<SendOutcome>>> {
        Box::pin(async move {
            let results = self.client.send_transactions(txs).await?;
            Ok(results
                .into_iter()
                .map(|r| match r {
                    Ok(_) => SendOutcome::Accepted,
                    Err(ClientError::Rpc {
                        code: INVALID_TX,
                        message,
                        data,
                    }) => SendOutcome::Refused {
                        check: data
                            .as_ref()
                            .and_then(|d| d["check"].as_str())
                            .unwrap_or("refused")
                            .to_string(),
                        message,
                    },
                    Err(e) => SendOutcome::Error(e.to_string()),
                })
                .collect())
        })
    }

    fn registration_anchor<'a>(&'a self, owner: &'a Address) -> BoxFuture<'a, Result<NodeAnchor>> {
        Box::pin(async move {
            Ok(NodeAnchor::from(
                self.client.registration_nonce(owner).await?,
            ))
        })
    }

    fn subscribe(&self) -> BoxFuture<'_, Result<Notifications>> {
        Box::pin(subscribe(self.client.ws_url()))
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the socket and subscribes: events first, blocks last, so that the node sends a
/// block's events before the block.
async fn subscribe(url: String) -> Result<Notifications> {
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .map_err(|_| anyhow!("WebSocket connect timed out"))??;
    let events = |kind: &str| Topic::Events {
        kind: Some(kind.to_string()),
    };
    let topics = [
        events("challenge"),
        events("chip_status"),
        events("reward"),
        Topic::NewBlocks,
    ];
    let mut ids = [0u64; 4];
    for (i, topic) in topics.iter().enumerate() {
        let params = topic.to_params();
        let req = Request::new(SUBSCRIBE, &params, i as u64 + 1);
        ws.send(Message::Text(serde_json::to_string(&req)?.into()))
            .await?;
        // Notifications of earlier subscriptions may come first; they are re-derived by the
        // catch-up that follows, so skipping them loses nothing.
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .map_err(|_| anyhow!("no reply to unet_subscribe"))?
                .ok_or_else(|| anyhow!("socket closed while subscribing"))??;
            let Message::Text(t) = msg else { continue };
            // Notifications have no id and do not decode as a reply.
            let Ok(reply) = serde_json::from_str::<unet_api::Response>(&t) else {
                continue;
            };
            if reply.id.as_u64() != Some(i as u64 + 1) {
                continue;
            }
            let id = reply
                .into_result()
                .map_err(|e| anyhow!("{SUBSCRIBE} {params}: {e}"))?;
            ids[i] = id
                .as_u64()
                .ok_or_else(|| anyhow!("subscription id is not a number: {id}"))?;
            break;
        }
    }
    let sids = Sids {
        challenge: ids[0],
        chip_status: ids[1],
        reward: ids[2],
        blocks: ids[3],
    };
    Ok(futures::stream::unfold(Some(ws), move |ws| next(ws, sids)).boxed())
}

/// The next notification of the socket; pings are answered, other frames skipped. After an
/// error the stream ends.
async fn next(
    ws: Option<Socket>,
    sids: Sids,
) -> Option<(Result<super::chain::Notification>, Option<Socket>)> {
    let mut ws = ws?;
    loop {
        let err = match ws.next().await {
            None => anyhow!("socket closed"),
            Some(Err(e)) => anyhow!("socket error: {e}"),
            Some(Ok(Message::Close(_))) => anyhow!("node closed the socket"),
            Some(Ok(Message::Ping(p))) => {
                ws.send(Message::Pong(p)).await.ok();
                continue;
            }
            Some(Ok(Message::Text(t))) => {
                let Ok(v) = serde_json::from_str::<Value>(&t) else {
                    warn!("ignoring a notification that is not JSON");
                    continue;
                };
                match wire::notification(v, &sids) {
                    Some(n) => return Some((Ok(n), Some(ws))),
                    None => {
                        debug!("ignoring message {:.200}", t.as_str());
                        continue;
                    }
                }
            }
            Some(Ok(_)) => continue,
        };
        return Some((Err(err), None));
    }
}
