//! Any byte string as a block: see `unet_fuzzing::decode::block_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| unet_fuzzing::decode::block_decode(data));
