//! Error codes and the JSON-RPC error object.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// JSON-RPC error codes: the standard ones and the node's own (`-320xx`).
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a JSON-RPC request (not an object, wrong `jsonrpc`, empty or oversized batch,
    /// body over the size limit).
    pub const INVALID_REQUEST: i64 = -32600;
    /// No method of that name (the message lists them).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// A parameter is missing or malformed (the message names it).
    pub const INVALID_PARAMS: i64 = -32602;
    /// The node failed to read its own state.
    pub const INTERNAL: i64 = -32603;
    /// The transaction failed a check; `data.check` names it (see [`super::TxRefusal`]).
    pub const INVALID_TX: i64 = -32010;
    /// No such block, transaction, chip, lease or committee.
    pub const NOT_FOUND: i64 = -32004;
    /// Over a request rate limit (the message says which, and when to retry).
    pub const RATE_LIMITED: i64 = -32005;
    /// Over a connection or subscription limit.
    pub const LIMIT_REACHED: i64 = -32006;
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// One of [`code`].
    pub code: i64,
    /// What went wrong, for people.
    pub message: String,
    /// Details for programs: `{"check": ..}` for [`code::INVALID_TX`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`, without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// An [`code::INVALID_PARAMS`] error.
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    /// A [`code::NOT_FOUND`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(code::NOT_FOUND, message)
    }

    /// A [`code::INTERNAL`] error.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(code::INTERNAL, message.to_string())
    }

    /// An [`code::INVALID_TX`] error naming the failed `check`.
    pub fn invalid_tx(check: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            code: code::INVALID_TX,
            message: format!("invalid transaction: {reason}"),
            data: Some(serde_json::json!({ "check": check })),
        }
    }

    /// The failed check of an [`code::INVALID_TX`] error.
    pub fn check(&self) -> Option<&str> {
        (self.code == code::INVALID_TX)
            .then(|| self.data.as_ref()?.get("check")?.as_str())
            .flatten()
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for RpcError {}

/// Why a transaction was refused: the check it failed (`nonce_gap`, `bad_signature`, ...)
/// and the reason in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRefusal {
    /// The failed check (`TxError::code`).
    pub check: String,
    /// The reason, for people.
    pub message: String,
}
