//! The UtilityNet state transition.
//!
//! Execution is a pure function: given the pre-state of every key a block touches
//! ([`touched_keys`] says which), the block's transactions and its [`BlockEnv`], [`execute`]
//! returns the writes to apply and one [`Receipt`] per transaction. No clock, no I/O, no
//! randomness except the block's consensus beacon in [`BlockEnv`], so every validator computes
//! the same result. The node reads the touched keys from its authenticated store, calls
//! [`execute`], and writes the result into a speculative batch whose root goes into the block.
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

mod answers;
mod events;
mod exec;
mod genesis;
pub mod liveness;
mod market;
mod plan;
mod readset;
mod receipt;
pub mod registry;
pub mod rewards;
mod stateless;
mod tally;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validators;
mod working;

pub use answers::{admit_answer, admit_answers, answer_key, AdmitError};
pub use events::Event;
pub use exec::{execute, execute_with, BlockEnv, BlockError, Mode, Outcome};
pub use genesis::genesis_writes;
pub use plan::{load_touched, touched_keys, PreStateLoader};
pub use receipt::{Receipt, SkippedAnswer, TxStatus};
pub use stateless::check_stateless_batch;
pub use working::PreState;
