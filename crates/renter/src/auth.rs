//! Renter authentication of job requests.
//!
//! Every request to a miner's job endpoint is signed by the lease's renter (its ed25519
//! account key) over a domain-separated message:
//!
//! ```text
//! namespace  "UNET_JOB_REQUEST_V1"          (ed25519 signing namespace, as for transactions)
//! message    chain_id u64 BE || lease_id u64 BE
//!            || u16 BE len || METHOD || u16 BE len || PATH
//!            || timestamp_ms u64 BE || nonce [16] || SHA-256(body)
//! ```
//!
//! sent in the headers `x-unet-lease`, `x-unet-key` (the renter's public key, hex),
//! `x-unet-timestamp` (ms since the Unix epoch), `x-unet-nonce` (32 hex digits) and
//! `x-unet-signature` (hex). The miner accepts a timestamp within [`MAX_SKEW_MS`] of its
//! own clock and each (key, nonce) once within that window, so a captured request cannot be
//! replayed, redirected to another lease, chain, path or method, or given another body.

use commonware_codec::Encode;
use commonware_cryptography::{Signer, Verifier};
use unet_types::{hexser, PrivateKey, PublicKey, Signature};

/// Signing namespace of job requests.
pub const REQUEST_NAMESPACE: &[u8] = b"UNET_JOB_REQUEST_V1";
/// Largest accepted difference between a request's timestamp and the miner's clock.
pub const MAX_SKEW_MS: u64 = 60_000;

/// Header naming the lease the request is for (decimal).
pub const H_LEASE: &str = "x-unet-lease";
/// Header carrying the renter's ed25519 public key (hex).
pub const H_KEY: &str = "x-unet-key";
/// Header carrying the signing time, ms since the Unix epoch (decimal).
pub const H_TIMESTAMP: &str = "x-unet-timestamp";
/// Header carrying the request's 16-byte nonce (32 hex digits).
pub const H_NONCE: &str = "x-unet-nonce";
/// Header carrying the ed25519 signature over [`RequestHeader::message`] (hex).
pub const H_SIGNATURE: &str = "x-unet-signature";

/// What a request signature covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    /// The chain the lease lives on.
    pub chain_id: u64,
    /// The lease the request is made under.
    pub lease_id: u64,
    /// HTTP method (`GET`, `POST`).
    pub method: String,
    /// HTTP path, without scheme and host.
    pub path: String,
    /// Signing time, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Random per request; the miner accepts each (key, nonce) once.
    pub nonce: [u8; 16],
    /// SHA-256 of the exact request body.
    pub body_hash: [u8; 32],
}

impl RequestHeader {
    /// The signed message (see the module documentation).
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(8 + 8 + 4 + self.method.len() + self.path.len() + 56);
        m.extend_from_slice(&self.chain_id.to_be_bytes());
        m.extend_from_slice(&self.lease_id.to_be_bytes());
        for part in [&self.method, &self.path] {
            let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
            m.extend_from_slice(&len.to_be_bytes());
            m.extend_from_slice(&part.as_bytes()[..usize::from(len)]);
        }
        m.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        m.extend_from_slice(&self.nonce);
        m.extend_from_slice(&self.body_hash);
        m
    }
}

/// The headers of a signed request, as (name, value) pairs.
pub fn sign_request(
    key: &PrivateKey,
    chain_id: u64,
    lease_id: u64,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp_ms: u64,
) -> Vec<(&'static str, String)> {
    let mut nonce = [0u8; 16];
    rand::fill(&mut nonce);
    let header = RequestHeader {
        chain_id,
        lease_id,
        method: method.to_string(),
        path: path.to_string(),
        timestamp_ms,
        nonce,
        body_hash: unet_types::sha256(&[body]),
    };
    let sig = key.sign(REQUEST_NAMESPACE, &header.message());
    vec![
        (H_LEASE, lease_id.to_string()),
        (H_KEY, hexser::to_hex(&key.public_key())),
        (H_TIMESTAMP, timestamp_ms.to_string()),
        (H_NONCE, hex::encode(nonce)),
        (H_SIGNATURE, hex::encode(sig.encode())),
    ]
}

/// Why a request's authentication was refused. `code()` is the JSON error code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// A header is missing or does not parse (its name).
    #[error("missing or malformed header {0}")]
    BadHeader(&'static str),
    #[error("timestamp {got} ms is more than {MAX_SKEW_MS} ms from the miner's clock ({now} ms)")]
    /// The timestamp is too far from the verifier's clock.
    Stale {
        /// The request's timestamp, ms.
        got: u64,
        /// The verifier's clock, ms.
        now: u64,
    },
    /// The signature does not cover this request.
    #[error(
        "signature does not verify for this key, lease, chain, method, path, time, nonce and body"
    )]
    BadSignature,
    /// The (key, nonce) was accepted before.
    #[error("nonce already used (replayed request)")]
    Replay,
    /// The verifier remembers too many nonces to take another now.
    #[error("too many requests in the replay window; retry shortly")]
    Busy,
}

impl AuthError {
    /// The stable error code the miner answers with.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::BadHeader(_) => "bad_auth_header",
            AuthError::Stale { .. } => "stale_timestamp",
            AuthError::BadSignature => "bad_signature",
            AuthError::Replay => "replayed_nonce",
            AuthError::Busy => "busy",
        }
    }
}

/// The authentication headers of a request, parsed.
#[derive(Clone, Debug)]
pub struct SignedHeaders {
    /// `x-unet-lease`.
    pub lease_id: u64,
    /// `x-unet-key`: who signed.
    pub key: PublicKey,
    /// `x-unet-timestamp`.
    pub timestamp_ms: u64,
    /// `x-unet-nonce`.
    pub nonce: [u8; 16],
    /// `x-unet-signature`.
    pub signature: Signature,
}

impl SignedHeaders {
    /// Parses the `x-unet-*` headers with `get(name)`.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, AuthError> {
        let lease_id = get(H_LEASE)
            .and_then(|v| v.trim().parse().ok())
            .ok_or(AuthError::BadHeader(H_LEASE))?;
        let key: PublicKey = get(H_KEY)
            .and_then(|v| hexser::from_hex(v.trim()).ok())
            .ok_or(AuthError::BadHeader(H_KEY))?;
        let timestamp_ms = get(H_TIMESTAMP)
            .and_then(|v| v.trim().parse().ok())
            .ok_or(AuthError::BadHeader(H_TIMESTAMP))?;
        let nonce: [u8; 16] = get(H_NONCE)
            .and_then(|v| hex::decode(v.trim()).ok())
            .and_then(|v| v.try_into().ok())
            .ok_or(AuthError::BadHeader(H_NONCE))?;
        let signature: Signature = get(H_SIGNATURE)
            .and_then(|v| hexser::from_hex(v.trim()).ok())
            .ok_or(AuthError::BadHeader(H_SIGNATURE))?;
        Ok(Self {
            lease_id,
            key,
            timestamp_ms,
            nonce,
            signature,
        })
    }

    /// Checks the signature over `method`, `path` and `body` on chain `chain_id`, and the
    /// timestamp against `now_ms`. Does not consume the nonce: the
    /// verifier keeps its own record of accepted nonces (the miner's `ReplayGuard`).
    pub fn verify(
        &self,
        chain_id: u64,
        method: &str,
        path: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), AuthError> {
        if self.timestamp_ms.abs_diff(now_ms) > MAX_SKEW_MS {
            return Err(AuthError::Stale {
                got: self.timestamp_ms,
                now: now_ms,
            });
        }
        let header = RequestHeader {
            chain_id,
            lease_id: self.lease_id,
            method: method.to_string(),
            path: path.to_string(),
            timestamp_ms: self.timestamp_ms,
            nonce: self.nonce,
            body_hash: unet_types::sha256(&[body]),
        };
        if self
            .key
            .verify(REQUEST_NAMESPACE, &header.message(), &self.signature)
        {
            Ok(())
        } else {
            Err(AuthError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Copying, DecodeExt};

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::decode(Copying(&[seed; 32][..])).unwrap()
    }

    fn headers_of(pairs: &[(&'static str, String)]) -> SignedHeaders {
        SignedHeaders::parse(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()))
            .unwrap()
    }

    #[test]
    fn signed_request_verifies_and_binds_every_field() {
        let k = key(1);
        let now = 1_700_000_000_000;
        let body = br#"{"kind":"exec"}"#;
        let pairs = sign_request(&k, 7, 3, "POST", "/v1/jobs", body, now);
        let h = headers_of(&pairs);
        assert_eq!(h.lease_id, 3);
        assert_eq!(h.key, k.public_key());
        assert_eq!(h.verify(7, "POST", "/v1/jobs", body, now + 1000), Ok(()));
        // Another chain, method, path or body: refused.
        assert_eq!(
            h.verify(8, "POST", "/v1/jobs", body, now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            h.verify(7, "GET", "/v1/jobs", body, now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            h.verify(7, "POST", "/v1/jobs/x", body, now),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            h.verify(7, "POST", "/v1/jobs", b"{}", now),
            Err(AuthError::BadSignature)
        );
        // Another lease id in the header: refused.
        let mut other = h.clone();
        other.lease_id = 4;
        assert_eq!(
            other.verify(7, "POST", "/v1/jobs", body, now),
            Err(AuthError::BadSignature)
        );
        // Signed by someone else but claiming this key: refused.
        let forged = headers_of(&sign_request(&key(2), 7, 3, "POST", "/v1/jobs", body, now));
        let mut claimed = forged.clone();
        claimed.key = k.public_key();
        assert_eq!(
            claimed.verify(7, "POST", "/v1/jobs", body, now),
            Err(AuthError::BadSignature)
        );
        // Too old or too far in the future.
        assert_eq!(
            h.verify(7, "POST", "/v1/jobs", body, now + MAX_SKEW_MS + 1),
            Err(AuthError::Stale {
                got: now,
                now: now + MAX_SKEW_MS + 1
            })
        );
        assert!(h
            .verify(7, "POST", "/v1/jobs", body, now - MAX_SKEW_MS - 1)
            .is_err());
    }

    #[test]
    fn malformed_headers_are_named() {
        let k = key(1);
        let mut pairs = sign_request(&k, 1, 0, "GET", "/v1/jobs/a", b"", 5);
        pairs.retain(|(n, _)| *n != H_NONCE);
        let err =
            SignedHeaders::parse(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str()))
                .unwrap_err();
        assert_eq!(err, AuthError::BadHeader(H_NONCE));
        let err = SignedHeaders::parse(|n| (n == H_LEASE).then_some("x")).unwrap_err();
        assert_eq!(err, AuthError::BadHeader(H_LEASE));
    }
}
