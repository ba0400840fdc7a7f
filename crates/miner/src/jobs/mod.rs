//! Work delivery: renters run jobs on the chips they lease.
//!
//! A miner serves an HTTP endpoint ([`server`]) — the `endpoint` of its market offer. A
//! renter signs every request with its account key ([`auth`]), naming the lease; the miner
//! checks the signature, accepts each request once ([`replay`]), checks the lease on chain
//! (`unet_getLease`: open, not past its end, signed by its renter, the chip in the lease and
//! managed by this miner) and refuses anything else with a JSON error. Two kinds of jobs:
//! bounded machine time ([`exec`]) in a runc sandbox, on the static busybox root or on an OCI
//! image ([`images`]: uploaded as an image-layout archive, or pulled from a registry, pinned
//! by digest), and ONNX inference ([`onnx`]): the `unet-onnx-run` runner in the same sandbox,
//! never in the miner's process. Jobs run on their own
//! worker threads behind a bounded queue, apart from the liveness daemon, so they never delay
//! a challenge answer. Every finished job carries a [`Receipt`] signed by the leased chip's
//! hardware key ([`receipt::sign`]). A lease may also run one [`services`] container for its
//! life, its port forwarded by the miner.
//!
//! The protocol both sides share — the request and result documents, request signing, the
//! receipt format and its verification — and the renter's client (`unet job`) live in the
//! renter SDK, [`unet_renter`]; this module re-exports its documents. Formats: docs/jobs.md.

pub use unet_renter::auth;
pub use unet_renter::job::{JobRequest, JobSpec, JobView, Outcome, ResultDoc};
pub use unet_renter::receipt::Receipt;

#[cfg(test)]
mod egress_tests;
pub mod exec;
#[cfg(test)]
mod image_tests;
pub mod images;
pub mod onnx;
pub mod pull;
pub mod receipt;
pub mod replay;
pub mod server;
#[cfg(test)]
mod service_tests;
pub mod services;
#[cfg(test)]
mod volume_tests;
pub mod volumes;
