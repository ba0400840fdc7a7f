//! `unet simulate`: POCI at scale, deterministic and without a network. The simulation is the
//! `unet-sim` crate; this prints its figures per epoch.

use anyhow::Result;
use clap::Args;
use std::time::Instant;
use unet_sim::{SimConfig, Simulation};

#[derive(Args)]
pub struct SimArgs {
    /// Registered chips.
    #[arg(long, default_value_t = 1_000_000)]
    chips: u64,
    /// Epochs to run.
    #[arg(long, default_value_t = 3)]
    epochs: u64,
    /// Blocks per epoch (3000 = 5 minutes of 100 ms blocks).
    #[arg(long, default_value_t = 3000)]
    epoch_length: u64,
    /// Challenges per chip per epoch.
    #[arg(long, default_value_t = 2)]
    challenges_per_epoch: u32,
    /// Share of challenges left unanswered, in basis points (100 = 1%).
    #[arg(long, default_value_t = 100)]
    miss_bps: u64,
    /// Chip owners (chips are spread evenly).
    #[arg(long, default_value_t = 10_000)]
    owners: u64,
    /// Distinct device keys (chips share keys from this pool; verification cost is the same;
    /// the answers are signed with ring, standing in for the chips' secure elements).
    #[arg(long, default_value_t = 64)]
    key_pool: usize,
    /// Check every answer's proof inside the block instead of once at admission (the
    /// reference: a validator that saw none of the answers before the block).
    #[arg(long)]
    recheck_in_block: bool,
}

pub fn run(args: SimArgs) -> Result<()> {
    let config = SimConfig {
        chips: args.chips,
        epoch_length: args.epoch_length,
        challenges_per_epoch: args.challenges_per_epoch,
        miss_bps: args.miss_bps,
        owners: args.owners,
        key_pool: args.key_pool,
        recheck_in_block: args.recheck_in_block,
    };
    config.validate()?;
    eprintln!(
        "building a state with {} chips ({} owners, {} device keys)...",
        args.chips, args.owners, args.key_pool
    );
    let started = Instant::now();
    let mut sim = Simulation::build(config)?;
    eprintln!(
        "state ready in {:.1} s; running {} epochs of {} blocks",
        started.elapsed().as_secs_f64(),
        args.epochs,
        args.epoch_length
    );
    let params = sim.params().clone();
    let capacity_bytes = sim.block_capacity_bytes();
    println!(
        "chips {}  epoch_length {}  challenges/chip/epoch {}  miss {}%  block capacity {} txs ({:.2} MB of transfers)",
        args.chips,
        args.epoch_length,
        args.challenges_per_epoch,
        args.miss_bps as f64 / 100.0,
        params.max_block_txs,
        capacity_bytes as f64 / 1e6
    );
    println!(
        "answer proofs checked {}",
        if args.recheck_in_block {
            "in the block (reference)"
        } else {
            "once, at mempool admission"
        }
    );
    println!(
        "{:>5} {:>10} {:>9} {:>7} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>10} {:>9} {:>8} {:>9} {:>7} {:>9}",
        "epoch",
        "work_s",
        "avg_ms",
        "%block",
        "max_ms",
        "bound_ms",
        "settle_s",
        "load_ms",
        "exec_ms",
        "apply_ms",
        "admit_ms",
        "%admit",
        "answers",
        "bytes/blk",
        "%bytes",
        "txs/blk",
        "unresp",
        "rss_MiB",
        "upkeep_ms"
    );
    let block_ms = params.block_time_ms as f64;
    for _ in 0..args.epochs {
        let f = sim.run_epoch()?;
        let l = f.blocks as f64;
        println!(
            "{:>5} {:>10.2} {:>9.2} {:>6.1}% {:>9.2} {:>9.2} {:>10.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6.1}% {:>9} {:>10.0} {:>8.2}% {:>8.1} {:>9} {:>7.0} {:>9.2}",
            f.epoch,
            f.work.as_secs_f64(),
            f.per_block_ms(f.work),
            100.0 * f.per_block_ms(f.work) / block_ms,
            f.max_block.as_secs_f64() * 1e3,
            f.boundary.as_secs_f64() * 1e3,
            f.settle_extra.as_secs_f64(),
            f.per_block_ms(f.phases.load),
            f.per_block_ms(f.phases.exec),
            f.per_block_ms(f.phases.apply),
            f.per_block_ms(f.phases.admit),
            100.0 * f.per_block_ms(f.phases.admit) / block_ms,
            f.answers,
            f.bytes as f64 / l,
            100.0 * f.bytes as f64 / l / capacity_bytes as f64,
            f.txs as f64 / l,
            f.unresponsive,
            f.peak_rss_mib.unwrap_or(0.0),
            f.per_block_ms(f.phases.upkeep)
        );
    }
    println!(
        "columns: work_s = validator time for the epoch's blocks (load + exec + apply); avg_ms and %block = that per block, and as a share of the {} ms block time; load/exec/apply_ms = its phases per block; admit_ms and %admit = answer checks at mempool admission per block (off the block's path; 0 with --recheck-in-block); bound_ms = the epoch's last block (rollover, committee choice); settle_s = extra time of the settlement half (first half minus second half of the epoch); %bytes = liveness bytes per block / block capacity in transfers; upkeep_ms = the simulator's stand-in store growing or rehashing its map between blocks, per block (the simulator's bookkeeping, not the state transition's work)",
        params.block_time_ms
    );
    Ok(())
}
