//! `unet job ...`: run work on leased chips (the renter's side of the job endpoint).
//!
//! `submit` sends a signed job to the miner behind the lease's endpoint and, unless
//! `--no-wait`, waits for its result with a spinner; `result` fetches (or waits for) a job's
//! result. Both check the receipt against the chain (the chip is in the lease, its
//! registered device key signed this job and this result) before printing, and `--out FILE`
//! saves the job with its receipt for `unet market verify-receipt`.

use crate::wallet::{node_error, Common, Passphrase, Reported};
use anyhow::{anyhow, bail, Context as _, Result};
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::{path::PathBuf, time::Duration};
use unet_renter::{
    client::{verify_receipt, JobClient},
    job::{ExecLimits, JobRequest, JobSpec, JobState, JobView, Outcome, TensorData, TensorIn},
};

#[derive(Subcommand)]
pub enum JobCommand {
    /// Submit a job on a lease: an ONNX model with inputs, or a command.
    Submit(Box<SubmitArgs>),
    /// A job's result (waits for it with --wait), with its receipt checked.
    Result(ResultArgs),
    /// A job's output (stdout and stderr as they came); --follow until it ends.
    Logs {
        /// Job id (from `unet job submit --no-wait`).
        #[arg(long)]
        job: String,
        #[command(flatten)]
        args: crate::service::LogsArgs,
    },
    /// Download the lease's volume (`/work` of its jobs and services) as a tar, while the
    /// lease serves and during the miner's grace period after it ended.
    Volume {
        #[command(flatten)]
        target: Target,
    },
    /// Write a small OCI image archive to try image jobs with: the static busybox (from
    /// busybox-static), whose /bin/sh runs `echo`; its command prints a greeting.
    ExampleImage {
        /// The archive to write (an OCI image layout as a tar).
        #[arg(long)]
        out: PathBuf,
        /// The static busybox to put in it [default: /bin/busybox].
        #[arg(long)]
        busybox: Option<PathBuf>,
    },
    /// Write a tiny ONNX model to try inference with: y = x W + B, x f32 [1, 3], y f32 [1, 2]
    /// (W = [[1, 2], [3, 4], [5, 6]], B = [0.5, -1]), and an input file for it.
    ExampleModel {
        /// The model file to write.
        #[arg(long)]
        out: PathBuf,
        /// Also write an input file (x = [1, 2, 3]; the result is y = [22.5, 27]).
        #[arg(long)]
        input: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct Target {
    /// The renter's key (name in the keystore).
    #[arg(long)]
    pub from: String,
    /// Lease id.
    #[arg(long)]
    pub lease: u64,
    /// The miner's job endpoint [default: the lease's endpoint on chain].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Save the job, its result and receipt as JSON (input of `unet market verify-receipt`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    #[command(flatten)]
    pub passphrase: Passphrase,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub target: Target,
    /// Chip of the lease to run on [default: the first the miner manages].
    #[arg(long)]
    pub chip: Option<String>,
    /// ONNX model file.
    #[arg(long, requires = "input", conflicts_with_all = ["cmd", "image", "image_archive"])]
    pub onnx: Option<PathBuf>,
    /// Run on this image: `REGISTRY/REPO:TAG` (pinned to the digest the registry gives
    /// now), `REGISTRY/REPO@sha256:..`, or `sha256:..` (uploaded on this lease before).
    #[arg(long, conflicts_with = "image_archive")]
    pub image: Option<String>,
    /// Upload this OCI image-layout archive (see `unet job example-image`) and run on it.
    #[arg(long)]
    pub image_archive: Option<PathBuf>,
    /// Registries (`host:port`) to speak plain HTTP to when resolving a tag.
    #[arg(long)]
    pub insecure_registry: Vec<String>,
    /// Input tensors (JSON: `[{"name": "x", "dtype": "f32", "shape": [1, 3], "data": [..]}]`
    /// or `{"inputs": [...]}`).
    #[arg(long, requires = "onnx")]
    pub input: Option<PathBuf>,
    /// Wall time limit, ms [exec default 60000; onnx default: the miner's].
    #[arg(long)]
    pub wall_ms: Option<u64>,
    /// Address-space limit of the command, MiB [default 1024].
    #[arg(long)]
    pub memory_mib: Option<u64>,
    /// Output (stdout + stderr) limit of the command, bytes [default 1 MiB].
    #[arg(long)]
    pub output_bytes: Option<u64>,
    /// Largest file the command may write, bytes [default 64 MiB].
    #[arg(long)]
    pub file_bytes: Option<u64>,
    /// Return the job id at once instead of waiting for the result.
    #[arg(long)]
    pub no_wait: bool,
    /// The command and its arguments, run without a shell; everything after --cmd.
    /// With an image and no --cmd: the image's own command.
    #[arg(
        long,
        num_args = 1..,
        allow_hyphen_values = true,
        required_unless_present_any = ["onnx", "image", "image_archive"]
    )]
    pub cmd: Vec<String>,
}

#[derive(Args)]
pub struct ResultArgs {
    #[command(flatten)]
    pub target: Target,
    /// Job id (from `unet job submit`).
    #[arg(long)]
    pub job: String,
    /// Wait until the job is done.
    #[arg(long)]
    pub wait: bool,
}

pub fn run(command: JobCommand) -> Result<()> {
    let json_mode = match &command {
        JobCommand::Submit(a) => a.target.common.json,
        JobCommand::Result(a) => a.target.common.json,
        JobCommand::Logs { args, .. } => args.target.common.json,
        JobCommand::Volume { target } => target.common.json,
        JobCommand::ExampleImage { out, busybox } => {
            let bb = match busybox {
                Some(b) => b.clone(),
                None => unet_sandbox::rootfs::find_busybox().map_err(|e| anyhow!(e))?,
            };
            let built = unet_sandbox::image::build::example_image(&bb).map_err(|e| anyhow!(e))?;
            std::fs::write(out.as_path(), &built.archive)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("{}", built.digest);
            return Ok(());
        }
        JobCommand::ExampleModel { out, input } => {
            std::fs::write(out.as_path(), unet_onnx::example_model())
                .with_context(|| format!("writing {}", out.display()))?;
            if let Some(input) = input {
                std::fs::write(
                    input.as_path(),
                    "[{\"name\": \"x\", \"dtype\": \"f32\", \"shape\": [1, 3], \"data\": [1, 2, 3]}]\n",
                )
                .with_context(|| format!("writing {}", input.display()))?;
            }
            return Ok(());
        }
    };
    crate::wallet::run_command(json_mode, dispatch(command))
}

async fn connect(t: &Target) -> Result<JobClient> {
    connect_lease(
        &t.common,
        &t.from,
        &t.passphrase,
        t.lease,
        t.endpoint.as_deref(),
    )
    .await
}

/// The renter's signing client of lease `lease`'s miner: the key `from` unlocked, the chain
/// id from the node, the endpoint given or else the lease's on chain. (`unet job` and
/// `unet service`.)
pub(crate) async fn connect_lease(
    common: &Common,
    from: &str,
    passphrase: &Passphrase,
    lease: u64,
    endpoint: Option<&str>,
) -> Result<JobClient> {
    let client = common.client();
    let key = common.unlock(from, passphrase)?;
    let chain_id = client
        .status()
        .await
        .map_err(|e| node_error(common, e))?
        .chain_id;
    let endpoint = match endpoint {
        Some(e) => e.to_string(),
        None => {
            client
                .lease(lease)
                .await
                .map_err(|e| node_error(common, e))?
                .lease
                .endpoint
        }
    };
    Ok(JobClient::new(&endpoint, key, chain_id, lease))
}

fn spinner(t: &Target, job_id: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if t.common.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} job {prefix}: {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    pb.set_prefix(job_id[..12.min(job_id.len())].to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    Some(pb)
}

async fn wait(t: &Target, c: &JobClient, job_id: &str) -> Result<JobView> {
    let pb = spinner(t, job_id);
    let r = c
        .wait(job_id, Duration::from_secs(t.timeout), |state| {
            if let Some(pb) = &pb {
                pb.set_message(state.to_string());
            }
        })
        .await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(r?)
}

/// Checks the receipt, saves (`--out`) and prints a finished job. Fails when the receipt
/// does not verify, names another image than `image` (when known), or the job did not
/// succeed.
async fn report(t: &Target, view: &JobView, image: Option<Option<&str>>) -> Result<()> {
    if let Some(path) = &t.out {
        std::fs::write(path, serde_json::to_string_pretty(view)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if view.state != JobState::Done {
        t.common.print(&serde_json::to_value(view)?, || {
            format!("job {} is {}", view.job_id, view.state)
        });
        return Ok(());
    }
    let verified = verify_receipt(&t.common.client(), view)
        .await
        .map_err(|e| anyhow!("the receipt of job {} does not verify: {e}", view.job_id))?;
    let doc = &verified.result;
    if let Some(want) = image {
        doc.check_image(want)
            .map_err(|e| anyhow!("job {}: {e}", view.job_id))?;
    }
    let out = json!({
        "job_id": view.job_id,
        "lease_id": view.lease_id,
        "state": view.state,
        "result": serde_json::from_str::<Value>(view.result_json.as_deref().unwrap_or("null"))?,
        "receipt": view.receipt,
        "receipt_verified": true,
        "chip_kind": verified.chip_kind,
    });
    t.common.print(&out, || {
        let mut s = format!(
            "job {} on chip {}: {}{}\n",
            view.job_id,
            doc.chip_id,
            match doc.status {
                Outcome::Ok => "ok",
                Outcome::Failed => "failed",
                Outcome::LimitExceeded => "limit exceeded",
            },
            doc.limit
                .map(|l| format!(
                    " ({})",
                    serde_json::to_value(l)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or("")
                ))
                .unwrap_or_default()
        );
        if let Some(e) = &doc.error {
            s += &format!("  error: {e}\n");
        }
        for o in doc.outputs.iter().flatten() {
            let data = match &o.data {
                TensorData::F32(v) => serde_json::to_string(v),
                TensorData::F64(v) => serde_json::to_string(v),
                TensorData::I32(v) => serde_json::to_string(v),
                TensorData::I64(v) => serde_json::to_string(v),
                TensorData::Bool(v) => serde_json::to_string(v),
            }
            .unwrap_or_default();
            s += &format!("  {} {} {:?} = {data}\n", o.name, o.dtype, o.shape);
        }
        if let Some(img) = &doc.image {
            s += &format!("  image {img}\n");
        }
        if doc.kind == "exec" {
            s += &format!(
                "  exit code {}{}, {} ms\n",
                doc.exit_code.map_or("-".into(), |c| c.to_string()),
                doc.signal
                    .map(|g| format!(", signal {g}"))
                    .unwrap_or_default(),
                doc.finished_ms.saturating_sub(doc.started_ms)
            );
            let b64 = base64::engine::general_purpose::STANDARD;
            for (name, v) in [("stdout", &doc.stdout_b64), ("stderr", &doc.stderr_b64)] {
                let bytes = v
                    .as_deref()
                    .and_then(|t| b64.decode(t).ok())
                    .unwrap_or_default();
                if !bytes.is_empty() {
                    s += &format!("  --- {name} ---\n{}\n", String::from_utf8_lossy(&bytes));
                }
            }
        }
        s += &format!(
            "  receipt verified: signed by chip {} ({}) of lease {}",
            verified.chip_id, verified.chip_kind, view.lease_id
        );
        s
    });
    if doc.status != Outcome::Ok {
        return Err(anyhow!(Reported(format!(
            "job {} did not succeed",
            view.job_id
        ))));
    }
    Ok(())
}

fn read_inputs(path: &PathBuf) -> Result<Vec<TensorIn>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let list = match v {
        Value::Object(mut o) if o.contains_key("inputs") => o.remove("inputs").unwrap_or_default(),
        other => other,
    };
    serde_json::from_value(list).with_context(|| {
        format!(
            "{}: expected [{{\"name\", \"dtype\", \"shape\", \"data\"}}, ...]",
            path.display()
        )
    })
}

async fn dispatch(command: JobCommand) -> Result<()> {
    match command {
        JobCommand::Submit(a) => {
            let job = if let Some(model) = &a.onnx {
                let bytes =
                    std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
                let Some(input) = &a.input else {
                    bail!("--onnx needs --input FILE");
                };
                JobSpec::Onnx {
                    model: base64::engine::general_purpose::STANDARD.encode(bytes),
                    inputs: read_inputs(input)?,
                    wall_ms: a.wall_ms,
                }
            } else {
                let d = ExecLimits::default();
                JobSpec::Exec {
                    image: None,
                    argv: a.cmd.clone(),
                    limits: ExecLimits {
                        wall_ms: a.wall_ms.unwrap_or(d.wall_ms),
                        memory_mib: a.memory_mib.unwrap_or(d.memory_mib),
                        output_bytes: a.output_bytes.unwrap_or(d.output_bytes),
                        file_bytes: a.file_bytes.unwrap_or(d.file_bytes),
                    },
                }
            };
            let mut salt = [0u8; 8];
            rand::fill(&mut salt);
            let req = JobRequest {
                lease: a.target.lease,
                chip: a.chip.clone(),
                salt: Some(hex::encode(salt)),
                job,
            };
            let mut req = req;
            let c = connect(&a.target).await?;
            let pinned = match (&a.image, &a.image_archive) {
                (_, Some(file)) => {
                    let bytes = std::fs::read(file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let digest = c.upload_image(bytes).await?.digest;
                    Some(digest)
                }
                (Some(r), None) if r.contains('@') || r.starts_with("sha256:") => Some(r.clone()),
                (Some(r), None) => {
                    let d = unet_miner::jobs::pull::resolve_digest(r, &a.insecure_registry)
                        .await
                        .map_err(|e| anyhow!(e))?;
                    let base = r.rsplit_once(':').filter(|(_, tag)| !tag.contains('/'));
                    let base = base.map_or(r.as_str(), |(b, _)| b);
                    Some(format!("{base}@{d}"))
                }
                (None, None) => None,
            };
            if let JobSpec::Exec { image, .. } = &mut req.job {
                *image = pinned.clone();
            }
            let view = c.submit(&req).await?;
            if a.no_wait {
                a.target.common.print(&serde_json::to_value(&view)?, || {
                    format!(
                        "job {} {} on lease {}; fetch it with `unet job result --from {} --lease {} --job {} --wait`",
                        view.job_id, view.state, view.lease_id, a.target.from, view.lease_id, view.job_id
                    )
                });
                return Ok(());
            }
            let done = wait(&a.target, &c, &view.job_id).await?;
            let want = match &req.job {
                JobSpec::Exec { image, .. } => Some(image.as_deref()),
                JobSpec::Onnx { .. } => None,
            };
            report(&a.target, &done, want).await
        }
        JobCommand::ExampleModel { .. } | JobCommand::ExampleImage { .. } => Ok(()),
        JobCommand::Logs { job, args } => crate::service::logs(&args, Some(&job)).await,
        JobCommand::Volume { target } => {
            let out = target
                .out
                .clone()
                .ok_or_else(|| anyhow!("--out FILE names where the volume's tar goes"))?;
            let c = connect(&target).await?;
            let mut f = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let bytes = c.download_volume(&mut f).await?;
            f.sync_all()
                .with_context(|| format!("writing {}", out.display()))?;
            if target.common.json {
                println!("{}", json!({"out": out, "bytes": bytes}));
            } else {
                println!(
                    "volume of lease {} written to {} ({bytes} bytes)",
                    target.lease,
                    out.display()
                );
            }
            Ok(())
        }
        JobCommand::Result(a) => {
            let c = connect(&a.target).await?;
            let view = if a.wait {
                wait(&a.target, &c, &a.job).await?
            } else {
                c.get(&a.job).await?
            };
            report(&a.target, &view, None).await
        }
    }
}
