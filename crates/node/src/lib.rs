//! The UtilityNet node.
//!
//! - [`engine`] wires one validator: commonware simplex BFT (threshold BLS with a VRF seed per
//!   round), marshal (ordered finalized blocks and backfill), buffered block broadcast and the
//!   archives that keep blocks and finalization certificates.
//! - [`application`] builds blocks from the [`mempool`] and verifies peers' blocks by executing
//!   them on the [`chain`]; [`seeds`] hands proposers their parent round's seed.
//! - [`finalizer`] applies finalized blocks to the store and publishes them.
//! - [`follow`] runs full nodes (they follow and verify finalized blocks without voting) and
//!   serves followers; [`history`] keeps finalized blocks and certificates for both roles.
//! - [`gossip`] admits transactions and spreads them to peers.
//! - [`shared`] is what the actors and the API share.
//! - [`tx_index`] keeps where every finalized transaction landed, across restarts.
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

pub mod application;
pub mod chain;
pub mod elector;
pub mod engine;
pub mod epochs;
pub mod finalizer;
pub mod follow;
pub mod gossip;
pub mod history;
pub mod home;
pub mod mempool;
pub mod retire;
pub mod rpc;
pub mod run;
pub mod seeds;
pub mod shared;
pub mod tx_index;
