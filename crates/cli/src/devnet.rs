//! `unet testnet` and `unet devnet`.

use crate::procs::{wait_ready, NodeProcess};
use anyhow::{bail, Result};
use clap::Args;
use std::{path::PathBuf, time::Duration};
use unet_node::home::{generate_testnet, TestnetSpec};
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
    /// Blocks per epoch (each epoch's committee comes from chain state; the threshold key is
    /// reshared to it at every epoch boundary).
    #[arg(long, default_value_t = Params::default().epoch_length)]
    pub epoch_length: u64,
    /// Extra nodes that are not genesis validators (homes follow the validators' numbering):
    /// they follow the chain and join once registered and selected.
    #[arg(long, default_value_t = 0)]
    pub followers: usize,
}

impl TestnetArgs {
    fn spec(&self) -> TestnetSpec {
        TestnetSpec {
            validators: self.validators,
            chain_id: self.chain_id,
            chain_name: "unet-devnet".into(),
            host: self.host.clone(),
            base_p2p_port: self.base_p2p_port,
            base_rpc_port: self.base_rpc_port,
            params: Params {
                block_time_ms: self.block_time_ms,
                epoch_length: self.epoch_length,
                ..Params::default()
            },
            genesis_time_ms: 0,
            followers: self.followers,
        }
    }
}

pub fn testnet(args: TestnetArgs) -> Result<()> {
    if args.out.join("node0").exists() {
        bail!(
            "{} already holds a network; choose another --out",
            args.out.display()
        );
    }
    let homes = generate_testnet(&args.spec(), &args.out)?;
    println!(
        "wrote {} validator homes{} under {}",
        args.validators,
        if args.followers > 0 {
            format!(" and {} follower homes", args.followers)
        } else {
            String::new()
        },
        args.out.display()
    );
    for h in homes {
        println!("  unet node --home {}", h.display());
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
            epoch_length: Params::default().epoch_length,
            followers: 0,
        };
        generate_testnet(&t.spec(), &args.dir)?
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut nodes = Vec::new();
        for h in &homes {
            nodes.push(NodeProcess::start(h)?);
        }
        wait_ready(&mut nodes, Duration::from_secs(60)).await?;
        println!();
        println!("UtilityNet devnet is up: {} validators", nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            println!("  node{i}: API {}  (WebSocket {}/ws, logs {})", n.rpc, n.rpc.replace("http", "ws"), n.home.join("node.log").display());
        }
        println!("  explorer: {}/ (open in a browser)", nodes[0].rpc);
        println!("  genesis: {}", args.dir.join("genesis.toml").display());
        println!("  faucet key (holds the genesis allocation): {}", args.dir.join("faucet.key").display());
        println!();
        println!("try: curl -s -X POST {} -H 'content-type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"unet_status\"}}'", nodes[0].rpc);
        println!("Ctrl-C stops the network (state is kept in {}).", args.dir.display());
        let client = nodes[0].client();
        let mut last = 0;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {
                    for (i, n) in nodes.iter_mut().enumerate() {
                        if n.exited() {
                            bail!("node{i} exited; see {}", n.home.join("node.log").display());
                        }
                    }
                    if let Ok(s) = client.status().await {
                        if s.finalized_height != last {
                            println!("finalized height {} (mempool {})", s.finalized_height, s.mempool);
                            last = s.finalized_height;
                        }
                    }
                }
            }
        }
        println!("stopping");
        drop(nodes);
        Ok(())
    })
}
