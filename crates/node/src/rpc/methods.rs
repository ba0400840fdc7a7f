//! Dispatch through the `unet_api` contract, and the chain methods.
//!
//! [`dispatch`] maps a wire name to its [`Method`] and runs the handler with the method's
//! typed params; the compiler checks that each handler takes the params and returns the
//! result the contract declares for its method ([`run`]).

use super::{chips, market, rewards, views, ApiState, RpcError};
use commonware_codec::DecodeExt;
use commonware_cryptography::Digestible;
use serde_json::Value;
use std::future::Future;
use unet_api::{
    calls as c,
    chain::{
        AccountView, BlockView, ProofView, SendOutcome, Sent, StatusView, SupplyView, SyncState,
        TxLookup, TxState,
    },
    code,
    error::TxRefusal,
    params::{
        AddressParams, BlockId, GetBlockParams, HashParams, SendTransactionParams,
        SendTransactionsParams, MAX_SEND_BATCH,
    },
    Call, Method,
};
use unet_store::StoreContext;
use unet_types::{keys::account_key, Digest, SignedTx, TxError};

type Result<T> = std::result::Result<T, RpcError>;

/// Runs `handler` on the params of a `C` request, and encodes its result.
async fn run<C, F, Fut>(params: Value, handler: F) -> Result<Value>
where
    C: Call,
    F: FnOnce(C::Params) -> Fut,
    Fut: Future<Output = Result<C::Result>>,
{
    let params = unet_api::decode_params::<C>(params)?;
    let result = handler(params).await?;
    serde_json::to_value(result).map_err(RpcError::internal)
}

pub(super) async fn dispatch<E: StoreContext>(
    state: &ApiState<E>,
    method: &str,
    params: Value,
) -> Result<Value> {
    let Some(method) = Method::from_name(method) else {
        let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        return Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("unknown method {method:?}; methods: {}", names.join(", ")),
        ));
    };
    let s = state;
    match method {
        Method::Status => run::<c::Status, _, _>(params, |_| status(s)).await,
        Method::GetBlock => run::<c::GetBlock, _, _>(params, |p| get_block(s, p)).await,
        Method::GetAccount => run::<c::GetAccount, _, _>(params, |p| get_account(s, p)).await,
        Method::SendTransaction => {
            run::<c::SendTransaction, _, _>(params, |p| send_transaction(s, p)).await
        }
        Method::SendTransactions => {
            run::<c::SendTransactions, _, _>(params, |p| send_transactions(s, p)).await
        }
        Method::GetTransaction => {
            run::<c::GetTransaction, _, _>(params, |p| get_transaction(s, p)).await
        }
        Method::Supply => run::<c::Supply, _, _>(params, |_| supply(s)).await,
        Method::GetProof => run::<c::GetProof, _, _>(params, |p| get_proof(s, p)).await,
        Method::GetFinalizedHeader => {
            run::<c::GetFinalizedHeader, _, _>(params, |p| {
                super::headers::get_finalized_header(s, p)
            })
            .await
        }
        Method::GetChipProof => {
            run::<c::GetChipProof, _, _>(params, |p| super::headers::get_chip_proof(s, p)).await
        }
        Method::GetChip => run::<c::GetChip, _, _>(params, |p| chips::get_chip(s, p)).await,
        Method::ListChips => run::<c::ListChips, _, _>(params, |p| chips::list_chips(s, p)).await,
        Method::ListModels => run::<c::ListModels, _, _>(params, |_| chips::list_models(s)).await,
        Method::RegistrationNonce => {
            run::<c::RegistrationNonce, _, _>(params, |p| chips::registration_nonce_for(s, p)).await
        }
        Method::GetRewards => {
            run::<c::GetRewards, _, _>(params, |p| rewards::get_rewards(s, p)).await
        }
        Method::GetEpochRewards => {
            run::<c::GetEpochRewards, _, _>(params, |p| rewards::get_epoch_rewards(s, p)).await
        }
        Method::NetworkCompute => {
            run::<c::NetworkCompute, _, _>(params, |_| rewards::network_compute(s)).await
        }
        Method::GetCommittee => {
            run::<c::GetCommittee, _, _>(params, |p| rewards::get_committee(s, p)).await
        }
        Method::ListValidators => {
            run::<c::ListValidators, _, _>(params, |p| rewards::list_validators(s, p)).await
        }
        Method::ListOffers => {
            run::<c::ListOffers, _, _>(params, |p| market::list_offers(s, p)).await
        }
        Method::GetLease => run::<c::GetLease, _, _>(params, |p| market::get_lease(s, p)).await,
        Method::ListLeases => {
            run::<c::ListLeases, _, _>(params, |p| market::list_leases(s, p)).await
        }
    }
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::internal(e)
}

async fn status<E: StoreContext>(state: &ApiState<E>) -> Result<StatusView> {
    let s = state.shared.status();
    let mempool = state.shared.mempool.figures().await.len as u64;
    let (applied_digest, root) = super::on_chain(state, |chain| {
        Box::pin(async move { Ok((chain.applied_digest(), chain.root())) })
    })
    .await?;
    let genesis = &state.shared.genesis;
    Ok(StatusView {
        chain_id: genesis.chain_id,
        chain_name: genesis.chain_name.clone(),
        genesis_hash: hex::encode(state.shared.genesis_digest),
        head_height: s.head_height,
        head_hash: s.head_digest,
        finalized_height: s.finalized_height,
        finalized_hash: s.finalized_digest.unwrap_or(applied_digest),
        finalized_state_root: root,
        finalized_timestamp_ms: s.finalized_timestamp,
        epoch: unet_types::epoch::epoch_of(s.finalized_height, genesis.params.epoch_length),
        peers: state.shared.peers as u64,
        validators: genesis.validators.len() as u64,
        mempool,
        sync: if s.head_height > s.finalized_height + 10 {
            SyncState::CatchingUp
        } else {
            SyncState::Synced
        },
        params: genesis.params.clone(),
        role: match state.shared.role {
            crate::shared::NodeRole::Validator => unet_api::chain::NodeRole::Validator,
            crate::shared::NodeRole::Full => unet_api::chain::NodeRole::Full,
        },
    })
}

async fn get_block<E: StoreContext>(state: &ApiState<E>, p: GetBlockParams) -> Result<BlockView> {
    let height = match p.block {
        BlockId::Latest => state.shared.status().finalized_height,
        BlockId::Height(h) => h,
        BlockId::Hash(hash) => return block_by_hash(state, &hash, p.full).await,
    };
    if let Some(fb) = state
        .shared
        .recent
        .lock()
        .expect("recent")
        .get(&height)
        .cloned()
    {
        return Ok(views::finalized(&fb, p.full));
    }
    match state.shared.block_at(height).await {
        Some(b) => Ok(old_block(state, &b, p.full).await),
        None => Err(RpcError::not_found(format!(
            "no finalized block at height {height}"
        ))),
    }
}

/// A finalized block older than the in-memory window, with its receipts from the lasting
/// transaction index when it holds them.
async fn old_block<E: StoreContext>(
    state: &ApiState<E>,
    b: &unet_types::Block,
    full: bool,
) -> BlockView {
    let receipts = if !full {
        None
    } else if b.txs.is_empty() {
        Some(Vec::new())
    } else {
        let (height, digest) = (b.height.get(), b.digest());
        state
            .shared
            .chain(move |c| Box::pin(async move { c.block_receipts(height, &digest).await }))
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten()
    };
    views::block(b, receipts.as_deref(), full)
}

async fn block_by_hash<E: StoreContext>(
    state: &ApiState<E>,
    hash: &Digest,
    full: bool,
) -> Result<BlockView> {
    let found = state
        .shared
        .recent
        .lock()
        .expect("recent")
        .values()
        .find(|fb| fb.block.digest() == *hash)
        .cloned();
    if let Some(fb) = found {
        return Ok(views::finalized(&fb, full));
    }
    if let Some(history) = state.shared.history.get() {
        if let Some(b) = history.block_by_digest(*hash).await {
            return Ok(old_block(state, &b, full).await);
        }
    }
    Err(RpcError::not_found(format!(
        "no finalized block with hash {}",
        hex::encode(hash)
    )))
}

async fn get_account<E: StoreContext>(
    state: &ApiState<E>,
    p: AddressParams,
) -> Result<AccountView> {
    // Read from a snapshot of the finalized state, not through the chain's owner.
    let key = account_key(&p.address);
    let (account, height) = super::snapshot::with_snapshot(state, |snap| async move {
        let account = crate::chain::read_account(snap.get(&key).await?).map_err(internal)?;
        Ok((account, snap.height))
    })
    .await?;
    let pending_nonce = state
        .shared
        .mempool
        .next_nonce(p.address.clone(), account.nonce)
        .await;
    let entry = views::account(&p.address, &account);
    Ok(AccountView {
        address: entry.address,
        balance: entry.balance,
        balance_unc: entry.balance_unc,
        nonce: entry.nonce,
        height,
        pending_nonce,
    })
}

fn refusal(e: &TxError) -> TxRefusal {
    TxRefusal {
        check: e.code().to_string(),
        message: e.to_string(),
    }
}

fn rejected(e: &TxError) -> TxState {
    TxState::Rejected {
        check: e.code().to_string(),
        reason: e.to_string(),
    }
}

async fn send_transaction<E: StoreContext>(
    state: &ApiState<E>,
    p: SendTransactionParams,
) -> Result<Sent> {
    let stx = SignedTx::decode_untrusted(&p.tx).map_err(|e| tx_error(&e))?;
    let hash = stx.hash();
    let result = state.gossip.admit(&state.shared, vec![stx.clone()]).await;
    match result.into_iter().next() {
        Some(Ok(_)) => {
            state.gossip.publish(stx);
            Ok(Sent { hash })
        }
        Some(Err(e)) => {
            state.remember_rejected(hash, rejected(&e));
            Err(tx_error(&e))
        }
        None => Err(internal("admission returned nothing")),
    }
}

/// Admits many transactions at once (their signatures are batch-verified). Returns one
/// outcome per transaction, in order.
pub(crate) async fn send_transactions<E: StoreContext>(
    state: &ApiState<E>,
    p: SendTransactionsParams,
) -> Result<Vec<SendOutcome>> {
    if p.txs.len() > MAX_SEND_BATCH {
        return Err(RpcError::params(format!(
            "at most {MAX_SEND_BATCH} transactions per call"
        )));
    }
    let mut out: Vec<Option<SendOutcome>> = vec![None; p.txs.len()];
    let mut decoded = Vec::new();
    let mut positions = Vec::new();
    for (i, raw) in p.txs.into_iter().enumerate() {
        let parsed = raw
            .0
            .map_err(TxError::Malformed)
            .and_then(|bytes| SignedTx::decode_untrusted(&bytes));
        match parsed {
            Ok(stx) => {
                positions.push(i);
                decoded.push(stx);
            }
            Err(e) => {
                out[i] = Some(SendOutcome {
                    hash: None,
                    error: Some(refusal(&e)),
                })
            }
        }
    }
    let results = state.gossip.admit(&state.shared, decoded.clone()).await;
    for ((i, stx), r) in positions.into_iter().zip(decoded).zip(results) {
        let hash = stx.hash();
        out[i] = Some(match r {
            Ok(_) => {
                state.gossip.publish(stx);
                SendOutcome {
                    hash: Some(hash),
                    error: None,
                }
            }
            Err(e) => {
                state.remember_rejected(hash, rejected(&e));
                SendOutcome {
                    hash: Some(hash),
                    error: Some(refusal(&e)),
                }
            }
        });
    }
    out.into_iter()
        .map(|o| o.ok_or_else(|| internal("admission returned fewer results than transactions")))
        .collect()
}

fn tx_error(e: &TxError) -> RpcError {
    RpcError::invalid_tx(e.code(), e)
}

async fn get_transaction<E: StoreContext>(state: &ApiState<E>, p: HashParams) -> Result<TxLookup> {
    let hash = p.hash;
    let found = super::on_chain(state, move |chain| {
        Box::pin(async move { chain.transaction(&hash).await.map_err(internal) })
    })
    .await?;
    if let Some(l) = found {
        return Ok(TxLookup {
            hash,
            state: views::location(&l),
        });
    }
    if let Some(t) = state.shared.mempool.get(hash).await {
        return Ok(TxLookup {
            hash,
            state: TxState::Pending {
                transaction: views::tx(&t),
            },
        });
    }
    if let Some(r) = state.rejected.lock().expect("rejected").0.get(&hash) {
        return Ok(TxLookup {
            hash,
            state: r.clone(),
        });
    }
    Err(RpcError::not_found(format!(
        "unknown transaction {}",
        hex::encode(hash)
    )))
}

async fn supply<E: StoreContext>(state: &ApiState<E>) -> Result<SupplyView> {
    super::on_chain(state, move |chain| {
        Box::pin(async move {
            let s = chain.supply;
            Ok(SupplyView {
                height: chain.applied_height(),
                max_supply: unet_types::amount::MAX_SUPPLY,
                genesis: s.genesis,
                minted: s.minted,
                burned: s.burned,
                total: s.total(),
                circulating: s.circulating(),
                escrowed: s.escrowed,
            })
        })
    })
    .await
}

async fn get_proof<E: StoreContext>(state: &ApiState<E>, p: AddressParams) -> Result<ProofView> {
    let address = p.address;
    let key = account_key(&address);
    super::on_chain(state, move |chain| {
        Box::pin(async move {
            let proof = chain.prove(&key).await.map_err(internal)?;
            let value = proof.claimed_value().map(|v| v.to_vec());
            let account = value
                .as_ref()
                .and_then(|v| unet_types::keys::Account::decode(v.clone()).ok())
                .map(|a| views::account(&address, &a));
            Ok(ProofView {
                address,
                key,
                height: chain.applied_height(),
                block: chain.applied_digest(),
                state_root: chain.root(),
                value,
                account,
                proof: proof.to_bytes(),
            })
        })
    })
    .await
}
