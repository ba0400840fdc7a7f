//! `unet testnet` and `unet devnet`.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};
use unet_devnet::{
    generate_testnet,
    process::{check_free, log_tail, wait_ready, MinerProcess, NodeProcess, StopSignals},
    TestnetSpec,
};
use unet_types::Params;

#[derive(Args, Clone)]
pub struct TestnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Output directory (one home per validator: node0, node1, ...).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 7701)]
    pub chain_id: u64,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 30300)]
    pub base_p2p_port: u16,
    #[arg(long, default_value_t = 8545)]
    pub base_rpc_port: u16,
    /// Minimum time between blocks, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub block_time_ms: u64,
    #[command(flatten)]
    pub epochs: EpochArgs,
    /// Extra nodes that are not genesis validators (homes follow the validators' numbering):
    /// they follow the chain and join a committee once registered and selected.
    #[arg(long, default_value_t = 0)]
    pub followers: usize,
    /// Full nodes (homes after the validators and followers): they follow every validator,
    /// verify and execute finalized blocks without voting, serve the API and forward
    /// transactions.
    #[arg(long, default_value_t = 0)]
    pub full_nodes: usize,
    /// Follow port of the first node (node i serves followers on this + i; default: the
    /// P2P base + 50).
    #[arg(long)]
    pub base_follow_port: Option<u16>,
    /// Required: acknowledge that the genesis trusts the devnet vendor CA, whose seed is public
    /// (anyone can certify an emulated chip with it and earn on this network). Fine for a local
    /// or private test network, never for one where rewards are worth anything.
    #[arg(long)]
    pub trust_devnet_ca: bool,
}

/// Epoch and liveness parameters of a generated genesis (defaults: `Params::default()`).
#[derive(Args, Clone, Default)]
pub struct EpochArgs {
    /// Blocks per epoch (rewards and challenge targets are per epoch).
    #[arg(long)]
    pub epoch_length: Option<u64>,
    /// Blocks a challenged chip has to land its answer.
    #[arg(long)]
    pub response_window: Option<u64>,
    /// Challenges per chip per epoch, on average.
    #[arg(long)]
    pub challenges_per_epoch: Option<u32>,
}

impl EpochArgs {
    pub fn apply(&self, params: &mut Params) {
        if let Some(l) = self.epoch_length {
            params.epoch_length = l;
        }
        if let Some(w) = self.response_window {
            params.response_window = w;
        }
        if let Some(c) = self.challenges_per_epoch {
            params.challenges_per_epoch = c;
        }
    }
}

impl TestnetArgs {
    pub fn spec(&self) -> TestnetSpec {
        let mut params = Params {
            block_time_ms: self.block_time_ms,
            ..Params::default()
        };
        self.epochs.apply(&mut params);
        TestnetSpec {
            validators: self.validators,
            chain_id: self.chain_id,
            chain_name: "unet-devnet".into(),
            host: self.host.clone(),
            base_p2p_port: self.base_p2p_port,
            base_rpc_port: self.base_rpc_port,
            params,
            genesis_time_ms: 0,
            followers: self.followers,
            full_nodes: self.full_nodes,
            base_follow_port: self
                .base_follow_port
                .unwrap_or(self.base_p2p_port.saturating_add(50)),
        }
    }
}

/// Why `unet testnet` refuses to run without `--trust-devnet-ca`.
pub const DEVNET_CA_REFUSAL: &str =
    "unet testnet writes a genesis that trusts the devnet vendor CA \
(devnet roots allowed), whose seed is public: anyone can certify emulated chips with it and earn \
rewards on the network. Pass --trust-devnet-ca to confirm this is a local or private test network; \
a network whose rewards matter needs a genesis that pins only real vendor roots with \
allow_devnet_roots = false";

pub fn testnet(args: TestnetArgs) -> Result<()> {
    if !args.trust_devnet_ca {
        bail!("{DEVNET_CA_REFUSAL}");
    }
    if args.out.join("node0").exists() {
        bail!(
            "{} already holds a network; choose another --out",
            args.out.display()
        );
    }
    let spec = args.spec();
    let homes = generate_testnet(&spec, &args.out)?;
    let mut extra = String::new();
    if args.followers > 0 {
        extra += &format!(", {} follower homes", args.followers);
    }
    if args.full_nodes > 0 {
        extra += &format!(", {} full node homes", args.full_nodes);
    }
    println!(
        "wrote {} validator homes{extra} under {}",
        args.validators,
        args.out.display()
    );
    let first_full = args.validators + args.followers;
    for (i, h) in homes.iter().enumerate() {
        let config = unet_node::home::Home::load(h)?.config;
        let what = if i >= first_full {
            "full node"
        } else if i >= args.validators {
            "follower"
        } else {
            "validator"
        };
        println!(
            "  unet node --home {}   ({what}, API http://{})",
            h.display(),
            config.rpc_listen
        );
    }
    println!("faucet key: {}", args.out.join("faucet.key").display());
    Ok(())
}

#[derive(Args)]
pub struct DevnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Where the network lives; reused across runs unless --fresh.
    #[arg(long, default_value = ".devnet")]
    pub dir: PathBuf,
    /// Delete any existing network in --dir first.
    #[arg(long)]
    pub fresh: bool,
    #[arg(long, default_value_t = 30300)]
    pub base_p2p_port: u16,
    #[arg(long, default_value_t = 8545)]
    pub base_rpc_port: u16,
    #[arg(long, default_value_t = 100)]
    pub block_time_ms: u64,
    /// Blocks per epoch (short on a devnet so rewards show up within a minute).
    #[arg(long, default_value_t = 300)]
    pub epoch_length: u64,
    #[arg(long)]
    pub response_window: Option<u64>,
    #[arg(long)]
    pub challenges_per_epoch: Option<u32>,
    /// Full nodes started beside the validators (they follow them without voting and serve
    /// the API; the miners use them when there are any).
    #[arg(long, default_value_t = 0)]
    pub full_nodes: usize,
    /// Emulated miners started beside the validators (each its own process and home).
    #[arg(long, default_value_t = 4)]
    pub miners: usize,
    /// Emulated chips per miner (models alternate BM1684X, BM1684).
    #[arg(long, default_value_t = 2)]
    pub chips_per_miner: usize,
    /// First port of the miners' /metrics (miner i serves on this + i).
    #[arg(long, default_value_t = 9600)]
    pub base_metrics_port: u16,
    /// First port of the miners' job endpoints (miner i serves jobs on this + i; use
    /// http://127.0.0.1:PORT as a market offer's endpoint).
    #[arg(long, default_value_t = 8600)]
    pub base_jobs_port: u16,
}

pub fn devnet(args: DevnetArgs) -> Result<()> {
    if args.fresh && args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let homes: Vec<PathBuf> = if args.dir.join("node0").exists() {
        let mut v = Vec::new();
        while args.dir.join(format!("node{}", v.len())).exists() {
            v.push(args.dir.join(format!("node{}", v.len())));
        }
        println!(
            "reusing the network in {} ({} validators; --fresh starts over)",
            args.dir.display(),
            v.len()
        );
        v
    } else {
        let t = TestnetArgs {
            validators: args.validators,
            out: args.dir.clone(),
            chain_id: 7701,
            host: "127.0.0.1".into(),
            base_p2p_port: args.base_p2p_port,
            base_rpc_port: args.base_rpc_port,
            block_time_ms: args.block_time_ms,
            epochs: EpochArgs {
                epoch_length: Some(args.epoch_length),
                response_window: args.response_window,
                challenges_per_epoch: args.challenges_per_epoch,
            },
            followers: 0,
            full_nodes: args.full_nodes,
            base_follow_port: None,
            // `unet devnet` is a local network by definition.
            trust_devnet_ca: true,
        };
        generate_testnet(&t.spec(), &args.dir)?
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // Before any child exists: from here on SIGINT, SIGTERM and SIGHUP stop the devnet
        // through the destructors below, which stop every child.
        let mut stop = StopSignals::new()?;
        check_ports(&homes, &args)?;
        let mut nodes = Vec::new();
        for h in &homes {
            nodes.push(NodeProcess::start(h)?);
        }
        let started = tokio::select! {
            r = start_up(&mut nodes, &args) => r,
            sig = stop.recv() => {
                println!("{sig}: stopping");
                return Ok(());
            }
        };
        let mut miners = started?;
        println!(
            "Ctrl-C (or SIGTERM) stops the network (state is kept in {}).",
            args.dir.display()
        );
        let client = nodes[0].client();
        let mut last = 0;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut reported = Instant::now();
        loop {
            tokio::select! {
                sig = stop.recv() => {
                    println!("{sig}: stopping");
                    break;
                }
                _ = tick.tick() => {
                    check_children(&mut nodes, &mut miners)?;
                    if reported.elapsed() < Duration::from_secs(5) {
                        continue;
                    }
                    reported = Instant::now();
                    if let Ok(s) = client.status().await {
                        if s.finalized_height != last {
                            let chips = crate::miner_bench::miners_line(&client, &miners).await;
                            println!("finalized height {} (mempool {}){chips}", s.finalized_height, s.mempool);
                            last = s.finalized_height;
                        }
                    }
                }
            }
        }
        drop(miners);
        drop(nodes);
        Ok(())
    })
}

/// Every address the devnet's nodes and miners will listen on must be free: otherwise another
/// process (often a devnet already running) would answer in a node's place.
fn check_ports(homes: &[PathBuf], args: &DevnetArgs) -> Result<()> {
    for (i, h) in homes.iter().enumerate() {
        let config = unet_node::home::Home::load(h)?.config;
        check_free(config.p2p_listen, &format!("node{i} (P2P)"))?;
        check_free(config.rpc_listen, &format!("node{i} (API)"))?;
        if let Some(listen) = config.follow.listen {
            check_free(listen, &format!("node{i} (follow)"))?;
        }
    }
    for i in 0..args.miners {
        let port = |base: u16| {
            base.checked_add(i as u16)
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
                .ok_or_else(|| anyhow!("miner{i}: port {base} + {i} is past 65535"))
        };
        check_free(
            port(args.base_metrics_port)?,
            &format!("miner{i} (metrics)"),
        )?;
        check_free(port(args.base_jobs_port)?, &format!("miner{i} (jobs)"))?;
    }
    Ok(())
}

/// Waits for the nodes, says the devnet is up (only if every node is still running), and
/// starts the miners.
async fn start_up(nodes: &mut [NodeProcess], args: &DevnetArgs) -> Result<Vec<MinerProcess>> {
    wait_ready(nodes, Duration::from_secs(120)).await?;
    check_children(nodes, &mut [])?;
    let full: Vec<bool> = nodes
        .iter()
        .map(|n| unet_node::home::Home::load(&n.home).map(|h| h.is_full_node()))
        .collect::<Result<_>>()?;
    let full_nodes = full.iter().filter(|f| **f).count();
    println!();
    println!(
        "UtilityNet devnet is up: {} validators, {full_nodes} full nodes",
        nodes.len() - full_nodes
    );
    for (i, n) in nodes.iter().enumerate() {
        println!(
            "  node{i} ({}): API {}  (WebSocket {}/ws, logs {})",
            if full[i] { "full node" } else { "validator" },
            n.rpc,
            n.rpc.replace("http", "ws"),
            n.home.join("node.log").display()
        );
    }
    println!("  explorer: {}/ (open in a browser)", nodes[0].rpc);
    println!("  genesis: {}", args.dir.join("genesis.toml").display());
    println!(
        "  faucet key (holds the genesis allocation): {}",
        args.dir.join("faucet.key").display()
    );
    println!();
    println!("try: curl -s -X POST {} -H 'content-type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"unet_status\"}}'", nodes[0].rpc);
    // Miners use the full nodes when there are any, so their load stays off the validators.
    let rpcs: Vec<String> = nodes
        .iter()
        .zip(&full)
        .filter(|(_, f)| **f || full_nodes == 0)
        .map(|(n, _)| n.rpc.clone())
        .collect();
    let miners = crate::miner_bench::start_devnet_miners(
        &args.dir,
        &rpcs,
        args.miners,
        args.chips_per_miner,
        args.base_metrics_port,
        args.base_jobs_port,
    )
    .await?;
    Ok(miners)
}

/// Fails, naming the child and quoting the end of its log, if any node or miner has exited.
fn check_children(nodes: &mut [NodeProcess], miners: &mut [MinerProcess]) -> Result<()> {
    for (i, n) in nodes.iter_mut().enumerate() {
        if let Some(status) = n.exit_status() {
            bail!(
                "node{i} exited ({status}); the end of {}:{}",
                n.home.join("node.log").display(),
                n.last_log_lines()
            );
        }
    }
    for m in miners.iter_mut() {
        if m.exited() {
            bail!(
                "{} exited; the end of {}:{}",
                m.name,
                m.log.display(),
                log_tail(&m.log, 5)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        testnet: TestnetArgs,
    }

    fn args(out: &std::path::Path, extra: &[&str]) -> TestnetArgs {
        let mut argv = vec!["unet", "--validators", "1", "--out", out.to_str().unwrap()];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().testnet
    }

    #[test]
    fn testnet_trusts_the_public_devnet_ca_only_when_told_to() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("net");
        let err = testnet(args(&out, &[])).unwrap_err().to_string();
        assert!(err.contains("--trust-devnet-ca"), "{err}");
        assert!(err.contains("seed is public"), "{err}");
        assert!(!out.exists(), "nothing written without the flag");

        testnet(args(&out, &["--trust-devnet-ca"])).unwrap();
        let genesis = std::fs::read_to_string(out.join("genesis.toml")).unwrap();
        assert!(genesis.contains("allow_devnet_roots = true"), "{genesis}");
    }
}
