//! The miner's job request authentication: see `unet_miner::jobs::replay::fuzz_request`.
//!
//! The miner crate depends on tract (ONNX) and an HTTP stack, the renter SDK on an HTTP
//! client; to keep this target cheap to build, it compiles the very same source files as
//! modules: the SDK's request signing and verification (crates/renter/src/auth.rs) and the
//! miner's replay guard (crates/miner/src/jobs/replay.rs, which names the former as
//! `super::auth`). Their only dependencies are unet-types, commonware, hex, rand and
//! thiserror. The stable replay test (crates/miner/tests/fuzz_corpus.rs) calls the function
//! through unet-miner.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/renter/src/auth.rs"]
mod auth;

#[allow(dead_code)]
#[path = "../../crates/miner/src/jobs/replay.rs"]
mod replay;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    replay::fuzz_request(data);
});
