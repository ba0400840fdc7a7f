//! The bodies of the coverage-guided fuzz targets in `fuzz/` (cargo-fuzz, nightly), kept here so
//! that the stable test suite replays the same function over the committed corpora
//! (`tests/corpus.rs`). Each function takes any byte string and panics only on a real bug: a
//! decoder or verifier that panics, a property that does not hold (canonical re-encoding,
//! verified identity equal to the claimed one, the supply invariant, proposer and verifier
//! agreeing on a block).
//!
//! The targets of crates with heavy dependencies live in their crates (`unet_node::rpc::fuzzing`,
//! `unet_miner::jobs::replay::fuzz_request`) so that this crate stays cheap to build.
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

pub mod decode;
pub mod poci;
pub mod stateful;

/// Reads fuzz input as a stream of small choices; reads past the end give zeros.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let v = u16::from_be_bytes([self.u8(), self.u8()]) as usize;
        v % n
    }

    /// The next 8 bytes as a big-endian number.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_be_bytes(b)
    }

    /// Up to `max` of the remaining bytes, length-prefixed by one byte of input.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1);
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = start + n;
        &self.data[start..end]
    }
}
