//! Any byte string: decoding a block never panics, and whatever decodes re-encodes to exactly
//! the input (canonical encoding, tx root consistent with the transactions).
#![no_main]

use commonware_codec::{Decode, Encode};
use libfuzzer_sys::fuzz_target;
use unet_types::{Block, BlockCfg};

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode_cfg(data.to_vec(), &BlockCfg { max_txs: 64 }) {
        assert_eq!(block.encode().as_ref(), data);
        assert_eq!(block.tx_root, unet_types::block::tx_root(&block.txs));
    }
});
