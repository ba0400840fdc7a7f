//! Any byte string as an NVIDIA SPDM report: see `unet_fuzzing::poci::nvidia_spdm`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| unet_fuzzing::poci::nvidia_spdm(data));
