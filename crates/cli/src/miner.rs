//! `unet miner`: the miner agent (init, run, status, bench).

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Subcommand};
use commonware_cryptography::Signer;
use serde_json::json;
use std::{net::SocketAddr, path::PathBuf};
use unet_client::DEFAULT_RPC;
use unet_devnet::{DEVNET_CA_SEED, DEVNET_NVIDIA_CA_SEED};
use unet_miner::{open_backend, ChipFile, Miner, MinerConfig, MinerHome, MinerState};
use unet_poci::{
    secure_element::{DevnetNvidiaCa, DevnetVendorCa},
    Curve,
};
use unet_types::amount::{format_unc, parse_unc};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MinerArgs {
    #[command(subcommand)]
    command: Option<MinerCommand>,
    /// `unet miner --home DIR --rpc URL` is `unet miner run ...`.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum MinerCommand {
    /// Create a miner home: owner key (0600), chips directory, optional emulated chips.
    Init(InitArgs),
    /// Run the miner daemon: register chips, answer every challenge, serve /metrics.
    Run(RunArgs),
    /// Each chip: model, rated compute, status, last challenge, rewards.
    Status(StatusArgs),
    /// One miner with many emulated chips on a local devnet with short epochs: keeps every
    /// chip Online? Reports the miner's CPU and memory.
    Bench(crate::miner_bench::MinerBenchArgs),
    /// Check this host for what renters' workloads need (root, runc, user namespaces, cgroups,
    /// a real sandboxed run; NVIDIA devices and CDI for GPU chips) and say how to fix what is
    /// missing. Exits 1 when a required check fails.
    Doctor(DoctorArgs),
}

#[derive(Args, Clone)]
pub struct DoctorArgs {
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Miner home: its provider.toml is checked (and its runc used).
    #[arg(long)]
    pub home: Option<PathBuf>,
    /// The provider configuration to check [default: HOME/provider.toml].
    #[arg(long)]
    pub provider_config: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct RunArgs {
    /// Miner home (from `unet miner init`).
    #[arg(long)]
    pub home: Option<PathBuf>,
    /// Node API URL; repeat for fail-over (tried in turn when one is unreachable).
    #[arg(long, env = "UNET_RPC", value_delimiter = ',', default_value = DEFAULT_RPC)]
    pub rpc: Vec<String>,
    /// Serve Prometheus /metrics on this address (e.g. 127.0.0.1:9600).
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
    /// Chip backend: `soft` (emulated chips in HOME/chips) or `nvml` (NVIDIA GPUs).
    #[arg(long, default_value = "soft")]
    pub backend: String,
    /// Fee per transaction in UNC [default: the chain's minimum].
    #[arg(long)]
    pub fee: Option<String>,
    /// Never draw progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// Serve the job endpoint for renters on this address (e.g. 0.0.0.0:8600); the URL of
    /// your market offer's `--endpoint` should reach it.
    #[arg(long)]
    pub jobs: Option<SocketAddr>,
    /// Jobs run at once [default: CPU cores - 1, at least 1].
    #[arg(long)]
    pub job_workers: Option<usize>,
    /// Jobs waiting at most before new ones are refused.
    #[arg(long, default_value_t = 64)]
    pub job_queue: usize,
    /// The provider configuration of workloads (runtime, uid range, per-chip resources,
    /// egress, service ports) [default: HOME/provider.toml when it exists].
    #[arg(long)]
    pub provider_config: Option<PathBuf>,
}

#[derive(Args)]
pub struct InitArgs {
    #[arg(long)]
    pub home: PathBuf,
    /// Manufacture this many emulated chips into HOME/chips (devnets only: the devnet
    /// vendor CA certifies them).
    #[arg(long, default_value_t = 0)]
    pub emulated_chips: usize,
    /// Models of the emulated chips, used in turn.
    #[arg(long, value_delimiter = ',', default_value = "BM1684X,BM1684")]
    pub models: Vec<String>,
    /// The emulated chips are NVIDIA GPUs (SPDM evidence) of --models H100 or B200, e.g.
    /// `--emulated-chips 8 --gpus --models B200` for an 8-GPU Blackwell host.
    #[arg(long)]
    pub gpus: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub home: PathBuf,
    #[arg(long, env = "UNET_RPC", default_value = DEFAULT_RPC)]
    pub rpc: String,
    #[arg(long, default_value = "soft")]
    pub backend: String,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: MinerArgs) -> Result<()> {
    match args.command {
        Some(MinerCommand::Init(a)) => init(a),
        Some(MinerCommand::Run(a)) => run_daemon(a),
        Some(MinerCommand::Status(a)) => status(a),
        Some(MinerCommand::Doctor(a)) => doctor(a),
        Some(MinerCommand::Bench(a)) => crate::miner_bench::bench(a),
        None => run_daemon(args.run),
    }
}

/// A new emulated chip of `model`, certified by a devnet CA: a secure element with vendor-x509
/// evidence on `curve`, or with `gpu` an emulated NVIDIA GPU that attests with SPDM reports (the
/// path real GPUs take, anchored in the devnet's NVIDIA-shaped roots) whose model is its
/// architecture's board: `H100` (Hopper) or `B200` (Blackwell).
pub fn emulated_chip(
    model: &str,
    serial: Option<&str>,
    curve: Curve,
    gpu: bool,
) -> Result<ChipFile> {
    if !gpu {
        let ca = DevnetVendorCa::from_seed(DEVNET_CA_SEED).map_err(|e| anyhow!("{e}"))?;
        return ChipFile::provision(&ca, model, serial, curve);
    }
    let arch = unet_devnet::DEVNET_GPU_ARCHITECTURES
        .into_iter()
        .find(|arch| {
            unet_poci::nvidia::ARCHITECTURES
                .iter()
                .any(|a| a.name == *arch && a.default_model == model)
        })
        .ok_or_else(|| {
            anyhow!("emulated GPUs are H100 (Hopper) or B200 (Blackwell), not {model:?}")
        })?;
    if serial.is_some() {
        bail!("an emulated GPU's serial comes from its certificate; drop --serial");
    }
    let ca = DevnetNvidiaCa::from_seed(DEVNET_NVIDIA_CA_SEED, arch)
        .map_err(|e| anyhow!("devnet NVIDIA-shaped CA: {e}"))?;
    ChipFile::provision_gpu(&ca)
}

fn doctor(a: DoctorArgs) -> Result<()> {
    use unet_sandbox::doctor;
    let work = std::env::temp_dir().join(format!("unet-doctor-{}", std::process::id()));
    let home = a.home.clone().unwrap_or_default();
    let config = if a.home.is_some() || a.provider_config.is_some() {
        Some(unet_miner::provider::ProviderConfig::for_home(
            &home,
            a.provider_config.as_deref(),
        ))
    } else {
        None
    };
    if let Some(Ok((c, _))) = &config {
        if let Some(runc) = &c.runtime.runc {
            // The checks below find runc through UNET_RUNC; nothing else runs yet.
            std::env::set_var("UNET_RUNC", runc);
        }
    }
    let mut checks = doctor::check_host(&doctor::HostPaths::default(), &work);
    let configured_runner = match &config {
        Some(Ok((c, _))) => c.runtime.onnx_runner.clone(),
        _ => None,
    };
    checks.push(
        match unet_miner::jobs::onnx::find_runner(configured_runner.as_deref()) {
            Ok(p) => doctor::Check {
                name: "onnx runner",
                ok: true,
                required: false,
                detail: format!(
                    "{}{} (ONNX jobs run it inside the sandbox)",
                    p.binary.display(),
                    p.subcommand.map(|c| format!(" {c}")).unwrap_or_default()
                ),
                fix: None,
            },
            Err(e) => doctor::Check {
                name: "onnx runner",
                ok: false,
                required: false,
                detail: format!("{e}; without it the miner serves exec jobs only"),
                fix: Some(
                    "install unet-onnx-run beside unet (cargo build --release builds both)".into(),
                ),
            },
        },
    );
    if let Some(Ok((c, _))) = &config {
        // With egress on, its tools are required.
        if c.network.egress == "on" {
            for check in checks.iter_mut().filter(|c| c.name == "egress") {
                check.required = true;
            }
        }
    }
    if let Some(config) = config {
        checks.insert(
            0,
            match config {
                Ok((c, file)) => doctor::Check {
                    name: "provider config",
                    ok: true,
                    required: true,
                    detail: format!(
                        "{}: {}",
                        file.map_or("defaults".into(), |f| f.display().to_string()),
                        c.summary()
                    ),
                    fix: None,
                },
                Err(e) => doctor::Check {
                    name: "provider config",
                    ok: false,
                    required: true,
                    detail: e,
                    fix: Some("correct the file (see crates/miner/README.md)".into()),
                },
            },
        );
    }
    let ready = doctor::host_ready(&checks);
    if a.json {
        println!("{}", json!({"ready": ready, "checks": checks}));
    } else {
        for c in &checks {
            let mark = match (c.ok, c.required) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "--  ",
            };
            println!("{mark} {:<16} {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                println!("     {:<16} fix: {fix}", "");
            }
        }
        println!(
            "{}",
            if ready {
                "this host can run renters' workloads"
            } else {
                "this host cannot run renters' workloads yet (see FAIL above)"
            }
        );
    }
    if !ready {
        std::process::exit(1);
    }
    Ok(())
}

/// Creates a home and `n` emulated chips; returns the owner address (hex) and chip ids.
pub fn init_home(
    home: &MinerHome,
    emulated: usize,
    models: &[String],
    gpus: bool,
) -> Result<(String, bool, Vec<String>)> {
    let (owner, new) = home.init()?;
    let mut ids = Vec::new();
    if emulated > 0 {
        if models.is_empty() {
            bail!("--models must name at least one model");
        }
        for i in 0..emulated {
            let model = &models[i % models.len()];
            let chip = emulated_chip(model, None, Curve::P256, gpus)?;
            chip.save(
                &home
                    .chips_dir()
                    .join(format!("{}.json", &chip.chip_id[..16])),
            )?;
            ids.push(chip.chip_id);
        }
    }
    Ok((unet_types::hexser::to_hex(&owner), new, ids))
}

fn init(a: InitArgs) -> Result<()> {
    let home = MinerHome::new(&a.home);
    let (owner, new, ids) = init_home(&home, a.emulated_chips, &a.models, a.gpus)?;
    if a.json {
        println!(
            "{}",
            json!({"home": a.home, "owner": owner, "new_key": new, "chips": ids})
        );
    } else {
        println!(
            "miner home {} ({} owner key {})",
            a.home.display(),
            if new { "new" } else { "existing" },
            owner
        );
        println!("  owner key: {}", home.key_path().display());
        println!(
            "  chips:     {} ({} new)",
            home.chips_dir().display(),
            ids.len()
        );
        println!(
            "fund the owner, then: unet miner run --home {} --rpc URL",
            a.home.display()
        );
    }
    Ok(())
}

fn run_daemon(a: RunArgs) -> Result<()> {
    let Some(home) = a.home.clone() else {
        bail!("--home is required (create one with `unet miner init --home DIR`)");
    };
    let home = MinerHome::new(home);
    if !home.key_path().exists() {
        bail!(
            "{} has no owner key; create the home with `unet miner init --home {}`",
            home.dir.display(),
            home.dir.display()
        );
    }
    let backend = open_backend(&a.backend, &home)?;
    let mut cfg = MinerConfig::new(home.clone(), a.rpc.clone());
    cfg.metrics = a.metrics;
    cfg.fee = a
        .fee
        .as_deref()
        .map(|f| parse_unc(f).map_err(|e| anyhow!("--fee: {e}")))
        .transpose()?;
    cfg.progress = !a.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (provider, _) =
        unet_miner::provider::ProviderConfig::for_home(&home.dir, a.provider_config.as_deref())
            .map_err(|e| anyhow!(e))?;
    let jobs = a
        .jobs
        .map(|addr| {
            let mut jc = unet_miner::jobs::server::JobsConfig::new(addr, home.dir.join("jobs"));
            if let Some(w) = a.job_workers {
                jc.workers = w.max(1);
            }
            jc.queue = a.job_queue.max(1);
            provider.apply(&mut jc).map(|()| jc)
        })
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let job_backend = backend.clone();
    let miner = Miner::new(cfg, backend)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut server = None;
        if let Some(jc) = jobs {
            // Jobs run on their own tasks and blocking threads, beside the liveness daemon.
            let chain = std::sync::Arc::new(unet_miner::jobs::server::RpcChain::new(&a.rpc));
            server =
                Some(unet_miner::jobs::server::JobServer::start(jc, job_backend, chain).await?);
        }
        let ran = miner.run(shutdown_signal()).await;
        // Renters' services end with the miner.
        if let Some(s) = server {
            s.stop_services().await;
        }
        ran
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn status(a: StatusArgs) -> Result<()> {
    let home = MinerHome::new(&a.home);
    let key = home.owner_key()?;
    let owner = key.public_key();
    let backend = open_backend(&a.backend, &home)?;
    let state = MinerState::load(&home.state_path())?;
    let client = unet_client::Client::new(&a.rpc);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let chips = backend.chips();
        let rows = unet_miner::status::chip_rows(&client, &owner, &chips, &state)
            .await
            .with_context(|| format!("reading chips from {}", a.rpc))?;
        let account = client.account(&owner).await?;
        let rewards = serde_json::to_value(client.owner_rewards(&owner, None).await?)?;
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "owner": unet_types::hexser::to_hex(&owner),
                    "balance": account.balance.to_string(),
                    "last_height": state.last_height,
                    "answered": state.totals.answered,
                    "missed": state.totals.missed,
                    "in_flight": state.inflight.len(),
                    "owner_rewards": rewards,
                    "chips": rows,
                }))?
            );
            return Ok(());
        }
        println!(
            "owner {}  balance {} UNC  processed height {}  answered {}  missed {}",
            unet_types::hexser::to_hex(&owner),
            account.balance_unc,
            state.last_height,
            state.totals.answered,
            state.totals.missed
        );
        println!(
            "owner rewards for epoch {}: {} UNC",
            rewards["epoch"],
            rewards["amount"]
                .as_str()
                .and_then(|s| s.parse::<u128>().ok())
                .map(format_unc)
                .unwrap_or_else(|| "0".into())
        );
        println!(
            "{:<16}  {:<8}  {:>10}  {:<12}  {:>9}  {:>14}  {:>14}",
            "chip", "model", "TOPS", "status", "last chal", "last reward", "total"
        );
        for r in &rows {
            let tops = r
                .compute_milli_tops
                .map(|m| format!("{:.1}", m as f64 / 1000.0))
                .unwrap_or_else(|| "-".into());
            let reward = r
                .reward_amount
                .parse::<u128>()
                .map(format_unc)
                .unwrap_or_default();
            let total = r
                .rewards_total
                .parse::<u128>()
                .map(format_unc)
                .unwrap_or_default();
            println!(
                "{:<16}  {:<8}  {:>10}  {:<12}  {:>9}  {:>14}  {:>14}",
                &r.chip_id[..16],
                r.model,
                tops,
                r.status,
                r.last_challenge
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "-".into()),
                match r.reward_epoch {
                    Some(e) if r.reward_amount != "0" => format!("{reward} (e{e})"),
                    _ => "0".into(),
                },
                total
            );
        }
        Ok(())
    })
}
