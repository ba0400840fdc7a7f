//! The UtilityNet node API, defined once.
//!
//! The node serves JSON-RPC 2.0 over HTTP and WebSocket (docs/api.md). This crate is the
//! contract both sides compile against:
//!
//! - [`Method`]: every request method, with its wire name (`unet_getChip`, ...). The table in
//!   [`methods`] is the only place a method is declared: it yields the enum, the list
//!   [`Method::ALL`], and one marker type per method in [`calls`] implementing [`Call`], which
//!   ties the method to its parameter type and its result type.
//! - Parameter types ([`params`]) accept what the node has always accepted (positional or
//!   named; numbers as JSON numbers or decimal strings where documented); results
//!   ([`chain`], [`chips`], [`rewards`], [`market`]) are the exact JSON the node returns.
//! - [`error`]: the error codes and the error object.
//! - [`events`]: the subscription topics and what they stream.
//! - [`submit`]: `POST /txs`, the binary form of `unet_sendTransactions`.
//!
//! Everything is `Serialize + Deserialize`: the server encodes results and decodes params with
//! these types, the client does the opposite, and a field renamed on one side is renamed on
//! both. Enumerations (chip status, lease status, close reasons, evidence kinds, transaction
//! states, event kinds) are Rust enums on both sides, never strings compared by hand.

#![forbid(unsafe_code)]

pub mod chain;
pub mod chips;
pub mod error;
pub mod events;
pub mod hex;
pub mod market;
pub mod methods;
pub mod params;
pub mod rewards;
pub mod submit;

pub use error::{code, RpcError};
pub use methods::{calls, Method};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};

/// One request method: its name, its parameters and its result.
///
/// Implemented by the marker types of [`calls`] (generated from the table in [`methods`]).
pub trait Call {
    /// The method.
    const METHOD: Method;
    /// What the request carries (named; see [`Method::positional`] for the positional form).
    type Params: Serialize + DeserializeOwned;
    /// What a successful reply carries.
    type Result: Serialize + DeserializeOwned;
}

/// Parameters of a method that takes none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoParams {}

/// The JSON-RPC version every request and reply carries.
pub const JSONRPC: &str = "2.0";

/// A JSON-RPC request as a client sends it (named parameters).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request<P> {
    /// Always [`JSONRPC`].
    pub jsonrpc: String,
    /// Echoed in the reply; absent for a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The method's wire name.
    pub method: String,
    /// The parameters.
    pub params: P,
}

impl<P> Request<P> {
    /// A request for `method` with `params` and `id`.
    pub fn new(method: impl Into<String>, params: P, id: u64) -> Self {
        Self {
            jsonrpc: JSONRPC.into(),
            id: Some(Value::from(id)),
            method: method.into(),
            params,
        }
    }
}

/// A JSON-RPC reply: a result or an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Always [`JSONRPC`].
    pub jsonrpc: String,
    /// The request's id (null when the request could not be read).
    #[serde(default)]
    pub id: Value,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    /// A successful reply.
    pub fn ok(id: Value, result: Value) -> Self {
        Self {
            jsonrpc: JSONRPC.into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// An error reply.
    pub fn err(id: Value, error: RpcError) -> Self {
        Self {
            jsonrpc: JSONRPC.into(),
            id,
            result: None,
            error: Some(error),
        }
    }

    /// The result, or the error the node answered with. A reply with neither is an error
    /// with code 0.
    pub fn into_result(self) -> Result<Value, RpcError> {
        match (self.error, self.result) {
            (Some(e), _) => Err(e),
            (None, Some(v)) => Ok(v),
            (None, None) => Err(RpcError::new(0, "reply has neither result nor error")),
        }
    }
}

/// Turns the params of a request for `C` into `C::Params`.
///
/// Positional params (`[a, b]`) are named after [`Method::positional`]; absent params are
/// `{}`. A refusal is an [`code::INVALID_PARAMS`] error whose message names the field
/// (`address: invalid hex: ...`).
pub fn decode_params<C: Call>(params: Value) -> Result<C::Params, RpcError> {
    let named = name_positional(C::METHOD, params)?;
    decode_named::<C::Params>(named)
}

fn decode_named<T: DeserializeOwned>(named: Value) -> Result<T, RpcError> {
    serde_path_to_error::deserialize::<_, T>(named).map_err(|e| {
        let path = e.path().to_string();
        RpcError::params(if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        })
    })
}

/// Names positional params after the method's parameter list.
pub fn name_positional(method: Method, params: Value) -> Result<Value, RpcError> {
    match params {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(params),
        Value::Array(items) => {
            let names = method.positional();
            if items.len() > names.len() {
                return Err(RpcError::params(if names.is_empty() {
                    format!("{} takes named params only: {{..}}", method.name())
                } else {
                    format!(
                        "{} takes at most {} positional params: [{}]",
                        method.name(),
                        names.len(),
                        names.join(", ")
                    )
                }));
            }
            Ok(Value::Object(
                names
                    .iter()
                    .zip(items)
                    .map(|(n, v)| (n.to_string(), v))
                    .collect(),
            ))
        }
        other => Err(RpcError::params(format!(
            "params must be an array or an object, got {other}"
        ))),
    }
}
