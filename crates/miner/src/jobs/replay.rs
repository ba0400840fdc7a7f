//! The server half of request authentication: each signed request is accepted once.
//!
//! The signed message, its headers and their verification are the renter SDK's
//! (`unet_renter::auth`, re-exported as [`super::auth`]); the miner adds the record of
//! accepted nonces that turns a valid signature into a single-use one. The fuzz target
//! `job_auth` compiles this file and the SDK's auth.rs side by side, so it names the
//! protocol only as `super::auth`.

use super::auth::{
    AuthError, SignedHeaders, H_KEY, H_LEASE, H_NONCE, H_SIGNATURE, H_TIMESTAMP, MAX_SKEW_MS,
};
use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};
use unet_types::{hexser, PublicKey};

/// Nonces remembered at most (older ones expire after 2 x [`MAX_SKEW_MS`]).
pub const MAX_REMEMBERED_NONCES: usize = 200_000;

/// Remembers the nonces of accepted requests for twice the allowed clock skew, so that each
/// signed request is accepted at most once.
#[derive(Default)]
pub struct ReplayGuard {
    inner: Mutex<ReplayInner>,
}

#[derive(Default)]
struct ReplayInner {
    seen: HashMap<(String, [u8; 16]), u64>,
    order: VecDeque<(u64, String, [u8; 16])>,
}

impl ReplayGuard {
    /// Records `(key, nonce)` seen at `now_ms`; refuses a nonce already recorded.
    pub fn check_and_record(
        &self,
        key: &PublicKey,
        nonce: [u8; 16],
        now_ms: u64,
    ) -> Result<(), AuthError> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let horizon = now_ms.saturating_sub(2 * MAX_SKEW_MS);
        while g.order.front().is_some_and(|(t, _, _)| *t < horizon) {
            if let Some((_, k, n)) = g.order.pop_front() {
                g.seen.remove(&(k, n));
            }
        }
        let id = (hexser::to_hex(key), nonce);
        if g.seen.contains_key(&id) {
            return Err(AuthError::Replay);
        }
        if g.seen.len() >= MAX_REMEMBERED_NONCES {
            return Err(AuthError::Busy);
        }
        g.order.push_back((now_ms, id.0.clone(), nonce));
        g.seen.insert(id, now_ms);
        Ok(())
    }
}

/// Chain id the fuzz entry point verifies requests for.
#[doc(hidden)]
pub const FUZZ_CHAIN_ID: u64 = 1;

/// Fuzzing entry point (fuzz target `job_auth` and its corpus replay in
/// tests/fuzz_corpus.rs): `data` holds the values of `x-unet-lease`, `x-unet-key`,
/// `x-unet-timestamp`, `x-unet-nonce` and `x-unet-signature`, the method and the path, one per
/// line, then the body. Parsing and verification never panic; a request that verifies (on
/// chain [`FUZZ_CHAIN_ID`], at its own timestamp) is accepted once and then refused as a
/// replay. Returns whether it verified.
#[doc(hidden)]
pub fn fuzz_request(data: &[u8]) -> bool {
    let mut parts = data.splitn(8, |b| *b == b'\n');
    let values: Vec<String> = (0..7)
        .map(|_| String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned())
        .collect();
    let body = parts.next().unwrap_or_default();
    let names = [H_LEASE, H_KEY, H_TIMESTAMP, H_NONCE, H_SIGNATURE];
    let get = |name: &str| {
        let i = names.iter().position(|h| *h == name)?;
        Some(values[i].as_str())
    };
    let Ok(h) = SignedHeaders::parse(get) else {
        return false;
    };
    let (method, path) = (values[5].as_str(), values[6].as_str());
    for now in [0, u64::MAX, h.timestamp_ms.wrapping_add(MAX_SKEW_MS + 1)] {
        if now.abs_diff(h.timestamp_ms) > MAX_SKEW_MS {
            assert!(matches!(
                h.verify(FUZZ_CHAIN_ID, method, path, body, now),
                Err(AuthError::Stale { .. })
            ));
        }
    }
    let now = h.timestamp_ms;
    if h.verify(FUZZ_CHAIN_ID, method, path, body, now).is_err() {
        return false;
    }
    let guard = ReplayGuard::default();
    assert_eq!(guard.check_and_record(&h.key, h.nonce, now), Ok(()));
    assert_eq!(
        guard.check_and_record(&h.key, h.nonce, now),
        Err(AuthError::Replay)
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Copying, DecodeExt};
    use commonware_cryptography::Signer as _;
    use unet_types::PrivateKey;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::decode(Copying(&[seed; 32][..])).unwrap()
    }

    #[test]
    fn replay_guard_accepts_a_nonce_once_and_forgets_it_after_the_window() {
        let g = ReplayGuard::default();
        let k = key(1).public_key();
        let k2 = key(2).public_key();
        assert_eq!(g.check_and_record(&k, [1; 16], 1_000_000), Ok(()));
        assert_eq!(
            g.check_and_record(&k, [1; 16], 1_000_001),
            Err(AuthError::Replay)
        );
        // Another key may use the same nonce.
        assert_eq!(g.check_and_record(&k2, [1; 16], 1_000_001), Ok(()));
        // After the window the old entry is dropped (its timestamp would be stale anyway).
        assert_eq!(
            g.check_and_record(&k, [1; 16], 1_000_000 + 2 * MAX_SKEW_MS + 1),
            Ok(())
        );
    }
}
