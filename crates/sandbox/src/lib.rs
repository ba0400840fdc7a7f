//! Renters' workloads in a real sandbox: `runc` with an OCI runtime spec built here.
//!
//! - [`spec`]: the runtime spec (user namespace on an unprivileged uid range, own pid,
//!   mount, ipc, uts, cgroup and network namespaces, read-only root, no capabilities, no new
//!   privileges, [`seccomp`] deny list, cgroup limits).
//! - [`runner`]: runs a container with `runc`, caps output and wall time, and always kills
//!   and deletes it at the end.
//! - [`service`]: a container that runs until stopped (a renter's service); [`netns`]
//!   connects into its network namespace to forward a port; [`log`] is a workload's live
//!   output.
//! - [`rootfs`]: the minimal busybox root for commands without an image.
//! - [`egress`]: a workload's way out when the provider allows it (veth, NAT, nftables
//!   firewall that keeps the host and private ranges out of reach).
//! - [`gpu`]: the leased NVIDIA GPU's device nodes and driver files, from a CDI spec.
//! - [`image`]: OCI images (archive import, digest checks, safe layer unpacking, cache).
//! - [`volume`]: a lease's volume with a size quota (a loop-mounted ext4 image).
//! - [`doctor`]: what a host lacks to run workloads, and how to fix it (`unet miner doctor`).
//!
//! See crates/sandbox/README.md and docs/jobs.md.

pub mod doctor;
pub mod egress;
pub mod gpu;
pub mod image;
pub mod log;
pub mod netns;
pub mod rootfs;
pub mod runner;
pub mod seccomp;
pub mod service;
pub mod spec;
pub mod volume;

pub use log::{LiveLog, LogChunk};
pub use runner::{RunOutcome, Runtime, Stopped};
pub use service::ServiceContainer;
pub use spec::{Bind, IdRange, Resources, WorkloadSpec};
