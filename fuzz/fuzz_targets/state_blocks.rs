//! Random blocks against the state transition: see `unet_fuzzing::stateful`. Prints the number
//! of blocks executed so far every 4,096 blocks (stderr).
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

static REPORTED: AtomicU64 = AtomicU64::new(0);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    unet_fuzzing::stateful::state_blocks(data);
    let blocks = unet_fuzzing::stateful::BLOCKS.load(Ordering::Relaxed);
    let step = blocks >> 12;
    if step > REPORTED.load(Ordering::Relaxed) {
        REPORTED.store(step, Ordering::Relaxed);
        eprintln!("state_blocks: {blocks} blocks executed");
    }
});
