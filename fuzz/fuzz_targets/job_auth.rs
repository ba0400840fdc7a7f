//! The miner's job request authentication: see `unet_miner::jobs::auth::fuzz_request`.
//!
//! The miner crate depends on tract (ONNX) and an HTTP stack; to keep this target cheap to
//! build, it compiles the very same source file, crates/miner/src/jobs/auth.rs, as a module
//! (its only dependencies are unet-types, commonware, hex, rand and thiserror). The stable
//! replay test (crates/miner/tests/fuzz_corpus.rs) calls the function through unet-miner.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/miner/src/jobs/auth.rs"]
mod auth;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auth::fuzz_request(data);
});
