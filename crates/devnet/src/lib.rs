//! A local UtilityNet on this machine: everything `unet devnet`, `unet testnet`, `unet bench`
//! and `unet miner bench` share, kept out of the node library and the binary.
//!
//! - [`fixtures`]: the devnet's public CA seeds (software secure elements and emulated NVIDIA
//!   GPUs; their roots are devnet-only), the model table and the devnet POCI genesis.
//! - [`testnet`]: node homes for a whole network (genesis, keys, epoch zero's threshold
//!   shares from a trusted dealer, configs) plus the faucet and governance keys.
//! - [`process`]: `unet node` and `unet miner run` child processes (killed when dropped),
//!   waiting until their APIs answer, the signals that stop their parent, funding accounts
//!   from the faucet, and CPU/memory samples from /proc.
//!
//! Child processes run the binary that is running this code (`std::env::current_exe`), so
//! only the `unet` binary starts them.

#![forbid(unsafe_code)]

pub mod fixtures;
pub mod process;
pub mod testnet;

pub use fixtures::{
    default_models, devnet_poci, DEVNET_CA_SEED, DEVNET_GPU_ARCHITECTURES, DEVNET_NVIDIA_CA_SEED,
};
pub use testnet::{generate_testnet, TestnetSpec};
