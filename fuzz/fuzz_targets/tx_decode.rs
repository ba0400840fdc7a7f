//! Any byte string as a transaction: see `unet_fuzzing::decode::tx_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| unet_fuzzing::decode::tx_decode(data));
