//! `unet service ...`: a renter's service on a lease (an image running for the life of the
//! lease, one container port forwarded by the miner), and `unet job logs` / `unet service
//! logs`: a workload's output as it comes.

use crate::wallet::{Common, Passphrase};
use anyhow::{anyhow, Context as _, Result};
use clap::{Args, Subcommand};
use std::{io::Write as _, path::PathBuf};
use unet_renter::{
    client::JobClient,
    service::{ServiceRequest, ServiceState, ServiceView},
};

#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Start the lease's service: an image, its command, one port; prints the endpoint URL
    /// the miner forwards to that port.
    Start(Box<StartArgs>),
    /// The lease's service: running or stopped, endpoint, image digest.
    Status(Lease),
    /// Stop the lease's service.
    Stop(Lease),
    /// The service's output (stdout and stderr as they came); --follow until it stops.
    Logs(LogsArgs),
}

/// Which lease, as whom.
#[derive(Args)]
pub struct Lease {
    /// The renter's key (name in the keystore).
    #[arg(long)]
    pub from: String,
    /// Lease id.
    #[arg(long)]
    pub lease: u64,
    /// The miner's endpoint [default: the lease's endpoint on chain].
    #[arg(long)]
    pub endpoint: Option<String>,
    #[command(flatten)]
    pub passphrase: Passphrase,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub target: Lease,
    /// Chip of the lease to run on [default: the first the miner manages].
    #[arg(long)]
    pub chip: Option<String>,
    /// The image: `REGISTRY/REPO:TAG` (pinned to the digest the registry gives now),
    /// `REGISTRY/REPO@sha256:..`, or `sha256:..` (uploaded on this lease before).
    #[arg(
        long,
        required_unless_present = "image_archive",
        conflicts_with = "image_archive"
    )]
    pub image: Option<String>,
    /// Upload this OCI image-layout archive (see `unet job example-image`) and run it.
    #[arg(long)]
    pub image_archive: Option<PathBuf>,
    /// Registries (`host:port`) to speak plain HTTP to when resolving a tag.
    #[arg(long)]
    pub insecure_registry: Vec<String>,
    /// The container port to forward (1024-65535).
    #[arg(long)]
    pub port: u16,
    /// `NAME=VALUE` added to the environment; repeat.
    #[arg(long)]
    pub env: Vec<String>,
    /// The command and its arguments, run without a shell; everything after --cmd
    /// [default: the image's command].
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

/// `unet service logs` and `unet job logs`.
#[derive(Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: Lease,
    /// Keep printing until the workload ends.
    #[arg(long)]
    pub follow: bool,
}

async fn connect(t: &Lease) -> Result<JobClient> {
    crate::job::connect_lease(
        &t.common,
        &t.from,
        &t.passphrase,
        t.lease,
        t.endpoint.as_deref(),
    )
    .await
}

fn print_view(common: &Common, v: &ServiceView) -> Result<()> {
    common.print(&serde_json::to_value(v)?, || {
        let state = match v.state {
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Stopped => "stopped",
        };
        let mut s = format!(
            "service of lease {} on chip {}: {state}",
            v.lease_id, v.chip_id
        );
        if let Some(why) = &v.stopped_because {
            s += &format!(" ({why})");
        }
        if let Some(c) = v.exit_code {
            s += &format!(", exit status {c}");
        }
        s += &format!("\n  image    {}\n  port     {}", v.image, v.port);
        if v.state == ServiceState::Running {
            s += &format!("\n  endpoint {}", v.endpoint);
        }
        s
    });
    Ok(())
}

pub fn run(command: ServiceCommand) -> Result<()> {
    let json = match &command {
        ServiceCommand::Start(a) => a.target.common.json,
        ServiceCommand::Status(t) | ServiceCommand::Stop(t) => t.common.json,
        ServiceCommand::Logs(a) => a.target.common.json,
    };
    crate::wallet::run_command(json, dispatch(command))
}

async fn dispatch(command: ServiceCommand) -> Result<()> {
    match command {
        ServiceCommand::Start(a) => {
            let c = connect(&a.target).await?;
            let image = match (&a.image, &a.image_archive) {
                (_, Some(file)) => {
                    let bytes = std::fs::read(file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    c.upload_image(bytes).await?.digest
                }
                (Some(r), None) if r.contains('@') || r.starts_with("sha256:") => r.clone(),
                (Some(r), None) => {
                    let d = unet_miner::jobs::pull::resolve_digest(r, &a.insecure_registry)
                        .await
                        .map_err(|e| anyhow!(e))?;
                    let base = r.rsplit_once(':').filter(|(_, tag)| !tag.contains('/'));
                    format!("{}@{d}", base.map_or(r.as_str(), |(b, _)| b))
                }
                (None, None) => return Err(anyhow!("--image or --image-archive is required")),
            };
            let req = ServiceRequest {
                lease: a.target.lease,
                chip: a.chip.clone(),
                image,
                argv: a.cmd.clone(),
                env: a.env.clone(),
                port: a.port,
            };
            let v = c.service_start(&req).await?;
            if a.target.common.json {
                print_view(&a.target.common, &v)
            } else {
                println!("{}", v.endpoint);
                Ok(())
            }
        }
        ServiceCommand::Status(t) => {
            let v = connect(&t).await?.service_status().await?;
            print_view(&t.common, &v)
        }
        ServiceCommand::Stop(t) => {
            let v = connect(&t).await?.service_stop().await?;
            print_view(&t.common, &v)
        }
        ServiceCommand::Logs(a) => logs(&a, None).await,
    }
}

/// Prints a workload's output: what there is now, or with `--follow` everything until it
/// ends. `job`: a job id; None: the lease's service.
pub async fn logs(a: &LogsArgs, job: Option<&str>) -> Result<()> {
    let c = connect(&a.target).await?;
    let mut out = std::io::stdout();
    if a.follow {
        c.follow_logs(job, |b| {
            let _ = out.write_all(b);
            let _ = out.flush();
        })
        .await?;
        return Ok(());
    }
    use base64::Engine as _;
    let chunk = c.logs(job, 0).await?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(&chunk.data_b64)
        .map_err(|e| anyhow!("log chunk: {e}"))?;
    out.write_all(&data)?;
    Ok(())
}
