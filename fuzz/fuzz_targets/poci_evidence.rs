//! Any byte string as registration evidence: see `unet_fuzzing::poci::poci_evidence`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| unet_fuzzing::poci::poci_evidence(data));
