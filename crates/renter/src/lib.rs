//! The renter SDK: the protocol a renter speaks to a miner's job endpoint, and its client.
//!
//! A renter leases chips on chain (`unet-market`), then sends work to the lease's
//! `endpoint`, a miner's HTTP server. This crate holds everything both ends must agree on,
//! so that the miner (`unet-miner`, the server) and a renter's tools (`unet job`, `unet
//! market verify-receipt`, or any program) share one definition:
//!
//! - [`job`]: the documents: the [`job::JobRequest`] a renter submits (its exact bytes are
//!   the job: the job id is their SHA-256), the [`job::JobView`] the miner answers (with its
//!   [`job::JobState`]), the [`job::ResultDoc`] a finished job produced, and the endpoint's
//!   other answers: refusals ([`job::ErrorReply`]), image uploads ([`job::ImageUploaded`])
//!   and `/v1/info` ([`job::EndpointInfo`]).
//! - [`auth`]: request signing. Every request is signed with the renter's ed25519 account key
//!   over chain, lease, method, path, time, a nonce and the body's hash, sent in `x-unet-*`
//!   headers. Parsing and verification live here too, as pure functions; the miner adds the
//!   record of accepted nonces that makes each request single-use.
//! - [`receipt`]: the receipt the leased chip's hardware key signs over (chain, lease, job,
//!   result), and its verification against the chip's device key as registered on chain.
//!   Signing needs the chip and stays in the miner.
//! - [`lease`]: a lease as the protocol reads it from the node.
//! - [`service`]: services (an image running for the life of the lease behind a forwarded
//!   port) and live logs of jobs and services, with their client calls.
//! - [`client`]: [`client::JobClient`], the signing HTTP client of one lease, and
//!   [`client::verify_receipt`], the full check of a finished job against the chain.
//!
//! Trust runs one way: a renter needs nothing from the miner but its answers, and checks
//! each result by the receipt; the chain (through any node) says which chip was leased and
//! which key it registered. The crate depends on `unet-types`, `unet-poci` (device-key and
//! attestation checks), `unet-api` and `unet-client` (typed node reads: status, lease,
//! chip), never on the node or the miner.
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod job;
pub mod lease;
pub mod receipt;
pub mod service;
