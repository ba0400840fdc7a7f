//! Any byte string as an X.509 chain: see `unet_fuzzing::poci::x509_chain`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| unet_fuzzing::poci::x509_chain(data));
