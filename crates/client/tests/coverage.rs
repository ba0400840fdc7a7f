//! The client covers every method of the contract.
//!
//! For each [`Method`] the exhaustive `match` below makes the client call its method against
//! a recording JSON-RPC server, and the test checks that the request named that method and
//! carried params the contract decodes. A method added to `unet_api` without a client call
//! fails to compile here (the match has no arm for it); a client call that sends another
//! method, or params the node would refuse, fails the test.

use axum::{extract::State, routing::post, Json, Router};
use commonware_cryptography::Signer as _;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use unet_api::{
    params::{BlockId, ListChipsParams, ListLeasesParams, ListOffersParams, PageParams},
    Method,
};
use unet_client::{Client, ClientError};
use unet_types::{PrivateKey, SignedTx, Transaction};

/// Requests received, as (method, params).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// Answers every request with a "not found" error after recording it.
async fn record(State(seen): State<Seen>, Json(req): Json<Value>) -> Json<Value> {
    seen.lock().unwrap().push((
        req["method"].as_str().unwrap_or("").to_string(),
        req["params"].clone(),
    ));
    Json(
        json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32004, "message": "recorded"}}),
    )
}

/// Calls the client method of `method`; the node's answer (an error here) is returned.
async fn call(client: &Client, method: Method) -> Result<(), ClientError> {
    let key = PrivateKey::from_seed(1);
    let who = key.public_key();
    let tx: SignedTx = Transaction {
        chain_id: 1,
        sender: who.clone(),
        nonce: 0,
        fee: 1,
        payload: unet_types::Payload::Transfer {
            to: who.clone(),
            amount: 1,
        },
    }
    .sign(&key);
    let chip = [7u8; 32];
    match method {
        Method::Status => client.status().await.map(drop),
        Method::GetBlock => client.get_block(BlockId::Latest, false).await.map(drop),
        Method::GetAccount => client.account(&who).await.map(drop),
        Method::SendTransaction => client.send_transaction(&tx).await.map(drop),
        Method::SendTransactions => client.send_transactions(&[tx]).await.map(drop),
        Method::GetTransaction => client.transaction(&tx.hash()).await.map(drop),
        Method::Supply => client.supply().await.map(drop),
        Method::GetProof => client.proof(&who).await.map(drop),
        Method::GetFinalizedHeader => client.finalized_header(5).await.map(drop),
        Method::GetChipProof => client.chip_proof(&chip).await.map(drop),
        Method::GetChip => client.chip(&chip).await.map(drop),
        Method::ListChips => client.chips(ListChipsParams::default()).await.map(drop),
        Method::ListModels => client.models().await.map(drop),
        Method::RegistrationNonce => client.registration_nonce(&who).await.map(drop),
        Method::GetRewards => client.chip_rewards(&chip, Some(1)).await.map(drop),
        Method::GetEpochRewards => client.epoch_rewards(1).await.map(drop),
        Method::NetworkCompute => client.network_compute().await.map(drop),
        Method::GetCommittee => client.committee(None).await.map(drop),
        Method::ListValidators => client.validators(PageParams::default()).await.map(drop),
        Method::ListOffers => client.offers(ListOffersParams::default()).await.map(drop),
        Method::GetLease => client.lease(3).await.map(drop),
        Method::ListLeases => {
            let filter = ListLeasesParams {
                renter: Some(who),
                ..Default::default()
            };
            client.leases(filter).await.map(drop)
        }
    }
}

#[tokio::test]
async fn the_client_has_a_call_for_every_method_of_the_contract() {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/", post(record))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Client::new(format!("http://{addr}"));

    for &method in Method::ALL {
        let answer = call(&client, method).await;
        assert!(
            answer.as_ref().is_err_and(ClientError::is_not_found),
            "{method}: the recorded error did not come back: {answer:?}"
        );
        let (sent, params) = seen.lock().unwrap().pop().expect("a request");
        assert_eq!(
            sent,
            method.name(),
            "the client call for {method} sent {sent}"
        );
        method
            .validate_params(params.clone())
            .unwrap_or_else(|e| panic!("{method}: the node would refuse {params}: {e}"));
    }
    assert!(seen.lock().unwrap().is_empty(), "one request per call");
}
