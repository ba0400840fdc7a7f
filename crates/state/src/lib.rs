//! The UtilityNet state transition.
//!
//! Execution is a pure function: given the pre-state of every key a block touches
//! ([`touched_keys`] says which), the block's transactions and its [`BlockEnv`], [`execute`]
//! returns the writes to apply and one [`Receipt`] per transaction. No clock, no I/O, no
//! randomness except the block's consensus beacon in [`BlockEnv`], so every validator computes
//! the same result. The node reads the touched keys from its authenticated store, calls
//! [`execute`], and writes the result into a speculative batch whose root goes into the block.

mod exec;
mod genesis;
mod receipt;
pub mod registry;
mod stateless;
mod working;

pub use exec::{execute, touched_keys, BlockEnv, BlockError, Mode, Outcome};
pub use genesis::genesis_writes;
pub use receipt::{Receipt, TxStatus};
pub use stateless::check_stateless_batch;
pub use working::PreState;
