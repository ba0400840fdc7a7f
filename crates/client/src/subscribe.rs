//! Subscriptions over WebSocket (`unet_api::events`).

use crate::{unwrap_reply, Client, ClientError, Result};
use futures::{SinkExt, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use unet_api::{
    chain::BlockView,
    events::{EventItem, NotificationMessage, Topic, SUBSCRIBE},
    Request,
};

/// A stream of a subscription's results.
pub type Subscription<T> = std::pin::Pin<Box<dyn Stream<Item = Result<T>> + Send>>;

impl Client {
    /// Subscribes to finalized blocks (transaction hashes only).
    pub async fn subscribe_blocks(&self) -> Result<Subscription<BlockView>> {
        self.subscribe(&Topic::NewBlocks).await
    }

    /// Subscribes to each finalized block's transactions and protocol events, optionally of
    /// one kind (`transfer`, `challenge`, ...).
    pub async fn subscribe_events(
        &self,
        kind: Option<&str>,
    ) -> Result<Subscription<Vec<EventItem>>> {
        self.subscribe(&Topic::Events {
            kind: kind.map(str::to_string),
        })
        .await
    }

    /// Subscribes to `topic`, decoding each notification's result as `T`.
    pub async fn subscribe<T: DeserializeOwned + Send + 'static>(
        &self,
        topic: &Topic,
    ) -> Result<Subscription<T>> {
        let raw = self.subscribe_raw(topic.to_params()).await?;
        Ok(Box::pin(raw.map(|r| {
            r.and_then(|v| {
                serde_json::from_value(v).map_err(|e| ClientError::Decode(e.to_string()))
            })
        })))
    }

    /// Subscribes with raw params (`["newBlocks"]`, ...); yields each notification's result.
    pub async fn subscribe_raw(&self, params: Value) -> Result<Subscription<Value>> {
        let (mut ws, _) = tokio_tungstenite::connect_async(self.ws_url())
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let req = serde_json::to_string(&Request::new(SUBSCRIBE, params, 1))
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        ws.send(Message::Text(req.into()))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        // First reply: the subscription id (or an error).
        loop {
            let msg = ws
                .next()
                .await
                .ok_or_else(|| ClientError::Transport("socket closed".into()))?
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            if let Message::Text(t) = msg {
                let v: Value =
                    serde_json::from_str(&t).map_err(|e| ClientError::Decode(e.to_string()))?;
                unwrap_reply(v)?;
                break;
            }
        }
        Ok(Box::pin(ws.filter_map(|msg| async move {
            match msg {
                Ok(Message::Text(t)) => Some(
                    serde_json::from_str::<NotificationMessage<Value>>(&t)
                        .map(|n| n.params.result)
                        .map_err(|e| ClientError::Decode(e.to_string())),
                ),
                Ok(_) => None,
                Err(e) => Some(Err(ClientError::Transport(e.to_string()))),
            }
        })))
    }
}
