//! Fuzzing entry point for the API's request and parameter decoding (fuzz target `rpc_params`,
//! replayed on stable by tests/fuzz_corpus.rs). Not part of the API.
//!
//! The method handlers take their params typed by the `unet_api` contract; this runs the
//! JSON-RPC body parsing and the params decoding of every method on whatever a request
//! carries, without a chain, plus the transaction decoding of `unet_sendTransaction`.

use super::{RpcError, MAX_BATCH};
use serde_json::Value;
use unet_api::{calls, code, decode_params, Method};
use unet_types::SignedTx;

/// Parses `body` as the API does and decodes each request's params as every method's.
/// Never panics; every refusal is an `INVALID_PARAMS` error. Returns how many (request,
/// method) pairs decoded successfully.
pub fn parse_request(body: &[u8]) -> usize {
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return 0;
    };
    let requests = match parsed {
        Value::Array(items) if items.len() <= MAX_BATCH => items,
        Value::Array(_) => return 0,
        other => vec![other],
    };
    let mut ok = 0;
    for request in requests {
        let Value::Object(obj) = request else {
            continue;
        };
        let params = obj.get("params").cloned().unwrap_or(Value::Null);
        for &method in Method::ALL {
            ok += usize::from(refused(method.validate_params(params.clone())).is_some());
        }
        if let Some(p) = refused(decode_params::<calls::SendTransaction>(params)) {
            ok += usize::from(SignedTx::decode_untrusted(&p.tx).is_ok());
        }
    }
    ok
}

/// The value, or `None` after checking that the refusal is a parameter error.
fn refused<T>(r: Result<T, RpcError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            assert_eq!(e.code, code::INVALID_PARAMS, "{}", e.message);
            let _ = serde_json::to_string(&e);
            None
        }
    }
}
