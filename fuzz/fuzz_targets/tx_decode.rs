//! Any byte string: decoding a transaction never panics, and whatever decodes re-encodes to
//! exactly the input (canonical encoding) and passes or fails its checks without panicking.
#![no_main]

use commonware_codec::Encode;
use libfuzzer_sys::fuzz_target;
use unet_types::SignedTx;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = SignedTx::decode_untrusted(data) {
        assert_eq!(tx.encode().as_ref(), data);
        let _ = tx.check_stateless(tx.tx.chain_id, 0);
    }
});
