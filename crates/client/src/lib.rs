//! Client for the UtilityNet node API.
//!
//! One place that speaks the node's JSON-RPC, used by the CLI, the miner agent and tests, so
//! nobody hand-writes requests twice. Typed helpers cover every method; [`Client::call`] is
//! the escape hatch for raw calls.

use commonware_codec::{DecodeExt, Encode};
use futures::{SinkExt, StreamExt};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};
use std::time::Duration;
use unet_types::{hexser, keys::Account, Address, Digest, SignedTx};

/// The devnet's first node.
pub const DEFAULT_RPC: &str = "http://127.0.0.1:8545";

/// What can go wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach node: {0}")]
    Transport(String),
    #[error("node error {code}: {message}")]
    Rpc {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    #[error("unexpected response: {0}")]
    Decode(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

impl ClientError {
    /// The JSON-RPC error code, if the node answered with an error.
    pub fn code(&self) -> Option<i64> {
        match self {
            ClientError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// `unet_status`.
#[derive(Clone, Debug, Deserialize)]
pub struct Status {
    pub chain_id: u64,
    pub chain_name: String,
    pub genesis_hash: String,
    pub head_height: u64,
    pub finalized_height: u64,
    pub finalized_hash: String,
    pub finalized_state_root: String,
    pub epoch: u64,
    pub peers: u64,
    pub mempool: u64,
    pub sync: String,
    pub params: unet_types::Params,
}

/// `unet_getAccount`.
#[derive(Clone, Debug, Deserialize)]
pub struct AccountView {
    pub address: String,
    #[serde(with = "unet_types::amount::base_units")]
    pub balance: u128,
    pub balance_unc: String,
    pub nonce: u64,
    /// The nonce the account's next transaction should use (after its pending ones).
    #[serde(default)]
    pub pending_nonce: Option<u64>,
    pub height: u64,
}

/// `unet_getProof`: a finalized account entry with its proof against the state root.
#[derive(Clone, Debug, Deserialize)]
pub struct ProofView {
    pub address: String,
    pub key: String,
    pub height: u64,
    pub block: String,
    pub state_root: String,
    pub value: Option<String>,
    pub proof: String,
}

impl ProofView {
    /// Verifies the proof locally and returns the proven account (`None` = proven absent).
    pub fn verify(&self) -> Result<Option<Account>> {
        let root: Digest = hexser::from_hex(&self.state_root).map_err(ClientError::Decode)?;
        let key: Digest = hexser::from_hex(&self.key).map_err(ClientError::Decode)?;
        let address: Address = hexser::from_hex(&self.address).map_err(ClientError::Decode)?;
        if unet_types::keys::account_key(&address) != key {
            return Err(ClientError::Decode(
                "proof key is not this address's key".into(),
            ));
        }
        let bytes = hex::decode(&self.proof).map_err(|e| ClientError::Decode(e.to_string()))?;
        let proof = unet_store::StateProof::from_bytes(&bytes)
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let value = unet_store::verify_proof(&root, &key, &proof)
            .map_err(|e| ClientError::Decode(format!("proof does not verify: {e}")))?;
        value
            .map(|v| Account::decode(v).map_err(|e| ClientError::Decode(e.to_string())))
            .transpose()
    }
}

/// A node's API.
#[derive(Clone, Debug)]
pub struct Client {
    url: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the node whose API is at `url` (e.g. `http://127.0.0.1:8545`).
    pub fn new(url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self {
            url: url.into().trim_end_matches('/').to_string(),
            http,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// WebSocket URL of the same node.
    pub fn ws_url(&self) -> String {
        let base = self
            .url
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        format!("{base}/ws")
    }

    /// Raw JSON-RPC call.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        unwrap_reply(v)
    }

    /// Several calls in one JSON-RPC batch; one result per call, in order.
    pub async fn batch(&self, calls: &[(&str, Value)]) -> Result<Vec<Result<Value>>> {
        let body: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| json!({"jsonrpc": "2.0", "id": i, "method": m, "params": p}))
            .collect();
        let resp = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let Value::Array(items) = v else {
            return Err(unwrap_reply(v)
                .err()
                .unwrap_or(ClientError::Decode("batch reply".into())));
        };
        let mut out: Vec<Option<Result<Value>>> = (0..calls.len()).map(|_| None).collect();
        for item in items {
            let idx = item.get("id").and_then(Value::as_u64).unwrap_or(u64::MAX) as usize;
            if idx < out.len() {
                out[idx] = Some(unwrap_reply(item));
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ClientError::Decode("missing batch reply".into()))))
            .collect())
    }

    async fn typed<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T> {
        let v = self.call(method, params).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub async fn status(&self) -> Result<Status> {
        self.typed("unet_status", json!([])).await
    }

    pub async fn account(&self, address: &Address) -> Result<AccountView> {
        self.typed("unet_getAccount", json!([hexser::to_hex(address)]))
            .await
    }

    /// Submits a signed transaction; returns its hash (hex).
    pub async fn send_transaction(&self, tx: &SignedTx) -> Result<String> {
        let v = self
            .call("unet_sendTransaction", json!([hex::encode(tx.encode())]))
            .await?;
        v.get("hash")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClientError::Decode("no hash in reply".into()))
    }

    /// Submits many transactions in one `unet_sendTransactions` call (signatures are
    /// batch-verified by the node). One result per transaction: its hash, or the refusal.
    pub async fn send_transactions(&self, txs: &[SignedTx]) -> Result<Vec<Result<String>>> {
        let raw: Vec<String> = txs.iter().map(|t| hex::encode(t.encode())).collect();
        let v = self.call("unet_sendTransactions", json!([raw])).await?;
        let Value::Array(items) = v else {
            return Err(ClientError::Decode(
                "unet_sendTransactions: not an array".into(),
            ));
        };
        Ok(items
            .into_iter()
            .map(
                |item| match (item.get("error"), item.get("hash").and_then(Value::as_str)) {
                    (None, Some(h)) => Ok(h.to_string()),
                    (Some(e), _) => Err(ClientError::Rpc {
                        code: -32010,
                        message: e["message"].as_str().unwrap_or("refused").to_string(),
                        data: Some(json!({"check": e["check"]})),
                    }),
                    _ => Err(ClientError::Decode(format!("unexpected entry {item}"))),
                },
            )
            .collect())
    }

    pub async fn transaction(&self, hash: &str) -> Result<Value> {
        self.call("unet_getTransaction", json!([hash])).await
    }

    /// Waits until a transaction is finalized (or rejected); returns its status object.
    pub async fn wait_finalized(&self, hash: &str, timeout: Duration) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.transaction(hash).await {
                Ok(v) if v["status"] == "finalized" || v["status"] == "rejected" => return Ok(v),
                Ok(_) => {}
                Err(ClientError::Rpc { code: -32004, .. }) => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!(
                    "transaction {hash} not finalized"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A finalized block by height.
    pub async fn block(&self, height: u64) -> Result<Value> {
        self.call("unet_getBlock", json!([height])).await
    }

    pub async fn supply(&self) -> Result<Value> {
        self.call("unet_supply", json!([])).await
    }

    pub async fn proof(&self, address: &Address) -> Result<ProofView> {
        self.typed("unet_getProof", json!([hexser::to_hex(address)]))
            .await
    }

    /// Subscribes to finalized blocks over WebSocket; yields each block's JSON.
    pub async fn subscribe_blocks(
        &self,
    ) -> Result<impl futures::Stream<Item = Result<Value>> + Unpin> {
        self.subscribe(json!(["newBlocks"])).await
    }

    /// Subscribes to a topic (`["newBlocks"]`, `["events", {"kind": "transfer"}]`).
    pub async fn subscribe(
        &self,
        params: Value,
    ) -> Result<impl futures::Stream<Item = Result<Value>> + Unpin> {
        use tokio_tungstenite::tungstenite::Message;
        let (mut ws, _) = tokio_tungstenite::connect_async(self.ws_url())
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let req = json!({"jsonrpc": "2.0", "id": 1, "method": "unet_subscribe", "params": params});
        ws.send(Message::Text(req.to_string().into()))
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
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).ok()?;
                    Some(Ok(v["params"]["result"].clone()))
                }
                Ok(_) => None,
                Err(e) => Some(Err(ClientError::Transport(e.to_string()))),
            }
        })))
    }
}

fn unwrap_reply(v: Value) -> Result<Value> {
    if let Some(e) = v.get("error") {
        return Err(ClientError::Rpc {
            code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            data: e.get("data").cloned(),
        });
    }
    v.get("result")
        .cloned()
        .ok_or_else(|| ClientError::Decode(format!("no result in {v}")))
}
