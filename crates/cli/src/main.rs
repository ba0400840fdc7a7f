//! `unet`: the UtilityNet command line.
// No unsafe code here (the workspace denies it; only unet-sandbox allows it, per item).
#![forbid(unsafe_code)]

mod attest;
mod bench;
mod chip;
mod devnet;
mod gov;
mod job;
mod light;
mod market;
mod miner;
mod miner_bench;
mod service;
mod sim;
mod validator;
mod wallet;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "unet",
    version,
    about = "UtilityNet: AI chips prove themselves, earn UNC, and are rented out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a validator node from a home directory (config.toml, genesis.toml, keys/).
    Node {
        #[arg(long)]
        home: PathBuf,
        /// Finalized heights whose transactions `unet_getTransaction` keeps answering (0: all;
        /// overrides `tx_index_keep` in config.toml).
        #[arg(long, value_name = "BLOCKS")]
        tx_index_keep: Option<u64>,
        /// How a full node with no state gets it: `state` (sync the state of a certified block
        /// from its upstreams, then follow) or `replay` (every block from genesis); overrides
        /// `[follow] sync` in config.toml.
        #[arg(long, value_name = "MODE")]
        sync: Option<unet_node::follow::SyncMode>,
    },
    /// Write the homes of an N-validator network (keys, shares, genesis, configs).
    Testnet(devnet::TestnetArgs),
    /// Start a complete local network on this machine in one command.
    Devnet(devnet::DevnetArgs),
    /// Measure finalized transfers per second and submission-to-finality latency on a local
    /// multi-validator network over loopback TCP.
    Bench(bench::BenchArgs),
    /// Verify chip attestation evidence offline (NVIDIA SPDM reports, vendor X.509) and print a
    /// JSON verdict; exit 0 valid, 1 invalid, 2 usage/IO error.
    Attest(attest::AttestArgs),
    /// Governance: approve and submit actions (models, vendor roots, revocations).
    Gov {
        #[command(subcommand)]
        command: gov::GovCommand,
    },
    /// Manufacture emulated chips, register chips, and query or move registered chips.
    Chip {
        #[command(subcommand)]
        command: chip::ChipCommand,
    },
    /// Run POCI at scale (N chips, several epochs) through the real state transition, without
    /// a network, and print per-epoch validator work, liveness bytes per block and peak memory.
    Simulate(sim::SimArgs),
    /// Validator registration (weight = online attested compute) and committees.
    Validator {
        #[command(subcommand)]
        command: validator::ValidatorCommand,
    },
    /// The miner agent: register chips, answer their challenges, report rewards
    /// (`unet miner --home DIR --rpc URL` runs it; see `unet miner --help`).
    Miner(miner::MinerArgs),
    /// Rewards earned by an owner (per epoch) or a chip.
    Rewards {
        /// Owner address or key name.
        #[arg(long)]
        owner: Option<String>,
        /// Chip id.
        #[arg(long)]
        chip: Option<String>,
        /// Epoch [default: the last finished one].
        #[arg(long)]
        epoch: Option<u64>,
        #[command(flatten)]
        common: wallet::Common,
    },
    /// Online chips and rated compute, in total and per model.
    Compute {
        #[command(flatten)]
        common: wallet::Common,
    },
    /// The compute rental market: offers, leases, escrowed payment.
    Market {
        #[command(subcommand)]
        command: market::MarketCommand,
    },
    /// Run jobs on leased chips: ONNX inference or a bounded command, with chip-signed
    /// receipts.
    Job {
        #[command(subcommand)]
        command: job::JobCommand,
    },
    /// Light client: read balances through an untrusted node, verified against the chain's
    /// group key (finalization certificate, block header, merkle proof).
    Light {
        #[command(subcommand)]
        command: light::LightCommand,
    },
    /// A service on a lease: an image running for the life of the lease, one port forwarded
    /// by the miner (start, status, stop, logs).
    Service {
        #[command(subcommand)]
        command: service::ServiceCommand,
    },
    /// The ONNX runner the miner starts inside a job's sandbox (`unet-onnx-run`): runs MODEL
    /// on INPUTS (a JSON array of tensors), prints the outputs as JSON.
    #[command(hide = true)]
    OnnxRun {
        /// The ONNX model file.
        model: PathBuf,
        /// The inputs, a JSON array of tensors.
        inputs: PathBuf,
    },
    #[command(flatten)]
    Wallet(wallet::Command),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Node {
            home,
            tx_index_keep,
            sync,
        } => {
            let mut home = unet_node::home::Home::load(&home)?;
            if let Some(keep) = tx_index_keep {
                home.config.tx_index_keep = keep;
            }
            if let Some(sync) = sync {
                home.config.follow.sync = sync;
            }
            init_tracing(&home.config.log);
            unet_node::run::run(home)
        }
        Command::Testnet(args) => devnet::testnet(args),
        Command::Devnet(args) => {
            init_tracing("info");
            devnet::devnet(args)
        }
        Command::Bench(args) => {
            init_tracing("warn");
            bench::bench(args)
        }
        Command::Wallet(command) => wallet::run(command),
        Command::Miner(args) => {
            init_tracing("info");
            miner::run(args)
        }
        Command::Attest(args) => attest::run(args),
        Command::Chip { command } => chip::run(command),
        Command::Gov { command } => gov::run(command),
        Command::Validator { command } => validator::run(command),
        Command::Rewards {
            owner,
            chip,
            epoch,
            common,
        } => validator::rewards(owner, chip, epoch, common),
        Command::Compute { common } => validator::compute(common),
        Command::Simulate(args) => sim::run(args),
        Command::Market { command } => market::run(command),
        Command::Job { command } => job::run(command),
        Command::Light { command } => light::run(command),
        Command::Service { command } => service::run(command),
        Command::OnnxRun { model, inputs } => match unet_onnx::run_files(&model, &inputs) {
            Ok(json) => {
                println!("{json}");
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(unet_onnx::EXIT_REFUSED)
            }
        },
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
