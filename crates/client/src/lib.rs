//! Client for the UtilityNet node API.
//!
//! One place that speaks the node's JSON-RPC, used by the CLI, the miner agent and tests.
//! The contract (method names, params, results, error codes, events) is the `unet_api`
//! crate; this client sends its params and decodes its results, with one typed method per
//! request method ([`Client::request`] is the generic form; the coverage test in
//! tests/coverage.rs fails when a method of the contract has no client call). [`Client::call`]
//! and [`Client::batch`] remain for raw calls.
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

pub mod light;
mod subscribe;

use commonware_codec::{DecodeExt, Encode};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use unet_api::{
    calls,
    chain::{
        AccountView, BlockView, CertifiedHeaderView, ProofView, SendOutcome, StatusView,
        SupplyView, TxLookup,
    },
    chips::{ChipList, ChipProofView, ChipView, ModelsView, RegistrationNonceView},
    code,
    market::{LeaseAt, LeaseList, OfferList},
    params::{
        AddressParams, BlockId, ChipParams, CommitteeParams, EpochParams, GetBlockParams,
        GetRewardsParams, HashParams, HeightParams, LeaseParams, ListChipsParams, ListLeasesParams,
        ListOffersParams, OwnerParams, PageParams, RawTx, SendTransactionParams,
        SendTransactionsParams,
    },
    rewards::{
        ChipRewards, CommitteeView, EpochRewardsView, NetworkComputeView, OwnerRewards, Rewards,
        ValidatorList,
    },
    Call, NoParams, Request, Response, RpcError,
};
use unet_types::{chip::ChipId, keys::Account, Address, Digest, SignedTx};

pub use subscribe::Subscription;
pub use unet_api as api;

/// The devnet's first node.
pub const DEFAULT_RPC: &str = "http://127.0.0.1:8545";

/// What can go wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached (or the connection broke).
    #[error("cannot reach node: {0}")]
    Transport(String),
    /// The node answered with a JSON-RPC error (codes: [`unet_api::code`]).
    #[error("node error {code}: {message}")]
    Rpc {
        /// The error code.
        code: i64,
        /// What went wrong.
        message: String,
        /// Details (`{"check"}` for a refused transaction).
        data: Option<Value>,
    },
    /// The reply did not match the contract.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// Waited too long.
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

    /// The failed check of a refused transaction (`nonce_gap`, ...).
    pub fn check(&self) -> Option<&str> {
        match self {
            ClientError::Rpc {
                code: code::INVALID_TX,
                data,
                ..
            } => data.as_ref()?.get("check")?.as_str(),
            _ => None,
        }
    }

    /// Whether the node said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(code::NOT_FOUND)
    }
}

impl From<RpcError> for ClientError {
    fn from(e: RpcError) -> Self {
        ClientError::Rpc {
            code: e.code,
            message: e.message,
            data: e.data,
        }
    }
}

/// A client result.
pub type Result<T> = std::result::Result<T, ClientError>;

/// Verifies a `unet_getProof` reply against its state root.
pub trait VerifyProof {
    /// The proven account (`None` = proven absent), or why the proof does not hold.
    fn verify(&self) -> Result<Option<Account>>;
}

impl VerifyProof for ProofView {
    fn verify(&self) -> Result<Option<Account>> {
        if unet_types::keys::account_key(&self.address) != self.key {
            return Err(ClientError::Decode(
                "proof key is not this address's key".into(),
            ));
        }
        let proof = unet_store::StateProof::from_bytes(&self.proof)
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        let value = unet_store::verify_proof(&self.state_root, &self.key, &proof)
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

    /// The node's API URL.
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

    async fn post<B: Serialize + ?Sized>(&self, body: &B) -> Result<Value> {
        let resp = self
            .http
            .post(&self.url)
            .json(body)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        resp.json()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Raw JSON-RPC call.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        unwrap_reply(self.post(&Request::new(method, params, 1)).await?)
    }

    /// A call of the contract: `C`'s params in, `C`'s result out.
    pub async fn request<C: Call>(&self, params: C::Params) -> Result<C::Result> {
        let v = unwrap_reply(
            self.post(&Request::new(C::METHOD.name(), params, 1))
                .await?,
        )?;
        serde_json::from_value(v)
            .map_err(|e| ClientError::Decode(format!("{}: {e}", C::METHOD.name())))
    }

    /// Several calls in one JSON-RPC batch; one result per call, in order.
    pub async fn batch(&self, calls: &[(&str, Value)]) -> Result<Vec<Result<Value>>> {
        let body: Vec<Request<&Value>> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| Request::new(*m, p, i as u64))
            .collect();
        let v = self.post(&body).await?;
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

    /// `unet_status`.
    pub async fn status(&self) -> Result<StatusView> {
        self.request::<calls::Status>(NoParams {}).await
    }

    /// `unet_getBlock`: a finalized block by height, hash or `latest`; whole transactions
    /// and receipts when `full`.
    pub async fn get_block(&self, block: BlockId, full: bool) -> Result<BlockView> {
        self.request::<calls::GetBlock>(GetBlockParams { block, full })
            .await
    }

    /// A finalized block by height, in full.
    pub async fn block(&self, height: u64) -> Result<BlockView> {
        self.get_block(BlockId::Height(height), true).await
    }

    /// `unet_getAccount`.
    pub async fn account(&self, address: &Address) -> Result<AccountView> {
        self.request::<calls::GetAccount>(AddressParams {
            address: address.clone(),
        })
        .await
    }

    /// `unet_sendTransaction`: submits a signed transaction; returns its hash.
    pub async fn send_transaction(&self, tx: &SignedTx) -> Result<Digest> {
        let sent = self
            .request::<calls::SendTransaction>(SendTransactionParams {
                tx: tx.encode().to_vec(),
            })
            .await?;
        Ok(sent.hash)
    }

    /// `unet_sendTransactions`: submits many transactions in one call (signatures are
    /// batch-verified by the node). One result per transaction: its hash, or the refusal.
    pub async fn send_transactions(&self, txs: &[SignedTx]) -> Result<Vec<Result<Digest>>> {
        let outcomes = self
            .request::<calls::SendTransactions>(SendTransactionsParams {
                txs: txs.iter().map(|t| RawTx(Ok(t.encode().to_vec()))).collect(),
            })
            .await?;
        if outcomes.len() != txs.len() {
            return Err(ClientError::Decode(format!(
                "unet_sendTransactions: {} outcomes for {} transactions",
                outcomes.len(),
                txs.len()
            )));
        }
        Ok(outcomes.into_iter().map(outcome).collect())
    }

    /// `POST /txs` ([`unet_api::submit`]): [`Client::send_transactions`] with a binary body,
    /// which spares both sides the request's hex and JSON. Same outcomes, same order.
    pub async fn submit(&self, txs: &[SignedTx]) -> Result<Vec<Result<Digest>>> {
        let encoded: Vec<Vec<u8>> = txs.iter().map(|t| t.encode().to_vec()).collect();
        let url = format!(
            "{}{}",
            self.url.trim_end_matches('/'),
            unet_api::submit::SUBMIT_PATH
        );
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/octet-stream")
            .body(unet_api::submit::encode_submission(&encoded))
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if let Some(e) = v.get("error") {
            let e: unet_api::RpcError = serde_json::from_value(e.clone())
                .map_err(|e| ClientError::Decode(format!("POST /txs error: {e}")))?;
            return Err(ClientError::Rpc {
                code: e.code,
                message: e.message,
                data: e.data,
            });
        }
        let outcomes: Vec<SendOutcome> = serde_json::from_value(v)
            .map_err(|e| ClientError::Decode(format!("POST /txs: {e}")))?;
        if outcomes.len() != txs.len() {
            return Err(ClientError::Decode(format!(
                "POST /txs: {} outcomes for {} transactions",
                outcomes.len(),
                txs.len()
            )));
        }
        Ok(outcomes.into_iter().map(outcome).collect())
    }

    /// `unet_getTransaction`: finalized, pending or rejected.
    pub async fn transaction(&self, hash: &Digest) -> Result<TxLookup> {
        self.request::<calls::GetTransaction>(HashParams { hash: *hash })
            .await
    }

    /// Waits until a transaction is finalized (or rejected); returns where it is.
    pub async fn wait_finalized(&self, hash: &Digest, timeout: Duration) -> Result<TxLookup> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.transaction(hash).await {
                Ok(t) if t.is_final() => return Ok(t),
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!(
                    "transaction {} not finalized",
                    hex::encode(hash)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `unet_supply`.
    pub async fn supply(&self) -> Result<SupplyView> {
        self.request::<calls::Supply>(NoParams {}).await
    }

    /// `unet_getProof`: verify it with [`VerifyProof::verify`].
    pub async fn proof(&self, address: &Address) -> Result<ProofView> {
        self.request::<calls::GetProof>(AddressParams {
            address: address.clone(),
        })
        .await
    }

    /// `unet_getFinalizedHeader`: a finalized block's header and a certificate covering it;
    /// verify it with [`light::LightVerifier`].
    pub async fn finalized_header(&self, height: u64) -> Result<CertifiedHeaderView> {
        self.request::<calls::GetFinalizedHeader>(HeightParams { height })
            .await
    }

    /// `unet_getChipProof`: verify it with [`light::LightVerifier::verify_chip`].
    pub async fn chip_proof(&self, chip_id: &ChipId) -> Result<ChipProofView> {
        self.request::<calls::GetChipProof>(ChipParams { chip_id: *chip_id })
            .await
    }

    /// `unet_getChip`.
    pub async fn chip(&self, chip_id: &ChipId) -> Result<ChipView> {
        self.request::<calls::GetChip>(ChipParams { chip_id: *chip_id })
            .await
    }

    /// `unet_listChips`.
    pub async fn chips(&self, filter: ListChipsParams) -> Result<ChipList> {
        self.request::<calls::ListChips>(filter).await
    }

    /// `unet_listModels`.
    pub async fn models(&self) -> Result<ModelsView> {
        self.request::<calls::ListModels>(NoParams {}).await
    }

    /// `unet_registrationNonce`: the anchor and nonce a chip registered to `owner` signs.
    pub async fn registration_nonce(&self, owner: &Address) -> Result<RegistrationNonceView> {
        self.request::<calls::RegistrationNonce>(OwnerParams {
            owner: owner.clone(),
        })
        .await
    }

    /// `unet_getRewards {chip_id, epoch?}`.
    pub async fn chip_rewards(&self, chip_id: &ChipId, epoch: Option<u64>) -> Result<ChipRewards> {
        let params = GetRewardsParams {
            owner: None,
            chip_id: Some(*chip_id),
            epoch,
        };
        match self.request::<calls::GetRewards>(params).await? {
            Rewards::Chip(c) => Ok(c),
            Rewards::Owner(_) => Err(ClientError::Decode(
                "unet_getRewards: an owner's rewards for a chip".into(),
            )),
        }
    }

    /// `unet_getRewards {owner, epoch?}` (default: the last epoch).
    pub async fn owner_rewards(&self, owner: &Address, epoch: Option<u64>) -> Result<OwnerRewards> {
        let params = GetRewardsParams {
            owner: Some(owner.clone()),
            chip_id: None,
            epoch,
        };
        match self.request::<calls::GetRewards>(params).await? {
            Rewards::Owner(o) => Ok(o),
            Rewards::Chip(_) => Err(ClientError::Decode(
                "unet_getRewards: a chip's rewards for an owner".into(),
            )),
        }
    }

    /// `unet_getEpochRewards`.
    pub async fn epoch_rewards(&self, epoch: u64) -> Result<EpochRewardsView> {
        self.request::<calls::GetEpochRewards>(EpochParams { epoch })
            .await
    }

    /// `unet_networkCompute`.
    pub async fn network_compute(&self) -> Result<NetworkComputeView> {
        self.request::<calls::NetworkCompute>(NoParams {}).await
    }

    /// `unet_getCommittee` (default: the current epoch).
    pub async fn committee(&self, epoch: Option<u64>) -> Result<CommitteeView> {
        self.request::<calls::GetCommittee>(CommitteeParams { epoch })
            .await
    }

    /// `unet_listValidators`.
    pub async fn validators(&self, page: PageParams) -> Result<ValidatorList> {
        self.request::<calls::ListValidators>(page).await
    }

    /// `unet_listOffers`.
    pub async fn offers(&self, filter: ListOffersParams) -> Result<OfferList> {
        self.request::<calls::ListOffers>(filter).await
    }

    /// `unet_getLease`.
    pub async fn lease(&self, id: u64) -> Result<LeaseAt> {
        self.request::<calls::GetLease>(LeaseParams { id }).await
    }

    /// `unet_listLeases`.
    pub async fn leases(&self, filter: ListLeasesParams) -> Result<LeaseList> {
        self.request::<calls::ListLeases>(filter).await
    }
}

fn outcome(o: SendOutcome) -> Result<Digest> {
    match (o.error, o.hash) {
        (None, Some(h)) => Ok(h),
        (Some(e), _) => Err(ClientError::Rpc {
            code: code::INVALID_TX,
            message: e.message,
            data: Some(serde_json::json!({"check": e.check})),
        }),
        (None, None) => Err(ClientError::Decode(
            "unet_sendTransactions: an outcome with neither hash nor error".into(),
        )),
    }
}

fn unwrap_reply(v: Value) -> Result<Value> {
    let reply: Response =
        serde_json::from_value(v).map_err(|e| ClientError::Decode(format!("reply: {e}")))?;
    reply.into_result().map_err(ClientError::from)
}
