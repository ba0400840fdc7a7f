//! Fuzzing entry point for the API's request and parameter decoding (fuzz target `rpc_params`,
//! replayed on stable by tests/fuzz_corpus.rs). Not part of the API.
//!
//! The method handlers read their parameters and the chain in one async function; this runs
//! the JSON-RPC body parsing and every parameter parser the handlers use (positional and named
//! parameters, addresses, hashes, chip ids, epochs, numbers, amounts, raw transactions) on
//! whatever a request carries, without a chain.

use super::{chips, market, methods, rewards, RpcError, MAX_BATCH};
use serde_json::Value;
use unet_types::SignedTx;

/// Every parameter name a method reads, with its position in a positional call.
const NAMES: &[(&str, usize)] = &[
    ("block", 0),
    ("height", 0),
    ("hash", 0),
    ("full", 1),
    ("address", 0),
    ("tx", 0),
    ("txs", 0),
    ("chip_id", 0),
    ("owner", 0),
    ("epoch", 0),
    ("model", 0),
    ("id", 0),
    ("from", 0),
    ("limit", 0),
    ("start", 0),
    ("min_free", 0),
    ("max_price", 0),
    ("renter", 0),
    ("provider", 0),
];

/// Parses `body` as the API does and runs every parameter parser on each request's params.
/// Never panics; every refusal is an `INVALID_PARAMS` error. Returns how many parameter
/// values parsed successfully.
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
        ok += usize::from(refused(rewards::epoch_param(&params)).is_some());
        for &(name, index) in NAMES {
            let _ = methods::param(&params, name, index);
            ok += usize::from(refused(market::u64_field(&params, name)).is_some());
            ok += usize::from(refused(market::amount_field(&params, name)).is_some());
            if let Some(s) = refused(methods::str_param(&params, name, index)) {
                ok += usize::from(refused(methods::parse_address(s)).is_some());
                ok += usize::from(refused(methods::parse_hash(s)).is_some());
                ok += usize::from(refused(chips::parse_chip_id(s)).is_some());
                if let Ok(bytes) = hex::decode(s.strip_prefix("0x").unwrap_or(s)) {
                    ok += usize::from(SignedTx::decode_untrusted(&bytes).is_ok());
                }
            }
        }
    }
    ok
}

/// The value, or `None` after checking that the refusal is a parameter error.
fn refused<T>(r: Result<T, RpcError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            assert_eq!(e.code, super::code::INVALID_PARAMS, "{}", e.message);
            let _ = e.to_json();
            None
        }
    }
}
