//! Miner processes beside a local network: the emulated miners of `unet devnet`, and
//! `unet miner bench` (one miner, many chips, CPU and memory measured from /proc).

use anyhow::{anyhow, bail, Result};
use clap::Args;
use commonware_cryptography::Signer;
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use unet_client::{
    api::params::{ListChipsParams, PageParams, MAX_PAGE},
    Client,
};
use unet_devnet::process::{fund, sample, wait_ready, MinerProcess, NodeProcess};
use unet_devnet::{generate_testnet, TestnetSpec};
use unet_miner::MinerHome;
use unet_node::home::read_key;
use unet_types::{Params, PrivateKey, UNC};

/// Creates (first run) and starts the devnet's emulated miners: `dir/minerI`, each with
/// `chips` chips of alternating models, funded from the faucet, connected to node I.
pub async fn start_devnet_miners(
    dir: &Path,
    rpcs: &[String],
    miners: usize,
    chips: usize,
    base_metrics_port: u16,
    base_jobs_port: u16,
) -> Result<Vec<MinerProcess>> {
    if miners == 0 {
        return Ok(Vec::new());
    }
    let models = ["BM1684X".to_string(), "BM1684".to_string()];
    let mut fresh = Vec::new();
    for i in 0..miners {
        let home = MinerHome::new(dir.join(format!("miner{i}")));
        if !home.key_path().exists() {
            let (_, _, _) = crate::miner::init_home(&home, chips, &models, false)?;
            fresh.push(home.owner_key()?.public_key());
        }
    }
    let client = Client::new(&rpcs[0]);
    if !fresh.is_empty() {
        let faucet: PrivateKey = read_key(&dir.join("faucet.key"))?;
        fund(&client, &faucet, &fresh, 1_000 * UNC).await?;
        println!(
            "funded {} new miners with 1000 UNC each from the faucet",
            fresh.len()
        );
    }
    let mut out = Vec::new();
    for i in 0..miners {
        let home = dir.join(format!("miner{i}"));
        // Each miner talks to its own node first and fails over to the others.
        let mut order: Vec<String> = rpcs[i % rpcs.len()..].to_vec();
        order.extend_from_slice(&rpcs[..i % rpcs.len()]);
        let jobs_port = base_jobs_port + i as u16;
        let m = MinerProcess::start_with_jobs(
            &format!("miner{i}"),
            &home,
            &order,
            Some(base_metrics_port + i as u16),
            Some(jobs_port),
        )?;
        println!(
            "  miner{i}: owner {}  {} chips  metrics http://{}/metrics  jobs http://127.0.0.1:{jobs_port}  log {}",
            unet_types::hexser::to_hex(&m.owner),
            std::fs::read_dir(home.join("chips"))
                .map(|d| d.count())
                .unwrap_or(0),
            m.metrics.as_deref().unwrap_or("-"),
            m.log.display()
        );
        out.push(m);
    }
    println!(
        "  status of a miner: unet miner status --home {} --rpc {}",
        dir.join("miner0").display(),
        rpcs[0]
    );
    Ok(out)
}

/// `; chips online X/Y, rewards Z UNC` for the devnet's status line.
pub async fn miners_line(client: &Client, miners: &[MinerProcess]) -> String {
    if miners.is_empty() {
        return String::new();
    }
    let mut online = 0;
    let mut total = 0;
    let mut rewards: u128 = 0;
    for m in miners {
        let filter = ListChipsParams {
            owner: Some(m.owner.clone()),
            page: PageParams::new(None, Some(MAX_PAGE)),
            ..Default::default()
        };
        let Ok(v) = client.chips(filter).await else {
            continue;
        };
        let Ok(v) = serde_json::to_value(v) else {
            continue;
        };
        for c in v["chips"].as_array().into_iter().flatten() {
            total += 1;
            if c["status"] == "online" {
                online += 1;
            }
            rewards += c["rewards"]["total"]
                .as_str()
                .and_then(|s| s.parse::<u128>().ok())
                .unwrap_or(0);
        }
    }
    format!(
        "; miners' chips online {online}/{total}, rewards earned {} UNC",
        unet_types::amount::format_unc(rewards)
    )
}

#[derive(Args)]
pub struct MinerBenchArgs {
    /// Emulated chips of the one miner.
    #[arg(long, default_value_t = 1000)]
    pub chips: usize,
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    #[arg(long, default_value_t = 100)]
    pub block_time_ms: u64,
    /// Blocks per epoch (short, so every chip is challenged often).
    #[arg(long, default_value_t = 100)]
    pub epoch_length: u64,
    #[arg(long, default_value_t = 20)]
    pub response_window: u64,
    #[arg(long, default_value_t = 2)]
    pub challenges_per_epoch: u32,
    /// Epochs to measure after every chip is registered.
    #[arg(long, default_value_t = 3)]
    pub epochs: u64,
    #[arg(long, default_value_t = 33400)]
    pub base_p2p_port: u16,
    #[arg(long, default_value_t = 9540)]
    pub base_rpc_port: u16,
    /// Keep the network directory afterwards.
    #[arg(long)]
    pub keep: bool,
}

pub fn bench(args: MinerBenchArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("unet-miner-bench-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let spec = TestnetSpec {
        validators: args.validators,
        chain_id: 7702,
        chain_name: "unet-miner-bench".into(),
        host: "127.0.0.1".into(),
        base_p2p_port: args.base_p2p_port,
        base_rpc_port: args.base_rpc_port,
        params: Params {
            block_time_ms: args.block_time_ms,
            epoch_length: args.epoch_length,
            response_window: args.response_window,
            challenges_per_epoch: args.challenges_per_epoch,
            ..Params::default()
        },
        genesis_time_ms: 0,
        followers: 0,
        full_nodes: 0,
        base_follow_port: args.base_p2p_port.saturating_add(50),
    };
    let homes = generate_testnet(&spec, &dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(run_bench(&args, &dir, homes));
    if args.keep || result.is_err() {
        println!("network kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_bench(args: &MinerBenchArgs, dir: &Path, homes: Vec<PathBuf>) -> Result<()> {
    let mut nodes = Vec::new();
    for h in &homes {
        nodes.push(NodeProcess::start(h)?);
    }
    wait_ready(&mut nodes, Duration::from_secs(60)).await?;
    let rpcs: Vec<String> = nodes.iter().map(|n| n.rpc.clone()).collect();
    let client = Client::new(&rpcs[0]);
    println!(
        "network up: {} validators, block_time_ms={}, epoch_length={}, response_window={}, challenges_per_epoch={}",
        nodes.len(),
        args.block_time_ms,
        args.epoch_length,
        args.response_window,
        args.challenges_per_epoch
    );
    let home = MinerHome::new(dir.join("miner"));
    let t = Instant::now();
    let models = ["BM1684X".to_string(), "BM1684".to_string()];
    crate::miner::init_home(&home, args.chips, &models, false)?;
    println!(
        "manufactured {} emulated chips in {:.1} s",
        args.chips,
        t.elapsed().as_secs_f64()
    );
    let owner = home.owner_key()?.public_key();
    let faucet: PrivateKey = read_key(&dir.join("faucet.key"))?;
    fund(
        &client,
        &faucet,
        std::slice::from_ref(&owner),
        100_000 * UNC,
    )
    .await?;

    let mut miner = MinerProcess::start("miner", &home.dir, &rpcs, None)?;
    let pid = miner.pid().ok_or_else(|| anyhow!("miner did not start"))?;
    let owner_hex = unet_types::hexser::to_hex(&owner);
    let start = Instant::now();
    let count = |status: Option<&'static str>| {
        let client = client.clone();
        let owner_hex = owner_hex.clone();
        async move { count_chips(&client, &owner_hex, status).await }
    };
    // Registration.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if miner.exited() {
            bail!("miner exited; see {}", miner.log.display());
        }
        let n = count(None).await.unwrap_or(0);
        if n >= args.chips {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {n} of {} chips registered in time", args.chips);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let reg = start.elapsed();
    let after_reg = sample(pid).unwrap_or_default();
    let h0 = client.status().await?.finalized_height;
    println!(
        "registered {} chips in {:.1} s (miner CPU {:.1} s so far, RSS {} MiB)",
        args.chips,
        reg.as_secs_f64(),
        after_reg.cpu_s,
        after_reg.rss_kib / 1024
    );

    // Steady state: every chip must stay Online for `epochs` epochs.
    let target = h0 + args.epochs * args.epoch_length;
    let t0 = Instant::now();
    let mut min_online = usize::MAX;
    let mut max_unresponsive = 0usize;
    let mut peak_rss = 0u64;
    let mut samples = 0u64;
    loop {
        if miner.exited() {
            bail!("miner exited; see {}", miner.log.display());
        }
        let list = list_chips(&client, &owner_hex).await?;
        let online = list.iter().filter(|c| c["status"] == "online").count();
        let unresponsive = list
            .iter()
            .filter(|c| c["status"] == "unresponsive")
            .count();
        min_online = min_online.min(online);
        max_unresponsive = max_unresponsive.max(unresponsive);
        if let Some(s) = sample(pid) {
            peak_rss = peak_rss.max(s.rss_kib);
        }
        samples += 1;
        let h = client.status().await?.finalized_height;
        if h >= target {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let end = sample(pid).unwrap_or_default();
    let h1 = client.status().await?.finalized_height;
    let cpu = end.cpu_s - after_reg.cpu_s;
    let chips = list_chips(&client, &owner_hex).await?;
    let answered_chips = chips
        .iter()
        .filter(|c| c["liveness"]["last_response"].as_u64().unwrap_or(0) > h0)
        .count();
    let misses: u64 = chips
        .iter()
        .map(|c| c["liveness"]["misses"].as_u64().unwrap_or(0))
        .sum();
    let rewards: u128 = chips
        .iter()
        .filter_map(|c| c["rewards"]["total"].as_str()?.parse::<u128>().ok())
        .sum();
    let metrics_answered = miner_state_answered(&home);
    miner.kill();
    println!(
        "steady state: {} blocks ({h0}..{h1}, {} epochs) in {:.1} s, {samples} samples",
        h1 - h0,
        args.epochs,
        wall
    );
    println!(
        "  chips Online: min {min_online} of {} over the run; Unresponsive at most {max_unresponsive}",
        args.chips
    );
    println!(
        "  chips that answered a challenge during the run: {answered_chips}; misses recorded on chain: {misses}; challenges answered by the miner in total: {metrics_answered}"
    );
    println!(
        "  rewards paid to the miner's chips: {} UNC",
        unet_types::amount::format_unc(rewards)
    );
    println!(
        "  miner CPU: {:.2} s over {:.1} s = {:.1}% of one core (registration phase: {:.2} s)",
        cpu,
        wall,
        100.0 * cpu / wall,
        after_reg.cpu_s
    );
    println!(
        "  miner memory: RSS peak {:.1} MiB during the run, high-water mark {:.1} MiB",
        peak_rss as f64 / 1024.0,
        end.hwm_kib as f64 / 1024.0
    );
    if min_online < args.chips {
        bail!(
            "not every chip stayed Online (min {min_online} of {})",
            args.chips
        );
    }
    println!("OK: every chip stayed Online");
    Ok(())
}

fn miner_state_answered(home: &MinerHome) -> u64 {
    unet_miner::MinerState::load(&home.state_path())
        .map(|s| s.totals.answered)
        .unwrap_or(0)
}

async fn list_chips(client: &Client, owner_hex: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let filter = ListChipsParams {
            owner: Some(unet_types::hexser::from_hex(owner_hex).map_err(|e| anyhow!(e))?),
            page: PageParams::new(Some(start), Some(MAX_PAGE)),
            ..Default::default()
        };
        let v = client.chips(filter).await?;
        // An owner's list pages by offset (`next` is only given for the global index).
        let n = v.chips.len() as u64;
        for c in v.chips {
            out.push(serde_json::to_value(c)?);
        }
        if n < MAX_PAGE {
            break;
        }
        start += n;
    }
    Ok(out)
}

async fn count_chips(client: &Client, owner_hex: &str, status: Option<&str>) -> Result<usize> {
    Ok(list_chips(client, owner_hex)
        .await?
        .iter()
        .filter(|c| status.is_none_or(|s| c["status"] == s))
        .count())
}
