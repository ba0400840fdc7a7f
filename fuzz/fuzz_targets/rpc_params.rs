//! Any byte string as a JSON-RPC body: see `unet_node::rpc::fuzzing::parse_request`.
//! Build with `--features rpc` (it pulls in the whole node).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    unet_node::rpc::fuzzing::parse_request(data);
});
